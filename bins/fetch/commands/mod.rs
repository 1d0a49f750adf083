//! One file per `fetch` command: its arguments, the core operation it calls, and its output.

pub mod inspect;
pub mod key;
pub mod options;
pub mod pack;
pub mod plan;
