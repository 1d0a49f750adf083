//! `ingest computers`: inventories in, the judgment, and what the reports read.
//!
//! Inventories are unauthenticated input from the LAN: each file is opened without
//! following a link or waiting on a FIFO, read under a cap, checked whole by
//! `formats::inventory`, and refused alone (the rest of a directory still imports). A
//! report dated later than now (the later of this server's clock and the latest bundle
//! time accepted, plus five minutes) is refused: it would win over every real report until
//! then.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::base::clock::Timestamp;
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{ComputerGroupName, ComputerName, Sha256};
use crate::base::shared_tree::{Links, open_regular};
use crate::formats::approval::Actor;
use crate::formats::compliance::{self, Judgment, Policy, UpdateIndex};
use crate::formats::inventory::{self, Inventory, MAX_INVENTORY_BYTES};
use crate::formats::list_csv::CLOCK_SKEW;
use crate::server::compliance_report::{ComplianceAlert, ComplianceReport};
use crate::server::datadir::DataDir;
use crate::server::registry::{
    ComputerGroup, ComputerSummary, GroupSettings, InventoryOutcome, InventoryRecord, JudgmentRun, TimeFrom,
};

/// Inventories recorded per transaction: large enough that 10,000 reports are a handful of
/// commits, small enough that memory stays flat.
const BATCH: usize = 256;

/// What `computers import` did.
#[derive(Debug, Default)]
pub struct ComputersImport {
    pub outcomes: Vec<InventoryOutcome>,
    /// Files refused, each with why.
    pub refused: Vec<(PathBuf, Error)>,
    /// The judgment that followed, when anything changed.
    pub judged: Option<JudgmentRun>,
}

