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

use crate::base::clock::Timestamp;
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{DpName, FileName, Sha256};
use crate::base::shared_tree::{Kind, SharedTree};
use crate::formats::minisign::{PublicKey, SecretKey, SignatureFile, VerifyFailure};
use crate::formats::model::{ExitCodes, Install, Update};
use crate::server::datadir::DataDir;
use crate::server::registry::{DistributionPoint, Registry};
use crate::server::store::Store;

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

/// Longest name a point gives a file: what Linux file systems and NTFS both hold in one
/// path component (NTFS counts UTF-16 units, never more than UTF-8 bytes).
const MAX_COMPONENT: usize = 255;

/// Where a file is published inside a distribution point: `files/<ab>/<sha256>-<name>`.
/// The digest keeps names unique; a name too long to fit one path component beside it
/// keeps its beginning and its extension, joined by `~`, so it stays recognisable.
pub fn file_path(digest: &Sha256, name: &FileName) -> String {
    let hex = digest.hex();
    format!("{FILES_DIR}/{}/{hex}-{}", &hex[..2], bounded_name(name.as_str(), MAX_COMPONENT - hex.len() - 1))
}

/// `name` cut to at most `max` bytes at character boundaries, keeping a short extension.
fn bounded_name(name: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if name.len() <= max {
        return name.into();
    }
    let extension = name.rfind('.').map(|i| &name[i..]).filter(|e| e.len() <= 16).unwrap_or("");
    let mut head_len = max - extension.len() - 1;
    while !name.is_char_boundary(head_len) {
        head_len -= 1;
    }
    format!("{}~{extension}", &name[..head_len]).into()
}

/// `files/<ab>/<name>` split into its directory and file name.
fn split_file_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(FILES_DIR)?.strip_prefix('/')?;
    let (dir, name) = rest.split_once('/')?;
    (dir.len() == 2 && !name.is_empty() && !name.contains('/')).then_some((dir, name))
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
    /// What was found in the point that ferry did not put there and was put right: links,
    /// special files, a damaged `current`, hard links to the store.
    pub repaired: Vec<String>,
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
        let current = SharedTree::open(&dp.path).ok().and_then(|root| read_current(&root).ok().flatten());
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
    // The point is a share others write to: everything below its root is reached through
    // directory handles, and whatever was planted (links, FIFOs, directories at file names)
    // is removed and reported, never followed.
    let root = SharedTree::create(&dp.path)?;
    let mut repaired = Vec::new();
    let files_dir = root.subdir(FILES_DIR, &mut repaired)?;
    let generations_dir = root.subdir(GENERATIONS_DIR, &mut repaired)?;
    remove_leftovers(&root, &generations_dir, &files_dir)?;

    let publication = registry.publication(dp)?;
    let updates: Vec<IndexedUpdate> = publication.updates.iter().map(indexed).collect();
    let current = match read_current(&root) {
        Ok(current) => current,
        // The point is the server's own output: a damaged pointer is written anew.
        Err(Error::DpIndex { reason, .. }) => {
            repaired.push(format!("{reason}; a new generation is written and named"));
            None
        }
        Err(e) => return Err(e),
    };
    let generations = generation_numbers(&generations_dir, &mut repaired)?;
    let previous = current.and_then(|g| read_index(&generations_dir, g).ok());

    let mut placer = Placer {
        store_root,
        files_dir: &files_dir,
        check,
        reflinks: None,
        dirs: BTreeMap::new(),
        touched: BTreeSet::new(),
        unnamed: Vec::new(),
        placed: Placed::default(),
        repaired: &mut repaired,
    };
    let mut wanted: BTreeMap<String, (Sha256, u64)> = BTreeMap::new();
    for f in updates.iter().flat_map(|u| &u.files) {
        wanted.insert(f.path.clone(), (f.sha256, f.size));
    }
    for (path, (digest, size)) in &wanted {
        let (dir, name) = split_file_path(path).expect("file_path builds files/<ab>/<name>");
        placer.place(dir, name, digest, *size)?;
    }
    placer.sync()?;
    let placed = std::mem::take(&mut placer.placed);
    drop(placer);

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
            // Never reuse a number: a crash may have left a generation that `current` never
            // named, and a point emptied by someone else still had the generations recorded.
            let next = generations.iter().copied().chain(current).chain(dp.generation).max().unwrap_or(0) + 1;
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
            write_current(&root, next)?;
            (next, index)
        }
    };

    // Keep the generation now current and the one before it; prune the rest.
    let mut remaining = generation_numbers(&generations_dir, &mut repaired)?;
    remaining.retain(|g| *g != generation);
    let kept_previous = remaining.iter().copied().filter(|g| *g < generation).max();
    let mut pruned_generations = Vec::new();
    for g in remaining {
        if Some(g) != kept_previous {
            generations_dir.remove(&g.to_string())?;
            pruned_generations.push(g);
        }
    }
    if !pruned_generations.is_empty() {
        generations_dir.sync()?;
    }
    let mut keep: BTreeSet<String> =
        index.updates.iter().flat_map(|u| u.files.iter().map(|f| f.path.clone())).collect();
    let pruned_files = match kept_previous.map(|g| read_index(&generations_dir, g)) {
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
        repaired,
        pruned_files,
        pruned_generations,
        waiting: publication.waiting,
    })
}

