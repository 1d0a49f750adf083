//! The online side: from a catalog to signed bundles. Sources (files and, with the `net`
//! feature, HTTP), the download cache, volumes, the working directory and `pack`.

pub mod cache;
pub mod download;
pub mod feed;
pub mod msrc;
#[cfg(feature = "net")]
pub mod net;
pub mod pack;
pub mod source;
pub mod transfer;
pub mod volumes;
pub mod winget;
pub mod workdir;
pub mod wsusscn2;