/// The files `paths` name: files as given, directories walked (in name order, not
/// following links; names starting with a dot are skipped as editors' and copiers'
/// temporary files).
pub(crate) fn files_of(paths: &[PathBuf], refused: &mut Vec<(PathBuf, Error)>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            for entry in walkdir::WalkDir::new(path).min_depth(1).follow_links(false).sort_by_file_name() {
                match entry {
                    Ok(e) if e.file_name().to_string_lossy().starts_with('.') => {}
                    Ok(e) if e.file_type().is_dir() => {}
                    Ok(e) => files.push(e.into_path()),
                    Err(e) => {
                        let at = e.path().map(Path::to_path_buf).unwrap_or_else(|| path.clone());
                        refused.push((at.clone(), Error::io(at, e.into())));
                    }
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    files
}

/// A file from the LAN, read whole: opened without following a link or waiting on a FIFO,
/// at most [`MAX_INVENTORY_BYTES`]. Its bytes, digest and modification time.
pub(crate) fn read_lan_file(path: &Path) -> Result<(Vec<u8>, Sha256, Option<Timestamp>)> {
    let opened = open_regular(path, Links::Refuse)?;
    if opened.len > MAX_INVENTORY_BYTES {
        return Err(Error::TooLarge { path: path.to_path_buf(), limit: MAX_INVENTORY_BYTES });
    }
    let mtime = opened
        .file
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| Timestamp::from_unix_seconds(d.as_secs() as i64));
    let mut bytes = Vec::new();
    opened.file.take(MAX_INVENTORY_BYTES + 1).read_to_end(&mut bytes).at(path)?;
    if bytes.len() as u64 > MAX_INVENTORY_BYTES {
        return Err(Error::TooLarge { path: path.to_path_buf(), limit: MAX_INVENTORY_BYTES });
    }
    let digest = Sha256::of(&bytes);
    Ok((bytes, digest, mtime))
}

/// The latest time a report may carry: the later of this server's clock and the latest
/// bundle time accepted, plus [`CLOCK_SKEW`].
pub(crate) fn not_after(data: &DataDir) -> Result<Timestamp> {
    let now = data.registry.latest_time_seen()?.map_or(Timestamp::now(), |latest| latest.max(Timestamp::now()));
    Ok(now.plus(CLOCK_SKEW))
}

/// Reads one inventory file: its inventories, its digest and its modification time.
fn read_file(path: &Path, computer: Option<&ComputerName>) -> Result<(Vec<Inventory>, Sha256, Option<Timestamp>)> {
    let (bytes, digest, mtime) = read_lan_file(path)?;
    Ok((inventory::read(path, &bytes, computer)?, digest, mtime))
}

/// Imports the inventories at `paths` (files and directories), then judges every computer
/// again if any changed.
pub fn import(
    data: &mut DataDir,
    paths: &[PathBuf],
    computer: Option<&ComputerName>,
    actor: &Actor,
) -> Result<ComputersImport> {
    let mut result = ComputersImport::default();
    let not_after = not_after(data)?;
    let files = files_of(paths, &mut result.refused);
    let mut pending: Vec<InventoryRecord> = Vec::new();
    for file in files {
        let (inventories, sha256, mtime) = match read_file(&file, computer) {
            Ok(read) => read,
            Err(e) => {
                result.refused.push((file, e));
                continue;
            }
        };
        let source = file.display().to_string();
        let mut accepted = Vec::new();
        let mut refusal = None;
        for inv in inventories {
            let (time, from) = match (inv.time, mtime) {
                (Some(t), _) => (t, TimeFrom::Report),
                (None, Some(t)) => (t, TimeFrom::File),
                (None, None) => (Timestamp::now(), TimeFrom::File),
            };
            if time > not_after {
                refusal = Some(Error::Feed {
                    file: file.clone(),
                    line: None,
                    field: if from == TimeFrom::Report { "time".into() } else { "file time".into() },
                    reason: format!(
                        "{} of {} is in the future (after {not_after}: the later of this server's clock and the latest \
                         bundle time accepted, plus {} minutes); it would outrank every real report until then",
                        time,
                        inv.computer,
                        CLOCK_SKEW.as_secs() / 60
                    ),
                });
                break;
            }
            accepted.push(InventoryRecord { inventory: inv, time, time_from: from, source: source.clone(), sha256 });
        }
        // A file is taken whole or not at all.
        match refusal {
            Some(e) => result.refused.push((file, e)),
            None => pending.extend(accepted),
        }
        if pending.len() >= BATCH {
            result.outcomes.extend(data.registry.record_inventories(&std::mem::take(&mut pending), actor)?);
        }
    }
    if !pending.is_empty() {
        result.outcomes.extend(data.registry.record_inventories(&pending, actor)?);
    }
    if result.outcomes.iter().any(|o| !o.replaced.is_empty()) {
        result.judged = Some(judge(data)?);
    }
    Ok(result)
}

/// Judges every computer against its group's policy now, and stores the result.
pub fn judge(data: &mut DataDir) -> Result<JudgmentRun> {
    data.registry.judge_computers(Timestamp::now())
}

/// What to notify of after `run`: the groups that got worse to their notify level.
pub fn alert(data: &DataDir, run: &JudgmentRun) -> Result<Option<ComplianceAlert>> {
    ComplianceAlert::of(&data.registry, run, data.config.computers.stale_days)
}

/// One computer in full: where its facts came from, its policy, and every verdict with its
/// reason (judged now by the same rules, so that the satisfied ones show their reasons too).
pub struct ComputerView {
    pub name: String,
    pub group: Option<String>,
    pub policy: Policy,
    pub sources: Vec<crate::server::registry::FacetSource>,
    pub facts: compliance::ComputerFacts,
    pub index: UpdateIndex,
    pub judgments: Vec<Judgment>,
    pub level: compliance::Level,
}

pub fn show(data: &DataDir, name: &ComputerName) -> Result<ComputerView> {
    let (id, name, group) = data.registry.computer_key(name)?;
    let policy = data.registry.policy_of(group.as_deref())?;
    let facts = data.registry.computer_facts(id)?;
    let index = data.registry.judgment_index()?;
    let judgments = compliance::judge(&index, &facts, &policy, Timestamp::now());
    let level = compliance::level(judgments.iter().map(|j| (j.verdict, index.updates[j.update].severity)));
    let sources = data.registry.computer_sources(id)?;
    Ok(ComputerView { name, group, policy, sources, facts, index, judgments, level })
}

/// Assigns computers to a group (or to none).
pub fn assign(
    data: &mut DataDir,
    group: Option<&ComputerGroupName>,
    names: &[ComputerName],
    actor: &Actor,
) -> Result<(Vec<String>, JudgmentRun)> {
    let done = data.registry.assign_computers(group, names, actor)?;
    Ok((done, judge(data)?))
}

/// Forgets a computer and everything it reported, and judges again.
pub fn remove(data: &mut DataDir, name: &ComputerName, actor: &Actor) -> Result<(String, JudgmentRun)> {
    let name = data.registry.remove_computer(name, actor)?;
    Ok((name, judge(data)?))
}

/// Every computer (or those of `group`), flagged stale after `stale_days` without a report.
pub fn list(data: &DataDir, group: Option<&ComputerGroupName>, stale_days: u32) -> Result<Vec<ComputerSummary>> {
    data.registry.computers(group, stale_days, Timestamp::now())
}

/// Creates (or changes) a computer group, and judges again under its policy.
pub fn save_group(
    data: &mut DataDir,
    name: &ComputerGroupName,
    settings: &GroupSettings,
    create: bool,
    actor: &Actor,
) -> Result<(ComputerGroup, JudgmentRun)> {
    let group = data.registry.save_computer_group(name, settings, create, actor)?;
    Ok((group, judge(data)?))
}

/// Deletes a computer group (its computers stay, in no group), and judges again.
pub fn delete_group(
    data: &mut DataDir,
    name: &ComputerGroupName,
    actor: &Actor,
) -> Result<(ComputerGroup, JudgmentRun)> {
    let group = data.registry.delete_computer_group(name, actor)?;
    Ok((group, judge(data)?))
}

pub fn groups(data: &DataDir) -> Result<Vec<ComputerGroup>> {
    data.registry.computer_groups()
}

/// The compliance reports as stored by the latest judgment, with every verdict or not;
/// `update`, when given, must be in the list (a misspelt id is not an update applied
/// everywhere).
pub fn report(data: &DataDir, stale_days: u32, update: Option<&str>, verdicts: bool) -> Result<ComplianceReport> {
    if let Some(id) = update {
        data.registry.show(&id.parse()?)?;
    }
    ComplianceReport::build(&data.registry, stale_days, Timestamp::now(), verdicts)
}
