//! `fetch plan`: what a pack would carry and its size, downloading nothing.

use clap::Args;
use ferry_core::fetch::pack::{PlanOptions, Reason};
use ferry_core::fetch::source::Location;

use super::options::{ScanArgs, SelectionArgs, WingetArgs};
use crate::common;
use crate::common::{code, human_bytes, json_line, safe};
use ferry_core::fetch::download::DownloadOptions;

#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true).multiple(true).args(["catalog", "winget", "msrc", "wsusscn2"]))]
pub struct PlanArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    #[command(flatten)]
    pub winget: WingetArgs,
    /// An MSRC security update document (CVRF v3.0, XML or JSON; a path or a URL; repeatable): per
    /// KB, the CVEs it fixes, the highest severity per product, what it supersedes. With
    /// --wsusscn2, it adds CVEs and severities to the updates of its KBs.
    #[arg(long = "msrc", value_name = "DOC", conflicts_with_all = ["catalog", "winget"])]
    pub msrc: Vec<String>,
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Show how the bundle would spread over volumes of this medium (cd, dvd, dvd-dl, bd25,
    /// bd50, usb-4g, … or a number of bytes), as `fetch pack --media` would write them.
    #[arg(long, value_name = "MEDIUM")]
    pub media: Option<String>,
    /// The largest file the target file system holds: fat32, iso9660, or a number of bytes.
    #[arg(long, value_name = "FS")]
    pub max_file_size: Option<String>,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The most bytes one volume may have: the medium's capacity and the file system's largest file.
pub fn plan(work_dir: Option<std::path::PathBuf>, args: &PlanArgs) -> anyhow::Result<u8> {
    let other_feed = args.winget.winget.is_some() || args.scan.wsusscn2.is_some() || !args.msrc.is_empty();
    if other_feed && args.selection.state.is_some() {
        // These plans list what the feed offers; the delta against a state file, and
        // --needed, are `fetch pack`'s with them (and `fetch plan --catalog`'s).
        return Err(ferry_core::Error::Invalid(
            "--state (and --needed) plan against a catalog: with --winget, --wsusscn2 or --msrc, `fetch pack` \
             takes them"
                .into(),
        )
        .into());
    }
    if let Some(tree) = &args.winget.winget {
        return plan_winget(tree, &args.winget, args.json);
    }
    let work = || common::location(work_dir.clone(), "fetch", "--work-dir", "FERRY_WORK_DIR").map(|l| l.dir);
    if let Some(scan) = args.scan.source(work, &args.selection.net, &DownloadOptions::default())? {
        return scan.checked(plan_scan(&scan.path, args));
    }
    if !args.msrc.is_empty() {
        return plan_msrc(args);
    }
    let sel = &args.selection;
    let catalog = Location::parse(sel.catalog.as_deref().unwrap_or_default())?;
    let selection = sel.selection();
    let state = sel.state()?;
    let options = PlanOptions {
        selection: &selection,
        channel: &sel.channel,
        state: state.as_ref(),
        metadata_only: sel.metadata_only,
        allow_empty: false,
        needed_only: sel.needed,
    };
    let offered = ferry_core::fetch::feed::load_catalog(&sel.net.sources()?, &catalog)?;
    let plan = ferry_core::fetch::pack::plan(&offered, &catalog, &options)?;
    let capacity =
        ferry_core::fetch::volumes::requested_capacity(args.media.as_deref(), args.max_file_size.as_deref())?;
    let volumes = match capacity {
        Some(_) => Some(ferry_core::fetch::pack::volume_sizes(&plan, &sel.channel, capacity, 1)?),
        None => None,
    };
    if args.json {
        json_line(
            "plan",
            &serde_json::json!({
                "kind": plan.kind,
                "updates": plan.entries,
                "files": plan.jobs.len(),
                "payload_bytes": plan.payload_bytes(),
                "relies_on": plan.relies_on,
                "up_to_date": plan.up_to_date,
                "min_sequence": plan.min_sequence,
                "needs_not_offered": plan.needs_not_offered,
                "volumes": volumes,
            }),
        )?;
        return Ok(code::OK);
    }
    outln!("{} bundle for channel {}", plan.kind, sel.channel);
    let mut table = common::Table::new(&["WHY", "ID", "REV", "CARRIES"]);
    for e in &plan.entries {
        let why = format!("{:?}", e.reason).to_lowercase();
        table.row(vec![
            match e.needed_by_computers {
                Some(n) if e.reason == Reason::Needed => format!("needed by {}", common::count(n, "computer")),
                Some(n) => format!("{why}, needed by {}", common::count(n, "computer")),
                None => why,
            },
            e.id.to_string(),
            e.revision.to_string(),
            human_bytes(e.carried_bytes),
        ]);
    }
    table.print();
    if plan.up_to_date > 0 {
        outln!("  ({} selected updates are up to date on the offline side)", plan.up_to_date);
    }
    outln!(
        "{}, {} to download and carry, {}{}",
        common::count(plan.entries.len() as u64, "update"),
        common::count(plan.jobs.len() as u64, "file"),
        human_bytes(plan.payload_bytes()),
        if plan.relies_on.is_empty() {
            String::new()
        } else {
            format!("; relies on {} held files", plan.relies_on.len())
        }
    );
    if !plan.needs_not_offered.is_empty() {
        outln!("computers on the offline side need {} this catalog does not offer:", plan.needs_not_offered.len());
        for n in &plan.needs_not_offered {
            outln!(
                "  {}{} (needed by {})",
                n.id,
                n.kb.as_deref().map(|kb| format!(" {}", safe(kb))).unwrap_or_default(),
                common::count(n.computers, "computer")
            );
        }
    }
    if let (Some(sizes), Some(capacity)) = (&volumes, capacity) {
        outln!(
            "{} volume{} of at most {} (signed by one key):",
            sizes.len(),
            if sizes.len() == 1 { "" } else { "s" },
            human_bytes(capacity)
        );
        for (i, size) in sizes.iter().enumerate() {
            outln!("  volume {}: {} of files", i + 1, human_bytes(*size));
        }
    }
    Ok(code::OK)
}

/// `fetch plan --winget DIR`: the package versions selected, each with the installer chosen
/// per architecture and its digest, and what was left out and why.
fn plan_winget(tree: &std::path::Path, args: &WingetArgs, json: bool) -> anyhow::Result<u8> {
    let plan = ferry_core::fetch::winget::plan(tree, &args.selection())?;
    if json {
        for v in &plan.versions {
            json_line("plan-update", v)?;
        }
        for s in &plan.skipped {
            json_line("plan-skipped", s)?;
        }
        return Ok(code::OK);
    }
    for v in &plan.versions {
        outln!("{}  {}", safe(&v.id), safe(v.name.as_deref().unwrap_or("")));
        for f in &v.files {
            outln!(
                "  {:<6} {:<9} {:<8} {}  sha256 {} (from the manifest; size unknown until downloaded)",
                safe(&f.architecture),
                safe(f.installer_type.as_deref().unwrap_or("")),
                safe(f.scope.as_deref().unwrap_or("")),
                safe(&f.url),
                f.sha256
            );
        }
    }
    for s in &plan.skipped {
        outln!("skipped {}@{}: {}", safe(&s.id), safe(&s.version), safe(&s.reason));
    }
    let files: usize = plan.versions.iter().map(|v| v.files.len()).sum();
    outln!(
        "{}, {}",
        common::count(plan.versions.len() as u64, "package version"),
        common::count(files as u64, "installer")
    );
    Ok(code::OK)
}

/// The MSRC documents at `docs`, read, when there are any.
pub fn read_msrc(
    docs: &[String],
    selection: &SelectionArgs,
) -> anyhow::Result<Option<ferry_core::fetch::msrc::Security>> {
    if docs.is_empty() {
        return Ok(None);
    }
    let locations = docs.iter().map(|d| Location::parse(d)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ferry_core::fetch::msrc::read(&selection.net.sources()?, &locations)?))
}

