//! `ingest check`: proves that the registry and the content store agree, byte for byte.
//!
//! Every file the registry counts as present must be in the store with the right SHA-256
//! and size, and still read-only (a writable copy may have been edited in place); every file
//! in the store must be one the registry knows; chunks must be ones an accepted volume waits
//! for (others are strays of a refused or interrupted import) and match their names; the
//! registry file must pass SQLite's integrity check and the audit log its hash chain.
//!
//! With `repair`, what can be put right is: a file the registry knows but had not recorded
//! (an import interrupted between store and registry) is registered; a missing or damaged
//! file is marked absent, so its updates become unavailable and the next state export asks
//! fetch for it again; damaged and unknown files are moved to `quarantine/` (never deleted:
//! they are evidence); a writable file with the right digest is made read-only again. The
//! repair is one registry transaction and one audit log entry. A damaged registry or audit
//! log is reported, never "repaired".

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::base::clock::Timestamp;
use crate::base::durable::{make_readonly, make_writable, sync_dir};
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::Sha256;
use crate::base::progress::{Meter, Task, Watch};
use crate::bundle::hash_range;
use crate::server::datadir::DataDir;
use crate::server::registry::FileRow;
use crate::server::store::Store;

/// Where repairs move files that must not stay in the store, under the data directory.
pub const QUARANTINE_DIR: &str = "quarantine";

/// One disagreement between the registry and the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Finding {
    /// SQLite's integrity check failed on the registry file.
    RegistryDamaged { detail: String },
    /// The audit log's hash chain is broken.
    AuditBroken { detail: String },
    /// The registry counts the file as present; the store does not have it.
    Missing { sha256: Sha256 },
    /// The stored bytes no longer have the digest they are stored under.
    Damaged { sha256: Sha256, actual: Sha256, size: u64 },
    /// The right bytes, but the file is writable: stored files are read-only, so someone
    /// changed its permissions.
    Writable { sha256: Sha256 },
    /// The store holds the right bytes of a file the registry knows but counts as absent.
    NotRegistered { sha256: Sha256 },
    /// A file in the store that the registry does not describe, or that is not named by a
    /// digest.
    Unknown { path: PathBuf },
    /// A waiting chunk whose bytes do not match its name.
    DamagedChunk { path: PathBuf },
}

impl Finding {
    /// Whether `--repair` puts this right.
    pub fn repairable(&self) -> bool {
        self.repair().is_some()
    }

