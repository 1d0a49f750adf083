//! The HTTP client `fetch` downloads with (reqwest, rustls).
//!
//! Architecture invariant: only `fetch` calls into this module. The `ingest` binary never
//! reaches it, so its executable carries no HTTP client (tests/e2e/boundaries.rs checks the
//! symbols).
//!
//! Proxies come from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`),
//! as reqwest reads them; an extra CA certificate file can be trusted on top of the bundled
//! web roots, for corporate TLS inspection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::base::error::{Error, Result};
use crate::fetch::transfer::{Body, Failure, Fetched, Validators};

/// How the HTTP client behaves on a corporate network.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// How long connecting, or waiting for the next bytes, may take.
    pub timeout: Duration,
    /// A PEM file of extra CA certificates to trust.
    pub ca_cert: Option<PathBuf>,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions { timeout: Duration::from_secs(60), ca_cert: None }
    }
}

pub struct HttpClient {
    client: reqwest::blocking::Client,
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| Error::Invalid(format!("CA certificate file {}: {}", path.display(), describe(&e))))?;
    if certs.is_empty() {
        return Err(Error::Invalid(format!("CA certificate file {} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

impl HttpClient {
    pub fn new(options: &NetOptions) -> Result<HttpClient> {
        let mut builder = reqwest::blocking::Client::builder()
            .user_agent(concat!("ferry-fetch/", env!("CARGO_PKG_VERSION"), " (air-gap update transfer)"))
            .connect_timeout(options.timeout)
            .timeout(options.timeout);
        if let Some(path) = &options.ca_cert {
            for cert in read_ca(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| Error::Environment {
            what: "the HTTP client".into(),
            cause: format!("cannot be set up: {}", describe(&e)),
        })?;
        Ok(HttpClient { client })
    }

    /// Asks for `url` from byte `offset` on. A server that ignores the range answers with the
    /// whole body, and the caller starts over.
    pub fn get_from(&self, url: &Url, offset: u64) -> std::result::Result<Body, Failure> {
        let mut request = self.client.get(url.clone());
        if offset > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let response = request.send().map_err(|e| Failure::retry(describe(&e)))?;
        let status = response.status();
        if offset > 0 && status == reqwest::StatusCode::PARTIAL_CONTENT {
            let range = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if !range.starts_with(&format!("bytes {offset}-")) {
                return Err(Failure::restart(format!("the server answered range {offset}- with {range:?}")));
            }
            return Ok(Body::FromOffset(Box::new(response)));
        }
        if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
            return Err(Failure::restart(format!("HTTP {status} for bytes {offset}-")));
        }
        if status.is_success() {
            return Ok(Body::FromStart(Box::new(response)));
        }
        let cause = format!("HTTP {status}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::retry(cause))
        } else {
            Err(Failure::fatal(cause))
        }
    }
}

impl HttpClient {
    /// Asks for `url` unless the copy `held` names is current (If-None-Match,
    /// If-Modified-Since), and from byte `from` on when the partial copy `partial` names is
    /// still the server's (Range with If-Range: a server with a newer file answers whole).
    pub fn revalidate(
        &self,
        url: &Url,
        held: Option<&Validators>,
        from: u64,
        partial: Option<&Validators>,
    ) -> std::result::Result<Fetched, Failure> {
        use reqwest::header;
        let mut request = self.client.get(url.clone());
        if let Some(v) = held {
            if let Some(etag) = &v.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = &v.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, date);
            }
        }
        let resume = from > 0 && partial.is_some_and(|p| !p.is_empty());
        if resume && let Some(p) = partial {
            request = request.header(header::RANGE, format!("bytes={from}-"));
            request =
                request.header(header::IF_RANGE, p.etag.as_ref().or(p.last_modified.as_ref()).expect("not empty"));
        }
        let response = request.send().map_err(|e| Failure::retry(describe(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        let text =
            |name: header::HeaderName| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let validators = Validators { etag: text(header::ETAG), last_modified: text(header::LAST_MODIFIED) };
        if resume && status == reqwest::StatusCode::PARTIAL_CONTENT {
            let range = text(header::CONTENT_RANGE).unwrap_or_default();
            if !range.starts_with(&format!("bytes {from}-")) {
                return Err(Failure::restart(format!("the server answered range {from}- with {range:?}")));
            }
            return Ok(Fetched::Body { body: Body::FromOffset(Box::new(response)), validators });
        }
        if status.is_success() {
            return Ok(Fetched::Body { body: Body::FromStart(Box::new(response)), validators });
        }
        let cause = format!("HTTP {status}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::retry(cause))
        } else {
            Err(Failure::fatal(cause))
        }
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
