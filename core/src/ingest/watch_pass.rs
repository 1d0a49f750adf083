//! One pass of scheduled ingestion (`ingest watch`): find the bundles in the drop folders,
//! wait for them to settle, import them in sequence order and move each out of the way;
//! read the inventories and installation results the computers dropped; refresh daily,
//! publish the distribution points that are behind. The drop-folder
//! mechanics are `watch`'s; this module holds the rules of a pass and says what it does
//! through [`PassEvent`]s, for the binary to show.
//!
//! The rules: nothing is imported while any file of the pass is still being written (a
//! bundle still arriving may be older than those ready, and importing them first would make
//! it look like a rollback); a file an earlier pass could not move, and unchanged since, is
//! left alone; a refusal does not stop the pass.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::import::{ImportOptions, import_all, order_for_import, outcome_summary, refresh_reported};
use super::watch::{self, Disposition, Dropped, Found};
use crate::base::clock::{DailyTime, Timestamp};
use crate::base::error::{Error, ErrorClass, Result};
use crate::base::progress::Watch;
use crate::publish::Published;
use crate::server::compliance_report::ComplianceAlert;
use crate::server::config::WatchConfig;
use crate::server::datadir::DataDir;
use crate::server::registry::{JudgmentRun, RefreshReport};
use crate::server::report::ChangeReport;

/// What the command line gives over the configuration's `[watch]`.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub drops: Vec<PathBuf>,
    pub inventories: Vec<PathBuf>,
    pub results: Vec<PathBuf>,
    pub interval: Option<u64>,
    pub settle: Option<u64>,
    pub max_wait: Option<u64>,
    pub no_publish: bool,
}

/// A pass's settings: what is given, else the configuration, read anew for every pass.
#[derive(Debug, Clone)]
pub struct Settings {
    pub drops: Vec<PathBuf>,
    /// Folders of inventories and of installation results.
    pub inventories: Vec<PathBuf>,
    pub results: Vec<PathBuf>,
    pub interval: Duration,
    pub settle: Duration,
    pub max_wait: Duration,
    pub daily: Option<DailyTime>,
    pub publish: bool,
}

impl Settings {
    pub fn new(config: &WatchConfig, given: &Given) -> Result<Settings> {
        // Absolute, so that a file remembered on a read-only stick is the same file whichever
        // directory cron or a person starts the watcher from.
        let absolute = |given: &[PathBuf], config: &[PathBuf]| {
            let dirs = if given.is_empty() { config } else { given };
            dirs.iter().map(|d| std::path::absolute(d).map_err(|e| Error::io(d, e))).collect::<Result<Vec<_>>>()
        };
        let drops = absolute(&given.drops, &config.drop)?;
        let inventories = absolute(&given.inventories, &config.inventories)?;
        let results = absolute(&given.results, &config.results)?;
        if drops.is_empty() && inventories.is_empty() && results.is_empty() {
            return Err(Error::Invalid(
                "no drop folder: give --drop DIR (or --inventories DIR, --results DIR), or set watch.drop in ingest.toml"
                    .into(),
            ));
        }
        let secs = |flag: Option<u64>, config: u64| Duration::from_secs(flag.unwrap_or(config));
        let interval = secs(given.interval, config.interval_seconds);
        if interval.is_zero() {
            return Err(Error::Invalid("--interval 0: give at least one second".into()));
        }
        Ok(Settings {
            drops,
            inventories,
            results,
            interval,
            settle: secs(given.settle, config.settle_seconds),
            max_wait: secs(given.max_wait, config.max_wait_seconds),
            daily: DailyTime::parse(&config.daily_refresh)?,
            publish: config.publish && !given.no_publish,
        })
    }

    /// How long until the next pass: the interval, or less if the daily refresh falls due
    /// sooner.
    pub fn until_next(&self) -> Duration {
        self.daily.and_then(DailyTime::until_next).map_or(self.interval, |d| d.min(self.interval))
    }
}

/// What one pass did (`ingest watch --json` prints it).
#[derive(Debug, Serialize, Default)]
pub struct PassRecord {
    pub started: String,
    /// Bundle files found (before settling).
    pub found: usize,
    /// Files of the drop folders that are not bundles, left alone.
    pub ignored: Vec<String>,
    /// Drop folders that are not there.
    pub absent: Vec<String>,
    /// Files still being written when the pass stopped waiting: nothing was imported.
    pub writing: Vec<String>,
    /// Files read before and remembered (a drop that cannot be moved from), skipped.
    pub remembered: usize,
    pub bundles: Vec<BundleRecord>,
    /// The inventories and results files read, and where each went.
    pub computer_files: Vec<BundleRecord>,
    /// The judgment that followed them, if any changed what is held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged: Option<JudgmentRun>,
    /// The change report of the bundles' import.
    pub report: Option<u64>,
    /// The change report of the daily refresh, if one ran.
    pub daily_refresh: Option<u64>,
    pub published: Vec<Published>,
    /// The class of the first refusal, which decides the exit code of a single pass.
    #[serde(skip)]
    pub first_refusal: Option<ErrorClass>,
}

