//! The offline server's data: the content store, the data directory, the configuration, the
//! registry (the update list and everything recorded with it) and change reports.

pub mod compliance_report;
pub mod config;
pub mod datadir;
pub mod registry;
pub mod report;
pub mod store;
