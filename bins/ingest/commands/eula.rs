//! `ingest eula`: licences that must be accepted before an update can be approved.

use clap::{Args, Subcommand};
use ferry_core::base::names::UpdateId;
use ferry_core::formats::approval::Actor;
use ferry_core::ingest::list;

use super::list::ShowArgs;
use crate::common::{code, json_line, safe};
use crate::context::Context;

#[derive(Subcommand)]
pub enum EulaCommand {
    /// Show an update's licence and whether it was accepted.
    Show(ShowArgs),
    /// Accept an update's licence, in the wording it has now (recorded with your name).
    Accept(EulaAcceptArgs),
}

#[derive(Args)]
pub struct EulaAcceptArgs {
    pub id: UpdateId,
    /// Who accepts (recorded in the audit log); the login name (else the account name of the process) by default.
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

pub fn run(ctx: &Context, command: EulaCommand) -> anyhow::Result<u8> {
    match command {
        EulaCommand::Show(args) => show(ctx, args),
        EulaCommand::Accept(args) => accept(ctx, args),
    }
}

fn show(ctx: &Context, args: ShowArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let view = list::eula(&data, &args.id)?;
    if args.json {
        json_line("eula", &view)?;
        return Ok(code::OK);
    }
    outln!("{}  {}", safe(&view.id), safe(&view.title));
    let required = if view.eula.acceptance_required { "must be accepted before approval" } else { "for information" };
    outln!("  licence        {required}");
    if let Some(reference) = &view.eula.reference {
        outln!("  reference      {}", safe(reference));
    }
    match &view.accepted {
        Some(a) => outln!("  accepted       by {} at {}", safe(&a.by), a.at),
        None => outln!("  accepted       no"),
    }
    match (&view.eula.text, &view.eula.reference) {
        (Some(text), _) => {
            outln!();
            for line in text.lines() {
                outln!("  {}", safe(line));
            }
        }
        (None, Some(reference)) => {
            outln!();
            outln!("  The vendor's metadata gives no licence text: read it at {} before accepting.", safe(reference));
        }
        (None, None) => {}
    }
    if view.eula.acceptance_required && view.accepted.is_none() {
        outln!();
        outln!(
            "  Accepting (`ingest eula accept {}`) records your name, the time and this wording's digest",
            safe(&view.id)
        );
        outln!("  ({}) in the audit log, and lets the update be approved.", view.sha256);
        outln!("  A later revision that changes the wording must be accepted again.");
    }
    Ok(code::OK)
}

fn accept(ctx: &Context, args: EulaAcceptArgs) -> anyhow::Result<u8> {
    let actor = Actor::acting(args.by.as_deref())?;
    let mut data = ctx.write()?;
    let view = list::accept_eula(&mut data, &args.id, &actor)?;
    let a = view.accepted.as_ref().expect("recorded just now");
    outln!("licence of {} accepted by {} at {}", safe(&view.id), safe(&a.by), a.at);
    Ok(code::OK)
}
