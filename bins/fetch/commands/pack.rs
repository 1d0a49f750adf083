//! `fetch pack`: select updates from a catalog, download their files and write signed
//! bundle volumes, with progress.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferry_core::fetch::feed::Feed;
use ferry_core::fetch::pack::{PackOptions, PackOutcome, PlanOptions};
use ferry_core::fetch::source::Location;
use ferry_core::fetch::volumes;
use ferry_core::fetch::workdir::WorkDir;
use ferry_core::formats::keys;

use super::key::read_passphrase;
use super::options::{DownloadArgs, ScanArgs, SelectionArgs, WingetArgs};
use crate::common::{code, count, human_bytes, json_line, safe};
use crate::progress;

#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["catalog", "winget", "wsusscn2"]))]
pub struct PackArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub winget: WingetArgs,
    #[command(flatten)]
    pub scan: ScanArgs,
    /// An MSRC security update document (CVRF v3.0, XML or JSON; a path or a URL; repeatable): adds
    /// the CVEs and severities it gives to the scan catalog's updates of its KBs.
    #[arg(long = "msrc", value_name = "DOC", requires = "wsusscn2")]
    pub msrc: Vec<String>,
    /// Carry the scan catalog itself too: ingest keeps it and every distribution point
    /// publishes the newest one, named in its signed index, for the computers' own scans.
    #[arg(long, requires = "wsusscn2")]
    pub carry_scan_catalog: bool,
    /// Secret key to sign with; repeat for several signatures.
    #[arg(long = "key", value_name = "FILE", required = true)]
    pub keys: Vec<PathBuf>,
    /// A rotation directory from `fetch key rotate` to carry in the bundle: ingest applies
    /// it before checking the bundle's own signatures.
    #[arg(long, value_name = "DIR")]
    pub rotation: Option<PathBuf>,
    /// Read the key passphrase from this file instead of FERRY_KEY_PASSWORD or the terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Directory to write the bundle into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Use at least this sequence number.
    #[arg(long, value_name = "N")]
    pub min_sequence: Option<u64>,
    /// Leave out the updates whose files could not be had (a download that failed after its
    /// retries, bytes that are not the ones named) instead of failing the pack. The bundle's
    /// manifest names each and why; the offline side still lacks them, and the next pack
    /// against its state brings them. By default one such file fails the whole pack.
    #[arg(long)]
    pub skip_failed: bool,
    /// The bundle expires this many days after its creation.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub expires_in_days: Option<u32>,
    /// Split the bundle into volumes of at most this size: a medium's name (cd, dvd, dvd-dl,
    /// bd25, bd50, usb-4g, usb-8g, usb-16g, usb-32g, usb-64g) or a number of bytes.
    #[arg(long, value_name = "MEDIUM")]
    pub media: Option<String>,
    /// The largest file the target file system holds: fat32, iso9660, or a number of bytes.
    #[arg(long, value_name = "FS")]
    pub max_file_size: Option<String>,
    #[command(flatten)]
    pub download: DownloadArgs,
    /// JSON Lines on stdout: progress events, then the result as {"event": "bundle", …}.
    #[arg(long)]
    pub json: bool,
}

