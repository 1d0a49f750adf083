//! Scheduled ingestion (`ingest watch`): the rules of one pass over the drop folders, and of
//! the daily refresh.
//!
//! A pass finds the bundle files (`*.zip`, volume folders included) in each drop folder,
//! waits until none of them is still being written, imports them in sequence order, and
//! moves each out of the way: to `processed/`, or to `rejected/` with a reason file beside
//! it. A refusal that is not the bundle's fault (a full disk, a busy data directory) or a
//! file that changed while it was read leaves the file where it was, for the next pass. A
//! file that cannot be moved (a read-only stick) is remembered in the registry and not read
//! again while its size and modification time stay the same.
//!
//! The pass then refreshes the update list if the daily refresh time has passed since the
//! last refresh, and publishes the distribution points that are behind
//! ([`crate::publish::pending`]). The binary strings these steps together and reports them.

use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::base::clock::DailyTime;
use crate::base::clock::Timestamp;
use crate::base::error::{Error, IoContext, Result};
use crate::base::shared_tree::SharedTree;
use crate::server::datadir::DataDir;
use crate::server::registry::Observed;

/// Where accepted bundles go, inside the drop folder they were found in.
pub const PROCESSED_DIR: &str = "processed";
/// Where refused bundles go, each with a reason file.
pub const REJECTED_DIR: &str = "rejected";
/// Appended to a rejected file's name for the file that says why.
pub const REASON_SUFFIX: &str = ".reason.txt";
/// The lock that keeps one watcher per data directory.
pub const LOCK_FILE: &str = "watch.lock";

/// A bundle file found in a drop folder, as last observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The drop folder it was found in.
    pub drop: PathBuf,
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
}

impl Found {
    fn observe(drop: &Path, path: &Path) -> std::io::Result<Found> {
        let meta = std::fs::metadata(path)?;
        Ok(Found { drop: drop.to_path_buf(), path: path.to_path_buf(), size: meta.len(), modified: meta.modified()? })
    }

    /// Looks again: whether the file is still there with the same size and time.
    pub fn unchanged(&self) -> bool {
        Found::observe(&self.drop, &self.path).is_ok_and(|now| now.size == self.size && now.modified == self.modified)
    }

    /// As the registry remembers it.
    pub fn observed(&self) -> Observed {
        let modified = match self.modified.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
        };
        Observed { path: self.path.display().to_string(), size: self.size, modified }
    }

    /// Its path inside its drop folder.
    pub fn relative(&self) -> &Path {
        self.path.strip_prefix(&self.drop).unwrap_or(&self.path)
    }
}

/// What a look at the drop folders found.
#[derive(Debug, Default)]
pub struct Scan {
    pub found: Vec<Found>,
    /// Files that are not bundles (not `*.zip`, or not a regular file): left alone.
    pub ignored: Vec<PathBuf>,
    /// Drop folders that are not there (a stick not plugged in).
    pub absent: Vec<PathBuf>,
}

/// Finds the bundle files in each drop folder and the folders below it, except its own
/// `processed/` and `rejected/` and anything hidden (a name starting with a dot, as copy
/// tools use for files in transit). Symbolic links are not followed.
pub fn scan(drops: &[PathBuf]) -> Result<Scan> {
    scan_for(drops, |path| path.extension().is_some_and(|x| x.eq_ignore_ascii_case("zip")))
}

/// Finds every regular file in the folders, as [`scan`] does bundles: for the folders
/// computers drop their inventories and installation results into.
pub fn scan_files(folders: &[PathBuf]) -> Result<Scan> {
    scan_for(folders, |_| true)
}

fn scan_for(drops: &[PathBuf], wanted: impl Fn(&Path) -> bool) -> Result<Scan> {
    let mut scan = Scan::default();
    for drop in drops {
        match std::fs::metadata(drop) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(Error::Invalid(format!("drop folder {} is not a directory", drop.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                scan.absent.push(drop.clone());
                continue;
            }
            Err(e) => return Err(Error::io(drop, e)),
        }
        let walk = walkdir::WalkDir::new(drop).min_depth(1).sort_by_file_name().into_iter().filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            let ours = e.depth() == 1 && (name == PROCESSED_DIR || name == REJECTED_DIR);
            !ours && !name.starts_with('.')
        });
        for entry in walk {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(drop).to_path_buf();
                Error::io(path, e.into())
            })?;
            if entry.file_type().is_dir() {
                continue;
            }
            if entry.file_type().is_file() && wanted(entry.path()) {
                match Found::observe(drop, entry.path()) {
                    Ok(found) => scan.found.push(found),
                    // Gone between the listing and the look: someone else took it.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(entry.path(), e)),
                }
            } else {
                scan.ignored.push(entry.into_path());
            }
        }
    }
    Ok(scan)
}

