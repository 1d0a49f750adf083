//! Trees and files that people other than ferry can write to: distribution points (a share
//! that clients and other administrators write to), drop folders, sticks, a Downloads folder.
//!
//! Whatever such a person plants there (a symbolic link to the content store, a FIFO where a
//! file should be, a directory at a file's name) must never make ferry write, rename or delete
//! outside the tree, nor wait forever. So everything inside a [`SharedTree`] is reached
//! through a directory handle, one name at a time, without following a link: a link is an
//! entry like any other, to be removed or refused, never a way somewhere else (cap-std:
//! `openat2` with `RESOLVE_BENEATH` on Linux, handle-relative opens on Windows). Files are
//! opened without blocking and accepted only when the open handle is a regular file, so a
//! FIFO swapped in after a look is still caught. This module decides nothing about what
//! belongs in a tree; its callers do.

use std::io::Read;
use std::path::{Path, PathBuf};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use crate::base::error::{Error, IoContext, Result};

/// What an entry of a tree is, looked at without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file, its size, and how many names it has (1 where unknown).
    File {
        len: u64,
        links: u64,
    },
    Dir,
    Symlink,
    /// A FIFO, socket or device.
    Special,
}

impl Kind {
    /// What it is, for a message: "a symbolic link", "a FIFO or device".
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File { .. } => "a plain file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Special => "a FIFO, socket or device",
        }
    }

    fn of(meta: &cap_std::fs::Metadata) -> Kind {
        let t = meta.file_type();
        if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File { len: meta.len(), links: links(meta) }
        } else {
            Kind::Special
        }
    }
}

#[cfg(unix)]
fn links(meta: &cap_std::fs::Metadata) -> u64 {
    cap_std::fs::MetadataExt::nlink(meta)
}

#[cfg(not(unix))]
fn links(_meta: &cap_std::fs::Metadata) -> u64 {
    1
}

/// A directory that others can write to, and everything ferry does inside it.
#[derive(Debug)]
pub struct SharedTree {
    dir: Dir,
    /// For messages only: no path below it is ever opened by name.
    path: PathBuf,
}

impl SharedTree {
    /// Opens the tree at `path`, which the administrator named (a link there is theirs).
    pub fn open(path: &Path) -> Result<SharedTree> {
        let dir = Dir::open_ambient_dir(path, ambient_authority()).at(path)?;
        Ok(SharedTree { dir, path: path.to_path_buf() })
    }

