//! What opening a location for reading gives, whatever the source (a file or the HTTP client):
//! the bytes, or why not and whether another attempt may help.

use std::io::Read;

/// A response body: the whole file, or the rest of it from the offset asked for.
pub enum Body {
    FromStart(Box<dyn Read + Send>),
    FromOffset(Box<dyn Read + Send>),
}

/// Why opening a location failed, and what to do about it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub cause: String,
    /// Worth another attempt (timeouts, resets, 5xx).
    pub retryable: bool,
    /// The partial bytes kept so far are unusable; the next attempt starts from byte 0.
    pub restart: bool,
}

impl Failure {
    pub fn retry(cause: impl Into<String>) -> Failure {
        Failure { cause: cause.into(), retryable: true, restart: false }
    }
    pub fn restart(cause: impl Into<String>) -> Failure {
        Failure { cause: cause.into(), retryable: true, restart: true }
    }
    pub fn fatal(cause: impl Into<String>) -> Failure {
        Failure { cause: cause.into(), retryable: false, restart: false }
    }
}