/// One bundle file of a pass and where it went.
#[derive(Debug, Serialize)]
pub struct BundleRecord {
    pub path: String,
    /// accepted, already-imported or refused.
    pub outcome: &'static str,
    pub detail: String,
    /// processed, rejected, remembered or left.
    pub disposition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What a pass is doing, as it happens.
pub enum PassEvent<'a> {
    /// A drop folder is not there (a stick not plugged in?).
    DropAbsent(&'a std::path::Path),
    /// Recent files the pass waits for until they stop changing.
    Waiting(&'a [Found]),
    /// Files still changing after the longest wait: nothing is imported this pass.
    StillWriting(&'a [Found], Duration),
    /// A bundle file read and moved (or left, and why).
    Bundle(&'a BundleRecord),
    /// The bundles of the pass are imported: the refresh that followed and the report stored.
    Imported(Option<&'a RefreshReport>, &'a ChangeReport),
    /// The daily refresh ran.
    DailyRefresh(DailyTime, &'a RefreshReport, &'a ChangeReport),
    /// A distribution point brought up to date.
    Published(&'a Published),
    /// An inventory or results file read and moved (or left, and why).
    ComputerFile(&'a BundleRecord),
    /// The computers judged again after what they dropped.
    Judged(&'a JudgmentRun),
    /// Computer groups got worse to their notify level.
    ComplianceWorse(&'a ComplianceAlert),
}

/// One pass, with the data directory that `open` gives once the drop folders have settled
/// (so that it is not held while files are still arriving); `progress` is told how far
/// each import and publish has come.
pub fn pass(
    settings: &Settings,
    open: impl FnOnce() -> Result<DataDir>,
    events: &mut dyn FnMut(PassEvent<'_>),
    progress: &dyn Watch,
) -> Result<PassRecord> {
    let mut record = PassRecord { started: Timestamp::now().to_string(), ..Default::default() };
    let scan = watch::scan(&settings.drops)?;
    record.found = scan.found.len();
    record.ignored = scan.ignored.iter().map(|p| p.display().to_string()).collect();
    record.absent = scan.absent.iter().map(|p| p.display().to_string()).collect();
    for absent in &scan.absent {
        events(PassEvent::DropAbsent(absent));
    }
    let settled = watch::settle(scan.found, settings.settle, settings.max_wait, |fresh| {
        events(PassEvent::Waiting(fresh));
    });
    record.writing = settled.writing.iter().map(|f| f.path.display().to_string()).collect();

    let mut data = open()?;
    if settled.writing.is_empty() {
        import_ready(&mut data, settled.ready, &mut record, events, progress)?;
    } else {
        events(PassEvent::StillWriting(&settled.writing, settings.max_wait));
    }

    import_computer_files(&mut data, settings, &mut record, events)?;

    if let Some(at) = settings.daily
        && watch::daily_refresh_due(&data, at)?
    {
        let by = format!("ingest watch (daily refresh at {at})");
        let (refreshed, report) = refresh_reported(&mut data, &by)?;
        record.daily_refresh = Some(report.id);
        events(PassEvent::DailyRefresh(at, &refreshed, &report));
    }

    if settings.publish {
        let behind: Vec<_> =
            crate::publish::pending(&data)?.into_iter().map(|dp| dp.name.parse()).collect::<Result<_>>()?;
        if !behind.is_empty() {
            record.published = crate::publish::publish(&mut data, &behind, false, progress)?;
            for p in &record.published {
                events(PassEvent::Published(p));
            }
        }
    }
    Ok(record)
}

/// Imports the settled files in sequence order and moves each out of the drop folder.
fn import_ready(
    data: &mut DataDir,
    ready: Vec<Found>,
    record: &mut PassRecord,
    events: &mut dyn FnMut(PassEvent<'_>),
    progress: &dyn Watch,
) -> Result<()> {
    let mut by_path: HashMap<PathBuf, Found> = HashMap::new();
    for f in ready {
        if watch::seen_before(data, &f)? {
            record.remembered += 1;
        } else {
            by_path.insert(f.path.clone(), f);
        }
    }
    if by_path.is_empty() {
        return Ok(());
    }
    let paths = order_for_import(&by_path.keys().cloned().collect::<Vec<_>>())?;
    let mut unmovable = Vec::new();
    let by = format!("ingest watch ({})", crate::formats::approval::Actor::running());
    let imported = import_all(data, &paths, ImportOptions::default(), &by, progress, |path, result| -> Result<()> {
        let found = &by_path[path];
        let (outcome, detail) = outcome_summary(&result);
        let refusal = result.as_ref().err();
        if let Some(e) = refusal {
            record.first_refusal.get_or_insert(e.class());
        }
        let disposition = watch::dispose(found, refusal, Dropped::Bundle)?;
        let b = bundle_record(found, outcome, detail, &disposition);
        events(PassEvent::Bundle(&b));
        record.bundles.push(b);
        if matches!(disposition, Disposition::Remembered { .. }) {
            unmovable.push((found.clone(), disposition));
        }
        Ok(())
    })?;
    for (found, disposition) in &unmovable {
        watch::remember(data, found, disposition)?;
    }
    record.report = imported.report.as_ref().map(|r| r.id);
    if let Some(report) = &imported.report {
        events(PassEvent::Imported(imported.refresh.as_ref(), report));
    }
    Ok(())
}

/// Reads the inventories and results files that have not changed for the settle time
/// (newer ones wait for the next pass: computers write at any time, and nothing else
/// depends on their order), and moves each to `processed/` or `rejected/`.
fn import_computer_files(
    data: &mut DataDir,
    settings: &Settings,
    record: &mut PassRecord,
    events: &mut dyn FnMut(PassEvent<'_>),
) -> Result<()> {
    let actor = crate::formats::approval::Actor::acting(Some("ingest-watch"))?;
    let mut judged = None;
    for (folders, results) in [(&settings.inventories, false), (&settings.results, true)] {
        if folders.is_empty() {
            continue;
        }
        let scan = watch::scan_files(folders)?;
        for absent in &scan.absent {
            events(PassEvent::DropAbsent(absent));
        }
        let now = std::time::SystemTime::now();
        let mut ready = Vec::new();
        for f in scan.found {
            if now.duration_since(f.modified).is_ok_and(|age| age >= settings.settle) {
                if watch::seen_before(data, &f)? {
                    record.remembered += 1;
                } else {
                    ready.push(f);
                }
            }
        }
        if ready.is_empty() {
            continue;
        }
        let paths: Vec<PathBuf> = ready.iter().map(|f| f.path.clone()).collect();
        let (mut refused, run) = if results {
            let r = super::results::import(data, &paths, &actor)?;
            (r.refused, r.judged)
        } else {
            let r = super::computers::import(data, &paths, None, &actor)?;
            (r.refused, r.judged)
        };
        for found in &ready {
            let refusal = refused.iter().position(|(p, _)| p == &found.path).map(|i| refused.swap_remove(i).1);
            if let Some(e) = &refusal {
                record.first_refusal.get_or_insert(e.class());
            }
            let disposition = watch::dispose(found, refusal.as_ref(), Dropped::ComputerFile)?;
            let (outcome, detail) = match &refusal {
                Some(e) => ("refused", e.to_string()),
                None => ("accepted", if results { "installation results" } else { "inventory" }.to_string()),
            };
            let b = bundle_record(found, outcome, detail, &disposition);
            events(PassEvent::ComputerFile(&b));
            record.computer_files.push(b);
            watch::remember(data, found, &disposition)?;
        }
        if run.is_some() {
            judged = run;
        }
    }
    if let Some(run) = judged {
        events(PassEvent::Judged(&run));
        if let Some(alert) = super::computers::alert(data, &run)? {
            events(PassEvent::ComplianceWorse(&alert));
        }
        record.judged = Some(run);
    }
    Ok(())
}

fn bundle_record(found: &Found, outcome: &'static str, detail: String, d: &Disposition) -> BundleRecord {
    let shown = |p: &PathBuf| Some(p.display().to_string());
    let (disposition, moved_to, reason_file, why) = match d {
        Disposition::Processed { to } => ("processed", shown(to), None, None),
        Disposition::Rejected { to, reason_file } => ("rejected", shown(to), shown(reason_file), None),
        Disposition::Remembered { why, .. } => ("remembered", None, None, Some(why.clone())),
        Disposition::Left { why } => ("left", None, None, Some(why.clone())),
    };
    BundleRecord { path: found.path.display().to_string(), outcome, detail, disposition, moved_to, reason_file, why }
}
