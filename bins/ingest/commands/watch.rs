//! `ingest watch`: scheduled ingestion from drop folders. One pass (`--once`, for cron,
//! systemd timers and Task Scheduler) or passes at an interval until stopped. The rules of a
//! pass are in `ferry_core::ingest::watch_pass`; this file runs passes and shows them.
//!
//! Stopping the watcher at any moment (SIGTERM from systemd, Ctrl-C) is safe: an import or a
//! publish cut short leaves the previous state, and the next pass completes the work.

use std::path::PathBuf;

use clap::Args;
use ferry_core::ingest::watch;
use ferry_core::ingest::watch_pass::{self, BundleRecord, Given, PassEvent, Settings};

use crate::PROGRAM;
use crate::common::{code, exit_code, json_line, safe};
use crate::context::{Context, notify};
use ferry_core::ingest::notify::Notice;
use ferry_core::server::config::Notify;

#[derive(Args, Clone)]
pub struct WatchArgs {
    /// A drop folder or a stick's mount point (repeatable); watch.drop of ingest.toml if none.
    #[arg(long = "drop", value_name = "DIR")]
    pub drops: Vec<PathBuf>,
    /// A folder the computers' inventories arrive in (repeatable): each file is read once it
    /// has settled, then moved to processed/ or rejected/ [watch.inventories].
    #[arg(long = "inventories", value_name = "DIR")]
    pub inventories: Vec<PathBuf>,
    /// A folder the computers' installation results arrive in (repeatable) [watch.results].
    #[arg(long = "results", value_name = "DIR")]
    pub results: Vec<PathBuf>,
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

/// The settings of the next pass: the flags, else ingest.toml's [watch], read anew.
fn settings(ctx: &Context, args: &WatchArgs) -> anyhow::Result<Settings> {
    let given = Given {
        drops: args.drops.clone(),
        inventories: args.inventories.clone(),
        results: args.results.clone(),
        interval: args.interval,
        settle: args.settle,
        max_wait: args.max_wait,
        no_publish: args.no_publish,
    };
    Ok(Settings::new(&ctx.effective()?.config.watch, &given)?)
}

pub fn run(ctx: &Context, args: WatchArgs) -> anyhow::Result<u8> {
    let mut sleep = |wait| {
        std::thread::sleep(wait);
        false
    };
    run_until(ctx, args, "Ctrl-C or SIGTERM at any time", &mut sleep)
}

/// Runs passes; between two, `stop` waits up to the time given and says whether to stop
/// (the Windows service's stop request; the command line is stopped by a signal instead,
/// which `how_to_stop` names).
pub fn run_until(
    ctx: &Context,
    args: WatchArgs,
    how_to_stop: &str,
    stop: &mut dyn FnMut(std::time::Duration) -> bool,
) -> anyhow::Result<u8> {
    let _one_watcher = watch::single_instance(ctx.dir())?;
    let mut settings = settings(ctx, &args)?;
    if !args.once {
        eprintln!(
            "{PROGRAM}: watching {} every {} s{}; stop with {how_to_stop}",
            settings
                .drops
                .iter()
                .chain(&settings.inventories)
                .chain(&settings.results)
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            settings.interval.as_secs(),
            settings.daily.map(|t| format!(", daily refresh at {t}")).unwrap_or_default()
        );
    }
    loop {
        let status = match pass(ctx, &settings, args.json) {
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
        if stop(settings.until_next()) {
            return Ok(code::OK);
        }
        // ingest.toml may have changed: the next pass reads it again; a broken one keeps the
        // settings in force and says so.
        match self::settings(ctx, &args) {
            Ok(s) => settings = s,
            Err(e) => {
                crate::common::report(PROGRAM, &e);
            }
        }
    }
}

/// One pass, shown as it goes (or as one JSON line at its end); returns the exit code of its
/// first refusal, or OK. A pass that found nothing prints nothing (cron mails whatever a job
/// prints); --json prints every pass.
fn pass(ctx: &Context, settings: &Settings, json: bool) -> anyhow::Result<u8> {
    let config = ctx.effective()?.config;
    let notify_config = config.notify.clone();
    let progress = crate::common::progress::View::new(PROGRAM, json);
    let record = watch_pass::pass(
        settings,
        || ctx.write_with(config),
        &mut |event| show(event, json, &notify_config),
        &progress,
    )?;
    if json {
        json_line("watch-pass", &record)?;
    }
    Ok(record.first_refusal.map_or(code::OK, exit_code))
}

fn show(event: PassEvent<'_>, json: bool, config: &Notify) {
    match event {
        PassEvent::DropAbsent(dir) => {
            eprintln!("{PROGRAM}: warning: drop folder {} is not there (a stick not plugged in?)", dir.display());
        }
        // Notifications go out whatever the output.
        PassEvent::Imported(_, report) | PassEvent::DailyRefresh(_, _, report) if json => {
            notify(config, Notice::Report(report))
        }
        PassEvent::ComplianceWorse(alert) => notify(config, Notice::Compliance(alert)),
        _ if json => {}
        PassEvent::Waiting(fresh) => {
            for f in fresh {
                outln!("waiting: {} is recent; reading it once it has not changed for a while", f.path.display());
            }
        }
        PassEvent::StillWriting(files, waited) => {
            for f in files {
                outln!(
                    "still being written after {} s: {}; nothing is imported this pass",
                    waited.as_secs(),
                    f.path.display()
                );
            }
        }
        PassEvent::Bundle(b) => print_bundle(b),
        PassEvent::Imported(refresh, report) => {
            if let Some(refresh) = refresh.filter(|r| r.worth_showing()) {
                outln!("refreshed the update list:");
                super::rules::print_refresh(refresh, "");
            }
            super::report::print_pointer(report.id);
            notify(config, Notice::Report(report));
        }
        PassEvent::DailyRefresh(at, refreshed, report) => {
            outln!("daily refresh ({at}) of the update list as of {}", refreshed.day);
            super::rules::print_refresh(refreshed, "");
            super::report::print_pointer(report.id);
            notify(config, Notice::Report(report));
        }
        PassEvent::Published(p) => super::dp::print_published(p),
        PassEvent::ComputerFile(f) => print_bundle(f),
        PassEvent::Judged(run) => {
            let _ = super::computers::print_judgment(run, false);
        }
    }
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