/// `fetch plan --msrc DOC…`: every KB the documents name, with its CVEs, highest severity,
/// the products it is rated for and what it supersedes; vendor fixes that name no KB are
/// counted by kind.
fn plan_msrc(args: &PlanArgs) -> anyhow::Result<u8> {
    let locations = args.msrc.iter().map(|d| Location::parse(d)).collect::<Result<Vec<_>, _>>()?;
    let security = ferry_core::fetch::msrc::read(&args.selection.net.sources()?, &locations)?;
    if args.json {
        for (number, kb) in &security.kbs {
            json_line("msrc-kb", &serde_json::json!({"kb": format!("KB{number}"), "security": kb}))?;
        }
        json_line(
            "msrc-skipped",
            &serde_json::json!({"documents": security.documents, "without_kb": security.skipped}),
        )?;
        return Ok(code::OK);
    }
    for (number, kb) in &security.kbs {
        let highest = kb.severity.values().min().map_or("unrated", |s| s.as_str());
        outln!(
            "KB{number}  {highest:<9} {} CVEs, {} products{}",
            kb.cves.len(),
            kb.severity.len(),
            if kb.supersedes.is_empty() {
                String::new()
            } else {
                format!(
                    "; supersedes {}",
                    kb.supersedes.iter().map(|s| format!("KB{s}")).collect::<Vec<_>>().join(", ")
                )
            }
        );
    }
    let skipped: Vec<String> = security.skipped.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    outln!(
        "{} KBs in {}; vendor fixes without a KB: {}",
        security.kbs.len(),
        security.documents.join(", "),
        if skipped.is_empty() { "none".to_string() } else { safe(&skipped.join(", ")).into_owned() }
    );
    Ok(code::OK)
}