    /// What `--repair` does about it; none where only a person can (a restore from backup).
    pub fn repair(&self) -> Option<&'static str> {
        Some(match self {
            Finding::RegistryDamaged { .. } | Finding::AuditBroken { .. } => return None,
            Finding::Missing { .. } => {
                "mark the file absent: its updates become unavailable, and the next state export asks fetch for it"
            }
            Finding::Damaged { .. } => "move it to quarantine and mark it absent (fetch is asked for it again)",
            Finding::Writable { .. } => "make it read-only again",
            Finding::NotRegistered { .. } => "register it as present",
            Finding::Unknown { .. } | Finding::DamagedChunk { .. } => "move it to quarantine",
        })
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::RegistryDamaged { detail } => write!(f, "registry damaged: {detail}"),
            Finding::AuditBroken { detail } => write!(f, "audit log broken: {detail}"),
            Finding::Missing { sha256 } => write!(f, "file {sha256} is registered but missing from the store"),
            Finding::Damaged { sha256, actual, size } => {
                write!(f, "file {sha256} is damaged: its {size} bytes have SHA-256 {actual}")
            }
            Finding::Writable { sha256 } => write!(f, "file {sha256} is writable (stored files are read-only)"),
            Finding::NotRegistered { sha256 } => write!(f, "file {sha256} is in the store but not registered"),
            Finding::Unknown { path } => write!(f, "{} is not a file the registry knows", path.display()),
            Finding::DamagedChunk { path } => write!(f, "chunk {} does not match its name", path.display()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Files and chunks hashed.
    pub files_checked: u64,
    pub bytes_checked: u64,
    pub findings: Vec<Finding>,
    /// Whether the repairable findings were repaired.
    pub repaired: bool,
    /// Where damaged and unknown files were moved.
    pub quarantine: Option<PathBuf>,
}

impl CheckReport {
    /// Findings still standing after this run.
    pub fn outstanding(&self) -> usize {
        self.findings.iter().filter(|f| !(self.repaired && f.repairable())).count()
    }
}

/// A file found in the store, to be hashed.
struct Found {
    path: PathBuf,
    /// The digest its name claims (for `sha256/`) or its chunk name claims.
    named: Sha256,
    chunk: bool,
    /// Its size when listed, for the count of bytes to hash.
    size: u64,
}

/// Checks the data directory and, with `repair`, repairs it, telling `watch` how far the
/// hashing of the store has come. Needs the exclusive lock.
pub fn check(data: &mut DataDir, repair: bool, watch: &dyn Watch) -> Result<CheckReport> {
    let Some(store) = data.store() else {
        return Err(Error::Internal("the data directory was opened read-only".into()));
    };
    let mut findings = Vec::new();
    let integrity = data.registry.integrity_check()?;
    if integrity != "ok" {
        findings.push(Finding::RegistryDamaged { detail: integrity });
    }
    if let Err(e) = data.registry.verify_audit(None) {
        findings.push(Finding::AuditBroken { detail: e.to_string() });
    }

    let rows = data.registry.file_rows()?;
    let waiting = data.registry.waiting_chunks()?;
    let (found, mut unknown) = scan(store)?;
    let meter = Meter::start(
        watch,
        Task::Check,
        store.root().display().to_string(),
        found.len() as u64,
        found.iter().map(|f| f.size).sum::<u64>(),
    );
    let hashed = hash_all(&found, &meter);
    meter.finish();
    let hashed = hashed?;
    let mut files_checked = 0;
    let mut bytes_checked = 0;
    let mut seen: BTreeMap<Sha256, bool> = BTreeMap::new();
    for (item, (actual, size, writable)) in found.iter().zip(hashed) {
        files_checked += 1;
        bytes_checked += size;
        if item.chunk {
            if !waiting.contains(&item.named) {
                // Left by a refused or interrupted import: no accepted volume waits for it.
                unknown.push(item.path.clone());
            } else if actual != item.named {
                findings.push(Finding::DamagedChunk { path: item.path.clone() });
            }
            continue;
        }
        let Some(row) = rows.get(&item.named) else {
            unknown.push(item.path.clone());
            continue;
        };
        if actual != item.named || size != row.size {
            findings.push(Finding::Damaged { sha256: item.named, actual, size });
            seen.insert(item.named, false);
            continue;
        }
        seen.insert(item.named, true);
        if writable {
            findings.push(Finding::Writable { sha256: item.named });
        }
        if !row.present {
            findings.push(Finding::NotRegistered { sha256: item.named });
        }
    }
    for FileRow { sha256, present, .. } in rows.values() {
        if *present && !seen.contains_key(sha256) {
            findings.push(Finding::Missing { sha256: *sha256 });
        }
    }
    findings.extend(unknown.into_iter().map(|path| Finding::Unknown { path }));

    let mut report = CheckReport { files_checked, bytes_checked, findings, repaired: false, quarantine: None };
    if repair && report.findings.iter().any(Finding::repairable) {
        apply_repairs(data, &mut report)?;
    }
    Ok(report)
}

/// Lists the store's files and chunks; returns them with the paths that are not named by a
/// digest where they lie.
fn scan(store: &Store) -> Result<(Vec<Found>, Vec<PathBuf>)> {
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for (dir, chunk) in [(store.root().join("sha256"), false), (store.root().join("chunks"), true)] {
        for entry in walkdir::WalkDir::new(&dir).min_depth(1).sort_by_file_name() {
            let entry = entry.map_err(|e| Error::io(&dir, e.into()))?;
            if entry.file_type().is_dir() {
                continue;
            }
            let is_file = entry.file_type().is_file();
            let size = entry.metadata().map_or(0, |m| m.len());
            let path = entry.into_path();
            if !is_file {
                // A link or device where only stored files belong.
                unknown.push(path);
                continue;
            }
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<Sha256>().ok().filter(|d| d.hex() == n));
            let expected = named.map(|d| if chunk { store.chunk_path(&d) } else { store.path_of(&d) });
            match named {
                Some(named) if expected.as_deref() == Some(path.as_path()) => {
                    found.push(Found { path, named, chunk, size })
                }
                _ => unknown.push(path),
            }
        }
    }
    Ok((found, unknown))
}

