//! `ingest watch`: scheduled ingestion from drop folders. One pass (`--once`, for cron,
//! systemd timers and Task Scheduler) or passes at an interval until stopped. The rules of a
//! pass are in `ferry_core::ingest::watch`; this file strings its steps together and reports them.
//!
//! Stopping the watcher at any moment (SIGTERM from systemd, Ctrl-C) is safe: an import or a
//! publish cut short leaves the previous state, and the next pass completes the work.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ferry_core::base::clock::DailyTime;
use ferry_core::ingest::import::ImportOptions;
use ferry_core::ingest::watch::{self, Disposition, Found};
use ferry_core::publish::Published;
use ferry_core::server::datadir::DataDir;
use serde::Serialize;

use crate::PROGRAM;
use crate::common::{code, exit_code, json_line, safe};
use crate::context::{Context, notify};
use ferry_core::formats::approval::Actor;

#[derive(Args)]
pub struct WatchArgs {
    /// A drop folder or a stick's mount point (repeatable); watch.drop of ingest.toml if none.
    #[arg(long = "drop", value_name = "DIR")]
    drops: Vec<PathBuf>,
    /// One pass, then exit: for cron, systemd timers and Task Scheduler.
    #[arg(long)]
    once: bool,
    /// Seconds between passes when not --once [watch.interval_seconds, 300].
    #[arg(long, value_name = "SECONDS")]
    interval: Option<u64>,
    /// Seconds a file's size and time must stay unchanged before it is read
    /// [watch.settle_seconds, 10].
    #[arg(long, value_name = "SECONDS")]
    settle: Option<u64>,
    /// Seconds a pass waits for files still being written before leaving the whole drop to the
    /// next pass [watch.max_wait_seconds, 600].
    #[arg(long, value_name = "SECONDS")]
    max_wait: Option<u64>,
    /// Do not publish to the distribution points after a pass [watch.publish].
    #[arg(long)]
    no_publish: bool,
    /// One JSON object per pass.
    #[arg(long)]
    json: bool,
}

/// A pass's settings: the flags, else ingest.toml's [watch], read anew for every pass.
struct Settings {
    drops: Vec<PathBuf>,
    interval: Duration,
    settle: Duration,
    max_wait: Duration,
    daily: Option<DailyTime>,
    publish: bool,
}

impl Settings {
    fn new(args: &WatchArgs, ctx: &Context) -> anyhow::Result<Settings> {
        let w = ctx.effective()?.config.watch;
        let drops = if args.drops.is_empty() { w.drop } else { args.drops.clone() };
        // Absolute, so that a file remembered on a read-only stick is the same file whichever
        // directory cron or a person starts the watcher from.
        let drops = drops.iter().map(std::path::absolute).collect::<std::io::Result<Vec<_>>>()?;
        if drops.is_empty() {
            anyhow::bail!(ferry_core::Error::Invalid(
                "no drop folder: give --drop DIR, or set watch.drop in ingest.toml".into()
            ));
        }
        let secs = |flag: Option<u64>, config: u64| Duration::from_secs(flag.unwrap_or(config));
        let interval = secs(args.interval, w.interval_seconds);
        if interval.is_zero() {
            anyhow::bail!(ferry_core::Error::Invalid("--interval 0: give at least one second".into()));
        }
        Ok(Settings {
            drops,
            interval,
            settle: secs(args.settle, w.settle_seconds),
            max_wait: secs(args.max_wait, w.max_wait_seconds),
            daily: DailyTime::parse(&w.daily_refresh)?,
            publish: w.publish && !args.no_publish,
        })
    }
}

/// What one pass did, as `--json` prints it.
#[derive(Serialize, Default)]
struct PassRecord {
    started: String,
    /// Bundle files found (before settling).
    found: usize,
    /// Files of the drop folders that are not bundles, left alone.
    ignored: Vec<String>,
    /// Drop folders that are not there.
    absent: Vec<String>,
    /// Files still being written when the pass stopped waiting: nothing was imported.
    writing: Vec<String>,
    /// Files read before and remembered (a drop that cannot be moved from), skipped.
    remembered: usize,
    bundles: Vec<BundleRecord>,
    /// The change report of the bundles' import.
    report: Option<u64>,
    /// The change report of the daily refresh, if one ran.
    daily_refresh: Option<u64>,
    published: Vec<Published>,
}

