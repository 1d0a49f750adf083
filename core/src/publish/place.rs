//! Placing one file on a distribution point: a reflink where the file system clones, else a
//! checked copy, read-only, under a temporary name renamed into place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::base::error::{Error, IoContext, Result};
use crate::base::names::Sha256;
use crate::base::progress::Meter;
use crate::base::shared_tree::{Kind, SharedTree};
use crate::server::store::Store;

/// A file being placed; renamed to its name when complete.
pub(crate) const TEMP_PREFIX: &str = ".ferry-";

/// Puts the store's files in place, one after the other. A published file never shares its
/// bytes with the store: it is a reflink (an independent inode, copy-on-write) or a copy.
/// How the files of a publish got there.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Placed {
    /// Copy-on-write clones of the store's files (Btrfs, XFS): no bytes copied, and an inode
    /// of their own, so nothing done on the share reaches the store.
    pub reflinked: usize,
    /// Copied, and checked against their digest on the way.
    pub copied: usize,
    /// There already, with the right size.
    pub unchanged: usize,
    /// There with the wrong size or content, as something other than a plain file, or as a
    /// hard link, and replaced.
    pub replaced: usize,
}

pub(crate) struct Placer<'a> {
    store_root: &'a Path,
    files_dir: &'a SharedTree,
    /// Hash what is already there (`publish --check`) instead of trusting its size.
    check: bool,
    /// Whether this file system clones files: learnt from the first attempt, so that a file
    /// system without clones costs one failed attempt per publish, not one per file.
    reflinks: Option<bool>,
    /// The `files/<ab>` directories opened so far.
    dirs: BTreeMap<String, SharedTree>,
    /// Those in which a name changed.
    touched: BTreeSet<String>,
    /// Files written under a temporary name, to be renamed once all are flushed:
    /// (directory, temporary name, name).
    unnamed: Vec<(String, String, String)>,
    placed: Placed,
    repaired: &'a mut Vec<String>,
}

impl<'a> Placer<'a> {
    pub(crate) fn new(
        store_root: &'a Path,
        files_dir: &'a SharedTree,
        check: bool,
        repaired: &'a mut Vec<String>,
    ) -> Placer<'a> {
        Placer {
            store_root,
            files_dir,
            check,
            reflinks: None,
            dirs: BTreeMap::new(),
            touched: BTreeSet::new(),
            unnamed: Vec::new(),
            placed: Placed::default(),
            repaired,
        }
    }

    /// What was placed, once every file is flushed and named.
    pub(crate) fn finish(self) -> Placed {
        self.placed
    }
}

