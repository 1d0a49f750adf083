//! `ingest export-list|import-list|export-groups|import-groups`: CSV between servers.

use std::path::{Path, PathBuf};

use clap::Args;
use ferry_core::datadir::DataDir;
use ferry_core::exchange::{BadRow, CsvInput};
use ferry_core::output;

use crate::common::{StdoutSink, code, json_line, safe};
use crate::rules;

#[derive(Args)]
pub struct ExportArgs {
    /// The CSV file to write (replaced whole, never left half-written; never inside the data
    /// directory), or - for standard output.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A CSV file written by export-list (or export-groups) on another server, or - for
    /// standard input.
    file: PathBuf,
    /// Import the good rows and report the bad ones, instead of refusing the whole file.
    #[arg(long)]
    skip_invalid: bool,
    /// One JSON object: what changed.
    #[arg(long)]
    json: bool,
}

pub fn export_list(dir: &Path, args: ExportArgs) -> anyhow::Result<u8> {
    let data = DataDir::open_shared(dir)?;
    let rows = export(&data, &args.out, ferry_core::exchange::export_list)?;
    said(&args.out, &format!("{rows} updates written to"));
    Ok(code::OK)
}

pub fn export_groups(dir: &Path, args: ExportArgs) -> anyhow::Result<u8> {
    let data = DataDir::open_shared(dir)?;
    let rows = export(&data, &args.out, ferry_core::exchange::export_groups)?;
    said(&args.out, &format!("{rows} update groups written to"));
    Ok(code::OK)
}

/// Runs `write` into standard output (`-`) or into the file `out`.
fn export(
    data: &DataDir,
    out: &Path,
    write: fn(&DataDir, &mut dyn std::io::Write) -> ferry_core::Result<usize>,
) -> anyhow::Result<usize> {
    if out.as_os_str() == "-" {
        return Ok(write(data, &mut StdoutSink)?);
    }
    let mut rows = 0;
    output::write_file(out, Some(data.root()), |sink| {
        rows = write(data, sink)?;
        Ok(())
    })?;
    Ok(rows)
}

/// What was written where: on standard error when standard output carried the file.
fn said(out: &Path, what: &str) {
    if out.as_os_str() == "-" {
        eprintln!("ingest: {what} standard output");
    } else {
        outln!("{what} {}", safe(&out.display().to_string()));
    }
}

fn print_skipped(skipped: &[BadRow]) {
    for b in skipped {
        outln!("  skipped line {}: {}", b.line, safe(&b.reason));
    }
}

pub fn import_list(dir: &Path, args: ImportArgs) -> anyhow::Result<u8> {
    let mut data = crate::config::open_configured(dir)?;
    let done = ferry_core::exchange::import_list(
        &mut data,
        &CsvInput::from_arg(&args.file),
        args.skip_invalid,
        &crate::who(),
    )?;
    let report = data.registry.report(Some(done.report))?;
    crate::config::notify(&data, &report);
    if args.json {
        json_line(&done)?;
        return Ok(code::OK);
    }
    let m = &done.merge;
    let u = &m.updates;
    outln!("imported {} rows from {}", done.rows, safe(&CsvInput::from_arg(&args.file).what()));
    print_skipped(&done.skipped);
    outln!(
        "  updates: {} new, {} revised, {} unchanged, {} kept (the list holds a later revision, or metadata signed in a bundle, which a CSV never replaces)",
        u.new.len(),
        u.revised.len(),
        u.unchanged.len(),
        u.ignored.len()
    );
    outln!("  statuses taken (set later by a person there): {}", m.statuses_taken.len());
    for s in &m.statuses_refused {
        outln!("  {}: status not taken: {}", safe(&s.id), safe(&s.reason));
    }
    if !m.groups_created.is_empty() {
        outln!("  groups created: {}", safe(&m.groups_created.join(", ")));
    }
    outln!("  group memberships added: {}", m.memberships_added);
    if !m.unavailable.is_empty() {
        outln!(
            "  {} updates lack files here ({} files): a bundle or `ingest register` brings them",
            m.unavailable.len(),
            m.files_missing
        );
    }
    if done.refresh.worth_showing() {
        outln!("refreshed the update list:");
        rules::print_refresh(&done.refresh, "");
    }
    crate::report::print_pointer(done.report);
    Ok(code::OK)
}

pub fn import_groups(dir: &Path, args: ImportArgs) -> anyhow::Result<u8> {
    let mut data = DataDir::open_exclusive(dir)?;
    let done = ferry_core::exchange::import_groups(&mut data, &CsvInput::from_arg(&args.file), args.skip_invalid)?;
    if args.json {
        json_line(&done)?;
        return Ok(code::OK);
    }
    outln!("imported {} update groups from {}", done.rows, safe(&CsvInput::from_arg(&args.file).what()));
    print_skipped(&done.skipped);
    if !done.merge.groups_created.is_empty() {
        outln!("  groups created: {}", safe(&done.merge.groups_created.join(", ")));
    }
    outln!("  memberships added: {}", done.merge.memberships_added);
    for m in &done.merge.unknown_members {
        outln!("  not in this list, left out: {}", safe(m));
    }
    Ok(code::OK)
}
