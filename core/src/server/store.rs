//! The content store: update files named by their SHA-256 (`sha256/ab/abcdef…`).
//!
//! A file enters in three steps, each durable before the next: a temporary file in `tmp/`
//! ([`Incoming`]: written while hashed, synced, made read-only), renamed into `pending/<hex>` (directory
//! synced) once verified, and moved into `sha256/` only after the registry transaction that
//! records it has committed. So a crash leaves, at worst: temporary files (deleted at the
//! next start), pending files the registry does not record (deleted: the import did not
//! happen), or pending files it does record (moved into place: the import happened). The
//! recovery runs when the one process that holds the data directory's lock opens the store,
//! and `sha256/` never holds a file the registry does not know. The store knows nothing of
//! updates; the registry records which digests it holds.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempPath};

use crate::bundle::copy::{ALIGN, BlockSink};

use crate::base::durable::{make_writable, sync_dir};
use crate::base::error::{IoContext, Result};
use crate::base::names::Sha256;

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store under `root` and removes leftover temporary files.
    /// The caller must hold the data directory lock.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store { root: root.to_path_buf() };
        fs::create_dir_all(store.root.join("sha256")).at(&store.root)?;
        fs::create_dir_all(store.root.join("chunks")).at(&store.root)?;
        fs::create_dir_all(store.pending_dir()).at(&store.root)?;
        let tmp = store.tmp_dir();
        fs::create_dir_all(&tmp).at(&tmp)?;
        for entry in fs::read_dir(&tmp).at(&tmp)? {
            let path = entry.at(&tmp)?.path();
            if path.is_file() {
                make_writable(&path)?;
                fs::remove_file(&path).at(&path)?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn pending_dir(&self) -> PathBuf {
        self.root.join("pending")
    }

    /// Finishes or undoes what a crash interrupted: each pending file the registry records as
    /// present (`registered`) is moved into place; the others are deleted. Returns how many
    /// were moved and deleted. Only for the lock holder.
    pub fn recover(&self, registered: impl Fn(&Sha256) -> Result<bool>) -> Result<(usize, usize)> {
        let dir = self.pending_dir();
        let (mut moved, mut deleted) = (0, 0);
        for entry in fs::read_dir(&dir).at(&dir)? {
            let path = entry.at(&dir)?.path();
            let digest = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<Sha256>().ok());
            match digest {
                Some(d) if registered(&d)? => {
                    self.promote(&[d])?;
                    moved += 1;
                }
                _ => {
                    make_writable(&path)?;
                    fs::remove_file(&path).at(&path)?;
                    deleted += 1;
                }
            }
        }
        if deleted > 0 {
            sync_dir(&dir)?;
        }
        Ok((moved, deleted))
    }

    /// Moves committed files from `pending/` into `sha256/`, after the registry transaction
    /// that records them has committed.
    pub fn promote(&self, digests: &[Sha256]) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for digest in digests {
            let from = self.pending_dir().join(digest.hex());
            if !from.exists() {
                continue; // held already, or moved by an earlier run
            }
            crate::failpoint!("store.publish");
            let target = self.path_of(digest);
            let dir = target.parent().expect("store paths have a parent").to_path_buf();
            fs::create_dir_all(&dir).at(&dir)?;
            if target.is_file() {
                make_writable(&from)?;
                fs::remove_file(&from).at(&from)?;
            } else {
                fs::rename(&from, &target).at(&from)?;
            }
            dirs.insert(dir);
        }
        for dir in &dirs {
            sync_dir(dir)?;
        }
        if !dirs.is_empty() {
            sync_dir(&self.pending_dir())?;
        }
        Ok(())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the file with `digest` lives (whether or not it is there).
    pub fn path_of(&self, digest: &Sha256) -> PathBuf {
        Store::path_in(&self.root, digest)
    }

    /// Where a store rooted at `root` keeps `digest`.
    pub fn path_in(root: &Path, digest: &Sha256) -> PathBuf {
        let hex = digest.hex();
        root.join("sha256").join(&hex[..2]).join(hex)
    }

    pub fn contains(&self, digest: &Sha256) -> bool {
        self.path_of(digest).is_file()
    }

    /// Where a chunk of a file that arrives in pieces waits for the others.
    pub fn chunk_path(&self, digest: &Sha256) -> PathBuf {
        self.root.join("chunks").join(digest.hex())
    }

    pub fn holds_chunk(&self, digest: &Sha256) -> bool {
        self.chunk_path(digest).is_file()
    }

    /// Makes a verified chunk durable until its file can be reassembled.
    pub fn commit_chunk(&self, temp: TempPath, digest: &Sha256) -> Result<()> {
        self.persist(temp, &self.chunk_path(digest))
    }

    /// Removes a chunk whose file is now whole in the store.
    pub fn remove_chunk(&self, digest: &Sha256) -> Result<()> {
        let path = self.chunk_path(digest);
        if path.exists() {
            make_writable(&path)?;
            fs::remove_file(&path).at(&path)?;
        }
        Ok(())
    }

    /// Whether `digest` waits in `pending/` for a registry commit.
    pub fn is_pending(&self, digest: &Sha256) -> bool {
        self.pending_dir().join(digest.hex()).is_file()
    }

    /// Removes a pending file whose import was refused before the registry recorded it.
    pub fn discard_pending(&self, digest: &Sha256) -> Result<()> {
        let path = self.pending_dir().join(digest.hex());
        if path.is_file() {
            make_writable(&path)?;
            fs::remove_file(&path).at(&path)?;
            sync_dir(&self.pending_dir())?;
        }
        Ok(())
    }

    /// A new temporary file inside the store, removed when dropped unless committed.
    pub fn incoming(&self) -> Result<Incoming> {
        let temp = tempfile::Builder::new().prefix("incoming-").tempfile_in(self.tmp_dir()).at(self.tmp_dir())?;
        Ok(Incoming::new(temp))
    }

    /// Makes a written, synced and verified temporary file durable as pending: it becomes the
    /// store's copy of `digest` when [`Store::promote`] moves it, after the registry commit.
    pub fn commit(&self, temp: TempPath, digest: &Sha256) -> Result<()> {
        if self.contains(digest) {
            make_writable(&temp)?;
            return temp.close().at(self.path_of(digest));
        }
        self.persist(temp, &self.pending_dir().join(digest.hex()))
    }

    /// Renames the synced, read-only `temp` to `target` (unless that exists already: the same
    /// bytes, by the digest), then syncs the directory.
    fn persist(&self, temp: TempPath, target: &Path) -> Result<()> {
        crate::failpoint!("store.before-rename");
        if target.is_file() {
            // Already held (the same bytes, by the digest); the temporary copy is not needed.
            make_writable(&temp)?;
            return temp.close().at(target);
        }
        let dir = target.parent().expect("store paths have a parent");
        fs::create_dir_all(dir).at(dir)?;
        temp.persist(target).map_err(|e| crate::base::error::Error::io(target, e.error))?;
        // On Windows the temporary file is left writable (a read-only one could not be
        // deleted if the import is refused), and tempfile's rename resets the attributes
        // anyway: the file becomes read-only here, under its own name. A writable stored
        // file is one `ingest check` rightly reports.
        #[cfg(windows)]
        crate::base::durable::make_readonly(target)?;
        crate::failpoint!("store.after-rename");
        sync_dir(dir)
    }
}

