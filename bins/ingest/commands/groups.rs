//! `ingest group`: update groups.

use clap::{Args, Subcommand};
use ferry_core::base::names::GroupName;
use ferry_core::server::registry::Membership;

use super::list::print_table;
use super::select::Selection;
use super::usage_error;
use crate::common::{code, json_line, safe};
use crate::context::Context;
use ferry_core::formats::approval::Actor;
use ferry_core::ingest::groups;

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create an empty group.
    Create(CreateArgs),
    /// Delete a group; its updates stay in the list.
    Delete(NameArgs),
    /// Add updates (by id, by filter, or --all) to a group.
    Add(MembersArgs),
    /// Remove updates (by id, by filter, or --all) from a group.
    Remove(MembersArgs),
    /// Every group with its number of members, approved and available.
    List(ListArgs),
    /// A group and its members.
    Show(ShowArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    name: GroupName,
    /// What the group is for, shown by `group list`.
    #[arg(long, default_value = "")]
    description: String,
    /// Who acts (recorded in the audit log); the login name (else the account name of the process) by default.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct NameArgs {
    name: GroupName,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct MembersArgs {
    group: GroupName,
    #[command(flatten)]
    selection: Selection,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// One JSON object: what changed.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// One JSON object per group.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    name: GroupName,
    /// The group as one JSON object, then one per member.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, command: GroupCommand) -> anyhow::Result<u8> {
    match command {
        GroupCommand::Create(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write()?;
            let group = groups::create(&mut data, &args.name, &args.description, &actor)?;
            outln!("update group {} created", safe(&group.name));
        }
        GroupCommand::Delete(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write()?;
            let group = groups::delete(&mut data, &args.name, &actor)?;
            outln!(
                "update group {} deleted ({} members; the updates stay in the list)",
                safe(&group.name),
                group.members
            );
        }
        GroupCommand::Add(args) => return members(ctx, args, true),
        GroupCommand::Remove(args) => return members(ctx, args, false),
        GroupCommand::List(args) => {
            let data = ctx.read()?;
            let groups = groups::all(&data)?;
            if args.json {
                for g in &groups {
                    json_line("group", g)?;
                }
            } else if groups.is_empty() {
                outln!("no update groups (create one with `ingest group create NAME`)");
            } else {
                outln!("{:<24} {:>7} {:>8} {:>9}  DESCRIPTION", "GROUP", "MEMBERS", "APPROVED", "AVAILABLE");
                for g in &groups {
                    outln!(
                        "{:<24} {:>7} {:>8} {:>9}  {}",
                        safe(&g.name),
                        g.members,
                        g.approved,
                        g.available,
                        safe(&g.description)
                    );
                }
            }
        }
        GroupCommand::Show(args) => {
            let data = ctx.read()?;
            let (group, members) = groups::show(&data, &args.name)?;
            if args.json {
                json_line("group", &group)?;
                for m in &members {
                    json_line("update", m)?;
                }
            } else {
                outln!("{}  {}", safe(&group.name), safe(&group.description));
                outln!("  created by {} at {}", safe(&group.created_by), group.created_at);
                outln!("  {} members, {} approved, {} available", group.members, group.approved, group.available);
                outln!();
                print_table(&members);
            }
        }
    }
    Ok(code::OK)
}

fn members(ctx: &Context, args: MembersArgs, add: bool) -> anyhow::Result<u8> {
    let (ids, filter) = match args.selection.resolve() {
        Ok(selected) => selected,
        Err(usage) => return Ok(usage_error(usage)),
    };
    let actor = Actor::acting(args.by.as_deref())?;
    let mut data = ctx.write()?;
    let change: Membership = if add {
        groups::add(&mut data, &args.group, &ids, &filter, &actor)?
    } else {
        groups::remove(&mut data, &args.group, &ids, &filter, &actor)?
    };
    if args.json {
        json_line("membership", &change)?;
        return Ok(code::OK);
    }
    let (done, already) = if add { ("added to", "already in") } else { ("removed from", "not in") };
    let n = change.changed.len();
    outln!("{n} update{} {done} {}", if n == 1 { "" } else { "s" }, safe(&change.group));
    for id in &change.changed {
        outln!("  {}", safe(id));
    }
    if !change.unchanged.is_empty() {
        outln!("{already} {}: {}", safe(&change.group), safe(&change.unchanged.join(", ")));
    }
    Ok(code::OK)
}
