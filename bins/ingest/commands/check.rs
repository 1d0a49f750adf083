//! `ingest check`: prove that registry and store agree, and put right what can be.

use clap::Args;

use crate::PROGRAM;
use crate::common::progress::View;
use crate::common::{code, human_bytes, json_line, safe};
use crate::context::Context;

#[derive(Args)]
pub struct CheckArgs {
    /// Register files the store holds but the registry lost, mark missing or damaged files
    /// absent (fetch is then asked for them again), move damaged and unknown files to
    /// quarantine/, make writable files read-only again. Logged in the audit log.
    #[arg(long)]
    pub repair: bool,
    /// With --repair: say what each repair would do, and change nothing.
    #[arg(long, requires = "repair")]
    pub dry_run: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: CheckArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write()?;
    let repair = args.repair && !args.dry_run;
    let report = ferry_core::ingest::check::check(&mut data, repair, &View::new(PROGRAM, args.json))?;
    if args.json {
        let mut line = serde_json::to_value(&report)?;
        if args.dry_run {
            line["would_repair"] = report
                .findings
                .iter()
                .filter_map(|f| {
                    f.repair().map(|action| serde_json::json!({"finding": f.to_string(), "repair": action}))
                })
                .collect();
        }
        json_line("check", &line)?;
    } else if args.dry_run {
        outln!("checked {} stored files ({})", report.files_checked, human_bytes(report.bytes_checked));
        for finding in &report.findings {
            match finding.repair() {
                Some(action) => outln!("  would repair: {}: {action}", safe(&finding.to_string())),
                None => outln!("  NOT REPAIRABLE: {}", safe(&finding.to_string())),
            }
        }
        outln!("dry run: nothing was changed; `ingest check --repair` does the above");
    } else {
        outln!("checked {} stored files ({})", report.files_checked, human_bytes(report.bytes_checked));
        for finding in &report.findings {
            let state = match (report.repaired, finding.repairable()) {
                (true, true) => "repaired",
                (_, false) => "NOT REPAIRABLE",
                (false, true) => "found",
            };
            outln!("  {state}: {}", safe(&finding.to_string()));
        }
        if let Some(q) = &report.quarantine {
            outln!("  moved aside to {}", safe(&q.display().to_string()));
        }
        match (report.findings.len(), report.outstanding()) {
            (0, _) => outln!("clean: the registry and the store agree"),
            (_, 0) => outln!("repaired; run `ingest check` again to confirm"),
            (_, n) if args.repair => outln!("{n} problems remain"),
            (_, n) => outln!("{n} problems; `ingest check --repair` puts right what can be"),
        }
    }
    if report.outstanding() > 0 {
        eprintln!("{PROGRAM}: check: {} problems outstanding", report.outstanding());
        return Ok(code::INTEGRITY);
    }
    Ok(code::OK)
}
