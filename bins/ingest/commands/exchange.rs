//! `ingest export-list|import-list|export-groups|import-groups`: CSV between servers.

use ferry_core::ingest::notify::Notice;
use std::path::PathBuf;

use clap::Args;
use ferry_core::formats::list_csv::{BadRow, Exchanged};
use ferry_core::ingest::exchange::{CsvInput, ExportTarget, ListTrust};
use ferry_core::server::datadir::DataDir;

use super::rules;
use crate::PROGRAM;
use crate::common::progress::View;
use crate::common::{StdoutSink, code, json_line, safe};
use crate::context::{Context, notify};
use ferry_core::formats::approval::Actor;
use ferry_core::ingest::reports;

#[derive(Args)]
pub struct ExportArgs {
    /// The CSV file to write (replaced whole, never left half-written; never inside the data
    /// directory), or - for standard output.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Where the detached signature by the server key goes (minisign format); FILE.minisig
    /// by default, and required with --out -.
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A CSV file written by export-list (or export-groups) on another server, or - for
    /// standard input.
    file: PathBuf,
    /// Its signature: FILE.minisig by default (none for standard input). It must be by a
    /// peer server's key trusted with `ingest trust add-peer`.
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    /// Take a list that is unsigned or not signed by a trusted peer: its statuses and groups
    /// of updates this server holds, never its metadata (update groups are taken whole).
    #[arg(long)]
    allow_unsigned: bool,
    /// Import the good rows and report the bad ones, instead of refusing the whole file.
    #[arg(long)]
    skip_invalid: bool,
    /// Say what the import would change (the merge and refresh run whole, then are rolled
    /// back) and keep nothing: no change, no report, no audit entry.
    #[arg(long)]
    dry_run: bool,
    /// One JSON object: what changed.
    #[arg(long)]
    json: bool,
}

impl ImportArgs {
    /// The signature to check, if there is one to look for.
    fn signature_path(&self) -> Option<PathBuf> {
        match (&self.signature, self.file.as_os_str() == "-") {
            (Some(path), _) => Some(path.clone()),
            (None, true) => None,
            (None, false) => Some(ferry_core::formats::list_csv::signature_path(&self.file)),
        }
    }

    fn trust(&self, data: &DataDir, kind: Exchanged) -> anyhow::Result<ListTrust> {
        let what = CsvInput::from_arg(&self.file).what();
        let trust = ListTrust::judge(data, kind, &what, self.signature_path().as_deref(), self.allow_unsigned)?;
        if let ListTrust::Unsigned { why } = &trust {
            eprintln!("ingest: warning: {what}: {}; taking statuses and groups only (--allow-unsigned)", safe(why));
        }
        Ok(trust)
    }
}

pub fn export_list(ctx: &Context, args: ExportArgs) -> anyhow::Result<u8> {
    // Exclusive: the server key that signs the list is made on first use.
    let data = ctx.write()?;
    let rows = export(&data, &args, Exchanged::List, ferry_core::ingest::exchange::export_list)?;
    said(&args, &format!("{rows} updates written to"));
    Ok(code::OK)
}

pub fn export_groups(ctx: &Context, args: ExportArgs) -> anyhow::Result<u8> {
    let data = ctx.write()?;
    let rows = export(&data, &args, Exchanged::Groups, ferry_core::ingest::exchange::export_groups)?;
    said(&args, &format!("{rows} update groups written to"));
    Ok(code::OK)
}

/// Writes the export to standard output (`-`) or the file `out`, and its signature.
fn export(
    data: &DataDir,
    args: &ExportArgs,
    kind: Exchanged,
    write: fn(&DataDir, &mut dyn std::io::Write) -> ferry_core::Result<usize>,
) -> anyhow::Result<usize> {
    let mut stdout = StdoutSink;
    let target =
        if args.out.as_os_str() == "-" { ExportTarget::Stdout(&mut stdout) } else { ExportTarget::File(&args.out) };
    let signature = match &args.signature {
        Some(path) => path.clone(),
        None => target.default_signature()?,
    };
    Ok(ferry_core::ingest::exchange::export_signed(data, kind, target, &signature, write)?)
}

/// What was written where: on standard error when standard output carried the file.
fn said(args: &ExportArgs, what: &str) {
    if args.out.as_os_str() == "-" {
        eprintln!("ingest: {what} standard output");
    } else {
        outln!(
            "{what} {} (signed by the server key in {})",
            safe(&args.out.display().to_string()),
            safe(
                &args
                    .signature
                    .clone()
                    .unwrap_or_else(|| ferry_core::formats::list_csv::signature_path(&args.out))
                    .display()
                    .to_string()
            )
        );
    }
}

fn print_skipped(skipped: &[BadRow]) {
    for b in skipped {
        outln!("  skipped line {}: {}", b.line, safe(&b.reason));
    }
}

pub fn import_list(ctx: &Context, args: ImportArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write_configured()?;
    let trust = args.trust(&data, Exchanged::List)?;
    let done = ferry_core::ingest::exchange::import_list(
        &mut data,
        &CsvInput::from_arg(&args.file),
        &trust,
        args.skip_invalid,
        &Actor::running(),
        &View::new(PROGRAM, args.json),
        args.dry_run,
    )?;
    if let Some(id) = done.report {
        notify(&data.config.notify, Notice::Report(&reports::get(&data, Some(id))?));
    }
    if args.json {
        json_line("list-imported", &done)?;
        return Ok(code::OK);
    }
    let m = &done.merge;
    let u = &m.updates;
    let verb = if done.dry_run { "would import" } else { "imported" };
    outln!("{verb} {} rows from {}", done.rows, safe(&CsvInput::from_arg(&args.file).what()));
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
    if !m.not_held.is_empty() {
        outln!(
            "  {} updates left out: this server does not hold them, and an unsigned list brings no metadata",
            m.not_held.len()
        );
    }
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
    match done.report {
        Some(id) => super::report::print_pointer(id),
        None => outln!("dry run: nothing was changed, no change report stored"),
    }
    Ok(code::OK)
}

pub fn import_groups(ctx: &Context, args: ImportArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write()?;
    let trust = args.trust(&data, Exchanged::Groups)?;
    let done = ferry_core::ingest::exchange::import_groups(
        &mut data,
        &CsvInput::from_arg(&args.file),
        &trust,
        args.skip_invalid,
        args.dry_run,
    )?;
    if args.json {
        json_line("groups-imported", &done)?;
        return Ok(code::OK);
    }
    let verb = if done.dry_run { "would import" } else { "imported" };
    outln!("{verb} {} update groups from {}", done.rows, safe(&CsvInput::from_arg(&args.file).what()));
    print_skipped(&done.skipped);
    if !done.merge.groups_created.is_empty() {
        outln!("  groups created: {}", safe(&done.merge.groups_created.join(", ")));
    }
    outln!("  memberships added: {}", done.merge.memberships_added);
    for m in &done.merge.unknown_members {
        outln!("  not in this list, left out: {}", safe(m));
    }
    if done.dry_run {
        outln!("dry run: nothing was changed");
    }
    Ok(code::OK)
}