impl Placer<'_> {
    /// Places the store's file `digest` as `files/<dir>/<name>`, unless a plain file of the
    /// right size (and content, with `check`) with no other name is there already. Counts
    /// the file on `meter`, and the bytes of a copy as they are written.
    pub(crate) fn place(&mut self, dir: &str, name: &str, digest: &Sha256, size: u64, meter: &Meter) -> Result<()> {
        if !self.dirs.contains_key(dir) {
            let opened = self.files_dir.subdir(dir, self.repaired)?;
            self.dirs.insert(dir.to_string(), opened);
        }
        let here = &self.dirs[dir];
        match here.kind(name)? {
            None => {}
            Some(Kind::File { len, links: 1 }) if len == size => {
                let intact = !self.check || {
                    let file = here.open_file(name)?.ok_or_else(|| Error::io(here.display(name), not_found()))?;
                    crate::bundle::hash_reader(file).at(here.display(name))?.0 == *digest
                };
                if intact {
                    self.placed.unchanged += 1;
                    meter.item_of(size);
                    return Ok(());
                }
                self.placed.replaced += 1;
            }
            Some(Kind::File { links, .. }) if links > 1 => {
                // Published by an earlier ferry as a hard link to the store: an edit on the
                // share would have reached the store's only copy.
                self.placed.replaced += 1;
                self.repaired.push(format!(
                    "{}: shared its bytes with {} other names (a hard link); replaced by a copy of its own",
                    here.display(name).display(),
                    links - 1
                ));
            }
            Some(Kind::File { .. }) => self.placed.replaced += 1,
            Some(other) => {
                here.remove(name)?;
                self.placed.replaced += 1;
                self.repaired.push(format!(
                    "{} was {}; replaced by the published file",
                    here.display(name).display(),
                    other.describe()
                ));
            }
        }
        let source_path = Store::path_in(self.store_root, digest);
        let source = fs::File::open(&source_path).at(&source_path)?;
        // Numbered: two names of one digest may wait unnamed in one directory at once.
        let temp = format!("{TEMP_PREFIX}{}-{}", digest.hex(), self.unnamed.len());
        here.remove(&temp)?;
        let mut out = here.create_new(&temp)?;
        let cloned = self.reflinks != Some(false) && reflink(&source, &out);
        if self.reflinks.is_none() {
            self.reflinks = Some(cloned);
        }
        let written = if cloned {
            self.placed.reflinked += 1;
            meter.bytes(size);
            Ok(())
        } else {
            self.placed.copied += 1;
            copy_checked(&source, &source_path, &mut out, &here.display(&temp), digest, size, meter)
        };
        // Where one flush of the whole file system is at hand, a file's bytes are flushed
        // with all the others before any of them takes its name (see `sync`): a sync per
        // file made a first publish of 400 copies take 322 ms against cp's 36 ms.
        let batched = cfg!(target_os = "linux");
        let finished = written
            .and_then(|()| if batched { Ok(()) } else { out.sync_all().at(here.display(&temp)) })
            .and_then(|()| set_published_mode(&out, &here.display(&temp)));
        drop(out);
        if let Err(e) = finished {
            here.remove(&temp)?;
            return Err(e);
        }
        if batched {
            self.unnamed.push((dir.to_string(), temp, name.to_string()));
        } else {
            here.rename(&temp, name)?;
        }
        self.touched.insert(dir.to_string());
        meter.item();
        Ok(())
    }

    /// Makes the placed files durable under their names. Files still under their temporary
    /// names are flushed first, all at once, and only then renamed: a file never has its
    /// name before its bytes are on the disk, so a crash cannot leave a published name on
    /// a file of the right size and unwritten content (which a plain publish, trusting
    /// sizes, would keep). Past a few directories, one flush of the whole file system costs
    /// less than a flush per directory (a first publish of 20,000 files touches all 256:
    /// tests/bench/publish.sh).
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.touched.is_empty() {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        if !self.unnamed.is_empty() {
            self.files_dir.sync_file_system()?;
            for (dir, temp, name) in std::mem::take(&mut self.unnamed) {
                self.dirs[&dir].rename(&temp, &name)?;
            }
        }
        #[cfg(target_os = "linux")]
        if self.touched.len() > 8 {
            return self.files_dir.sync_file_system();
        }
        for d in &self.touched {
            self.dirs[d].sync()?;
        }
        self.files_dir.sync()
    }
}

pub(crate) fn not_found() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::NotFound)
}

/// Published files are read-only and readable by everyone: the web server's or the share's
/// user serves them.
pub(crate) fn set_published_mode(file: &fs::File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    let perms = std::os::unix::fs::PermissionsExt::from_mode(0o444);
    #[cfg(not(unix))]
    let perms = {
        let mut perms = file.metadata().at(path)?.permissions();
        perms.set_readonly(true);
        perms
    };
    file.set_permissions(perms).at(path)
}

/// A copy-on-write clone of `source` into the empty file `target`, where the file system
/// offers one.
#[cfg(target_os = "linux")]
pub(crate) fn reflink(source: &fs::File, target: &fs::File) -> bool {
    rustix::fs::ioctl_ficlone(target, source).is_ok()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn reflink(_source: &fs::File, _target: &fs::File) -> bool {
    false
}

/// Copies the store's file into `target`, hashing on the way (a damaged store file is not
/// handed out), and counting the bytes on `meter`.
pub(crate) fn copy_checked(
    mut from: &fs::File,
    source: &Path,
    to: &mut fs::File,
    target: &Path,
    digest: &Sha256,
    size: u64,
    meter: &Meter,
) -> Result<()> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf).at(source)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        to.write_all(&buf[..n]).at(target)?;
        total += n as u64;
        meter.bytes(n as u64);
    }
    let actual = Sha256(hasher.finalize().into());
    let what = format!("store file {}", source.display());
    if total != size {
        return Err(Error::SizeMismatch { what, expected: size, actual: total });
    }
    if actual != *digest {
        return Err(Error::DigestMismatch { what, expected: *digest, actual });
    }
    Ok(())
}
