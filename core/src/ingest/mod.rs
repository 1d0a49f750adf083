//! The offline server's operations, each what one `ingest` command does: importing bundles,
//! registering files by hand, exchanging lists with other servers, checking the store,
//! notifying people and watching drop folders.

pub mod audit;
pub mod check;
pub mod computers;
pub mod exchange;
pub mod groups;
pub mod import;
pub mod list;
pub mod notify;
pub mod register;
pub mod reports;
pub mod results;
pub mod rules;
pub mod trust;
pub mod watch;
pub mod watch_pass;
