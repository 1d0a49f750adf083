//! Where `fetch` reads catalogs and update files from: a local path, `file://`, or
//! `http(s)://` (through [`crate::fetch::net`], which only `fetch` links in).
//!
//! Relative references in a catalog are resolved against the catalog's own location, so a
//! catalog and its files can be copied together to a file share or a web server.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;

use url::Url;

use crate::base::error::{Error, IoContext, Result};
use crate::fetch::transfer::{Body, Failure, Fetched, Validators};

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

    /// The location as a URL (`file://` for a path).
    pub fn as_url(&self) -> Result<Url> {
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
    /// A catalog read over HTTP may name only `http(s)` locations: whoever serves it must not
    /// make fetch read (and sign into a bundle) files of the machine it runs on.
    pub fn join(&self, reference: &str) -> Result<Location> {
        let joined = match Url::parse(reference) {
            Ok(url) if url.scheme().len() > 1 => Location::from_url(url)?,
            _ => {
                let base = self.as_url()?;
                let joined = base
                    .join(reference)
                    .map_err(|e| Error::Invalid(format!("{reference:?} relative to {base}: {e}")))?;
                Location::from_url(joined)?
            }
        };
        if let (Location::Http(base), Location::File(path)) = (self, &joined) {
            return Err(Error::Invalid(format!(
                "{reference:?} names the local file {}, but the catalog was read from {base}: a catalog \
                 read over HTTP may name only http and https locations",
                path.display()
            )));
        }
        Ok(joined)
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
/// connections are reused across files and threads.
pub struct Sources {
    #[cfg(feature = "net")]
    http: crate::fetch::net::HttpClient,
}

impl Sources {
    #[cfg(feature = "net")]
    pub fn new(options: &crate::fetch::net::NetOptions) -> Result<Sources> {
        Ok(Sources { http: crate::fetch::net::HttpClient::new(options)? })
    }

    #[cfg(not(feature = "net"))]
    pub fn new() -> Result<Sources> {
        Ok(Sources {})
    }

    /// Opens `location` for streaming from byte `offset` on.
    pub fn open_at(&self, location: &Location, offset: u64) -> std::result::Result<Body, Failure> {
        match location {
            Location::File(path) => {
                // A regular file only: a device (/dev/zero) or FIFO named by a catalog is
                // refused at once, not read until some cap.
                let mut file = crate::base::shared_tree::open_regular(path, crate::base::shared_tree::Links::Follow)
                    .map_err(|e| Failure::fatal(e.to_string()))?
                    .file;
                if offset == 0 {
                    return Ok(Body::FromStart(Box::new(file)));
                }
                std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset))
                    .map_err(|e| Failure::restart(format!("{}: {e}", path.display())))?;
                Ok(Body::FromOffset(Box::new(file)))
            }
            #[cfg(feature = "net")]
            Location::Http(url) => self.http.get_from(url, offset),
            #[cfg(not(feature = "net"))]
            Location::Http(_) => Err(Failure::fatal("this build of ferry has no HTTP client")),
        }
    }

    /// Asks for the HTTP `url` unless the copy `held` names is current, resuming from byte
    /// `from` if the partial copy `partial` names is still the server's.
    pub fn revalidate(
        &self,
        url: &Url,
        held: Option<&Validators>,
        from: u64,
        partial: Option<&Validators>,
    ) -> std::result::Result<Fetched, Failure> {
        #[cfg(feature = "net")]
        return self.http.revalidate(url, held, from, partial);
        #[cfg(not(feature = "net"))]
        {
            let _ = (url, held, from, partial);
            Err(Failure::fatal("this build of ferry has no HTTP client"))
        }
    }

    /// Reads a whole small document (a catalog), refusing more than `cap` bytes.
    pub fn read_capped(&self, location: &Location, cap: u64) -> Result<Vec<u8>> {
        let reader: Box<dyn Read> = match location {
            // A local file's refusal (missing, a directory, a FIFO) is the file's, not a
            // download's: said once, as the user's input.
            Location::File(path) => {
                Box::new(crate::base::shared_tree::open_regular(path, crate::base::shared_tree::Links::Follow)?.file)
            }
            Location::Http(_) => match self.open_at(location, 0) {
                Ok(Body::FromStart(r) | Body::FromOffset(r)) => r,
                Err(f) => return Err(failure_error(location, f)),
            },
        };
        let mut bytes = Vec::new();
        reader.take(cap + 1).read_to_end(&mut bytes).map_err(|e| read_error(location, e))?;
        if bytes.len() as u64 > cap {
            return Err(Error::Invalid(format!("{location} is larger than {cap} bytes")));
        }
        Ok(bytes)
    }
}

/// Names the location in a failure to open it.
pub fn failure_error(location: &Location, f: Failure) -> Error {
    Error::Download { url: location.to_string(), cause: f.cause }
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

    #[test]
    fn a_catalog_read_over_http_names_no_local_file() {
        let http = Location::parse("http://127.0.0.1:8080/feeds/catalog.json").unwrap();
        for reference in
            ["file:///etc/os-release", "FILE:/etc/passwd", "file:etc/passwd", "File://localhost/etc/shadow"]
        {
            let err = http.join(reference).unwrap_err().to_string();
            assert!(err.contains("may name only http and https locations"), "{reference}: {err}");
        }
        // A path is a path on the same server.
        assert_eq!(
            http.join("/etc/shadow").unwrap(),
            Location::Http(Url::parse("http://127.0.0.1:8080/etc/shadow").unwrap())
        );
    }
}
