//! Files a person asked a command to write (`--out`, `--receipt`, a signature beside an
//! export): how they are written, and where they may not be.
//!
//! An output is written whole or not at all: into a temporary file beside the target,
//! synced, then renamed over it. That rename must never replace something that is not a
//! plain file: a symbolic link is refused (whoever planted `report.html → registry.sqlite`
//! in a shared folder gets nothing), and a device or FIFO (`/dev/stdout`, a pipe to another
//! program) is written to in place, as `cat >` would. Files are created with the process's
//! umask (mode 0666 before it), or keep the mode of the file they replace. An output inside
//! the data directory is refused, whatever path leads there: an export must never overwrite
//! the live registry or the store. Standard output (`-`) is the binaries' business: they own
//! the process's standard output.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::base::error::{Error, IoContext, Result};
use crate::base::shared_tree::{Kind, kind_of};

/// Writes what `write` produces as the file `path`, whole or not at all (see the module).
/// `protected` is a directory no output may land in (the data directory), if any.
pub fn write_file(
    path: &Path,
    protected: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    if let Some(dir) = protected {
        refuse_inside(path, dir)?;
    }
    match kind_of(path)? {
        None | Some(Kind::File { .. }) => atomically(path, write),
        Some(Kind::Special) => in_place(path, write),
        Some(Kind::Dir) => Err(Error::NotAPlainFile { path: path.to_path_buf(), found: Kind::Dir.describe() }),
        Some(Kind::Symlink) => {
            let target = std::fs::read_link(path).at(path)?;
            // A link to a device or FIFO (/dev/stdout, /dev/null) is a way of saying where the
            // bytes go; a link to a file is a file someone else may have chosen.
            match std::fs::metadata(path) {
                Ok(meta) if !meta.is_file() && !meta.is_dir() => in_place(path, write),
                _ => Err(Error::OutputIsLink { path: path.to_path_buf(), target }),
            }
        }
    }
}

/// [`write_file`] for bytes at hand.
pub fn write_bytes(path: &Path, protected: Option<&Path>, bytes: &[u8]) -> Result<()> {
    write_file(path, protected, |out| out.write_all(bytes).at(path))
}

/// Refuses `path` when it is, or would be created, inside `dir` (links resolved).
pub fn refuse_inside(path: &Path, dir: &Path) -> Result<()> {
    let Ok(dir_real) = std::fs::canonicalize(dir) else { return Ok(()) };
    let real = resolved(path)?;
    if real.starts_with(&dir_real) {
        return Err(Error::OutputInDataDir { path: path.to_path_buf(), dir: dir.to_path_buf() });
    }
    Ok(())
}

/// Where `path` leads: its links resolved, or, when it does not exist yet, its nearest
/// existing ancestor's real path with the rest appended.
fn resolved(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path).at(path)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => {
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = parent;
                }
                _ => return Ok(absolute),
            },
        }
    }
}

fn in_place(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let file = std::fs::OpenOptions::new().write(true).open(path).at(path)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    write(&mut out)?;
    out.flush().at(path)
}

fn atomically(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ferry-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode of the file replaced, or 0666 less the umask, as any tool creating a file.
        let mode = std::fs::symlink_metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o666);
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    let temp = builder.tempfile_in(dir).at(dir)?;
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, temp.as_file());
        write(&mut out)?;
        out.flush().at(temp.path())?;
    }
    temp.as_file().sync_all().at(temp.path())?;
    // Looked at again just before the rename: a link or special file that appeared since is
    // not replaced.
    match kind_of(path)? {
        None | Some(Kind::File { .. }) => {}
        Some(Kind::Symlink) => {
            let target = std::fs::read_link(path).at(path)?;
            return Err(Error::OutputIsLink { path: path.to_path_buf(), target });
        }
        Some(other) => return Err(Error::NotAPlainFile { path: path.to_path_buf(), found: other.describe() }),
    }
    temp.persist(path).map_err(|e| Error::io(path, e.error))?;
    crate::base::durable::sync_parent(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_link_is_never_replaced_and_its_target_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("registry.sqlite");
        std::fs::write(&victim, b"live").unwrap();
        let link = dir.path().join("report.html");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = write_bytes(&link, None, b"<html>").unwrap_err();
        assert!(matches!(err, Error::OutputIsLink { .. }), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"live");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_path_into_the_protected_directory_is_refused_however_it_is_spelt() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("store")).unwrap();
        std::fs::write(data.join("registry.sqlite"), b"live").unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("innocent")).unwrap();
        for path in [data.join("registry.sqlite"), data.join("store/../new.csv"), dir.path().join("innocent/x.csv")] {
            let err = write_bytes(&path, Some(&data), b"id,title\n").unwrap_err();
            assert!(matches!(err, Error::OutputInDataDir { .. }), "{}: {err}", path.display());
        }
        assert_eq!(std::fs::read(data.join("registry.sqlite")).unwrap(), b"live");
        write_bytes(&dir.path().join("list.csv"), Some(&data), b"id\n").unwrap();
    }

    #[test]
    fn a_new_file_gets_the_umask_and_a_replaced_one_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept.csv");
        std::fs::write(&kept, b"old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_bytes(&kept, None, b"new").unwrap();
        assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);
        let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        rustix::process::umask(umask);
        let fresh = dir.path().join("fresh.csv");
        write_bytes(&fresh, None, b"new").unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o666 & !umask.bits());
    }

    #[test]
    fn a_device_is_written_in_place() {
        write_bytes(Path::new("/dev/null"), None, b"nothing").unwrap();
        let kind = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(&kind), "still the device");
    }
}
