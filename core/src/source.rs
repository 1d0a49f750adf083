//! Where `fetch` reads catalogs and update files from: a local path, `file://`, or
//! `http(s)://` (through [`crate::net`], which only `fetch` links in).
//!
//! Relative references in a catalog are resolved against the catalog's own location, so a
//! catalog and its files can be copied together to a file share or a web server.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;

use url::Url;

use crate::error::{Error, IoContext, Result};

/// A place to read bytes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Http(Url),
}

impl Location {
    /// Parses a path, a `file://` URL or an `http(s)://` URL given by the user.
    pub fn parse(text: &str) -> Result<Location> {
        match Url::parse(text) {
            // A one-letter "scheme" is a Windows drive letter, not a URL.
            Ok(url) if url.scheme().len() > 1 => Location::from_url(url),
            _ => Ok(Location::File(PathBuf::from(text))),
        }
    }

    fn from_url(url: Url) -> Result<Location> {
        match url.scheme() {
            "http" | "https" => Ok(Location::Http(url)),
            "file" => url
                .to_file_path()
                .map(Location::File)
                .map_err(|()| Error::Invalid(format!("{url} does not name a local file"))),
            other => Err(Error::Invalid(format!("{url}: scheme {other:?} is not supported (use http, https or file)"))),
        }
    }

    fn as_url(&self) -> Result<Url> {
        match self {
            Location::Http(url) => Ok(url.clone()),
            Location::File(path) => {
                let absolute = std::path::absolute(path).at(path)?;
                Url::from_file_path(&absolute)
                    .map_err(|()| Error::Invalid(format!("{} cannot be written as a URL", absolute.display())))
            }
        }
    }

    /// Resolves `reference` (absolute URL, or relative to this location) as a catalog does.
    pub fn join(&self, reference: &str) -> Result<Location> {
        if let Ok(url) = Url::parse(reference)
            && url.scheme().len() > 1
        {
            return Location::from_url(url);
        }
        let base = self.as_url()?;
        let joined =
            base.join(reference).map_err(|e| Error::Invalid(format!("{reference:?} relative to {base}: {e}")))?;
        Location::from_url(joined)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Http(url) => write!(f, "{url}"),
        }
    }
}

/// Opens locations for reading. Holds the HTTP client, when there is one, so that its
/// connections are reused across files.
pub struct Sources {
    #[cfg(feature = "net")]
    http: crate::net::HttpClient,
}

impl Sources {
    pub fn new() -> Result<Sources> {
        Ok(Sources {
            #[cfg(feature = "net")]
            http: crate::net::HttpClient::new()?,
        })
    }

    /// Opens `location` for streaming. The reader yields the body as sent; callers cap and hash.
    pub fn open(&self, location: &Location) -> Result<Box<dyn Read + Send>> {
        match location {
            Location::File(path) => Ok(Box::new(std::fs::File::open(path).at(path)?)),
            #[cfg(feature = "net")]
            Location::Http(url) => self.http.get(url),
            #[cfg(not(feature = "net"))]
            Location::Http(url) => {
                Err(Error::Download { url: url.to_string(), cause: "this build of ferry has no HTTP client".into() })
            }
        }
    }

    /// Reads a whole small document (a catalog), refusing more than `cap` bytes.
    pub fn read_capped(&self, location: &Location, cap: u64) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let reader = self.open(location)?;
        reader.take(cap + 1).read_to_end(&mut bytes).map_err(|e| read_error(location, e))?;
        if bytes.len() as u64 > cap {
            return Err(Error::Invalid(format!("{location} is larger than {cap} bytes")));
        }
        Ok(bytes)
    }
}

/// Names the location in a read failure: a download for URLs, an I/O error for files.
pub fn read_error(location: &Location, e: std::io::Error) -> Error {
    match location {
        Location::File(path) => Error::io(path, e),
        Location::Http(url) => Error::Download { url: url.to_string(), cause: e.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_references_resolve_against_the_catalog() {
        let http = Location::parse("http://127.0.0.1:8080/feeds/catalog.json").unwrap();
        assert_eq!(
            http.join("payloads/a.msu").unwrap(),
            Location::Http(Url::parse("http://127.0.0.1:8080/feeds/payloads/a.msu").unwrap())
        );
        let file = Location::parse("/srv/feed/catalog.json").unwrap();
        assert_eq!(file.join("payloads/a b.msu").unwrap(), Location::File("/srv/feed/payloads/a b.msu".into()));
        assert_eq!(
            file.join("https://example.invalid/x.exe").unwrap(),
            Location::Http(Url::parse("https://example.invalid/x.exe").unwrap())
        );
        assert!(file.join("ftp://example.invalid/x").is_err());
    }
}
