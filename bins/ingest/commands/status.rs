//! `ingest approve`, `decline` and `reset`: a person's decision on updates named by id or
//! matched by a filter.

use clap::Args;
use ferry_core::formats::approval::{Actor, Status};
use ferry_core::ingest::list;

use super::select::Selection;
use crate::common::{code, json_line, safe};
use crate::context::Context;

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// Who decides (recorded in the audit log); the login name (else the account name of the process) by default.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// With a filter or --all: change updates whose status a person set too (a filter
    /// skips them otherwise, and says so; an update named by id is always changed).
    #[arg(long)]
    pub override_people: bool,
    /// Say what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object: what changed, what was skipped and why.
    #[arg(long)]
    pub json: bool,
}

/// Says on standard error which typed products name nothing the list holds, and the closest
/// ones it does: `--product "Windws 10"` matching nothing should not pass unnoticed.
pub fn hint_products(data: &ferry_core::server::datadir::DataDir, typed: &[String]) -> anyhow::Result<()> {
    for (product, closest) in list::unknown_products(data, typed)? {
        let hint = if closest.is_empty() {
            "; `ingest list` shows the products".to_string()
        } else {
            format!("; the closest: {}", closest.iter().map(|c| format!("{:?}", c)).collect::<Vec<_>>().join(", "))
        };
        eprintln!("ingest: warning: no update is of product {:?}{}", safe(&product), safe(&hint));
    }
    Ok(())
}

/// approve, decline and reset.
pub fn run(ctx: &Context, args: StatusArgs, to: Status) -> anyhow::Result<u8> {
    let (ids, filter) = match args.selection.resolve() {
        Ok(selected) => selected,
        Err(usage) => return Ok(super::usage_error(usage)),
    };
    let actor = Actor::acting(args.by.as_deref())?;
    let mut data = ctx.write()?;
    let change = list::set_status(&mut data, &ids, &filter, to, &actor, args.override_people, args.dry_run)?;
    hint_products(&data, &filter.products)?;
    if args.json {
        json_line("status-change", &change)?;
        return Ok(code::OK);
    }
    let n = change.changed.len();
    let would = if args.dry_run { "would be " } else { "" };
    outln!("{would}{to}: {n} update{} (by {})", if n == 1 { "" } else { "s" }, safe(actor.as_str()));
    for c in &change.changed {
        outln!("  {}  {} -> {}", safe(&c.id), c.from, c.to);
    }
    if !change.unchanged.is_empty() {
        outln!("already {to}: {}", safe(&change.unchanged.join(", ")));
    }
    for s in &change.skipped {
        outln!("skipped {}: {}", safe(&s.id), safe(&s.reason));
    }
    if !change.handed_back.is_empty() {
        let n = change.handed_back.len();
        outln!(
            "handed back to the rules: {n} decision{} people made ({})",
            if n == 1 { "" } else { "s" },
            safe(&change.handed_back.join(", "))
        );
    }
    Ok(code::OK)
}
