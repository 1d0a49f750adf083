//! `ingest import`: verify bundles, store their files, register their updates, and say what
//! each did; a receipt of every check on request.

use ferry_core::ingest::notify::Notice;
use std::path::PathBuf;

use clap::Args;
use ferry_core::formats::approval::Actor;
use ferry_core::formats::freshness::TimeJudgement;
use ferry_core::formats::trust::Allowed;
use ferry_core::ingest::import::{ImportOptions, ImportOutcome};

use crate::PROGRAM;
use crate::common::progress::View;
use crate::common::{self, code, count, human_bytes, json_line, safe};
use crate::context::{Context, notify};

#[derive(Args)]
pub struct ImportArgs {
    /// Bundle files, volumes, or directories holding them (a disc, a stick). Volumes are
    /// recognised by their signed manifests, not by their names, and may come in any order.
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    /// One JSON object per bundle.
    #[arg(long)]
    pub json: bool,
    /// Write a JSON receipt of every check made (keys, each file's digest and size, volume,
    /// time judgement, timings, the audit log's head), accepted or refused, for the records.
    #[arg(long, value_name = "FILE")]
    pub receipt: Option<PathBuf>,
    #[command(flatten)]
    pub allow: AllowArgs,
}

/// What an administrator allows beyond the defaults, for import and verify alike.
#[derive(Args)]
pub struct AllowArgs {
    /// Accept bundles past their expiry, for example after a long courier delay. Each such
    /// acceptance is recorded in the audit log and the receipt.
    #[arg(long)]
    pub allow_expired: bool,
    /// Accept signatures in minisign's legacy form ("Ed", over the whole manifest), which
    /// minisign before 0.8 wrote; by default only the prehashed form ferry writes counts.
    #[arg(long)]
    pub allow_legacy_signature: bool,
    /// Accept a key rotation statement that makes the public demo key trusted (for
    /// demonstrations only: anyone can sign with it).
    #[arg(long)]
    pub allow_demo_key: bool,
}

impl AllowArgs {
    pub fn options(&self) -> ImportOptions {
        ImportOptions {
            allow_expired: self.allow_expired,
            allowed: Allowed { legacy_signatures: self.allow_legacy_signature, demo_key: self.allow_demo_key },
        }
    }
}

pub fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write_configured()?;
    eprintln!("{PROGRAM}: importing into {} (the data directory is locked until done)", ctx.dir().display());
    let mut status = code::OK;
    let paths = ferry_core::ingest::import::order_for_import(&args.bundles)?;
    if paths.is_empty() {
        return Err(ferry_core::Error::Invalid("no bundle found in the paths given".into()).into());
    }
    let opts = args.allow.options();
    // The latest word on each volume set seen: which of its volumes are still missing.
    let mut sets: std::collections::BTreeMap<(String, u64), Vec<u32>> = std::collections::BTreeMap::new();
    let by = Actor::running();
    let view = View::new(PROGRAM, args.json);
    let imported = ferry_core::ingest::import::import_all(
        &mut data,
        &paths,
        opts,
        &by,
        &view,
        |path, result| -> anyhow::Result<()> {
            match result {
                Ok(outcome) => {
                    if args.json {
                        json_line("import", &outcome)?;
                    } else {
                        print_outcome(path, &outcome, &mut sets);
                    }
                }
                Err(e) => {
                    // Keep going with the other bundles, remember the failure.
                    let code = common::report(PROGRAM, &anyhow::Error::new(e));
                    if status == code::OK {
                        status = code;
                    }
                }
            }
            Ok(())
        },
    )?;
    let report = imported.report.as_ref();
    if args.json {
        json_line(
            "import-done",
            &serde_json::json!({
                "report": report.map(|r| r.id),
                "headline": report.map(|r| r.headline()),
                "refresh": imported.refresh,
            }),
        )?;
    } else {
        report_sets(&sets);
        if let Some(refresh) = imported.refresh.as_ref().filter(|r| r.worth_showing()) {
            outln!("refreshed the update list:");
            super::rules::print_refresh(refresh, "");
        }
        match report {
            Some(r) => super::report::print_pointer(r.id),
            None => outln!("nothing changed: no change report stored (the audit log records the repeat)"),
        }
    }
    if let Some(r) = report {
        notify(&data.config.notify, Notice::Report(r));
    }
    if let Some(out) = &args.receipt {
        imported.receipt.write(&data, out)?;
        if !args.json {
            outln!("receipt written to {}", safe(&out.display().to_string()));
        }
    }
    Ok(status)
}

