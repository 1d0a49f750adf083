//! `ingest computers report`: the compliance reports as text, JSON lines or one HTML page.

use std::path::PathBuf;

use ferry_core::server::compliance_report::text_of;

use super::computers::{Format, ReportKind};
use crate::common::{code, json_line, safe};
use crate::context::Context;

pub fn run(
    ctx: &Context,
    kind: ReportKind,
    update: Option<String>,
    format: Format,
    out: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let stale_days = ctx.effective()?.config.computers.stale_days;
    let data = ctx.read()?;
    let sections: &[&str] = match kind {
        ReportKind::All => &["policies", "updates", "computers", "results"],
        ReportKind::Updates => &["updates"],
        ReportKind::Computers => &["computers"],
        ReportKind::NotApplied => &["not-applied"],
        ReportKind::Policies => &["policies"],
        ReportKind::Results => &["results"],
    };
    let verdicts = format == Format::Html || sections.iter().any(|s| ["computers", "not-applied"].contains(s));
    let report = ferry_core::ingest::computers::report(&data, stale_days, update.as_deref(), verdicts)?;
    if format == Format::Json {
        let want = |s: &str| sections.contains(&s);
        if want("policies") {
            for p in &report.policies {
                json_line("policy-levels", p)?;
            }
        }
        if want("updates") {
            for u in &report.updates {
                json_line("update-status", u)?;
            }
        }
        if want("computers") {
            for c in &report.computers {
                json_line("computer", c)?;
            }
        }
        if want("results") {
            for r in &report.results {
                json_line("results-summary", r)?;
            }
            for f in &report.failures {
                json_line("install-result", f)?;
            }
        }
        if want("computers") || want("not-applied") {
            for j in &report.unsatisfied {
                if update.as_deref().is_none_or(|u| j.update.eq_ignore_ascii_case(u)) {
                    json_line("not-applied", j)?;
                }
            }
        }
        return Ok(code::OK);
    }
    let rendered = match format {
        Format::Html => report.to_html(),
        _ => text_of(&report, sections, update.as_deref()),
    };
    match &out {
        Some(path) if path.as_os_str() != "-" => {
            ferry_core::base::output::write_bytes(path, Some(data.root()), rendered.as_bytes())?;
            eprintln!("ingest: compliance report written to {}", safe(&path.display().to_string()));
        }
        _ => out!("{rendered}"),
    }
    Ok(code::OK)
}
