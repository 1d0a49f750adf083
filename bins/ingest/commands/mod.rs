//! One file per `ingest` command (or family of subcommands): its arguments, the one core
//! operation it calls, and how it shows the result.

pub mod audit;
pub mod check;
pub mod compliance;
pub mod computers;
pub mod config;
pub mod dp;
pub mod eula;
pub mod exchange;
pub mod groups;
pub mod import;
pub mod list;
pub mod register;
pub mod report;
pub mod results;
pub mod rules;
pub mod select;
pub mod server_key;
pub mod service;
pub mod state;
pub mod status;
pub mod trust;
pub mod verify;
pub mod watch;

/// Says what was wrong with the command line and returns the usage exit code.
pub fn usage_error(message: &str) -> u8 {
    eprintln!("{}: {message}", crate::PROGRAM);
    crate::common::code::USAGE
}
