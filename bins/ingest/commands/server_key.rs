//! `ingest server-key export`: the management server's public key, for fetch and branch
//! offices.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::common::code;
use crate::context::Context;

#[derive(Subcommand)]
pub enum ServerKeyCommand {
    /// Write the server's public key (minisign format), for fetch and for branch offices.
    Export(OutArgs),
}

#[derive(Args)]
pub struct OutArgs {
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(ctx: &Context, command: ServerKeyCommand) -> anyhow::Result<u8> {
    let ServerKeyCommand::Export(args) = command;
    let data = ctx.write()?;
    let key = data.export_server_key(&args.out)?;
    outln!("server key {} written to {}", key.key_id, args.out.display());
    Ok(code::OK)
}