    /// Creates the directory `path` where it is missing, then opens it.
    pub fn create(path: &Path) -> Result<SharedTree> {
        std::fs::create_dir_all(path).at(path)?;
        SharedTree::open(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside, for messages.
    pub fn display(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// What `name` is, not following it; `None` when absent.
    pub fn kind(&self, name: &str) -> Result<Option<Kind>> {
        match self.dir.symlink_metadata(name) {
            Ok(meta) => Ok(Some(Kind::of(&meta))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(self.display(name), e)),
        }
    }

    /// The real directory `name` inside, created when absent. Anything else found at that
    /// name (a link, a file, a FIFO) is removed, never followed, and said in `repaired`.
    pub fn subdir(&self, name: &str, repaired: &mut Vec<String>) -> Result<SharedTree> {
        match self.kind(name)? {
            Some(Kind::Dir) => {}
            None => self.create_dir(name)?,
            Some(other) => {
                self.remove(name)?;
                repaired.push(format!(
                    "{} was {}; replaced by a directory",
                    self.display(name).display(),
                    other.describe()
                ));
                self.create_dir(name)?;
            }
        }
        self.open_subdir(name)
    }

    /// The real directory `name` inside, created when absent. Anything else at that name is
    /// somebody else's and is refused, neither followed nor removed.
    pub fn dir_within(&self, name: &str) -> Result<SharedTree> {
        match self.kind(name)? {
            Some(Kind::Dir) => {}
            None => self.create_dir(name)?,
            Some(other) => return Err(Error::NotADirectory { path: self.display(name), found: other.describe() }),
        }
        self.open_subdir(name)
    }

    /// The real directory `name` inside, if there is one; `Err` naming what is there
    /// instead when it is not a directory.
    pub fn existing_subdir(&self, name: &str) -> Result<Option<SharedTree>> {
        match self.kind(name)? {
            None => Ok(None),
            Some(Kind::Dir) => self.open_subdir(name).map(Some),
            Some(other) => Err(Error::NotADirectory { path: self.display(name), found: other.describe() }),
        }
    }

    fn create_dir(&self, name: &str) -> Result<()> {
        match self.dir.create_dir(name) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::io(self.display(name), e)),
            _ => Ok(()),
        }
    }

    /// Opens a directory without following a link, so a link swapped in after a look fails
    /// here instead of being followed.
    fn open_subdir(&self, name: &str) -> Result<SharedTree> {
        let dir = self.dir.open_dir_nofollow(name).at(self.display(name))?;
        Ok(SharedTree { dir, path: self.display(name) })
    }

    /// Opens the regular file `name` for reading; `None` when absent. A link, directory or
    /// special file there is refused without being followed or waited on.
    pub fn open_file(&self, name: &str) -> Result<Option<std::fs::File>> {
        let mut options = OpenOptions::new();
        options.read(true).follow(FollowSymlinks::No);
        nonblocking(&mut options);
        let file = match self.dir.open_with(name, &options) {
            Ok(file) => file.into_std(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                // A link (ELOOP), or a directory opened for reading on some systems.
                return match self.kind(name)? {
                    Some(kind) if !matches!(kind, Kind::File { .. }) => {
                        Err(Error::NotAPlainFile { path: self.display(name), found: kind.describe() })
                    }
                    _ => Err(Error::io(self.display(name), e)),
                };
            }
        };
        let meta = file.metadata().at(self.display(name))?;
        if !meta.is_file() {
            let found = if meta.is_dir() { Kind::Dir } else { Kind::Special };
            return Err(Error::NotAPlainFile { path: self.display(name), found: found.describe() });
        }
        Ok(Some(file))
    }

    /// Reads the regular file `name` whole, refusing one larger than `cap` bytes.
    pub fn read_capped(&self, name: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let Some(file) = self.open_file(name)? else { return Ok(None) };
        let mut bytes = Vec::new();
        file.take(cap + 1).read_to_end(&mut bytes).at(self.display(name))?;
        if bytes.len() as u64 > cap {
            return Err(Error::TooLarge { path: self.display(name), limit: cap });
        }
        Ok(Some(bytes))
    }

    /// Creates a new file `name` for writing; fails if anything is there already, a link
    /// included (which is never followed).
    pub fn create_new(&self, name: &str) -> Result<std::fs::File> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).follow(FollowSymlinks::No);
        Ok(self.dir.open_with(name, &options).at(self.display(name))?.into_std())
    }

    /// Removes `name` whatever it is, never following it: a directory with everything in
    /// it, or the link itself.
    pub fn remove(&self, name: &str) -> Result<()> {
        let result = match self.kind(name)? {
            None => return Ok(()),
            Some(Kind::Dir) => {
                // Windows refuses to delete read-only files, and published files are.
                #[cfg(not(unix))]
                self.open_subdir(name)?.make_all_writable()?;
                self.dir.remove_dir_all(name)
            }
            Some(_) => {
                #[cfg(not(unix))]
                self.make_writable(name)?;
                self.dir.remove_file_or_symlink(name)
            }
        };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(self.display(name), e)),
            _ => Ok(()),
        }
    }

    /// Removes the empty directory `name`; leaves it when something is in it.
    pub fn remove_if_empty(&self, name: &str) -> Result<bool> {
        match self.dir.remove_dir(name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(_) if self.open_subdir(name)?.names()?.is_empty() => {
                Err(Error::io(self.display(name), std::io::Error::other("could not remove an empty directory")))
            }
            Err(_) => Ok(false),
        }
    }

    /// Clears the read-only flag of every plain file below this directory, never following
    /// a link or junction: for a removal on Windows.
    #[cfg(not(unix))]
    fn make_all_writable(&self) -> Result<()> {
        for (name, kind) in self.entries()? {
            match kind {
                Kind::File { .. } => self.make_writable(&name)?,
                Kind::Dir => self.open_subdir(&name)?.make_all_writable()?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Read-only files cannot be removed or replaced on Windows; clear the flag first.
    #[cfg(not(unix))]
    fn make_writable(&self, name: &str) -> Result<()> {
        if let Ok(meta) = self.dir.symlink_metadata(name)
            && meta.is_file()
            && meta.permissions().readonly()
        {
            let mut perms = meta.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            self.dir.set_permissions(name, perms).at(self.display(name))?;
        }
        Ok(())
    }

    /// Renames `from` to `to` inside this directory; whatever `to` was (a file or a link,
    /// never followed) is replaced.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        #[cfg(not(unix))]
        self.make_writable(to)?;
        self.dir.rename(from, &self.dir, to).at(self.display(to))
    }

    /// Renames `from` here to `to` in `other` (the same file system).
    pub fn rename_to(&self, from: &str, other: &SharedTree, to: &str) -> Result<()> {
        self.dir.rename(from, &other.dir, to).at(other.display(to))
    }

    /// The names in this directory, each with what it is (not followed).
    pub fn entries(&self) -> Result<Vec<(String, Kind)>> {
        let mut out = Vec::new();
        for name in self.names()? {
            if let Some(kind) = self.kind(&name)? {
                out.push((name, kind));
            }
        }
        Ok(out)
    }

    /// The names in this directory, sorted. A name that is not UTF-8 is returned lossily
    /// converted, so that it is reported; acting on it fails by name.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in self.dir.entries().at(&self.path)? {
            let entry = entry.at(&self.path)?;
            out.push(entry.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }

    /// Makes renames and creations in this directory durable.
    pub fn sync(&self) -> Result<()> {
        #[cfg(unix)]
        {
            // The handle itself may be opened for lookups only (O_PATH); fsync needs one
            // opened for reading.
            let this = self.dir.open_with(".", OpenOptions::new().read(true)).at(&self.path)?;
            this.sync_all().at(&self.path)
        }
        // Windows flushes a directory through a handle of its own, opened by path: a flush
        // writes nothing, so a link planted since cannot make it write elsewhere.
        #[cfg(not(unix))]
        crate::base::durable::sync_dir(&self.path)
    }

    /// Flushes the whole file system this directory is on (cheaper than a sync per
    /// directory past a few).
    #[cfg(target_os = "linux")]
    pub fn sync_file_system(&self) -> Result<()> {
        let this = self.dir.open_with(".", OpenOptions::new().read(true)).at(&self.path)?;
        rustix::fs::syncfs(&this).map_err(|e| Error::io(&self.path, e.into()))
    }
}

/// Opening a FIFO for reading waits for a writer; non-blocking, it returns at once and the
/// handle's type is checked instead. Reads of regular files ignore the flag.
#[cfg(unix)]
fn nonblocking(options: &mut OpenOptions) {
    use cap_std::fs::OpenOptionsExt;
    options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
}

#[cfg(not(unix))]
fn nonblocking(_options: &mut OpenOptions) {}

/// How a single file named on the command line or found in a drop folder may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A symbolic link is refused, naming where it points.
    Refuse,
    /// A symbolic link is followed (the administrator said so); its target is reported.
    Follow,
}

