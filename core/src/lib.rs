//! ferry's core: every rule of carrying updates across an air gap.
//!
//! The binaries `fetch` and `ingest` parse arguments, show progress, format output and choose
//! exit codes; everything else lives here. Pure parts (the model, catalog parsing and
//! selection, the manifest, minisign formats) take values and return values; I/O parts (the
//! bundle container, sources, the store, the registry) sit around them. See ARCHITECTURE.md.

pub mod bundle;
pub mod cache;
pub mod catalog;
pub mod check;
pub mod clock;
pub mod datadir;
pub mod download;
pub mod error;
pub mod ingest;
pub mod keys;
mod lock;
pub mod manifest;
pub mod minisign;
pub mod model;
pub mod names;
#[cfg(feature = "net")]
pub mod net;
pub mod pack;
mod random;
pub mod registry;
pub mod rotation;
pub mod source;
pub mod state;
pub mod store;
pub mod text;
pub mod trust;
pub mod volumes;
pub mod workdir;

pub use error::{Error, ErrorClass, Result};
