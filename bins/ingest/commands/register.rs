//! `ingest register`: files downloaded by hand.

use ferry_core::ingest::notify::Notice;
use std::path::PathBuf;

use clap::Args;
use ferry_core::base::clock::Date;
use ferry_core::base::names::UpdateId;
use ferry_core::base::shared_tree::Links;
use ferry_core::formats::model::{Classification, Severity};
use ferry_core::ingest::register::Details;

use super::rules;
use crate::common::{code, human_bytes, json_line, safe};
use crate::context::{Context, notify};
use ferry_core::formats::approval::Actor;
use ferry_core::ingest::reports;

#[derive(Args)]
pub struct RegisterArgs {
    /// The files. Each is checked against the update list: a known digest attaches it to its
    /// update; a known name with another digest is refused; the rest form one new manual update.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Attach the files to this update; each must be one of its files.
    #[arg(long, value_name = "ID")]
    update: Option<UpdateId>,
    /// For a new manual update: its title (the first file's name by default).
    #[arg(long)]
    title: Option<String>,
    /// For a new manual update: the product (required for one).
    #[arg(long)]
    product: Option<String>,
    /// For a new manual update: the classification (required for one).
    #[arg(long)]
    classification: Option<Classification>,
    #[arg(long)]
    severity: Option<Severity>,
    /// KB number, as KB5034122 or 5034122.
    #[arg(long)]
    kb: Option<String>,
    #[arg(long)]
    vendor: Option<String>,
    #[arg(long)]
    version: Option<String>,
    /// Release date, YYYY-MM-DD (today by default).
    #[arg(long, value_name = "DATE")]
    released: Option<Date>,
    /// Who registers (recorded in the audit log); the login name (else the account name of the process) by default.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// Read what a symbolic link among FILES points to (each target is printed); without
    /// it a link is refused, so that a link named like a hotfix cannot register another file.
    #[arg(long)]
    follow_symlinks: bool,
    /// One JSON object: each file and the updates it belongs to.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: RegisterArgs) -> anyhow::Result<u8> {
    let actor = Actor::acting(args.by.as_deref())?;
    let details = Details {
        title: args.title,
        vendor: args.vendor,
        product: args.product,
        version: args.version,
        kb: args.kb,
        classification: args.classification,
        severity: args.severity,
        release_date: args.released,
    };
    let mut data = ctx.write_configured()?;
    let links = if args.follow_symlinks { Links::Follow } else { Links::Refuse };
    let done =
        ferry_core::ingest::register::register(&mut data, &args.files, args.update.as_ref(), &details, links, &actor)?;
    let report = reports::get(&data, Some(done.report))?;
    notify(&data.config.notify, Notice::Report(&report));
    if args.json {
        json_line("registration", &done)?;
        return Ok(code::OK);
    }
    for f in &done.files {
        outln!(
            "registered: {} ({}, SHA-256 {}){}",
            safe(&f.path),
            human_bytes(f.size),
            f.sha256,
            if f.newly_stored { "" } else { "; the store held it already" }
        );
        if let Some(target) = &f.followed {
            outln!("  read through the symbolic link to {}", safe(target));
        }
        outln!("  file {} of {}", safe(&f.name), safe(&f.updates.join(", ")));
    }
    if let Some(id) = &done.new_update {
        outln!("new manual update {} (origin manual); approve it like any other", safe(id));
    }
    if done.refresh.worth_showing() {
        outln!("refreshed the update list:");
        rules::print_refresh(&done.refresh, "");
    }
    super::report::print_pointer(done.report);
    Ok(code::OK)
}