pub fn pack(work_dir: &Path, args: &PackArgs) -> anyhow::Result<u8> {
    let rotation = args.rotation.as_deref().map(ferry_core::formats::rotation::read_dir).transpose()?;
    let mut signing_keys = Vec::new();
    for path in &args.keys {
        let prompt = format!("Passphrase for {}: ", path.display());
        signing_keys
            .push(keys::read_secret_key(path, || read_passphrase(args.passphrase_file.as_deref(), &prompt, false))?);
    }
    let sel = &args.selection;
    let catalog = sel.catalog.as_deref().map(Location::parse).transpose()?;
    let winget_selection = args.winget.selection();
    let scan_roots = match &args.scan.wsusscn2 {
        Some(_) => ferry_core::fetch::wsusscn2::roots(&args.scan.roots)?,
        None => Vec::new(),
    };
    let download = args.download.options()?;
    let scan = args.scan.source(|| Ok(work_dir.to_path_buf()), &sel.net, &download)?;
    let scan_selection = sel.selection();
    let security = super::plan::read_msrc(&args.msrc, sel)?;
    let feed = match (&catalog, &args.winget.winget, scan.as_ref().map(|s| s.path.as_path())) {
        (Some(location), _, _) => Feed::Catalog(location),
        (None, Some(tree), _) => Feed::Winget { tree, selection: &winget_selection },
        (None, None, Some(cab)) => Feed::Wsusscn2 {
            cab,
            roots: &scan_roots,
            security: security.as_ref(),
            selection: &scan_selection,
            include_superseded: args.scan.superseded == "include",
            carry: args.carry_scan_catalog,
        },
        (None, None, None) => {
            return Err(ferry_core::Error::Invalid("give --catalog, --winget or --wsusscn2".into()).into());
        }
    };
    // The scan catalog's feed selects itself (supersedence depends on what is selected).
    let selection =
        if args.scan.wsusscn2.is_some() { ferry_core::formats::catalog::Selection::default() } else { sel.selection() };
    let state = sel.state()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let options = PackOptions {
        feed,
        plan: PlanOptions {
            selection: &selection,
            channel: &sel.channel,
            state: state.as_ref(),
            metadata_only: sel.metadata_only,
            allow_empty: args.carry_scan_catalog,
            needed_only: sel.needed,
        },
        keys: &signing_keys,
        out_dir: args.out.clone(),
        min_sequence: args.min_sequence,
        valid_for: args.expires_in_days.map(|d| Duration::from_secs(u64::from(d) * 86_400)),
        volume_capacity: volumes::requested_capacity(args.media.as_deref(), args.max_file_size.as_deref())?,
        download,
        rotation: rotation.as_ref(),
        skip_failed: args.skip_failed,
    };
    let mut work = WorkDir::open(work_dir)?;
    let sources = sel.net.sources()?;
    let reporter = progress::Reporter::new(args.json);
    let outcome = ferry_core::fetch::pack::pack(&mut work, &sources, &options, &|event| reporter.event(event))
        .map_err(anyhow::Error::from);
    let outcome = match &scan {
        Some(scan) => scan.checked(outcome)?,
        None => outcome?,
    };
    let result = match outcome {
        PackOutcome::NothingNew { up_to_date } => {
            if args.json {
                json_line("nothing-new", &serde_json::json!({"up_to_date": up_to_date}))?;
            } else {
                outln!(
                    "nothing new for the offline side: {up_to_date} selected updates are up to date; no bundle written"
                );
            }
            return Ok(code::OK);
        }
        PackOutcome::Written(result) => result,
    };
    if args.json {
        json_line("bundle", &result)?;
    } else {
        if result.volumes.len() == 1 {
            outln!("bundle written: {}", result.path.display());
        } else {
            outln!("bundle written in {} volumes:", result.volumes.len());
            for v in &result.volumes {
                outln!("  {} ({})", v.path.display(), human_bytes(v.size));
            }
        }
        outln!(
            "  channel {} sequence {} ({} bundle {})",
            result.channel,
            result.sequence,
            result.kind,
            result.bundle_id
        );
        outln!(
            "  {}, {}, {}{}",
            count(result.updates as u64, "update"),
            count(result.payloads as u64, "payload"),
            human_bytes(result.payload_bytes),
            if result.relies_on > 0 {
                format!("; relies on {} the offline side holds", count(result.relies_on as u64, "file"))
            } else {
                String::new()
            }
        );
        if result.needed_by_computers > 0 {
            outln!("  {} of them needed by computers on the offline side", result.needed_by_computers);
        }
        outln!("  signed by {}", result.signers.join(", "));
        if !result.left_out.is_empty() {
            let n = result.left_out.len();
            outln!(
                "  left out {n} update{} whose files could not be had (named in the manifest; the next pack brings {}):",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" }
            );
            for l in &result.left_out {
                outln!("    {} revision {}: {}", safe(l.id.as_str()), l.revision, safe(&l.reason));
            }
        }
    }
    Ok(code::OK)
}
