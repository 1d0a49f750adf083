//! `ingest verify`: check a bundle completely and change nothing.

use std::path::PathBuf;

use clap::Args;
use ferry_core::formats::trust::Allowed;
use ferry_core::ingest::import::ImportOptions;

use super::import::warn_time;
use crate::common::{code, human_bytes, json_line, safe};
use crate::context::Context;

#[derive(Args)]
pub struct VerifyArgs {
    pub bundle: PathBuf,
    /// Do not refuse a bundle past its expiry (see import --allow-expired).
    #[arg(long)]
    pub allow_expired: bool,
    /// Accept signatures in minisign's legacy form (see import --allow-legacy-signature).
    #[arg(long)]
    pub allow_legacy_signature: bool,
    /// Accept a rotation to the demo key (see import --allow-demo-key).
    #[arg(long)]
    pub allow_demo_key: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: VerifyArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let opts = ImportOptions {
        allow_expired: args.allow_expired,
        allowed: Allowed { legacy_signatures: args.allow_legacy_signature, demo_key: args.allow_demo_key },
    };
    let v = ferry_core::ingest::import::verify(&data, &args.bundle, opts)?;
    warn_time(&v.time);
    if args.json {
        json_line("verified", &v)?;
    } else {
        outln!("verified: {}", safe(&args.bundle.display().to_string()));
        outln!("  {} (bundle {})", v.position(), v.bundle_id);
        outln!("  signed by {}", v.signers.join(", "));
        outln!(
            "  {} updates; {} payloads, {} checked against their SHA-256",
            v.updates,
            v.payloads_verified,
            human_bytes(v.bytes_verified)
        );
    }
    Ok(code::OK)
}
