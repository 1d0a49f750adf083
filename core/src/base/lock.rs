//! The advisory lock file that keeps two processes from working on one directory at once
//! (`ingest.lock` in the data directory, `fetch.lock` in the work directory).
//!
//! The operating system releases the lock when the process ends, however it ends, so a
//! crash never leaves a stale lock behind.

use std::fs::{File, TryLockError};
use std::path::Path;

use crate::base::error::{Error, IoContext, Result};

/// Takes the lock `name` in `dir` without waiting; a second taker gets [`Error::Busy`].
pub fn acquire(dir: &Path, name: &str) -> Result<File> {
    std::fs::create_dir_all(dir).at(dir)?;
    let path = dir.join(name);
    let file = File::options().create(true).truncate(false).write(true).open(&path).at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::Busy { dir: dir.to_path_buf(), lock: path }),
        Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}