/// (digest, size, writable) of each file, hashed on every core the machine offers, each
/// counted on `meter` once hashed.
fn hash_all(found: &[Found], meter: &Meter) -> Result<Vec<(Sha256, u64, bool)>> {
    let results: Mutex<Vec<Option<(Sha256, u64, bool)>>> = Mutex::new(vec![None; found.len()]);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(found.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = found.get(i) else { break };
                    let outcome = fs::symlink_metadata(&item.path).and_then(|meta| {
                        let (digest, size) = hash_range(&item.path, 0, u64::MAX)?;
                        Ok((digest, size, !meta.permissions().readonly()))
                    });
                    match outcome {
                        Ok(r) => {
                            meter.item_of(r.1);
                            results.lock().expect("no worker panics")[i] = Some(r)
                        }
                        Err(e) => {
                            failure.lock().expect("no worker panics").get_or_insert(Error::io(&item.path, e));
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("no worker panics") {
        return Err(e);
    }
    Ok(results.into_inner().expect("no worker panics").into_iter().map(|r| r.expect("every file hashed")).collect())
}

fn apply_repairs(data: &mut DataDir, report: &mut CheckReport) -> Result<()> {
    let store = data.store().expect("checked above");
    let quarantine = data.root().join(QUARANTINE_DIR).join(Timestamp::now().to_string().replace(':', ""));
    let mut present = Vec::new();
    let mut absent = Vec::new();
    let mut moved = Vec::new();
    for finding in &report.findings {
        match finding {
            Finding::Missing { sha256 } => absent.push(*sha256),
            Finding::Damaged { sha256, .. } => {
                moved.push(quarantine_file(store, &quarantine, &store.path_of(sha256))?);
                absent.push(*sha256);
            }
            Finding::Writable { sha256 } => make_readonly(&store.path_of(sha256))?,
            Finding::NotRegistered { sha256 } => present.push(*sha256),
            Finding::Unknown { path } | Finding::DamagedChunk { path } => {
                moved.push(quarantine_file(store, &quarantine, path)?)
            }
            Finding::RegistryDamaged { .. } | Finding::AuditBroken { .. } => {}
        }
    }
    let detail = serde_json::json!({
        "findings": report.findings.iter().filter(|f| f.repairable()).map(|f| f.to_string()).collect::<Vec<_>>(),
        "registered": present.iter().map(|d| d.hex()).collect::<Vec<_>>(),
        "marked_absent": absent.iter().map(|d| d.hex()).collect::<Vec<_>>(),
        "quarantined": moved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    data.registry.record_repair(&present, &absent, &detail)?;
    report.repaired = true;
    report.quarantine = (!moved.is_empty()).then_some(quarantine);
    Ok(())
}

/// Moves `path` (inside the store) to the same relative place under `quarantine`.
fn quarantine_file(store: &Store, quarantine: &Path, path: &Path) -> Result<PathBuf> {
    let relative = path.strip_prefix(store.root()).unwrap_or(path);
    let target = quarantine.join(relative);
    let dir = target.parent().expect("a quarantined file has a directory");
    fs::create_dir_all(dir).at(dir)?;
    make_writable(path)?;
    fs::rename(path, &target).at(path)?;
    sync_dir(dir)?;
    if let Some(from) = path.parent() {
        sync_dir(from)?;
    }
    Ok(target)
}
