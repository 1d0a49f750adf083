//! The managed computer's side, what `ferry-client` does: read a distribution point (a share
//! others can write to), check its index and assignment against the server key, refuse a
//! generation older than the last one accepted from that point, and install only what the
//! computer's group is assigned, each file copied into the client's own folder and checked
//! by size and SHA-256 before anything runs; then write the installation results for
//! `ingest results import`.
//!
//! The client's folder (`--state`) holds `client-state.json` (per point, the generation last
//! accepted; per update, the file last installed successfully, so that a run installs only
//! what is new), `work/`, the copies being installed, and `client.lock`, which keeps a
//! second run from starting while one installs. It must be writable by the client alone:
//! the replay protection is only as good as this folder's access list.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::base::clock::Timestamp;
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{ComputerName, Sha256};
use crate::base::shared_tree::SharedTree;
use crate::formats::dp_index::{AssignedGroup, Assignment, Index, IndexedUpdate, split_file_path};
use crate::formats::install_results::{self, Convention, DocResult, Document, Outcome};
use crate::formats::minisign::PublicKey;

/// The client's own record, in its folder.
pub const STATE_FILE: &str = "client-state.json";
/// Where files are copied to be checked and run, in the client's folder.
pub const WORK_DIR: &str = "work";
/// The lock that keeps two runs of the client from installing at once.
pub const LOCK_FILE: &str = "client.lock";
/// 0x000005B4, ERROR_TIMEOUT: what a result says of an installer stopped after the time allowed.
pub const TIMED_OUT: i32 = 1460;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// Per distribution point, the generation last accepted.
    points: BTreeMap<String, Accepted>,
    /// Per update, the file it was last installed from, successfully.
    installed: BTreeMap<String, Installed>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Accepted {
    generation: u64,
    published: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Installed {
    sha256: Sha256,
    at: Timestamp,
}

impl State {
    fn load(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Damaged {
                what: path.display().to_string(),
                reason: format!("not the client's state: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a state serialises");
        bytes.push(b'\n');
        crate::base::output::write_bytes(&dir.join(STATE_FILE), None, &bytes)
    }
}

/// What a run found and did.
#[derive(Debug, Serialize)]
pub struct ClientRun {
    pub distribution_point: String,
    pub generation: u64,
    /// The computer group whose entry applied (none: computers in no group).
    pub group: Option<String>,
    pub steps: Vec<Step>,
    /// The results file's content (what `ingest results import` reads); none on a dry run.
    #[serde(skip)]
    pub results: Option<Document>,
}

/// One assigned update and what became of it.
#[derive(Debug, Serialize)]
pub struct Step {
    pub update: String,
    /// installed, failed, skipped or planned (a dry run).
    pub action: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_code: Option<i32>,
}

pub struct Options<'a> {
    pub point: &'a Path,
    pub key: &'a PublicKey,
    /// The client's own folder.
    pub state: &'a Path,
    pub computer: &'a ComputerName,
    /// Check and plan, install nothing.
    pub dry_run: bool,
    /// How long one installer may run before it is stopped.
    pub timeout: Duration,
}

/// The point's current index and assignment, verified, and refused if older than the last
/// generation accepted from the point; the generation is recorded as accepted.
pub fn accept_point(point: &Path, key: &PublicKey, state_dir: &Path) -> Result<(Index, Assignment)> {
    let (index, assignment) = crate::publish::current_verified(point, key)?;
    let assignment = assignment.ok_or_else(|| Error::DpIndex {
        dir: point.to_path_buf(),
        reason: format!(
            "generation {} has no assignment (published before ferry wrote them): publish again",
            index.generation
        ),
    })?;
    let mut state = State::load(state_dir)?;
    if let Some(seen) = state.points.get(&index.distribution_point)
        && (index.generation < seen.generation
            || (index.generation == seen.generation && index.published != seen.published))
    {
        return Err(Error::PointRollback {
            dir: point.to_path_buf(),
            point: index.distribution_point.clone(),
            generation: index.generation,
            accepted: seen.generation,
            accepted_at: seen.published.clone(),
        });
    }
    state.points.insert(
        index.distribution_point.clone(),
        Accepted { generation: index.generation, published: index.published.clone() },
    );
    state.save(state_dir)?;
    Ok((index, assignment))
}

/// Installs what the point assigns to the computer and has not been installed from the same
/// file before; `progress` hears each step as it happens.
pub fn install(opts: &Options<'_>, progress: &dyn Fn(&Step)) -> Result<ClientRun> {
    // Two runs at once (a scheduled one and a person's) would share the work folder.
    let _lock = crate::base::lock::acquire(opts.state, LOCK_FILE)?;
    let (index, assignment) = accept_point(opts.point, opts.key, opts.state)?;
    let entry: AssignedGroup = assignment.for_computer(opts.computer.as_str()).cloned().ok_or_else(|| {
        Error::Invalid(format!("the assignment of {} names no entry for {}", index.distribution_point, opts.computer))
    })?;
    let mut run = ClientRun {
        distribution_point: index.distribution_point.clone(),
        generation: index.generation,
        group: entry.group.clone(),
        steps: Vec::new(),
        results: None,
    };
    let mut state = State::load(opts.state)?;
    let mut results = Vec::new();
    let step = |run: &mut ClientRun, s: Step| {
        progress(&s);
        run.steps.push(s);
    };
    if let Some(point) = &entry.point
        && !point.eq_ignore_ascii_case(&index.distribution_point)
    {
        step(
            &mut run,
            Step {
                update: String::new(),
                action: "skipped",
                detail: format!(
                    "its group installs from distribution point {point}, not from {}",
                    index.distribution_point
                ),
                return_code: None,
            },
        );
    }
    for id in &entry.updates {
        let Some(update) = index.updates.iter().find(|u| u.update.id.as_str() == id) else {
            // verified_assignment refuses this; kept as a refusal, not a panic.
            return Err(Error::Invalid(format!("the assignment names {id}, which the index does not list")));
        };
        let Some(first) = update.files.first() else {
            step(
                &mut run,
                Step { update: id.clone(), action: "skipped", detail: "no file to install".into(), return_code: None },
            );
            continue;
        };
        if state.installed.get(id).is_some_and(|i| i.sha256 == first.sha256) {
            continue;
        }
        if opts.dry_run {
            step(
                &mut run,
                Step { update: id.clone(), action: "planned", detail: install_line(update), return_code: None },
            );
            continue;
        }
        let (code, detail) = match install_one(opts, update) {
            Ok(ran) => ran,
            Err(e) => {
                // A file that is not what the index says is not run; the failure is reported.
                step(&mut run, Step { update: id.clone(), action: "failed", detail: e.to_string(), return_code: None });
                results.push(DocResult {
                    update: id.clone(),
                    sha256: Some(first.sha256.to_string()),
                    at: Timestamp::now().to_string(),
                    return_code: i64::from(install_results::NOT_RUN),
                    convention: Convention::Installer,
                    message: Some(crate::base::text::for_terminal(&e.to_string()).chars().take(400).collect()),
                });
                continue;
            }
        };
        let (outcome, meaning) = install_results::judge(code, Convention::Installer, Some(&update.install.exit_codes));
        let at = Timestamp::now();
        if outcome.installed() {
            state.installed.insert(id.clone(), Installed { sha256: first.sha256, at });
            state.save(opts.state)?;
        }
        step(
            &mut run,
            Step {
                update: id.clone(),
                action: if outcome == Outcome::Failure { "failed" } else { "installed" },
                detail: format!("{meaning}{detail}"),
                return_code: Some(code),
            },
        );
        results.push(DocResult {
            update: id.clone(),
            sha256: Some(first.sha256.to_string()),
            at: at.to_string(),
            return_code: i64::from(code),
            convention: Convention::Installer,
            message: None,
        });
    }
    if !opts.dry_run {
        run.results = Some(Document {
            format: install_results::FORMAT_NAME.into(),
            version: install_results::RESULTS_VERSION,
            computer: opts.computer.to_string(),
            created: Timestamp::now().to_string(),
            client: Some(format!("ferry-client {}", env!("CARGO_PKG_VERSION"))),
            results,
        });
    }
    Ok(run)
}

fn install_line(update: &IndexedUpdate) -> String {
    let i = &update.install;
    format!("{} {}", i.command, i.arguments.join(" "))
}

/// Copies the update's files out of the point into the work folder, checking each, then
/// runs its install command on the copies. Its exit code, and a note.
fn install_one(opts: &Options<'_>, update: &IndexedUpdate) -> Result<(i32, String)> {
    if update.install.nested.is_some() {
        return Err(Error::Invalid("an installer inside an archive is not installed by this client yet".into()));
    }
    let work = opts.state.join(WORK_DIR).join(update.files[0].sha256.to_string());
    if work.exists() {
        std::fs::remove_dir_all(&work).at(&work)?;
    }
    std::fs::create_dir_all(&work).at(&work)?;
    let root = SharedTree::open(opts.point)?;
    let mut copies = Vec::new();
    for f in &update.files {
        let (dir, name) = split_file_path(&f.path)
            .ok_or_else(|| Error::Invalid(format!("{}: not a path of the point's files", f.path)))?;
        let files = root
            .existing_subdir(crate::formats::dp_index::FILES_DIR)?
            .and_then(|d| d.existing_subdir(dir).transpose())
            .transpose()?
            .ok_or_else(|| Error::io(opts.point.join(&f.path), std::io::ErrorKind::NotFound.into()))?;
        let source = files
            .open_file(name)?
            .ok_or_else(|| Error::io(opts.point.join(&f.path), std::io::ErrorKind::NotFound.into()))?;
        let local = work.join(f.name.as_str());
        copy_checked(source, &local, f.size, &f.sha256, &opts.point.join(&f.path))?;
        copies.push(local);
    }
    let file = copies[0].display().to_string();
    let fill = |s: &str| s.replace("{file}", &file);
    let mut command = Command::new(fill(&update.install.command));
    command.args(update.install.arguments.iter().map(|a| fill(a))).current_dir(&work);
    let code = run(command, opts.timeout)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(match code {
        Some(code) => (code, String::new()),
        None => (TIMED_OUT, format!("; stopped after {} s", opts.timeout.as_secs())),
    })
}

/// Copies `source` to `local` (a new file), hashing on the way; refuses a size or digest
/// other than the index's. The copy is what runs: the share's file may change after.
fn copy_checked(mut source: std::fs::File, local: &Path, size: u64, digest: &Sha256, shown: &Path) -> Result<()> {
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(local).at(local)?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = source.read(&mut buf).at(shown)?;
        if n == 0 {
            break;
        }
        copied += n as u64;
        if copied > size {
            return Err(Error::SizeMismatch { what: shown.display().to_string(), expected: size, actual: copied });
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).at(local)?;
    }
    let got = Sha256(hash.finalize().into());
    if copied != size {
        return Err(Error::SizeMismatch { what: shown.display().to_string(), expected: size, actual: copied });
    }
    if &got != digest {
        return Err(Error::DigestMismatch { what: shown.display().to_string(), expected: *digest, actual: got });
    }
    out.sync_all().at(local)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(local, std::fs::Permissions::from_mode(0o700)).at(local)?;
    }
    Ok(())
}

/// Runs `command` for at most `timeout`: its exit code, or none when it was stopped.
fn run(mut command: Command, timeout: Duration) -> Result<Option<i32>> {
    let program = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Invalid(format!("{program} could not be started: {e}")))?;
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(|e| Error::io(PathBuf::from(&program), e))? {
            Some(status) => return Ok(Some(status.code().unwrap_or(install_results::NOT_RUN))),
            None if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
