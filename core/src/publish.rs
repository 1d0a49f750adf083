//! Publishing to distribution points, and checking one.
//!
//! A distribution point is a directory that a web server or a file share serves:
//!
//! ```text
//! DIR/current                              the generation clients read: "7\n"
//! DIR/generations/7/index.json             immutable once written
//! DIR/generations/7/index.json.minisig     signed by the management server's key
//! DIR/files/ab/<sha256>-<file name>      read-only; shared by every generation listing it
//! ```
//!
//! Readers never see a half-published state: files first, then the new generation (written
//! under a temporary name and renamed whole), then one atomic replacement of `current`. A
//! file is pruned only when neither of the last two generations lists it, so a client that
//! read the previous index a moment ago still finds every file it names. A crash at any
//! point leaves the previous generation valid; the next publish finishes the job.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::datadir::DataDir;
use crate::error::{Error, IoContext, Result};
use crate::minisign::{PublicKey, SecretKey, SignatureFile, VerifyFailure};
use crate::model::{ExitCodes, Install, Update};
use crate::names::{DpName, FileName, Sha256};
use crate::registry::{DistributionPoint, Registry};
use crate::store::{Store, sync_dir, write_atomically};

pub const INDEX_FORMAT: &str = "ferry-dp-index v1";
pub const CURRENT_FILE: &str = "current";
pub const GENERATIONS_DIR: &str = "generations";
pub const FILES_DIR: &str = "files";
pub const INDEX_FILE: &str = "index.json";
pub const SIGNATURE_FILE: &str = "index.json.minisig";
/// A generation being written; renamed to its number when complete.
const PARTIAL_PREFIX: &str = ".partial-";
/// A file being placed; renamed to its name when complete.
const TEMP_PREFIX: &str = ".ferry-";
/// Largest index read back (about 500,000 updates).
const MAX_INDEX_BYTES: u64 = 512 << 20;

/// What a client agent reports after running an update's install command, as JP1/IT
/// Desktop Management documents it for its distribution scripts.
pub const AGENT_RETURN_CODES: [(u8, &str); 6] = [
    (0, "success"),
    (1, "failed: the installer reported an error"),
    (2, "invalid environment: too little memory or disk, or a damaged or unsuitable file"),
    (3, "internal error of the agent"),
    (4, "invalid Windows Script Host state"),
    (5, "internal error of the agent"),
];

