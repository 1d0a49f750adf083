//! What every layer uses: the error type, validated names, dates and times, text for terminals,
//! locks, and writes that are durable and never follow a link out of their tree.

pub mod clock;
pub mod durable;
pub mod error;
pub mod locations;
pub(crate) mod lock;
pub mod names;
pub mod output;
pub mod progress;
pub(crate) mod random;
pub mod shared_tree;
pub mod text;
