//! `ingest list` and `ingest show`: the update list, and one update in full.

use clap::Args;
use ferry_core::base::names::UpdateId;
use ferry_core::formats::model::DigestSource;
use ferry_core::ingest::list;
use ferry_core::server::registry::UpdateSummary;

use super::select::FilterArgs;
use crate::common::{code, count, human_bytes, json_line, safe};
use crate::context::Context;

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only updates whose files are all in the store.
    #[arg(long, conflicts_with = "unavailable")]
    pub available: bool,
    /// Only updates still missing files.
    #[arg(long)]
    pub unavailable: bool,
    /// JSON Lines: one object per update.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    pub id: UpdateId,
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: ListArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let available = if args.available {
        Some(true)
    } else if args.unavailable {
        Some(false)
    } else {
        None
    };
    let filter = args.filter.into_filter(available);
    let rows = list::list(&data, &filter)?;
    if rows.is_empty() {
        super::status::hint_products(&data, &filter.products)?;
    }
    if args.json {
        for row in &rows {
            json_line("update", row)?;
        }
    } else {
        print_table(&rows);
    }
    Ok(code::OK)
}

pub fn show(ctx: &Context, args: ShowArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let d = list::show(&data, &args.id)?;
    if args.json {
        json_line("update-detail", &d)?;
        return Ok(code::OK);
    }
    let s = &d.summary;
    let m = &d.metadata;
    outln!("{}  revision {}", safe(s.update.id.as_str()), s.update.revision);
    outln!("  title          {}", safe(&s.update.title));
    outln!("  vendor         {}", safe(&s.update.vendor));
    outln!("  product        {} {}", safe(&s.update.product), safe(&s.update.version));
    outln!("  classification {}  severity {}", s.update.classification, s.update.severity);
    if let Some(kb) = &s.update.kb {
        outln!("  kb             {}", safe(kb));
    }
    if !m.cves.is_empty() {
        outln!("  cves           {}", safe(&m.cves.join(", ")));
    }
    outln!("  released       {}", s.update.release_date.map_or("unknown".to_string(), |d| d.to_string()));
    outln!("  status         {} (set by {} at {})", s.status, s.status_set_by, s.status_set_at);
    if let Some(actor) = &d.status_actor {
        outln!("                 {}", safe(actor));
    }
    outln!(
        "  available      {}{}",
        if s.available { "yes" } else { "no" },
        if s.withdrawn { " (withdrawn)" } else { "" }
    );
    outln!("  origin         {} ({})", s.origin, safe(&d.origin_detail));
    if !m.supersedes.is_empty() {
        let ids: Vec<&str> = m.supersedes.iter().map(|i| i.as_str()).collect();
        outln!("  supersedes     {}", safe(&ids.join(", ")));
    }
    if let Some(since) = &d.superseded_since {
        outln!("  superseded     since {since}, by an update present on this server");
    }
    for link in &d.supersedence_chain {
        let state = match (link.known, link.present) {
            (_, true) => "present",
            (true, false) => "not present",
            (false, _) => "not in the list",
        };
        outln!("  superseded by  {} <- {} ({state})", safe(&link.id), safe(&link.by));
    }
    if let Some(eula) = &m.eula {
        outln!("  eula           acceptance {}", if eula.acceptance_required { "required" } else { "not required" });
    }
    if let Some(install) = &m.install {
        outln!("  install        {} {}", safe(&install.command), safe(&install.arguments.join(" ")));
        outln!(
            "  exit codes     success {:?}  reboot {:?}  failure {:?} (any other code fails)",
            install.exit_codes.success,
            install.exit_codes.reboot,
            install.exit_codes.failure
        );
    }
    if m.files.is_empty() {
        outln!("  files          none{}", if d.summary.withdrawn { " (withdrawn by its vendor)" } else { "" });
    } else {
        outln!("  files");
    }
    for f in &m.files {
        let present = !d.missing_files.contains(&f.sha256.hex());
        let from = match (f.sha256_from, f.sha1) {
            (DigestSource::Fetch, Some(sha1)) => {
                format!(" (computed by fetch; the vendor names it by SHA-1 {sha1} only)")
            }
            (DigestSource::Registered, _) => " (computed when registered by hand)".to_string(),
            _ => String::new(),
        };
        outln!(
            "    {}  {}  {}  {}{from}",
            if present { "present" } else { "MISSING" },
            safe(f.name.as_str()),
            human_bytes(f.size),
            f.sha256
        );
    }
    Ok(code::OK)
}

pub fn print_table(rows: &[UpdateSummary]) {
    if rows.is_empty() {
        outln!("no updates");
        return;
    }
    let mut table = crate::common::Table::new(&["STATUS", "AVAIL", "SEVERITY", "ID", "PRODUCT", "VERSION", "TITLE"]);
    for r in rows {
        let mark = match (r.withdrawn, r.superseded) {
            (true, _) => " (withdrawn)",
            (false, true) => " (superseded)",
            (false, false) => "",
        };
        table.row(vec![
            r.status.to_string(),
            if r.available { "yes" } else { "no" }.to_string(),
            r.update.severity.to_string(),
            r.update.id.to_string(),
            r.update.product.clone(),
            r.update.version.clone(),
            format!("{}{mark}", r.update.title),
        ]);
    }
    table.print();
    outln!("{}", count(rows.len() as u64, "update"));
}