/// A regular file opened for reading, and where it really is when it was reached through a link.
#[derive(Debug)]
pub struct OpenedFile {
    pub file: std::fs::File,
    pub len: u64,
    /// The link's target, when `path` was a symbolic link that was followed.
    pub followed: Option<PathBuf>,
}

/// Opens `path` for reading if it is a regular file: a FIFO or device is refused without
/// being waited on, and a symbolic link is refused (naming its target) unless `links` says
/// to follow it. What is checked is the open handle, not a look beforehand.
pub fn open_regular(path: &Path, links: Links) -> Result<OpenedFile> {
    let meta = std::fs::symlink_metadata(path).at(path)?;
    let mut followed = None;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).at(path)?;
        if links == Links::Refuse {
            return Err(Error::SymlinkRefused { path: path.to_path_buf(), target });
        }
        followed = Some(std::fs::canonicalize(path).unwrap_or(target));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = rustix::fs::OFlags::NONBLOCK;
        if links == Links::Refuse {
            flags |= rustix::fs::OFlags::NOFOLLOW;
        }
        options.custom_flags(flags.bits() as i32);
    }
    #[cfg(windows)]
    if links == Links::Refuse {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: open a link itself, not what it names.
        options.custom_flags(0x0020_0000);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) => {
            // Swapped for a link after the look above (ELOOP), or a directory.
            let now = std::fs::symlink_metadata(path).at(path)?;
            if links == Links::Refuse && now.file_type().is_symlink() {
                let target = std::fs::read_link(path).at(path)?;
                return Err(Error::SymlinkRefused { path: path.to_path_buf(), target });
            }
            // Windows does not open a directory as a file at all (access denied).
            if now.is_dir() {
                return Err(Error::NotAPlainFile { path: path.to_path_buf(), found: Kind::Dir.describe() });
            }
            return Err(Error::io(path, e));
        }
    };
    let meta = file.metadata().at(path)?;
    if !meta.is_file() {
        let found = if meta.is_dir() { Kind::Dir } else { Kind::Special };
        return Err(Error::NotAPlainFile { path: path.to_path_buf(), found: found.describe() });
    }
    Ok(OpenedFile { file, len: meta.len(), followed })
}