/// The files of a pass, once none is being written any more, or the waiting time is over.
#[derive(Debug, Default)]
pub struct Settled {
    pub ready: Vec<Found>,
    /// Still changing when the waiting time ran out.
    pub writing: Vec<Found>,
}

/// Waits until each file's size and modification time have stayed the same for `settle`
/// (at once for a file last modified longer ago than that), for at most `max_wait`.
/// `waiting` hears once which files are being waited for.
pub fn settle(found: Vec<Found>, settle: Duration, max_wait: Duration, waiting: impl FnOnce(&[Found])) -> Settled {
    let start = Instant::now();
    let now = SystemTime::now();
    let (ready, fresh): (Vec<Found>, Vec<Found>) =
        found.into_iter().partition(|f| now.duration_since(f.modified).is_ok_and(|age| age >= settle));
    let mut settled = Settled { ready, writing: Vec::new() };
    if fresh.is_empty() {
        return settled;
    }
    waiting(&fresh);
    // Each file still settling, with the moment it was last seen to change.
    let mut pending: Vec<(Found, Instant)> = fresh.into_iter().map(|f| (f, start)).collect();
    let poll = (settle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    while !pending.is_empty() && start.elapsed() < max_wait {
        std::thread::sleep(poll.min(max_wait.saturating_sub(start.elapsed())));
        let mut still = Vec::with_capacity(pending.len());
        for (f, since) in pending {
            match Found::observe(&f.drop, &f.path) {
                Err(_) => {} // gone: moved away by someone else
                Ok(now) if now != f => still.push((now, Instant::now())),
                Ok(_) if since.elapsed() >= settle => settled.ready.push(f),
                Ok(_) => still.push((f, since)),
            }
        }
        pending = still;
    }
    settled.writing = pending.into_iter().map(|(f, _)| f).collect();
    settled
}

/// What became of a file of the drop folder after its import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Moved to `processed/` (accepted, or imported before).
    Processed { to: PathBuf },
    /// Moved to `rejected/`, with a reason file beside it.
    Rejected { to: PathBuf, reason_file: PathBuf },
    /// Could not be moved (a read-only stick): to be remembered ([`remember`]), and not read
    /// again while unchanged. `outcome` is processed or rejected.
    Remembered { outcome: &'static str, why: String },
    /// Left for a later pass: the failure was not the bundle's, or the file changed while read.
    Left { why: String },
}

/// Whose fault a failure is, for [`dispose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// A bundle: refused for its signature, its contents, its integrity or a rollback.
    Bundle,
    /// An inventory or a results file: refused for what it says (bad input) as well.
    ComputerFile,
}

impl Dropped {
    fn at_fault(self, e: &Error) -> bool {
        crate::ingest::import::is_refusal(e)
            || (self == Dropped::ComputerFile && e.class() == crate::base::error::ErrorClass::Input)
    }
}

/// Moves `found` out of the drop folder according to how its import went: `refusal` is the
/// reason it was refused, if it was.
pub fn dispose(found: &Found, refusal: Option<&Error>, kind: Dropped) -> Result<Disposition> {
    if let Some(e) = refusal {
        if !kind.at_fault(e) {
            return Ok(Disposition::Left { why: format!("not the file's fault, tried again next pass: {e}") });
        }
        if !found.unchanged() {
            return Ok(Disposition::Left { why: "it changed while it was read; tried again next pass".into() });
        }
    }
    let (dir, outcome) = if refusal.is_some() { (REJECTED_DIR, "rejected") } else { (PROCESSED_DIR, "processed") };
    let (to, dest, name) = match move_into(found, dir) {
        Ok(moved) => moved,
        Err(e) => {
            return Ok(Disposition::Remembered {
                outcome,
                why: format!("{outcome}, but it cannot be moved ({e}); it is not read again while unchanged"),
            });
        }
    };
    let Some(e) = refusal else {
        return Ok(Disposition::Processed { to });
    };
    let reason_name = format!("{name}{REASON_SUFFIX}");
    let text = format!(
        "ingest watch refused this file at {}.\n\
         found:   {}\n\
         what:    {} ({})\n\
         reason:  {}\n\n\
         It is not read again from here. Once the cause is dealt with (for a bundle, a key\n\
         trusted with `ingest trust add`, the missing earlier bundle imported, ...), move it\n\
         back into the drop folder; a file that is damaged needs a new copy from its source.\n",
        Timestamp::now(),
        crate::base::text::for_terminal(&found.path.display().to_string()),
        e.class().sentence(),
        e.class().as_str(),
        crate::base::text::for_terminal(&e.to_string()),
    );
    write_new(&dest, &reason_name, text.as_bytes())?;
    Ok(Disposition::Rejected { to, reason_file: dest.display(&reason_name) })
}

