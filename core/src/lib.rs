//! ferry's core: every rule of carrying updates across an air gap.
//!
//! The binaries `fetch` and `ingest` parse arguments, show progress, format output and choose
//! exit codes; everything else lives here. Pure parts (the model, catalog parsing and
//! selection, the manifest, minisign formats) take values and return values; I/O parts (the
//! bundle container, sources, the store, the registry) sit around them. See ARCHITECTURE.md.

pub mod approval;
pub mod bundle;
pub mod cache;
pub mod catalog;
pub mod check;
pub mod clock;
pub mod config;
pub mod datadir;
pub mod download;
pub mod durable;
pub mod error;
pub mod exchange;
pub mod freshness;
pub mod ingest;
pub mod keys;
pub mod list_csv;
mod lock;
pub mod manifest;
pub mod minisign;
pub mod model;
pub mod names;
#[cfg(feature = "net")]
pub mod net;
pub mod notify;
pub mod output;
pub mod pack;
pub mod publish;
mod random;
pub mod register;
pub mod registry;
pub mod report;
pub mod rotation;
pub mod rules;
pub mod shared_tree;
pub mod source;
pub mod state;
pub mod store;
pub mod text;
pub mod transfer;
pub mod trust;
pub mod volumes;
pub mod watch;
pub mod workdir;

pub use error::{Error, ErrorClass, Result};

/// A crash point for the fault-injection tests. Built with the `failpoints` feature and named
/// in the FAILPOINTS environment variable (`name=return`, or `n*off->return` for the n+1-th
/// pass), it aborts the process on the spot, as a power cut would: no destructor runs, no
/// temporary file is cleaned. Without the feature it is nothing.
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if fail::eval($name, |_| ()).is_some() {
            std::process::abort();
        }
    };
}

/// A fault point that makes the read it guards fail, as a medium pulled out mid-read would.
#[macro_export]
macro_rules! failpoint_io {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if fail::eval($name, |_| ()).is_some() {
            return Err(std::io::Error::other("injected read error: the medium was removed"));
        }
    };
}

/// A fault point that refuses what it guards, as a check inside a transaction would: for the
/// tests of what a refusal after the store step leaves behind (nothing).
#[macro_export]
macro_rules! failpoint_refuse {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        if fail::eval($name, |_| ()).is_some() {
            return Err($crate::Error::Invalid(format!("refused at fault point {}", $name)));
        }
    };
}

/// Reads the FAILPOINTS configuration; a no-op without the `failpoints` feature.
pub fn failpoints_setup() {
    #[cfg(feature = "failpoints")]
    std::mem::forget(fail::FailScenario::setup());
}