#[derive(Serialize)]
struct BundleRecord {
    path: String,
    /// accepted, already-imported or refused.
    outcome: &'static str,
    detail: String,
    /// processed, rejected, remembered or left.
    disposition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    moved_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

pub fn run(ctx: &Context, args: WatchArgs) -> anyhow::Result<u8> {
    let _one_watcher = watch::single_instance(ctx.dir())?;
    let mut settings = Settings::new(&args, ctx)?;
    if !args.once {
        eprintln!(
            "{PROGRAM}: watching {} every {} s{}; stop with Ctrl-C or SIGTERM at any time",
            settings.drops.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
            settings.interval.as_secs(),
            settings.daily.map(|t| format!(", daily refresh at {t}")).unwrap_or_default()
        );
    }
    loop {
        let status = match pass(ctx, &settings, &args) {
            Ok(status) => status,
            Err(e) if !args.once => {
                crate::common::report(PROGRAM, &e);
                code::OK
            }
            Err(e) => return Err(e),
        };
        if args.once {
            return Ok(status);
        }
        crate::common::flush_out();
        std::thread::sleep(until_next(&settings));
        // ingest.toml may have changed: the next pass reads it again; a broken one keeps the
        // settings in force and says so.
        match Settings::new(&args, ctx) {
            Ok(s) => settings = s,
            Err(e) => {
                crate::common::report(PROGRAM, &e);
            }
        }
    }
}

/// The interval, or less if the daily refresh falls due sooner.
fn until_next(settings: &Settings) -> Duration {
    settings.daily.and_then(DailyTime::until_next).map_or(settings.interval, |d| d.min(settings.interval))
}

/// One pass: find, settle, import and move, refresh if due, notify, publish.
fn pass(ctx: &Context, settings: &Settings, args: &WatchArgs) -> anyhow::Result<u8> {
    let mut record =
        PassRecord { started: ferry_core::base::clock::Timestamp::now().to_string(), ..Default::default() };
    let scan = watch::scan(&settings.drops)?;
    record.found = scan.found.len();
    record.ignored = scan.ignored.iter().map(|p| p.display().to_string()).collect();
    record.absent = scan.absent.iter().map(|p| p.display().to_string()).collect();
    for absent in &scan.absent {
        eprintln!("{PROGRAM}: warning: drop folder {} is not there (a stick not plugged in?)", absent.display());
    }

    let settled = watch::settle(scan.found, settings.settle, settings.max_wait, |fresh| {
        if !args.json {
            for f in fresh {
                outln!("waiting: {} is recent; reading it once it has not changed for a while", f.path.display());
            }
        }
    });
    record.writing = settled.writing.iter().map(|f| f.path.display().to_string()).collect();

    let mut data = ctx.write_configured()?;
    let mut status = code::OK;
    if !settled.writing.is_empty() {
        // A bundle still arriving may be older than those ready: importing them first would
        // make it look like a rollback. The next pass takes them all.
        if !args.json {
            for f in &settled.writing {
                outln!(
                    "still being written after {} s: {}; nothing is imported this pass",
                    settings.max_wait.as_secs(),
                    f.path.display()
                );
            }
        }
    } else {
        status = import_ready(&mut data, settled.ready, &mut record, args.json)?;
    }

    if let Some(at) = settings.daily
        && watch::daily_refresh_due(&data, at)?
    {
        let by = format!("ingest watch (daily refresh at {at})");
        let (refreshed, report) = ferry_core::ingest::import::refresh_reported(&mut data, &by)?;
        record.daily_refresh = Some(report.id);
        if !args.json {
            outln!("daily refresh ({at}) of the update list as of {}", refreshed.day);
            super::rules::print_refresh(&refreshed, "");
            super::report::print_pointer(report.id);
        }
        notify(&data, &report);
    }

    if settings.publish {
        let behind: Vec<_> =
            ferry_core::publish::pending(&data)?.into_iter().map(|dp| dp.name.parse()).collect::<Result<_, _>>()?;
        if !behind.is_empty() {
            record.published = ferry_core::publish::publish(&mut data, &behind, false)?;
            if !args.json {
                record.published.iter().for_each(super::dp::print_published);
            }
        }
    }
    // A pass that found nothing prints nothing (cron mails whatever a job prints); --json
    // prints every pass.
    if args.json {
        json_line("watch-pass", &record)?;
    }
    Ok(status)
}

/// Imports the settled files in sequence order and moves each out of the drop folder.
/// Returns the exit code of the first failure, or OK.
fn import_ready(data: &mut DataDir, ready: Vec<Found>, record: &mut PassRecord, json: bool) -> anyhow::Result<u8> {
    let mut by_path: HashMap<PathBuf, Found> = HashMap::new();
    for f in ready {
        if watch::seen_before(data, &f)? {
            record.remembered += 1;
        } else {
            by_path.insert(f.path.clone(), f);
        }
    }
    if by_path.is_empty() {
        return Ok(code::OK);
    }
    let paths = ferry_core::ingest::import::order_for_import(&by_path.keys().cloned().collect::<Vec<_>>())?;
    let mut status = code::OK;
    let mut unmovable = Vec::new();
    let by = format!("ingest watch ({})", Actor::running());
    let imported = ferry_core::ingest::import::import_all(
        data,
        &paths,
        ImportOptions::default(),
        &by,
        |path, result| -> anyhow::Result<()> {
            let found = &by_path[path];
            let (outcome, detail) = ferry_core::ingest::import::outcome_summary(&result);
            let refusal = result.as_ref().err();
            if let Some(e) = refusal
                && status == code::OK
            {
                status = exit_code(e.class());
            }
            let disposition = watch::dispose(found, refusal)?;
            let b = bundle_record(found, outcome, detail, &disposition);
            if !json {
                print_bundle(&b);
            }
            record.bundles.push(b);
            if matches!(disposition, Disposition::Remembered { .. }) {
                unmovable.push((found.clone(), disposition));
            }
            Ok(())
        },
    )?;
    for (found, disposition) in &unmovable {
        watch::remember(data, found, disposition)?;
    }
    record.report = Some(imported.report.id);
    if !json {
        if let Some(refresh) = imported.refresh.filter(|r| r.worth_showing()) {
            outln!("refreshed the update list:");
            super::rules::print_refresh(&refresh, "");
        }
        super::report::print_pointer(imported.report.id);
    }
    notify(data, &imported.report);
    Ok(status)
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

fn print_bundle(b: &BundleRecord) {
    // File names come off a drop folder that others write to: shown like any untrusted text.
    outln!("{}: {} ({})", b.outcome, safe(&b.path), safe(&b.detail));
    match (&b.moved_to, &b.reason_file, &b.why) {
        (Some(to), Some(reason), _) => outln!("  moved to {}; why: {}", safe(to), safe(reason)),
        (Some(to), None, _) => outln!("  moved to {}", safe(to)),
        (_, _, Some(why)) => outln!("  left in place: {}", safe(why)),
        _ => {}
    }
}
