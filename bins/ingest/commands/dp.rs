//! `ingest dp` (distribution points) and `ingest publish`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ferry_core::base::names::{DpName, GroupName};
use ferry_core::publish::{self, Published, VerifiedPoint};
use ferry_core::server::datadir::SERVER_PUBLIC_FILE;

use crate::PROGRAM;
use crate::common::progress::View;
use crate::common::{code, count, human_bytes, json_line, safe};
use crate::context::Context;
use ferry_core::formats::approval::Actor;
use ferry_core::publish::points;

#[derive(Subcommand)]
pub enum DpCommand {
    /// Add a distribution point: a directory (a web server's document root, a file share)
    /// carrying every approved update, or the approved updates of one group.
    Add(AddArgs),
    /// Every distribution point, what it carries and its last publish.
    List(ListArgs),
    /// Forget a distribution point; its directory is left as it is.
    Remove(RemoveArgs),
    /// Check a distribution point's copy as a branch office would: the index signature, then
    /// every file (missing, corrupt), then files no recent index lists (extra).
    Verify(VerifyArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("carries").required(true).args(["group", "approved"])))]
pub struct AddArgs {
    name: DpName,
    /// The directory to publish into (created if missing).
    #[arg(long, value_name = "DIR")]
    path: PathBuf,
    /// Carry the approved updates of this update group only.
    #[arg(long, value_name = "GROUP")]
    group: Option<GroupName>,
    /// Carry every approved update.
    #[arg(long)]
    approved: bool,
    /// With --group: carry the group's undecided members too, never declined ones (a pilot
    /// group receives an update before it is approved for everyone).
    #[arg(long)]
    include_unapproved: bool,
    /// Who acts (recorded in the audit log); the login name (else the account name of the process) by default.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// One JSON object per distribution point.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RemoveArgs {
    name: DpName,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The distribution point's directory (a local path or a mounted share).
    dir: PathBuf,
    /// The management server's public key (`ingest server-key export`); by default the one
    /// in the data directory.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// One JSON object: what was checked and found.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct PublishArgs {
    /// The distribution points to publish (all of them by default).
    names: Vec<DpName>,
    /// Read every file already published and replace those whose content differs (a plain
    /// publish trusts a file of the right size; this reads the whole distribution point).
    #[arg(long)]
    check: bool,
    /// Say what the publish would do (generations, files to copy, files and generations to
    /// delete) and change nothing.
    #[arg(long, conflicts_with = "check")]
    dry_run: bool,
    /// One JSON object per distribution point.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, command: DpCommand) -> anyhow::Result<u8> {
    match command {
        DpCommand::Add(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let path = std::path::absolute(&args.path)?;
            let mut data = ctx.write()?;
            let dp = points::add(&mut data, &args.name, &path, args.group.as_ref(), args.include_unapproved, &actor)?;
            outln!(
                "distribution point {} added: {} carries {} (run `ingest publish {}`)",
                safe(&dp.name),
                safe(&dp.path.display().to_string()),
                safe(&dp.carries()),
                safe(&dp.name)
            );
        }
        DpCommand::List(args) => {
            let data = ctx.read()?;
            let dps = points::all(&data)?;
            if args.json {
                for d in &dps {
                    json_line("distribution-point", d)?;
                }
            } else if dps.is_empty() {
                outln!("no distribution points (add one with `ingest dp add NAME --path DIR --approved`)");
            } else {
                outln!("{:<20} {:>10}  {:<20}  {:<32}  PATH", "NAME", "GENERATION", "PUBLISHED", "CARRIES");
                for d in &dps {
                    outln!(
                        "{:<20} {:>10}  {:<20}  {:<32}  {}",
                        safe(&d.name),
                        d.generation.map_or("-".to_string(), |g| g.to_string()),
                        d.published_at.as_deref().unwrap_or("never"),
                        safe(&d.carries()),
                        safe(&d.path.display().to_string())
                    );
                }
            }
        }
        DpCommand::Remove(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write()?;
            let dp = points::remove(&mut data, &args.name, &actor)?;
            outln!(
                "distribution point {} removed; its directory {} is left as it is",
                safe(&dp.name),
                safe(&dp.path.display().to_string())
            );
        }
        DpCommand::Verify(args) => return verify(ctx, args),
    }
    Ok(code::OK)
}

fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<u8> {
    let key_path = args.key.unwrap_or_else(|| ctx.dir().join(SERVER_PUBLIC_FILE));
    let key = ferry_core::formats::keys::read_public_key(&key_path)?;
    let found = publish::verify_point(&args.dir, &key)?;
    if args.json {
        json_line("point-verified", &found)?;
    } else {
        print_verified(&found);
    }
    Ok(if found.is_intact() { code::OK } else { code::INTEGRITY })
}

