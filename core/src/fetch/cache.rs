//! fetch's content-addressed download cache, inside the work directory:
//! `cache/sha256/ab/abcdef…` holds complete, verified files (read-only), and
//! `cache/partial/<hex>` holds downloads in progress, kept across runs so that an
//! interrupted download resumes where it stopped.
//!
//! A file enters the cache only after its size and SHA-256 matched; a second run downloads
//! nothing the cache holds, and a file shared by several updates is fetched once.

use std::fs;
use std::path::{Path, PathBuf};

use crate::base::error::{Error, IoContext, Result};
use crate::base::names::Sha256;

pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache> {
        for dir in ["sha256", "partial"] {
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

    /// Where a download of `digest` in progress lives.
    pub fn partial_path(&self, digest: &Sha256) -> PathBuf {
        self.root.join("partial").join(digest.hex())
    }

    /// Whether a complete file of `size` bytes is cached for `digest` (not re-hashed here).
    pub fn holds(&self, digest: &Sha256, size: u64) -> bool {
        fs::metadata(self.path_of(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Whether a complete file is cached for `digest`, whatever its size (not re-hashed here).
    pub fn holds_any(&self, digest: &Sha256) -> bool {
        fs::metadata(self.path_of(digest)).is_ok_and(|m| m.is_file())
    }

    /// Moves a verified partial download into the cache, read-only.
    ///
    /// Not synced to disk: every cache entry is hashed again before it is used, so one lost
    /// or torn by a crash is simply downloaded again, and a hundred fsyncs per pack would
    /// cost more than that risk.
    pub fn commit(&self, digest: &Sha256) -> Result<PathBuf> {
        let partial = self.partial_path(digest);
        let target = self.path_of(digest);
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
