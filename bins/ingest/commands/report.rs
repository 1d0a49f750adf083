//! `ingest report`: a stored change report as text, JSON or a self-contained HTML page.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ferry_core::server::report::ChangeReport;

use crate::common::{code, json_line, safe};
use crate::context::Context;
use ferry_core::ingest::reports;

#[derive(Args)]
pub struct ReportArgs {
    /// The report's number (as import, register, import-list and refresh print it); the
    /// latest by default.
    id: Option<u64>,
    /// text, json or html; `report.format` of ingest.toml by default (text).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write to this file (whole or not at all; never inside the data directory; - is
    /// standard output) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The report as one JSON line (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// List the latest reports instead: number, kind, time, who and headline.
    #[arg(long, conflicts_with_all = ["id", "out"])]
    list: bool,
    /// How many reports --list shows.
    #[arg(long, default_value_t = 20, requires = "list", value_name = "N")]
    limit: usize,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

pub fn run(ctx: &Context, args: ReportArgs) -> anyhow::Result<u8> {
    let config = ctx.effective()?.config;
    let format = match args.format {
        _ if args.json => Format::Json,
        Some(f) => f,
        None => Format::from_str(&config.report.format, true).map_err(|e| anyhow::anyhow!(e))?,
    };
    let data = ctx.read()?;
    if args.list {
        let headers = reports::list(&data, args.limit)?;
        match format {
            Format::Json => {
                for h in &headers {
                    json_line("report-header", h)?;
                }
            }
            _ => {
                if headers.is_empty() {
                    outln!("no change reports yet");
                    return Ok(code::OK);
                }
                let mut table = crate::common::Table::new(&["ID", "KIND", "CREATED", "BY", "WHAT CHANGED"]);
                for h in &headers {
                    table.row(vec![
                        h.id.to_string(),
                        h.kind.to_string(),
                        h.created.to_string(),
                        h.by.clone(),
                        h.headline.clone(),
                    ]);
                }
                table.print();
            }
        }
        return Ok(code::OK);
    }
    let report = reports::get(&data, args.id)?;
    let rendered = render(&report, format);
    match &args.out {
        Some(out) if out.as_os_str() != "-" => {
            ferry_core::base::output::write_bytes(out, Some(data.root()), rendered.as_bytes())?;
            eprintln!("ingest: change report {} written to {}", report.id, safe(&out.display().to_string()));
        }
        _ => out!("{rendered}"),
    }
    Ok(code::OK)
}

pub fn render(report: &ChangeReport, format: Format) -> String {
    match format {
        Format::Text => report.to_text(),
        Format::Json => ferry_core::formats::json_lines::line("report", report).expect("a report serialises") + "\n",
        Format::Html => report.to_html(),
    }
}

/// The line each command that stores a report ends with.
pub fn print_pointer(id: u64) {
    outln!("change report {id} stored: `ingest report {id}` shows it");
}
