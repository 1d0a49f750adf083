//! ferry's core: every rule of carrying updates across an air gap.
//!
//! The binaries `fetch` and `ingest` parse arguments, show progress, format output and choose
//! exit codes; everything else lives here, in layers that follow the flow of an update, each
//! using only the layers before it (tests/e2e/tidy.rs checks it):
//!
//! - [`base`]: errors, names, time, text, locks and safe file writes;
//! - [`formats`]: the update model and every file format ferry reads or signs (catalog,
//!   manifest, minisign, trust and rotation, state file, exchange CSV);
//! - [`bundle`]: the signed bundle, written and read;
//! - [`fetch`]: the online side, catalog to bundle (sources, downloads, volumes, pack);
//! - [`server`]: the offline server's data (content store, registry, configuration, reports);
//! - [`publish`]: distribution points;
//! - [`ingest`]: the offline server's operations (import, register, exchange, check, notify,
//!   watch). `fetch` and `server` never use each other. See ARCHITECTURE.md.

pub mod base;
pub mod bundle;
pub mod client;
pub mod fetch;
pub mod formats;
pub mod ingest;
pub mod publish;
pub mod server;

pub use base::error::{Error, ErrorClass, Result};

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