/// A file entering the store, written block by block and then synced and made read-only by
/// [`BlockSink::finish`], which closes it: however many files an import brings, only those
/// being written are open.
///
/// On Linux the blocks go to the disk with direct I/O where the file system allows it: from
/// the block straight to the disk, with no second copy into the page cache and little left
/// for the sync to write. A file system that refuses it (tmpfs, some network file systems)
/// gets ordinary writes; so does a last block that is not a whole number of 4 KiB.
pub struct Incoming {
    temp: NamedTempFile,
    direct: Option<fs::File>,
    written: u64,
}

impl Incoming {
    fn new(temp: NamedTempFile) -> Incoming {
        let direct = open_direct(temp.path());
        Incoming { temp, direct, written: 0 }
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let direct = rustix::fs::OFlags::DIRECT.bits() as i32;
    fs::OpenOptions::new().write(true).custom_flags(direct).open(path).ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_: &Path) -> Option<fs::File> {
    None
}

#[cfg(unix)]
fn write_all_at(file: &fs::File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_all_at(file: &fs::File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, bytes, offset) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl BlockSink for Incoming {
    type Done = TempPath;

    fn write_block(&mut self, block: &[u8]) -> std::io::Result<()> {
        let mut direct_len = 0;
        if let Some(direct) = &self.direct {
            let aligned = (block.as_ptr() as usize).is_multiple_of(ALIGN) && self.written.is_multiple_of(ALIGN as u64);
            direct_len = if aligned { block.len() / ALIGN * ALIGN } else { 0 };
            if direct_len > 0 {
                match write_all_at(direct, &block[..direct_len], self.written) {
                    Ok(()) => {}
                    // Refused by the file system after all: ordinary writes from here on,
                    // starting again at this block (positional writes, so nothing doubles).
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                        self.direct = None;
                        direct_len = 0;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        write_all_at(self.temp.as_file(), &block[direct_len..], self.written + direct_len as u64)?;
        self.written += block.len() as u64;
        Ok(())
    }

    fn finish(self) -> std::io::Result<TempPath> {
        drop(self.direct);
        self.temp.as_file().sync_all()?;
        // Read-only from here on Unix. Windows cannot delete a read-only file, so a copy
        // whose import is then refused would stay in tmp/ when dropped: there the flag is
        // set once the file has its name in the store (`Store::persist`).
        #[cfg(unix)]
        {
            let mut perms = self.temp.as_file().metadata()?.permissions();
            perms.set_readonly(true);
            self.temp.as_file().set_permissions(perms)?;
        }
        Ok(self.temp.into_temp_path())
    }
}

impl std::io::Write for Incoming {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_block(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