/// A distribution point's index: everything a client needs to choose, fetch, check and
/// install its updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub format: String,
    pub distribution_point: String,
    pub generation: u64,
    pub published: String,
    /// The key id of the management server that signed it.
    pub server_key: String,
    pub carries: String,
    /// How the agent's own return codes are judged (see [`AGENT_RETURN_CODES`]).
    pub agent_return_codes: BTreeMap<String, String>,
    pub updates: Vec<IndexedUpdate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedUpdate {
    pub id: String,
    pub revision: u32,
    pub title: String,
    pub vendor: String,
    pub product: String,
    pub version: String,
    pub classification: String,
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kb: Option<String>,
    pub release_date: String,
    /// What to run (`{file}` stands for the first file's local path) and how the
    /// installer's exit codes are judged: success, success needing a restart, failure.
    pub install: Install,
    pub files: Vec<IndexedFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedFile {
    pub name: FileName,
    /// Relative to the distribution point: `files/<first two hex digits>/<sha256>-<name>`.
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// Where a file is published inside a distribution point.
pub fn file_path(digest: &Sha256, name: &FileName) -> String {
    let hex = digest.hex();
    format!("{FILES_DIR}/{}/{hex}-{name}", &hex[..2])
}

/// The install command an update's metadata gives, or the usual one for its first file's
/// kind (.msu with wusa, .cab with DISM, .msi with msiexec, .exe run as is), all quiet and
/// without a forced restart.
pub fn install_of(update: &Update) -> Install {
    if let Some(install) = &update.install {
        return install.clone();
    }
    let name = update.files.first().map(|f| f.name.as_str().to_ascii_lowercase()).unwrap_or_default();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let codes = |success: &[i64], reboot: &[i64]| ExitCodes {
        success: success.to_vec(),
        reboot: reboot.to_vec(),
        failure: vec![],
    };
    let (command, arguments, exit_codes) = if name.ends_with(".msu") {
        // 0x240006: the update is installed already.
        ("wusa.exe", args(&["{file}", "/quiet", "/norestart"]), codes(&[0, 0x240006], &[3010]))
    } else if name.ends_with(".cab") {
        (
            "dism.exe",
            args(&["/online", "/add-package", "/packagepath:{file}", "/quiet", "/norestart"]),
            codes(&[0], &[3010]),
        )
    } else if name.ends_with(".msi") {
        ("msiexec.exe", args(&["/i", "{file}", "/qn", "/norestart"]), codes(&[0], &[3010, 1641]))
    } else {
        ("{file}", vec![], codes(&[0], &[3010]))
    };
    Install { command: command.to_string(), arguments, exit_codes }
}

fn indexed(update: &Update) -> IndexedUpdate {
    IndexedUpdate {
        id: update.id.to_string(),
        revision: update.revision,
        title: update.title.clone(),
        vendor: update.vendor.clone(),
        product: update.product.clone(),
        version: update.version.clone(),
        classification: update.classification.to_string(),
        severity: update.severity.to_string(),
        kb: update.kb.clone(),
        release_date: update.release_date.to_string(),
        install: install_of(update),
        files: update
            .files
            .iter()
            .map(|f| IndexedFile {
                name: f.name.clone(),
                path: file_path(&f.sha256, &f.name),
                sha256: f.sha256,
                size: f.size,
            })
            .collect(),
    }
}

/// How the files of a publish got there.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Placed {
    /// Copy-on-write clones of the store's files (Btrfs, XFS): no bytes copied.
    pub reflinked: usize,
    /// Hard links to the store's files (same file system).
    pub linked: usize,
    /// Copied, and checked against their digest on the way.
    pub copied: usize,
    /// There already, with the right size.
    pub unchanged: usize,
    /// There with the wrong size or not as a plain file, and replaced.
    pub replaced: usize,
}

/// What one publish did to one distribution point.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub name: String,
    pub path: PathBuf,
    pub carries: String,
    /// The generation `current` names now.
    pub generation: u64,
    /// False when the content was what the current generation lists already.
    pub new_generation: bool,
    pub updates: usize,
    pub files: usize,
    pub bytes: u64,
    /// Updates added and removed since the previous generation.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub placed: Placed,
    pub pruned_files: usize,
    pub pruned_generations: Vec<u64>,
    /// Approved updates not published because the store still lacks some of their files.
    pub waiting: Vec<String>,
}

/// Brings the distribution points named (all of them if none) up to date, one after the
/// other; the first failure stops the run, leaving that point at its previous generation.
/// A file already published is kept if its size is right, or with `check` only if its
/// content hashes to its digest.
pub fn publish(data: &mut DataDir, names: &[DpName], check: bool) -> Result<Vec<Published>> {
    let dps = if names.is_empty() {
        data.registry.dps()?
    } else {
        names.iter().map(|n| data.registry.dp(n)).collect::<Result<Vec<_>>>()?
    };
    let key = data.server_key()?;
    let store_root = data.store().ok_or_else(|| Error::Invalid("publishing needs the data directory's lock".into()))?;
    let store_root = store_root.root().to_path_buf();
    let mut done = Vec::new();
    for dp in dps {
        let fingerprint = data.registry.publication_fingerprint(&dp)?;
        let published = publish_one(&data.registry, &store_root, &key, &dp, check)?;
        if published.new_generation || dp.generation != Some(published.generation) {
            data.registry.record_publish(
                &dp,
                published.generation,
                &fingerprint,
                &serde_json::to_value(&published).expect("serialises"),
            )?;
        } else if dp.fingerprint.as_deref() != Some(fingerprint.as_str()) {
            data.registry.record_fingerprint(&dp, &fingerprint)?;
        }
        done.push(published);
    }
    Ok(done)
}