fn print_outcome(
    path: &std::path::Path,
    outcome: &ImportOutcome,
    sets: &mut std::collections::BTreeMap<(String, u64), Vec<u32>>,
) {
    match outcome {
        ImportOutcome::Accepted { verified: v, changes: c, missing_volumes, .. } => {
            if v.volumes > 1 {
                sets.insert((v.channel.clone(), v.sequence), missing_volumes.clone());
            }
            outln!("imported: {} ({})", safe(&path.display().to_string()), v.position());
            warn_time(&v.time);
            outln!("  signed by {}", v.signers.join(", "));
            outln!(
                "  {} verified ({}); {} newly stored",
                count(v.payloads_verified as u64, "payload"),
                human_bytes(v.bytes_verified),
                count(c.files_stored as u64, "file")
            );
            outln!(
                "  updates: {} new, {} revised, {} unchanged, {} ignored",
                c.new.len(),
                c.revised.len(),
                c.unchanged.len(),
                c.ignored.len()
            );
            if let Some(scan) = &c.scan_catalog {
                outln!(
                    "  scan catalog {} kept: distribution points publish the newest for the computers' own scans",
                    safe(scan)
                );
            }
            for id in &c.status_reset {
                outln!("  {}: files changed in the new revision; approval reset to undefined", safe(id));
            }
            for id in &c.ignored {
                outln!("  {}: older or conflicting metadata ignored; the list keeps its revision", safe(id));
            }
            for l in &v.left_out {
                outln!(
                    "  {}: left out by fetch (revision {} not carried: {}); a later bundle brings it",
                    safe(l.id.as_str()),
                    l.revision,
                    safe(&l.reason)
                );
            }
        }
        ImportOutcome::AlreadyImported { verified: v } => {
            outln!("already imported: {} ({}); nothing changed", safe(&path.display().to_string()), v.position());
        }
    }
}

/// Says on stderr when the time judgement needs a person's attention.
pub fn warn_time(t: &TimeJudgement) {
    if t.clock_behind {
        eprintln!(
            "{PROGRAM}: warning: the system clock ({}) is earlier than the latest accepted bundle ({}); expiry was judged against the latter. If the clock went backwards, set it right; if a bundle was dated in the future, `ingest trust clock-reset` recovers.",
            t.system_clock,
            t.latest_seen.map(|l| l.to_string()).unwrap_or_default()
        );
    }
    if t.expiry_relaxed {
        eprintln!(
            "{PROGRAM}: warning: accepted past its expiry ({}) because of --allow-expired; recorded in the audit log",
            t.expires.map(|e| e.to_string()).unwrap_or_default()
        );
    }
}

fn report_sets(sets: &std::collections::BTreeMap<(String, u64), Vec<u32>>) {
    for ((channel, sequence), missing) in sets {
        if missing.is_empty() {
            outln!("channel {channel} sequence {sequence}: every volume has arrived");
        } else {
            let list: Vec<String> = missing.iter().map(|v| v.to_string()).collect();
            outln!(
                "channel {channel} sequence {sequence}: volume{} {} still missing; updates with files in {} stay unavailable",
                if missing.len() == 1 { "" } else { "s" },
                list.join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            );
        }
    }
}
