//! The update model and the files ferry reads or signs, as values: catalogs, the bundle
//! manifest, minisign keys and signatures, the trust store and its rotation statements, the
//! server state file, approval rules and the exchange CSV. Pure apart from reading and writing
//! the files themselves.

pub mod approval;
pub mod authenticode;
pub mod cabinet;
pub mod catalog;
pub mod compliance;
pub mod dp_index;
pub mod freshness;
pub mod install_results;
pub mod inventory;
pub mod json_lines;
pub mod keys;
pub mod list_csv;
pub mod manifest;
pub mod minisign;
pub mod model;
pub mod msrc;
pub mod revisions;
pub mod rotation;
pub mod rules;
pub mod state;
pub mod trust;
pub mod winget;
pub mod wsusscn2;
mod xml;