/// The distribution points that are behind: what they should carry changed since their last
/// publish (approvals, groups, arrived files), their `current` is not the generation last
/// published, or they were never published. Reads the registry (no metadata) and each
/// point's `current`, no index and no published file: `ingest watch` asks every pass, and a
/// pass with nothing to do must stay cheap. What changed is for the publish to find out.
pub fn pending(registry: &Registry) -> Result<Vec<DistributionPoint>> {
    let mut out = Vec::new();
    for dp in registry.dps()? {
        let current = read_current(&dp.path).ok().flatten();
        let up_to_date = current.is_some()
            && current == dp.generation
            && dp.fingerprint.as_deref() == Some(registry.publication_fingerprint(&dp)?.as_str());
        if !up_to_date {
            out.push(dp);
        }
    }
    Ok(out)
}

fn publish_one(
    registry: &Registry,
    store_root: &Path,
    key: &SecretKey,
    dp: &DistributionPoint,
    check: bool,
) -> Result<Published> {
    let dir = dp.path.as_path();
    let files_dir = dir.join(FILES_DIR);
    let generations_dir = dir.join(GENERATIONS_DIR);
    fs::create_dir_all(&files_dir).at(&files_dir)?;
    fs::create_dir_all(&generations_dir).at(&generations_dir)?;
    remove_leftovers(&generations_dir, &files_dir)?;

    let publication = registry.publication(dp)?;
    let updates: Vec<IndexedUpdate> = publication.updates.iter().map(indexed).collect();
    let current = read_current(dir)?;
    let generations = generation_numbers(&generations_dir)?;
    let previous = current.and_then(|g| read_index(dir, g).ok());

    let mut placer = Placer { store_root, check, reflinks: None, made: BTreeSet::new(), placed: Placed::default() };
    let mut touched = BTreeSet::new();
    let mut wanted: BTreeMap<String, (Sha256, u64)> = BTreeMap::new();
    for f in updates.iter().flat_map(|u| &u.files) {
        wanted.insert(f.path.clone(), (f.sha256, f.size));
    }
    for (path, (digest, size)) in &wanted {
        let target = dir.join(path);
        if placer.place(&target, digest, *size)? {
            touched.insert(target.parent().expect("files/<ab>/<file>").to_path_buf());
        }
    }
    let placed = placer.placed;
    sync_dirs(&files_dir, &touched)?;

    let unchanged = previous.as_ref().is_some_and(|p| p.updates == updates && p.distribution_point == dp.name);
    let before: BTreeSet<&str> = previous.iter().flat_map(|p| p.updates.iter().map(|u| u.id.as_str())).collect();
    let after: BTreeSet<&str> = updates.iter().map(|u| u.id.as_str()).collect();
    let added = after.difference(&before).map(|s| s.to_string()).collect();
    let removed = before.difference(&after).map(|s| s.to_string()).collect();
    let files = wanted.len();
    let bytes = wanted.values().map(|(_, size)| size).sum();
    let update_count = updates.len();

    let (generation, index) = match (current, previous) {
        (Some(g), Some(previous)) if unchanged => (g, previous),
        _ => {
            // Never reuse a number: a crash may have left a generation that `current` never named.
            let next = generations.iter().copied().chain(current).max().unwrap_or(0) + 1;
            let index = Index {
                format: INDEX_FORMAT.to_string(),
                distribution_point: dp.name.clone(),
                generation: next,
                published: Timestamp::now().to_string(),
                server_key: key.key_id.to_string(),
                carries: dp.carries(),
                agent_return_codes: AGENT_RETURN_CODES
                    .iter()
                    .map(|(code, meaning)| (code.to_string(), meaning.to_string()))
                    .collect(),
                updates,
            };
            write_generation(&generations_dir, &index, key)?;
            crate::failpoint!("publish.before-switch");
            write_atomically(&dir.join(CURRENT_FILE), format!("{next}\n").as_bytes())?;
            (next, index)
        }
    };

    // Keep the generation now current and the one before it; prune the rest.
    let mut remaining = generation_numbers(&generations_dir)?;
    remaining.retain(|g| *g != generation);
    let kept_previous = remaining.iter().copied().filter(|g| *g < generation).max();
    let mut pruned_generations = Vec::new();
    for g in remaining {
        if Some(g) != kept_previous {
            let path = generations_dir.join(g.to_string());
            fs::remove_dir_all(&path).at(&path)?;
            pruned_generations.push(g);
        }
    }
    if !pruned_generations.is_empty() {
        sync_dir(&generations_dir)?;
    }
    let mut keep: BTreeSet<String> =
        index.updates.iter().flat_map(|u| u.files.iter().map(|f| f.path.clone())).collect();
    let pruned_files = match kept_previous.map(|g| read_index(dir, g)) {
        // A previous generation that cannot be read: its readers' files cannot be told
        // apart, so nothing is pruned this time.
        Some(Err(_)) => 0,
        Some(Ok(prev)) => {
            keep.extend(prev.updates.iter().flat_map(|u| u.files.iter().map(|f| f.path.clone())));
            prune_files(&files_dir, &keep)?
        }
        None => prune_files(&files_dir, &keep)?,
    };

    Ok(Published {
        name: dp.name.clone(),
        path: dp.path.clone(),
        carries: dp.carries(),
        generation,
        new_generation: !unchanged,
        updates: update_count,
        files,
        bytes,
        added,
        removed,
        placed,
        pruned_files,
        pruned_generations,
        waiting: publication.waiting,
    })
}

