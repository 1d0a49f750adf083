//! `ingest audit`: the hash-chained log of every change, proved intact or listed.

use clap::{Args, Subcommand};
use ferry_core::ingest::audit;

use crate::common::{code, json_line, safe};
use crate::context::Context;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Prove the audit log's hash chain intact; prints the number of entries and the head hash.
    Verify(AuditVerifyArgs),
    /// Print the audit log, oldest first.
    List(JsonArgs),
}

#[derive(Args)]
pub struct AuditVerifyArgs {
    /// A head hash recorded earlier (in a receipt or on paper): the log must still hold that
    /// entry, which proves no later entry was cut off the end.
    #[arg(long, value_name = "HASH")]
    pub head: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct JsonArgs {
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, command: AuditCommand) -> anyhow::Result<u8> {
    match command {
        AuditCommand::Verify(args) => verify(ctx, args),
        AuditCommand::List(args) => list(ctx, args),
    }
}

fn verify(ctx: &Context, args: AuditVerifyArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let report = audit::verify(&data, args.head.as_deref())?;
    if args.json {
        json_line("audit-verified", &report)?;
    } else {
        outln!("audit log intact: {} entries", report.entries);
        if let Some(head) = &report.head {
            outln!("  head {head}");
        }
    }
    Ok(code::OK)
}

fn list(ctx: &Context, args: JsonArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    audit::entries(&data, |entry| {
        if args.json {
            json_line("audit-entry", &entry).map_err(|e| ferry_core::Error::Internal(e.to_string()))
        } else {
            outln!(
                "{:>6}  {}  {:<18} {}  {}",
                entry.seq,
                entry.at,
                entry.event,
                safe(&entry.subject),
                safe(&entry.detail.to_string())
            );
            Ok(())
        }
    })?;
    Ok(code::OK)
}