/// Writes a new file `name` in `dir` whole: a temporary file, synced, renamed to a name that
/// nothing holds (checked just before; a link planted there since is replaced, not followed).
fn write_new(dir: &SharedTree, name: &str, bytes: &[u8]) -> Result<()> {
    let temp = format!(".ferry-{name}");
    dir.remove(&temp)?;
    let mut file = dir.create_new(&temp)?;
    file.write_all(bytes).at(dir.display(&temp))?;
    file.sync_all().at(dir.display(&temp))?;
    drop(file);
    dir.rename(&temp, name)?;
    dir.sync()
}
/// Records a file that could not be moved, so that later passes leave it alone while it is
/// unchanged.
pub fn remember(data: &mut DataDir, found: &Found, disposition: &Disposition) -> Result<()> {
    match disposition {
        Disposition::Remembered { outcome, .. } => data.registry.remember_seen(&found.observed(), outcome),
        _ => Ok(()),
    }
}

/// Whether `found` is a file an earlier pass could not move and that has not changed since:
/// it is left alone.
pub fn seen_before(data: &DataDir, found: &Found) -> Result<bool> {
    data.registry.watch_seen(&found.observed())
}

/// Whether the daily refresh at `at` is due, the last refresh having run when the registry
/// says.
pub fn daily_refresh_due(data: &DataDir, at: DailyTime) -> Result<bool> {
    Ok(at.is_due_now(data.registry.last_refresh()?))
}

/// Renames `found` to the same relative path under `drop/dir/`, with a number added to its
/// name if that is taken; removes the folders it leaves empty. The drop folder is writable
/// by others: every folder on the way is reached through a handle without following links,
/// and `processed/`, `rejected/` and the folders below them must be real directories inside
/// the drop folder (anything else there is somebody's: refused, neither followed nor
/// removed, and the file stays). Returns the new path, the folder it is in and its name there.
fn move_into(found: &Found, dir: &str) -> Result<(PathBuf, SharedTree, String)> {
    let relative = found.relative();
    let mut parts: Vec<String> = Vec::new();
    for c in relative.components() {
        match c {
            std::path::Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| Error::Invalid(format!("{}: not a file name in UTF-8", found.path.display())))?
                    .to_string(),
            ),
            _ => return Err(Error::Invalid(format!("{}: not inside the drop folder", found.path.display()))),
        }
    }
    let file_name = parts.pop().ok_or_else(|| Error::Invalid(format!("{}: no file name", found.path.display())))?;
    let drop = SharedTree::open(&found.drop)?;
    // Where it is: the folders of the scan, which must still be real folders.
    let mut from = vec![drop];
    for part in &parts {
        let next = from
            .last()
            .expect("the drop folder")
            .existing_subdir(part)?
            .ok_or_else(|| Error::io(found.path.clone(), std::io::ErrorKind::NotFound.into()))?;
        from.push(next);
    }
    // Where it goes.
    let mut dest = from[0].dir_within(dir)?;
    for part in &parts {
        dest = dest.dir_within(part)?;
    }
    let (stem, ext) = match file_name.rfind('.') {
        Some(i) if i > 0 => (&file_name[..i], &file_name[i..]),
        _ => (file_name.as_str(), ""),
    };
    let mut candidate = file_name.clone();
    let mut n = 1;
    // A name is taken if anything holds it or its reason file.
    while dest.kind(&candidate)?.is_some() || dest.kind(&format!("{candidate}{REASON_SUFFIX}"))?.is_some() {
        n += 1;
        candidate = format!("{stem}~{n}{ext}");
    }
    from.last().expect("the drop folder").rename_to(&file_name, &dest, &candidate)?;
    dest.sync()?;
    // Remove the folders the move left empty, innermost first, each once this process's
    // own handle to it is closed (Windows does not remove a folder someone holds open).
    for (i, part) in parts.iter().enumerate().rev() {
        from.truncate(i + 1);
        if !from[i].remove_if_empty(part)? {
            break;
        }
    }
    Ok((dest.display(&candidate), dest, candidate))
}