/// Puts the store's files in place, one after the other.
struct Placer<'a> {
    store_root: &'a Path,
    /// Hash what is already there (`publish --check`) instead of trusting its size.
    check: bool,
    /// Whether this file system clones files: learnt from the first attempt, so that a file
    /// system without clones costs one failed attempt per publish, not one per file.
    reflinks: Option<bool>,
    /// Directories known to exist.
    made: BTreeSet<PathBuf>,
    placed: Placed,
}

impl Placer<'_> {
    /// Places the store's file `digest` at `target`, unless a plain file of the right size is
    /// there already. Returns whether the directory changed.
    fn place(&mut self, target: &Path, digest: &Sha256, size: u64) -> Result<bool> {
        let absent = match fs::symlink_metadata(target) {
            Ok(meta)
                if meta.is_file()
                    && meta.len() == size
                    && (!self.check || crate::bundle::hash_range(target, 0, u64::MAX).at(target)?.0 == *digest) =>
            {
                self.placed.unchanged += 1;
                return Ok(false);
            }
            Ok(_) => {
                self.placed.replaced += 1;
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(Error::io(target, e)),
        };
        let dir = target.parent().expect("files/<ab>/<file>");
        if !self.made.contains(dir) {
            fs::create_dir_all(dir).at(dir)?;
            self.made.insert(dir.to_path_buf());
        }
        let source = Store::path_in(self.store_root, digest);
        // A hard link appears whole at once: where nothing is in the way and clones are known
        // to be unavailable it needs no temporary name (a first publish of 20,000 files).
        if absent && self.reflinks == Some(false) && fs::hard_link(&source, target).is_ok() {
            self.placed.linked += 1;
            return Ok(true);
        }
        let temp = dir.join(format!("{TEMP_PREFIX}{}", digest.hex()));
        remove_if_present(&temp)?;
        if self.reflinks != Some(false) {
            let cloned = reflink(&source, &temp);
            self.reflinks = Some(cloned);
            if cloned {
                crate::store::make_readonly(&temp)?;
                self.placed.reflinked += 1;
                fs::rename(&temp, target).at(target)?;
                return Ok(true);
            }
        }
        if fs::hard_link(&source, &temp).is_ok() {
            // The store's files are read-only already; the link shares that.
            self.placed.linked += 1;
        } else {
            copy_checked(&source, &temp, digest, size)?;
            self.placed.copied += 1;
        }
        fs::rename(&temp, target).at(target)?;
        Ok(true)
    }
}