fn print_verified(v: &VerifiedPoint) {
    outln!(
        "distribution point {} at {}: generation {} published {}, signed by server key {}",
        safe(&v.distribution_point),
        safe(&v.path.display().to_string()),
        v.generation,
        v.published,
        v.server_key
    );
    outln!("  {}, {}, {}", count(v.updates as u64, "update"), count(v.files as u64, "file"), human_bytes(v.bytes));
    match v.assigned_groups {
        Some(n) => outln!("  signed assignment of {} (computers in no group included)", count(n as u64, "group")),
        None => outln!("  no assignment (published before ferry wrote them): clients have nothing to install from it"),
    }
    for (what, list) in [("missing", &v.missing), ("corrupt", &v.corrupt), ("extra", &v.extra)] {
        for item in list {
            outln!("  {what:<8} {}", safe(item));
        }
    }
    if v.is_intact() {
        outln!("  intact: every file present with its digest, nothing extra");
    } else {
        outln!("  NOT intact: {} missing, {} corrupt, {} extra", v.missing.len(), v.corrupt.len(), v.extra.len());
    }
}

pub fn publish(ctx: &Context, args: PublishArgs) -> anyhow::Result<u8> {
    if args.dry_run {
        return preview(ctx, args);
    }
    let mut data = ctx.write_configured()?;
    let done = publish::publish(&mut data, &args.names, args.check, &View::new(PROGRAM, args.json))?;
    if done.is_empty() && !args.json {
        outln!("no distribution points (add one with `ingest dp add NAME --path DIR --approved`)");
    }
    for p in &done {
        if args.json {
            json_line("published", p)?;
        } else {
            print_published(p);
        }
    }
    Ok(code::OK)
}

/// `publish --dry-run`: what each point would get, and what would be deleted from it.
fn preview(ctx: &Context, args: PublishArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let previews = publish::preview(&data, &args.names)?;
    if previews.is_empty() && !args.json {
        outln!("no distribution points (add one with `ingest dp add NAME --path DIR --approved`)");
    }
    for p in &previews {
        if args.json {
            json_line("publish-preview", p)?;
            continue;
        }
        let generation = match (p.new_generation, p.current) {
            (true, Some(now)) => format!("would write a new generation (now {now})"),
            (true, None) => "would write its first generation".to_string(),
            (false, now) => format!("is up to date at generation {}", now.unwrap_or_default()),
        };
        outln!(
            "{} {generation}: {}, {}, {}",
            safe(&p.name),
            count(p.updates as u64, "update"),
            count(p.files as u64, "file"),
            human_bytes(p.bytes)
        );
        outln!(
            "  files to copy: {} ({}); {} there already with the right size",
            p.to_place,
            human_bytes(p.bytes_to_place),
            p.in_place
        );
        if !p.added.is_empty() {
            outln!("  would add: {}", safe(&p.added.join(", ")));
        }
        if !p.removed.is_empty() {
            outln!("  would remove: {}", safe(&p.removed.join(", ")));
        }
        for path in &p.to_prune {
            outln!("  would delete {}", safe(path));
        }
        if !p.generations_to_prune.is_empty() {
            let list: Vec<String> = p.generations_to_prune.iter().map(|g| g.to_string()).collect();
            outln!("  would delete generation{} {}", if list.len() == 1 { "" } else { "s" }, list.join(", "));
        }
        if !p.waiting.is_empty() {
            outln!("  approved but waiting for files: {}", safe(&p.waiting.join(", ")));
        }
    }
    if !args.json {
        outln!("dry run: nothing was written or deleted");
    }
    Ok(code::OK)
}

pub fn print_published(p: &Published) {
    let state = if p.new_generation { "published as generation" } else { "up to date at generation" };
    outln!(
        "{} {state} {}: {}, {}, {}",
        safe(&p.name),
        p.generation,
        count(p.updates as u64, "update"),
        count(p.files as u64, "file"),
        human_bytes(p.bytes)
    );
    let placed = &p.placed;
    let placed_now = placed.reflinked + placed.copied;
    if placed_now > 0 || placed.replaced > 0 {
        outln!(
            "  files placed: {} reflinked, {} copied ({} replaced what was there); {} there already",
            placed.reflinked,
            placed.copied,
            placed.replaced,
            placed.unchanged
        );
    }
    for repair in &p.repaired {
        outln!("  repaired: {}", safe(repair));
    }
    if !p.added.is_empty() {
        outln!("  added: {}", safe(&p.added.join(", ")));
    }
    if !p.removed.is_empty() {
        outln!("  removed: {}", safe(&p.removed.join(", ")));
    }
    if p.pruned_files > 0 || !p.pruned_generations.is_empty() {
        outln!(
            "  pruned {} and {}",
            count(p.pruned_files as u64, "file"),
            count(p.pruned_generations.len() as u64, "old generation")
        );
    }
    if !p.waiting.is_empty() {
        outln!("  approved but waiting for files: {}", safe(&p.waiting.join(", ")));
    }
}