/// `fetch plan --wsusscn2 FILE`: the signature checked, then every Microsoft update the
/// selection picks with its files (by the SHA-1 the catalog gives) and what it supersedes,
/// and what was left out and why.
fn plan_scan(cab: &std::path::Path, args: &PlanArgs) -> anyhow::Result<u8> {
    let roots = ferry_core::fetch::wsusscn2::roots(&args.scan.roots)?;
    let security = read_msrc(&args.msrc, &args.selection)?;
    let include = args.scan.superseded == "include";
    let scan =
        ferry_core::fetch::wsusscn2::choose(cab, &roots, security.as_ref(), &args.selection.selection(), include)?;
    let (updates, skipped) = (scan.updates, scan.skipped);
    if args.json {
        json_line(
            "scan-catalog",
            &serde_json::json!({
                "signer": scan.signer.subject, "root": scan.signer.root, "digest": scan.signer.digest,
                "package_version": scan.package_version, "created": scan.created,
            }),
        )?;
        for u in &updates {
            json_line("scan-update", u)?;
        }
        for s in &skipped {
            json_line("scan-skipped", s)?;
        }
        return Ok(code::OK);
    }
    outln!(
        "{}: signed by {} (chain to {}), catalog version {}",
        cab.display(),
        safe(&scan.signer.subject),
        safe(&scan.signer.root),
        safe(scan.package_version.as_deref().unwrap_or("unknown"))
    );
    for u in &updates {
        outln!(
            "{}  rev {}  {}  {}  {}  {}",
            u.id,
            u.revision,
            safe(u.kb.as_deref().unwrap_or("-")),
            u.classification,
            u.severity,
            safe(&u.title)
        );
        for f in &u.files {
            outln!("  {}  sha1 {} (from the catalog; SHA-256 computed when downloaded)", safe(&f.url), f.sha1);
        }
        if !u.supersedes.is_empty() {
            let ids: Vec<String> = u.supersedes.iter().map(|s| s.to_string()).collect();
            outln!("  supersedes {}", ids.join(", "));
        }
    }
    for s in &skipped {
        outln!("skipped {} {}: {}", s.id, safe(s.title.as_deref().unwrap_or("")), safe(&s.reason));
    }
    outln!("{} selected, {} left out", common::count(updates.len() as u64, "update"), skipped.len());
    Ok(code::OK)
}