/// Makes the new names in `touched` (directories under `files_dir`) durable. Past a few,
/// one flush of the whole file system costs less than a flush per directory (a first publish
/// of 20,000 files touches all 256: tests/bench/publish.sh).
fn sync_dirs(files_dir: &Path, touched: &BTreeSet<PathBuf>) -> Result<()> {
    if touched.is_empty() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    if touched.len() > 8 {
        let dir = fs::File::open(files_dir).at(files_dir)?;
        return rustix::fs::syncfs(&dir).map_err(|e| Error::io(files_dir, e.into()));
    }
    for d in touched {
        sync_dir(d)?;
    }
    sync_dir(files_dir)
}

/// A copy-on-write clone, where the file system offers one.
#[cfg(target_os = "linux")]
fn reflink(source: &Path, target: &Path) -> bool {
    let Ok(from) = fs::File::open(source) else { return false };
    let Ok(to) = fs::OpenOptions::new().write(true).create_new(true).open(target) else { return false };
    if rustix::fs::ioctl_ficlone(&to, &from).is_ok() && to.sync_all().is_ok() {
        return true;
    }
    drop(to);
    let _ = fs::remove_file(target);
    false
}

#[cfg(not(target_os = "linux"))]
fn reflink(_source: &Path, _target: &Path) -> bool {
    false
}

/// Copies `source` to `target`, hashing on the way: a damaged store file is not handed out.
fn copy_checked(source: &Path, target: &Path, digest: &Sha256, size: u64) -> Result<()> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut from = fs::File::open(source).at(source)?;
    let mut to = fs::File::create(target).at(target)?;
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
    }
    let actual = Sha256(hasher.finalize().into());
    if actual != *digest || total != size {
        drop(to);
        remove_if_present(target)?;
        let what = format!("store file {}", source.display());
        return Err(if total != size {
            Error::SizeMismatch { what, expected: size, actual: total }
        } else {
            Error::DigestMismatch { what, expected: *digest, actual }
        });
    }
    to.sync_all().at(target)?;
    drop(to);
    crate::store::make_readonly(target)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// Removes what an interrupted publish left: partial generations and half-placed files.
fn remove_leftovers(generations_dir: &Path, files_dir: &Path) -> Result<()> {
    for entry in fs::read_dir(generations_dir).at(generations_dir)? {
        let entry = entry.at(generations_dir)?;
        if entry.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX) {
            fs::remove_dir_all(entry.path()).at(entry.path())?;
        }
    }
    for entry in walkdir::WalkDir::new(files_dir).min_depth(2).max_depth(2) {
        let entry = entry.map_err(|e| Error::io(files_dir, e.into()))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            remove_if_present(entry.path())?;
        }
    }
    Ok(())
}

/// Writes generation `index.generation` whole: into a partial directory, synced, renamed.
fn write_generation(generations_dir: &Path, index: &Index, key: &SecretKey) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
    bytes.push(b'\n');
    let comment = trusted_comment(&index.distribution_point, index.generation, &index.published);
    let signature = key
        .sign(&bytes, &comment, &format!("ferry distribution point index, signed by server key {}", key.key_id))
        .map_err(Error::Invalid)?;
    let partial = generations_dir.join(format!("{PARTIAL_PREFIX}{}", index.generation));
    fs::create_dir_all(&partial).at(&partial)?;
    for (name, content) in [(INDEX_FILE, bytes), (SIGNATURE_FILE, signature.to_file_string().into_bytes())] {
        let path = partial.join(name);
        let mut file = fs::File::create(&path).at(&path)?;
        std::io::Write::write_all(&mut file, &content).at(&path)?;
        file.sync_all().at(&path)?;
        drop(file);
        crate::store::make_readonly(&path)?;
    }
    sync_dir(&partial)?;
    let done = generations_dir.join(index.generation.to_string());
    fs::rename(&partial, &done).at(&done)?;
    sync_dir(generations_dir)
}

fn trusted_comment(dp: &str, generation: u64, published: &str) -> String {
    format!("{INDEX_FORMAT} dp={dp} generation={generation} published={published}")
}