/// Takes the one-watcher lock of the data directory `dir` and writes this process's id into
/// it; a second watcher gets [`Error::WatchRunning`] naming the first.
pub fn single_instance(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut file = match crate::base::lock::acquire(dir, LOCK_FILE) {
        Ok(file) => file,
        Err(Error::Busy { .. }) => {
            let pid = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse().ok());
            return Err(Error::WatchRunning { dir: dir.to_path_buf(), pid });
        }
        Err(e) => return Err(e),
    };
    file.set_len(0).at(&path)?;
    file.rewind().at(&path)?;
    writeln!(file, "{}", std::process::id()).at(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_skips_its_own_folders_hidden_files_and_other_files() {
        let drop = tempfile::tempdir().unwrap();
        let d = drop.path();
        for dir in ["processed", "rejected", "set-7", ".partial"] {
            std::fs::create_dir(d.join(dir)).unwrap();
        }
        for file in
            ["b.zip", "set-7/v1.ZIP", "processed/old.zip", "rejected/bad.zip", ".c.zip", ".partial/d.zip", "notes.txt"]
        {
            std::fs::write(d.join(file), b"x").unwrap();
        }
        let scan = scan(&[d.to_path_buf(), d.join("absent")]).unwrap();
        let found: Vec<_> = scan.found.iter().map(|f| f.relative().to_path_buf()).collect();
        assert_eq!(found, [PathBuf::from("b.zip"), PathBuf::from("set-7/v1.ZIP")]);
        assert_eq!(scan.ignored, [d.join("notes.txt")]);
        assert_eq!(scan.absent, [d.join("absent")]);
    }

    #[test]
    fn moving_keeps_the_relative_path_and_never_overwrites() {
        let drop = tempfile::tempdir().unwrap();
        let d = drop.path();
        std::fs::create_dir_all(d.join("set/inner")).unwrap();
        std::fs::create_dir_all(d.join("processed/set/inner")).unwrap();
        std::fs::write(d.join("processed/set/inner/v1.zip"), b"earlier").unwrap();
        std::fs::write(d.join("set/inner/v1.zip"), b"now").unwrap();
        let found = Found::observe(d, &d.join("set/inner/v1.zip")).unwrap();
        let (to, _, _) = move_into(&found, PROCESSED_DIR).unwrap();
        assert_eq!(to, d.join("processed/set/inner/v1~2.zip"));
        assert_eq!(std::fs::read(&to).unwrap(), b"now");
        assert_eq!(std::fs::read(d.join("processed/set/inner/v1.zip")).unwrap(), b"earlier");
        assert!(!d.join("set").exists(), "the emptied volume folder is removed");
    }

    #[test]
    fn an_old_file_is_ready_at_once_and_a_growing_one_is_waited_for() {
        let drop = tempfile::tempdir().unwrap();
        let d = drop.path();
        let old = d.join("old.zip");
        std::fs::write(&old, b"x").unwrap();
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options().write(true).open(&old).unwrap().set_modified(an_hour_ago).unwrap();
        let growing = d.join("growing.zip");
        std::fs::write(&growing, b"x").unwrap();
        let found = scan(&[d.to_path_buf()]).unwrap().found;
        let writer = std::thread::spawn(move || {
            for _ in 0..6 {
                std::thread::sleep(Duration::from_millis(100));
                File::options().append(true).open(&growing).unwrap().write_all(b"more").unwrap();
            }
        });
        let mut waited = Vec::new();
        let started = Instant::now();
        let settled = settle(found, Duration::from_millis(300), Duration::from_secs(20), |w| {
            waited = w.iter().map(|f| f.relative().to_path_buf()).collect()
        });
        writer.join().unwrap();
        assert_eq!(waited, [PathBuf::from("growing.zip")]);
        assert!(settled.writing.is_empty());
        assert_eq!(settled.ready.len(), 2);
        let grown = settled.ready.iter().find(|f| f.relative() == Path::new("growing.zip")).unwrap();
        assert_eq!(grown.size, 1 + 6 * 4, "read only once it stopped growing");
        assert!(started.elapsed() >= Duration::from_millis(900));
    }
}
