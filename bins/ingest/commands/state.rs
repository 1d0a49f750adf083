//! `ingest state export`: what this server holds, signed, for fetch to build delta bundles.

use clap::Subcommand;

use super::server_key::OutArgs;
use crate::common::code;
use crate::context::Context;

#[derive(Subcommand)]
pub enum StateCommand {
    /// Write what this server holds as FILE, signed by the server key in FILE.minisig.
    Export(OutArgs),
}

pub fn run(ctx: &Context, command: StateCommand) -> anyhow::Result<u8> {
    let StateCommand::Export(args) = command;
    let data = ctx.write()?;
    let state = data.export_state(&args.out)?;
    outln!(
        "state written to {} (signature {})",
        args.out.display(),
        ferry_core::formats::state::signature_path(&args.out).display()
    );
    outln!(
        "  {} updates, {} files held, {} still needed; channels: {}",
        state.updates.len(),
        state.files.len(),
        state.needs.len(),
        state
            .channels
            .iter()
            .map(|(c, p)| format!("{c} at sequence {}", p.highest_sequence.map_or("none".into(), |s| s.to_string())))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(code::OK)
}
