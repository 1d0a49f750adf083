//! Making writes durable and files read-only: the file-system primitives that the online
//! side (bundles, the work directory, the cache) and the offline side (the store, outputs,
//! distribution points) share. Nothing here knows what the files are.

use std::fs;
use std::path::Path;

use crate::base::error::{IoContext, Result};

/// Marks a file read-only: stored and cached files are never changed in place.
pub fn make_readonly(path: &Path) -> Result<()> {
    let mut perms = fs::metadata(path).at(path)?.permissions();
    perms.set_readonly(true);
    fs::set_permissions(path, perms).at(path)
}

/// Read-only files cannot be deleted on Windows; clear the flag first.
pub fn make_writable(path: &Path) -> Result<()> {
    let mut perms = fs::metadata(path).at(path)?.permissions();
    if perms.readonly() {
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(path, perms).at(path)?;
    }
    Ok(())
}

/// Makes a rename or creation in `dir` durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Makes a rename or creation in `dir` durable: Windows flushes a directory's entries
/// through a handle opened for writing with backup semantics (FlushFileBuffers). Where the
/// file system cannot (FAT, some network shares say the function or parameter is not
/// supported), NTFS's journal and the next `ingest check` are what stand behind the rename.
#[cfg(windows)]
pub fn sync_dir(dir: &Path) -> Result<()> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Foundation::{ERROR_INVALID_FUNCTION, ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED};
    use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS;
    let flushed = fs::OpenOptions::new()
        .write(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(dir)
        .and_then(|d| d.sync_all());
    match flushed {
        Err(e)
            if e.raw_os_error().is_some_and(|code| {
                [ERROR_INVALID_FUNCTION, ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED].contains(&(code as u32))
            }) =>
        {
            Ok(())
        }
        other => other.at(dir),
    }
}

#[cfg(not(any(unix, windows)))]
pub fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

/// Syncs the directory that holds `path`.
pub fn sync_parent(path: &Path) -> Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir),
        None => sync_dir(Path::new(".")),
    }
}
