//! The HTTP client `fetch` downloads with (reqwest, rustls).
//!
//! Architecture invariant: only `fetch` calls into this module. The `ingest` binary never
//! reaches it, so its executable carries no HTTP client (tests/e2e/boundaries.rs checks the
//! symbols).

use std::io::Read;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};

/// How long one connect or one read may stall before the download is abandoned.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct HttpClient {
    client: reqwest::blocking::Client,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient> {
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("ferry-fetch/", env!("CARGO_PKG_VERSION"), " (air-gap update transfer)"))
            .connect_timeout(STALL_TIMEOUT)
            .timeout(STALL_TIMEOUT)
            .build()
            .map_err(|e| Error::Invalid(format!("cannot set up the HTTP client: {e}")))?;
        Ok(HttpClient { client })
    }

    pub fn get(&self, url: &Url) -> Result<Box<dyn Read + Send>> {
        let fail = |cause: String| Error::Download { url: url.to_string(), cause };
        let response = self.client.get(url.clone()).send().map_err(|e| fail(describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        Ok(Box::new(response))
    }
}

/// reqwest's Display omits the cause chain ("error sending request"); users need the cause.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
