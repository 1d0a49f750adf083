//! `fetch inspect`: what a bundle holds, without trusting it.

use std::path::PathBuf;

use clap::Args;
use ferry_core::bundle::reader::SignedBundle;

use crate::common::{code, human_bytes, json_line, safe};

#[derive(Args)]
pub struct InspectArgs {
    pub bundle: PathBuf,
    /// Print as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn inspect(args: &InspectArgs) -> anyhow::Result<u8> {
    let bundle = SignedBundle::open(&args.bundle)?.parse_unverified()?;
    let m = &bundle.manifest;
    if args.json {
        let signatures: Vec<_> = bundle
            .signatures
            .iter()
            .map(|(entry, s)| serde_json::json!({"entry": entry, "key_id": s.key_id.to_string(), "trusted_comment": s.trusted_comment}))
            .collect();
        json_line(
            "bundle-contents",
            &serde_json::json!({
                "verified": false,
                "path": args.bundle.display().to_string(),
                "manifest_sha256": bundle.manifest_digest,
                "layout": m.layout.digest(),
                "signatures": signatures,
                "manifest": m,
            }),
        )?;
        return Ok(code::OK);
    }
    outln!("UNVERIFIED: nothing below has been checked against trusted keys; use `ingest verify` for that.");
    outln!("bundle {}", args.bundle.display());
    outln!("  id {}  channel {}  sequence {}  kind {}", m.bundle_id, m.channel, m.sequence, m.kind);
    outln!("  created {}  expires {}", m.created, m.expires.map(|t| t.to_string()).unwrap_or_else(|| "never".into()));
    outln!("  volumes {}  layout {}", m.layout.volumes, m.layout.digest());
    outln!("  generator {}", safe(&m.generator));
    outln!("signatures ({}):", bundle.signatures.len());
    for (_, s) in &bundle.signatures {
        outln!("  key {}  trusted comment: {}", s.key_id, safe(&s.trusted_comment));
    }
    outln!("updates ({}):", m.updates.len());
    for u in &m.updates {
        let carried = u.files.iter().filter(|f| m.layout.payloads.iter().any(|p| p.sha256 == f.sha256)).count();
        outln!(
            "  {}  rev {}  {}  {}  {}{}  [{} of {} files carried]",
            safe(u.id.as_str()),
            u.revision,
            u.classification,
            u.severity,
            safe(&u.title),
            if u.withdrawn { "  (WITHDRAWN)" } else { "" },
            carried,
            u.files.len()
        );
    }
    if !m.left_out.is_empty() {
        outln!("left out ({}): selected, but a file could not be had", m.left_out.len());
        for l in &m.left_out {
            outln!("  {}  rev {}  {}", safe(l.id.as_str()), l.revision, safe(&l.reason));
        }
    }
    outln!("payloads ({}):", m.layout.payloads.len());
    for p in &m.layout.payloads {
        outln!("  volume {}  {}  {}", p.volume, p.entry, human_bytes(p.size));
    }
    Ok(code::OK)
}
