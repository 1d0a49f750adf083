//! `ingest verify`: check a bundle completely and change nothing.

use std::path::PathBuf;

use super::import::{AllowArgs, warn_time};
use crate::PROGRAM;
use crate::common::progress::View;
use crate::common::{code, count, human_bytes, json_line, safe};
use crate::context::Context;
use clap::Args;

#[derive(Args)]
pub struct VerifyArgs {
    pub bundle: PathBuf,
    #[command(flatten)]
    pub allow: AllowArgs,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: VerifyArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let view = View::new(PROGRAM, args.json);
    let v = ferry_core::ingest::import::verify(&data, &args.bundle, args.allow.options(), &view)?;
    warn_time(&v.time);
    if args.json {
        json_line("verified", &v)?;
    } else {
        outln!("verified: {}", safe(&args.bundle.display().to_string()));
        outln!("  {} (bundle {})", v.position(), v.bundle_id);
        outln!("  signed by {}", v.signers.join(", "));
        outln!(
            "  {}; {}, {} checked against their SHA-256",
            count(v.updates as u64, "update"),
            count(v.payloads_verified as u64, "payload"),
            human_bytes(v.bytes_verified)
        );
    }
    Ok(code::OK)
}