/// What `path` is, not following a link; `None` when absent.
pub fn kind_of(path: &Path) -> Result<Option<Kind>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let t = meta.file_type();
            Ok(Some(if t.is_symlink() {
                Kind::Symlink
            } else if t.is_dir() {
                Kind::Dir
            } else if t.is_file() {
                Kind::File { len: meta.len(), links: 1 }
            } else {
                Kind::Special
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_replaced_by_a_directory_and_its_target_is_untouched() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("files")).unwrap();
        let tree = SharedTree::open(root.path()).unwrap();
        let mut repaired = vec![];
        let files = tree.subdir("files", &mut repaired).unwrap();
        assert_eq!(repaired.len(), 1, "{repaired:?}");
        assert!(repaired[0].contains("was a symbolic link"), "{repaired:?}");
        assert!(files.names().unwrap().is_empty());
        assert!(outside.path().join("keep").is_file(), "the link's target is never touched");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting() {
        let root = tempfile::tempdir().unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, root.path().join("current"), rustix::fs::Mode::from(0o644)).unwrap();
        let tree = SharedTree::open(root.path()).unwrap();
        let err = tree.open_file("current").unwrap_err();
        assert!(matches!(err, Error::NotAPlainFile { found: "a FIFO, socket or device", .. }), "{err}");
        let err = open_regular(&root.path().join("current"), Links::Follow).unwrap_err();
        assert!(matches!(err, Error::NotAPlainFile { .. }), "{err}");
    }

    #[test]
    fn a_link_is_refused_unless_followed_and_names_its_target() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("real.msu"), b"bytes").unwrap();
        let link = root.path().join("link.msu");
        std::os::unix::fs::symlink(root.path().join("real.msu"), &link).unwrap();
        let err = open_regular(&link, Links::Refuse).unwrap_err();
        assert!(matches!(&err, Error::SymlinkRefused { target, .. } if target.ends_with("real.msu")), "{err}");
        let opened = open_regular(&link, Links::Follow).unwrap();
        assert_eq!(opened.len, 5);
        assert!(opened.followed.unwrap().ends_with("real.msu"));
    }
}