/// Puts the store's files in place, one after the other. A published file never shares its
/// bytes with the store: it is a reflink (an independent inode, copy-on-write) or a copy.
struct Placer<'a> {
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

impl Placer<'_> {
    /// Places the store's file `digest` as `files/<dir>/<name>`, unless a plain file of the
    /// right size (and content, with `check`) with no other name is there already.
    fn place(&mut self, dir: &str, name: &str, digest: &Sha256, size: u64) -> Result<()> {
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
            Ok(())
        } else {
            self.placed.copied += 1;
            copy_checked(&source, &source_path, &mut out, &here.display(&temp), digest, size)
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
        Ok(())
    }

    /// Makes the placed files durable under their names. Files still under their temporary
    /// names are flushed first, all at once, and only then renamed: a file never has its
    /// name before its bytes are on the disk, so a crash cannot leave a published name on
    /// a file of the right size and unwritten content (which a plain publish, trusting
    /// sizes, would keep). Past a few directories, one flush of the whole file system costs
    /// less than a flush per directory (a first publish of 20,000 files touches all 256:
    /// tests/bench/publish.sh).
    fn sync(&mut self) -> Result<()> {
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

fn not_found() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::NotFound)
}

/// Published files are read-only and readable by everyone: the web server's or the share's
/// user serves them.
fn set_published_mode(file: &fs::File, path: &Path) -> Result<()> {
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
fn reflink(source: &fs::File, target: &fs::File) -> bool {
    rustix::fs::ioctl_ficlone(target, source).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn reflink(_source: &fs::File, _target: &fs::File) -> bool {
    false
}

/// Copies the store's file into `target`, hashing on the way: a damaged store file is not
/// handed out.
fn copy_checked(
    mut from: &fs::File,
    source: &Path,
    to: &mut fs::File,
    target: &Path,
    digest: &Sha256,
    size: u64,
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

/// Removes what an interrupted publish left: partial generations, half-placed files and a
/// half-written pointer.
fn remove_leftovers(root: &SharedTree, generations_dir: &SharedTree, files_dir: &SharedTree) -> Result<()> {
    for name in generations_dir.names()? {
        if name.starts_with(PARTIAL_PREFIX) {
            generations_dir.remove(&name)?;
        }
    }
    for (dir, kind) in files_dir.entries()? {
        if kind == Kind::Dir {
            let sub = files_dir.existing_subdir(&dir)?.expect("a directory just listed");
            for name in sub.names()? {
                if name.starts_with(TEMP_PREFIX) {
                    sub.remove(&name)?;
                }
            }
        }
    }
    root.remove(CURRENT_TEMP)
}

/// Writes generation `index.generation` whole: into a partial directory, synced, renamed.
fn write_generation(generations_dir: &SharedTree, index: &Index, key: &SecretKey) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
    bytes.push(b'\n');
    let comment = trusted_comment(&index.distribution_point, index.generation, &index.published);
    let signature = key
        .sign(&bytes, &comment, &format!("ferry distribution point index, signed by server key {}", key.key_id))
        .map_err(Error::Invalid)?;
    let partial_name = format!("{PARTIAL_PREFIX}{}", index.generation);
    generations_dir.remove(&partial_name)?;
    let partial = generations_dir.subdir(&partial_name, &mut Vec::new())?;
    for (name, content) in [(INDEX_FILE, bytes), (SIGNATURE_FILE, signature.to_file_string().into_bytes())] {
        let path = partial.display(name);
        let mut file = partial.create_new(name)?;
        std::io::Write::write_all(&mut file, &content).at(&path)?;
        file.sync_all().at(&path)?;
        set_published_mode(&file, &path)?;
    }
    partial.sync()?;
    generations_dir.rename(&partial_name, &index.generation.to_string())?;
    generations_dir.sync()
}

/// The pointer being written; renamed over `current` when complete.
const CURRENT_TEMP: &str = ".ferry-current";

/// Replaces `current` atomically (temporary file, sync, rename); whatever was planted at that
/// name (a directory, a FIFO, a link) is removed first, never followed.
fn write_current(root: &SharedTree, generation: u64) -> Result<()> {
    if let Some(kind) = root.kind(CURRENT_FILE)?
        && !matches!(kind, Kind::File { .. })
    {
        root.remove(CURRENT_FILE)?;
    }
    root.remove(CURRENT_TEMP)?;
    let path = root.display(CURRENT_TEMP);
    let mut file = root.create_new(CURRENT_TEMP)?;
    std::io::Write::write_all(&mut file, format!("{generation}\n").as_bytes()).at(&path)?;
    file.sync_all().at(&path)?;
    set_published_mode(&file, &path)?;
    drop(file);
    root.rename(CURRENT_TEMP, CURRENT_FILE)?;
    root.sync()
}

fn trusted_comment(dp: &str, generation: u64, published: &str) -> String {
    format!("{INDEX_FORMAT} dp={dp} generation={generation} published={published}")
}

/// Longest `current` read: a generation number and a newline.
const MAX_CURRENT_BYTES: u64 = 64;

/// The generation `current` names; none before the first publish. Anything but a plain file
/// holding a number (a FIFO, a link, a directory, other text) is refused without being
/// followed or waited on.
fn read_current(root: &SharedTree) -> Result<Option<u64>> {
    let refuse = |reason: String| Error::DpIndex { dir: root.path().to_path_buf(), reason };
    let bytes = match root.read_capped(CURRENT_FILE, MAX_CURRENT_BYTES) {
        Ok(None) => return Ok(None),
        Ok(Some(bytes)) => bytes,
        Err(Error::NotAPlainFile { found, .. }) => {
            return Err(refuse(format!("{CURRENT_FILE} is {found}, not a plain file")));
        }
        Err(Error::TooLarge { .. }) => {
            return Err(refuse(format!(
                "{CURRENT_FILE} is larger than {MAX_CURRENT_BYTES} bytes, not a generation number"
            )));
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| refuse(format!("{CURRENT_FILE} holds {:?}, not a generation number", truncate(&text))))
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// The numbered generation directories. A numbered name that is not a real directory (a
/// link to somewhere else) is removed, never followed, and said in `repaired`.
fn generation_numbers(generations_dir: &SharedTree, repaired: &mut Vec<String>) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for (name, kind) in generations_dir.entries()? {
        let Ok(g) = name.parse::<u64>() else { continue };
        if kind == Kind::Dir {
            out.push(g);
        } else {
            generations_dir.remove(&name)?;
            repaired.push(format!("{} was {}; removed", generations_dir.display(&name).display(), kind.describe()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Generation `g`'s index and its signature's bytes, read without following links.
fn read_generation(generations_dir: &SharedTree, g: u64) -> Result<(Vec<u8>, Option<String>)> {
    let refuse = |reason: String| Error::DpIndex { dir: generations_dir.path().to_path_buf(), reason };
    let generation = generations_dir
        .existing_subdir(&g.to_string())
        .map_err(|e| refuse(format!("generation {g}: {e}")))?
        .ok_or_else(|| refuse(format!("generation {g} is missing")))?;
    let bytes = match generation.read_capped(INDEX_FILE, MAX_INDEX_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(refuse(format!("generation {g}: no {INDEX_FILE}"))),
        Err(e @ (Error::NotAPlainFile { .. } | Error::TooLarge { .. })) => {
            return Err(refuse(format!("generation {g}: {e}")));
        }
        Err(e) => return Err(e),
    };
    let signature = match generation.read_capped(SIGNATURE_FILE, MAX_SIGNATURE_BYTES) {
        Ok(Some(sig)) => Some(String::from_utf8_lossy(&sig).into_owned()),
        Ok(None) => None,
        Err(e @ (Error::NotAPlainFile { .. } | Error::TooLarge { .. })) => {
            return Err(refuse(format!("generation {g}: {e}")));
        }
        Err(e) => return Err(e),
    };
    Ok((bytes, signature))
}

/// Largest index signature read.
const MAX_SIGNATURE_BYTES: u64 = 16 << 10;

/// Generation `g`'s index as written, not verified (for publishing, which wrote it).
fn read_index(generations_dir: &SharedTree, g: u64) -> Result<Index> {
    let (bytes, _) = read_generation(generations_dir, g)?;
    parse_index(generations_dir.path(), &bytes, g)
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

/// Removes everything under `files/` that `keep` does not list (links and special files
/// included, never followed); returns how many names went.
fn prune_files(files_dir: &SharedTree, keep: &BTreeSet<String>) -> Result<usize> {
    let mut pruned = 0;
    for (dir, kind) in files_dir.entries()? {
        if kind != Kind::Dir {
            files_dir.remove(&dir)?;
            pruned += 1;
            continue;
        }
        let sub = files_dir.existing_subdir(&dir)?.expect("a directory just listed");
        let mut removed_here = false;
        for name in sub.names()? {
            if !keep.contains(&format!("{FILES_DIR}/{dir}/{name}")) {
                sub.remove(&name)?;
                pruned += 1;
                removed_here = true;
            }
        }
        if removed_here {
            if sub.names()?.is_empty() {
                files_dir.remove_if_empty(&dir)?;
            } else {
                sub.sync()?;
            }
        }
    }
    if pruned > 0 {
        files_dir.sync()?;
    }
    Ok(pruned)
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
    /// Listed and present with other content, or as something other than a plain file,
    /// with what is wrong.
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
fn verified_index(generations_dir: &SharedTree, dir: &Path, g: u64, key: &PublicKey) -> Result<Index> {
    let refuse = |reason: String| Error::DpIndex { dir: dir.to_path_buf(), reason };
    let (bytes, sig_text) = read_generation(generations_dir, g)?;
    let sig_text = sig_text.ok_or_else(|| refuse(format!("generation {g}: no {SIGNATURE_FILE}")))?;
    let sig = SignatureFile::parse(&sig_text).map_err(|e| refuse(format!("generation {g}: {SIGNATURE_FILE}: {e}")))?;
    key.verify(&bytes, &sig).map_err(|failure| {
        refuse(format!(
            "generation {g}: {}",
            match failure {
                VerifyFailure::KeyIdMismatch =>
                    format!("signed by key {}, not by the server key {}", sig.key_id, key.key_id),
                VerifyFailure::Message => format!("{INDEX_FILE} was altered after signing"),
                VerifyFailure::TrustedComment => "the trusted comment was altered after signing".to_string(),
                VerifyFailure::Legacy =>
                    "signed in minisign's legacy form (\"Ed\"); the server key signs prehashed".to_string(),
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
/// under `files/` that neither the current nor the previous generation lists. Reads only:
/// nothing planted there (a link, a FIFO) is followed or waited on; it is reported.
pub fn verify(dir: &Path, key: &PublicKey) -> Result<Verified> {
    let refuse = |reason: String| Error::DpIndex { dir: dir.to_path_buf(), reason };
    let root = SharedTree::open(dir)?;
    let Some(g) = read_current(&root)? else {
        return Err(refuse(format!("no {CURRENT_FILE} file: nothing was published here")));
    };
    let generations_dir = root
        .existing_subdir(GENERATIONS_DIR)
        .map_err(|e| refuse(e.to_string()))?
        .ok_or_else(|| refuse(format!("no {GENERATIONS_DIR} directory")))?;
    let index = verified_index(&generations_dir, dir, g, key)?;
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
    let files_dir = match root.existing_subdir(FILES_DIR) {
        Ok(files_dir) => files_dir,
        Err(e) => {
            report.corrupt.push(format!("{FILES_DIR}: {e}"));
            None
        }
    };
    let mut subdirs: BTreeMap<String, Option<SharedTree>> = BTreeMap::new();
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
        let (sub, name) = split_file_path(&expected).expect("file_path builds files/<ab>/<name>");
        if !subdirs.contains_key(sub) {
            let opened = match files_dir.as_ref().map(|d| d.existing_subdir(sub)) {
                Some(Ok(opened)) => opened,
                Some(Err(e)) => {
                    report.corrupt.push(format!("{FILES_DIR}/{sub}: {e}"));
                    None
                }
                None => None,
            };
            subdirs.insert(sub.to_string(), opened);
        }
        let Some(here) = &subdirs[sub] else {
            report.missing.push(expected);
            continue;
        };
        match here.kind(name)? {
            None => report.missing.push(expected),
            Some(Kind::File { len, .. }) if len != f.size => {
                report.corrupt.push(format!("{expected}: {len} bytes, the index says {}", f.size))
            }
            Some(Kind::File { .. }) => match here.open_file(name) {
                Ok(Some(file)) => {
                    let (actual, _) = crate::bundle::hash_reader(file).at(here.display(name))?;
                    if actual != f.sha256 {
                        report.corrupt.push(format!("{expected}: SHA-256 {actual}, the index says {}", f.sha256));
                    }
                }
                Ok(None) => report.missing.push(expected),
                Err(Error::NotAPlainFile { found, .. }) => report.corrupt.push(format!("{expected}: is {found}")),
                Err(e) => return Err(e),
            },
            Some(other) => report.corrupt.push(format!("{expected}: is {}, not a plain file", other.describe())),
        }
    }
    let generations = generation_numbers_read_only(&generations_dir)?;
    if let Some(prev) = generations.iter().copied().filter(|p| *p < g).max()
        && let Ok(previous) = verified_index(&generations_dir, dir, prev, key)
    {
        listed.extend(previous.updates.iter().flat_map(|u| u.files.iter().map(|f| f.path.clone())));
    }
    if let Some(files_dir) = &files_dir {
        for (sub, kind) in files_dir.entries()? {
            if kind != Kind::Dir {
                report.extra.push(format!("{FILES_DIR}/{sub} ({})", kind.describe()));
                continue;
            }
            let here = files_dir.existing_subdir(&sub)?.expect("a directory just listed");
            for (name, kind) in here.entries()? {
                let relative = format!("{FILES_DIR}/{sub}/{name}");
                if !listed.contains(&relative) {
                    report.extra.push(match kind {
                        Kind::File { .. } => relative,
                        other => format!("{relative} ({})", other.describe()),
                    });
                } else if !matches!(kind, Kind::File { .. }) && !report.corrupt.iter().any(|c| c.starts_with(&relative))
                {
                    report.corrupt.push(format!("{relative}: is {}, not a plain file", kind.describe()));
                }
            }
        }
    }
    Ok(report)
}

/// The numbered generation directories, for a check that changes nothing.
fn generation_numbers_read_only(generations_dir: &SharedTree) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = generations_dir
        .entries()?
        .into_iter()
        .filter(|(_, kind)| *kind == Kind::Dir)
        .filter_map(|(name, _)| name.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}
