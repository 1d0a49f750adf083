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

/// What identifies a version of a file on an HTTP server: its entity tag and its
/// modification date, as the server gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The answer to a request that revalidates a copy held and may resume a partial one.
pub enum Fetched {
    /// The copy held is current.
    NotModified,
    /// The file, whole or from the offset asked for, and its validators.
    Body { body: Body, validators: Validators },
}