/// The generation `current` names; none before the first publish.
fn read_current(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(CURRENT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| Error::DpIndex {
            dir: dir.to_path_buf(),
            reason: format!("{CURRENT_FILE} holds {:?}, not a generation number", truncate(&text)),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// The numbered generation directories.
fn generation_numbers(generations_dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(generations_dir).at(generations_dir)? {
        let entry = entry.at(generations_dir)?;
        if let Some(g) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
            out.push(g);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn read_bounded(dir: &Path, path: &Path) -> Result<Vec<u8>> {
    let len = fs::metadata(path).at(path)?.len();
    if len > MAX_INDEX_BYTES {
        return Err(Error::DpIndex {
            dir: dir.to_path_buf(),
            reason: format!("{} is {len} bytes; at most {MAX_INDEX_BYTES} are read", path.display()),
        });
    }
    fs::read(path).at(path)
}

/// Generation `g`'s index as written, not verified (for publishing, which wrote it).
fn read_index(dir: &Path, g: u64) -> Result<Index> {
    let path = dir.join(GENERATIONS_DIR).join(g.to_string()).join(INDEX_FILE);
    parse_index(dir, &read_bounded(dir, &path)?, g)
}

fn parse_index(dir: &Path, bytes: &[u8], g: u64) -> Result<Index> {
    let index: Index = serde_json::from_slice(bytes).map_err(|e| Error::DpIndex {
        dir: dir.to_path_buf(),
        reason: format!("generation {g}: {INDEX_FILE} is not a ferry index: {e}"),
    })?;
    if index.format != INDEX_FORMAT || index.generation != g {
        return Err(Error::DpIndex {
            dir: dir.to_path_buf(),
            reason: format!(
                "generation {g}: {INDEX_FILE} says format {:?}, generation {}",
                index.format, index.generation
            ),
        });
    }
    Ok(index)
}

/// Removes the files under `files/` that `keep` does not list; returns how many.
fn prune_files(files_dir: &Path, keep: &BTreeSet<String>) -> Result<usize> {
    let mut pruned = 0;
    let mut emptied = BTreeSet::new();
    for entry in walkdir::WalkDir::new(files_dir).min_depth(1).max_depth(2) {
        let entry = entry.map_err(|e| Error::io(files_dir, e.into()))?;
        if entry.depth() == 1 {
            continue;
        }
        let relative = relative_path(entry.path(), files_dir);
        if keep.contains(&relative) {
            continue;
        }
        // Removing a name needs no write permission on the file (which may be a hard link
        // to the store: its mode is the store's).
        #[cfg(not(unix))]
        crate::store::make_writable(entry.path())?;
        if entry.file_type().is_dir() {
            fs::remove_dir_all(entry.path()).at(entry.path())?;
        } else {
            fs::remove_file(entry.path()).at(entry.path())?;
        }
        pruned += 1;
        emptied.insert(entry.path().parent().expect("depth 2").to_path_buf());
    }
    for dir in emptied {
        if fs::read_dir(&dir).at(&dir)?.next().is_none() {
            fs::remove_dir(&dir).at(&dir)?;
        }
    }
    if pruned > 0 {
        sync_dir(files_dir)?;
    }
    Ok(pruned)
}

/// `files/<ab>/<file>` for a path under `files_dir`.
fn relative_path(path: &Path, files_dir: &Path) -> String {
    let rest = path.strip_prefix(files_dir).unwrap_or(path);
    let parts: Vec<String> = rest.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    format!("{FILES_DIR}/{}", parts.join("/"))
}

/// What `ingest dp verify` found in a distribution point.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub path: PathBuf,
    pub distribution_point: String,
    pub generation: u64,
    pub published: String,
    pub server_key: String,
    pub updates: usize,
    pub files: usize,
    pub bytes: u64,
    /// Listed by the current index and absent.
    pub missing: Vec<String>,
    /// Listed and present with other content, with what is wrong.
    pub corrupt: Vec<String>,
    /// Present under `files/` and listed by neither the current nor the previous generation.
    pub extra: Vec<String>,
}

impl Verified {
    pub fn is_intact(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.extra.is_empty()
    }
}

/// Reads and verifies generation `g`'s index and signature against `key`.
fn verified_index(dir: &Path, g: u64, key: &PublicKey) -> Result<Index> {
    let refuse = |reason: String| Error::DpIndex { dir: dir.to_path_buf(), reason };
    let gen_dir = dir.join(GENERATIONS_DIR).join(g.to_string());
    let bytes = read_bounded(dir, &gen_dir.join(INDEX_FILE))?;
    let sig_path = gen_dir.join(SIGNATURE_FILE);
    let sig_text =
        fs::read_to_string(&sig_path).map_err(|e| refuse(format!("generation {g}: {SIGNATURE_FILE}: {e}")))?;
    let sig = SignatureFile::parse(&sig_text).map_err(|e| refuse(format!("generation {g}: {SIGNATURE_FILE}: {e}")))?;
    key.verify(&bytes, &sig).map_err(|failure| {
        refuse(format!(
            "generation {g}: {}",
            match failure {
                VerifyFailure::KeyIdMismatch =>
                    format!("signed by key {}, not by the server key {}", sig.key_id, key.key_id),
                VerifyFailure::Message => format!("{INDEX_FILE} was altered after signing"),
                VerifyFailure::TrustedComment => "the trusted comment was altered after signing".to_string(),
            }
        ))
    })?;
    let index = parse_index(dir, &bytes, g)?;
    let expected = trusted_comment(&index.distribution_point, index.generation, &index.published);
    if sig.trusted_comment != expected {
        return Err(refuse(format!(
            "generation {g}: the signature's trusted comment {:?} does not match the index ({expected:?})",
            sig.trusted_comment
        )));
    }
    Ok(index)
}

/// Checks a distribution point as a branch office would: the current index and its
/// signature by `key`, then every file it lists (present, size, SHA-256), then anything
/// under `files/` that neither the current nor the previous generation lists.
pub fn verify(dir: &Path, key: &PublicKey) -> Result<Verified> {
    let Some(g) = read_current(dir)? else {
        return Err(Error::DpIndex {
            dir: dir.to_path_buf(),
            reason: format!("no {CURRENT_FILE} file: nothing was published here"),
        });
    };
    let index = verified_index(dir, g, key)?;
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut report = Verified {
        path: dir.to_path_buf(),
        distribution_point: index.distribution_point.clone(),
        generation: g,
        published: index.published.clone(),
        server_key: index.server_key.clone(),
        updates: index.updates.len(),
        files: 0,
        bytes: 0,
        missing: vec![],
        corrupt: vec![],
        extra: vec![],
    };
    for f in index.updates.iter().flat_map(|u| &u.files) {
        let expected = file_path(&f.sha256, &f.name);
        if f.path != expected {
            report.corrupt.push(format!("{}: listed at an unexpected path (expected {expected})", f.path));
            continue;
        }
        if !listed.insert(expected.clone()) {
            continue;
        }
        report.files += 1;
        report.bytes += f.size;
        let path = dir.join(&expected);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.missing.push(expected),
            Err(e) => return Err(Error::io(path, e)),
            Ok(meta) if !meta.is_file() => report.corrupt.push(format!("{expected}: not a plain file")),
            Ok(meta) if meta.len() != f.size => {
                report.corrupt.push(format!("{expected}: {} bytes, the index says {}", meta.len(), f.size))
            }
            Ok(_) => {
                let (actual, _) = crate::bundle::hash_range(&path, 0, u64::MAX).at(&path)?;
                if actual != f.sha256 {
                    report.corrupt.push(format!("{expected}: SHA-256 {actual}, the index says {}", f.sha256));
                }
            }
        }
    }
    let generations = generation_numbers(&dir.join(GENERATIONS_DIR))?;
    if let Some(prev) = generations.iter().copied().filter(|p| *p < g).max()
        && let Ok(previous) = verified_index(dir, prev, key)
    {
        listed.extend(previous.updates.iter().flat_map(|u| u.files.iter().map(|f| f.path.clone())));
    }
    let files_dir = dir.join(FILES_DIR);
    if files_dir.is_dir() {
        for entry in walkdir::WalkDir::new(&files_dir).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::io(&files_dir, e.into()))?;
            if entry.file_type().is_dir() {
                continue;
            }
            let relative = relative_path(entry.path(), &files_dir);
            if !listed.contains(&relative) {
                report.extra.push(relative);
            }
        }
    }
    Ok(report)
}
