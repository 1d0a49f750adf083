//! fetch's content-addressed download cache, inside the work directory:
//! `cache/sha256/ab/abcdef…` holds complete, verified files (read-only),
//! `cache/partial/<hex>` (or `sha1-<hex>`) holds downloads in progress, kept across runs so
//! that an interrupted download resumes where it stopped, and `cache/sha1/<hex>` names the
//! SHA-256 of a file its vendor names by SHA-1 only (checked again whenever it is used).
//!
//! A file enters the cache only after its size and SHA-256 matched; a second run downloads
//! nothing the cache holds, and a file shared by several updates is fetched once.

use std::fs;
use std::path::{Path, PathBuf};

use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{Sha1, Sha256};

/// The digest the metadata vouches for a file by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vouched {
    Sha256(Sha256),
    /// Microsoft's metadata names its files by SHA-1 only: the file is checked against it
    /// and its SHA-256 computed, by which it is carried from then on.
    Sha1(Sha1),
}

pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache> {
        for dir in ["sha256", "partial", "sha1"] {
            let d = root.join(dir);
            fs::create_dir_all(&d).at(&d)?;
        }
        Ok(Cache { root: root.to_path_buf() })
    }

    /// Where the complete file with `digest` lives.
    pub fn path_of(&self, digest: &Sha256) -> PathBuf {
        let hex = digest.hex();
        self.root.join("sha256").join(&hex[..2]).join(hex)
    }

    /// Where a download of the file vouched for by `vouched` in progress lives.
    pub fn partial_path(&self, vouched: &Vouched) -> PathBuf {
        let name = match vouched {
            Vouched::Sha256(d) => d.hex(),
            Vouched::Sha1(d) => format!("sha1-{}", d.hex()),
        };
        self.root.join("partial").join(name)
    }

    /// The cached file vouched for by `vouched` (of `size` bytes, when known), if one is
    /// there (not re-hashed here): by its SHA-256, or through the SHA-1 index.
    pub fn find(&self, vouched: &Vouched, size: Option<u64>) -> Option<PathBuf> {
        let digest = match *vouched {
            Vouched::Sha256(d) => d,
            Vouched::Sha1(d) => {
                let text = fs::read_to_string(self.root.join("sha1").join(d.hex())).ok()?;
                text.trim().parse().ok()?
            }
        };
        let path = self.path_of(&digest);
        fs::metadata(&path).is_ok_and(|m| m.is_file() && size.is_none_or(|s| m.len() == s)).then_some(path)
    }

    /// Moves a verified partial download into the cache as `sha256`, read-only; a file
    /// named by SHA-1 gets its index entry.
    ///
    /// Not synced to disk: every cache entry is hashed again before it is used, so one lost
    /// or torn by a crash is simply downloaded again, and a hundred fsyncs per pack would
    /// cost more than that risk.
    pub fn commit(&self, vouched: &Vouched, sha256: &Sha256) -> Result<PathBuf> {
        let partial = self.partial_path(vouched);
        let target = self.path_of(sha256);
        if let Vouched::Sha1(sha1) = vouched {
            let index = self.root.join("sha1").join(sha1.hex());
            fs::write(&index, sha256.hex()).at(&index)?;
        }
        crate::base::durable::make_readonly(&partial)?;
        let dir = target.parent().expect("cache paths have a parent");
        fs::create_dir_all(dir).at(dir)?;
        fs::rename(&partial, &target).map_err(|e| Error::io(&target, e))?;
        Ok(target)
    }

    /// Removes a cached or partial file that turned out to be wrong.
    pub fn discard(&self, path: &Path) -> Result<()> {
        if !path.exists() {
            return Ok(());
        }
        crate::base::durable::make_writable(path)?;
        fs::remove_file(path).at(path)
    }
}
