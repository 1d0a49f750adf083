//! `ingest export-list|import-list|export-groups|import-groups`: CSV between servers.

use std::path::{Path, PathBuf};

use clap::Args;
use ferry_core::datadir::DataDir;
use ferry_core::exchange::BadRow;

use crate::common::{code, json_line, safe};
use crate::rules;

#[derive(Args)]
pub struct ExportArgs {
    /// The CSV file to write (replaced whole, never left half-written).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A CSV file written by export-list (or export-groups) on another server.
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
    let done = ferry_core::exchange::export_list(&data, &args.out)?;
    outln!("{} updates written to {}", done.rows, safe(&args.out.display().to_string()));
    Ok(code::OK)
}

pub fn export_groups(dir: &Path, args: ExportArgs) -> anyhow::Result<u8> {
    let data = DataDir::open_shared(dir)?;
    let done = ferry_core::exchange::export_groups(&data, &args.out)?;
    outln!("{} update groups written to {}", done.rows, safe(&args.out.display().to_string()));
    Ok(code::OK)
}

fn print_skipped(skipped: &[BadRow]) {
    for b in skipped {
        outln!("  skipped line {}: {}", b.line, safe(&b.reason));
    }
}

pub fn import_list(dir: &Path, args: ImportArgs) -> anyhow::Result<u8> {
    let mut data = crate::config::open_configured(dir)?;
    let done = ferry_core::exchange::import_list(&mut data, &args.file, args.skip_invalid, &crate::who())?;
    let report = data.registry.report(Some(done.report))?;
    crate::config::notify(&data, &report);
    if args.json {
        json_line(&done)?;
        return Ok(code::OK);
    }
    let m = &done.merge;
    let u = &m.updates;
    outln!("imported {} rows from {}", done.rows, safe(&args.file.display().to_string()));
    print_skipped(&done.skipped);
    outln!(
        "  updates: {} new, {} revised, {} unchanged, {} kept (the list holds a later revision)",
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
    let done = ferry_core::exchange::import_groups(&mut data, &args.file, args.skip_invalid)?;
    if args.json {
        json_line(&done)?;
        return Ok(code::OK);
    }
    outln!("imported {} update groups from {}", done.rows, safe(&args.file.display().to_string()));
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
