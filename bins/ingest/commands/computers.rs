//! `ingest computers`: inventories, computer groups and their policies, the judgment and
//! its reports.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use ferry_core::base::names::{ComputerGroupName, ComputerName, DpName, GroupName};
use ferry_core::formats::approval::Actor;
use ferry_core::formats::compliance::{GraceFrom, Level, Verdict};
use ferry_core::ingest::computers;
use ferry_core::server::registry::{ComputerGroup, GroupSettings, JudgmentRun};

use crate::common::{code, count, exit_code, json_line, safe};
use crate::context::Context;

#[derive(Subcommand)]
pub enum ComputersCommand {
    /// Read inventories (files, or directories of them): ferry's computer report,
    /// `Get-HotFix | Export-Csv`, `winget export --include-versions`. A newer report of a
    /// computer replaces the older one; each refused file is named, the rest still imports.
    Import(ImportArgs),
    /// Every computer: its group, last report, violation level and counts.
    List(ListArgs),
    /// One computer: where its facts came from, its policy, and every update of it with the
    /// verdict and its reason.
    Show(ShowArgs),
    /// Forget a computer and everything it reported.
    Remove(RemoveArgs),
    /// Judge every computer against its group's policy now (imports and group changes do
    /// this themselves; run it after approvals, or daily for grace periods).
    Judge(JsonArgs),
    /// Put computers into a computer group (--none: into no group).
    Assign(AssignArgs),
    /// Computer groups and their policies (`ingest group` is the update groups).
    #[command(subcommand)]
    Group(GroupCommand),
    /// The reports: Windows Update status per update, security status per computer, the
    /// computers an update is not applied on, the violation levels per policy, and the
    /// installation results.
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// Inventory files, or directories holding them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The computer, for a format that names none (winget export); must agree with one that does.
    #[arg(long, value_name = "NAME")]
    computer: Option<ComputerName>,
    /// Who acts (recorded in the audit log).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// One JSON line per inventory and per refusal.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only the computers of this group.
    #[arg(long, value_name = "GROUP")]
    group: Option<ComputerGroupName>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    name: ComputerName,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RemoveArgs {
    name: ComputerName,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct JsonArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AssignArgs {
    /// The computer group.
    #[arg(required_unless_present = "none")]
    group: Option<ComputerGroupName>,
    /// The computers.
    #[arg(long = "computer", value_name = "NAME", required = true)]
    computers: Vec<ComputerName>,
    /// Take the computers out of their group instead.
    #[arg(long, conflicts_with = "group")]
    none: bool,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a computer group with its policy.
    Add(GroupArgs),
    /// Change a group's policy or settings.
    Set(GroupArgs),
    /// Delete a group; its computers stay, in no group.
    Delete(GroupNameArgs),
    /// Every computer group with its policy.
    List(JsonArgs),
}

#[derive(Args)]
pub struct GroupArgs {
    name: ComputerGroupName,
    #[arg(long)]
    description: Option<String>,
    /// A test group: its computers receive updates first, from its (pilot) point.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    test: Option<bool>,
    /// The policy covers the approved updates of this update group.
    #[arg(long, value_name = "GROUP", conflicts_with = "all_approved")]
    update_group: Option<GroupName>,
    /// The policy covers every approved update (the default).
    #[arg(long)]
    all_approved: bool,
    /// Days after approval (or release) before a missing update counts against a computer.
    #[arg(long, value_name = "DAYS")]
    grace_days: Option<u32>,
    /// From when the grace period counts.
    #[arg(long, value_parser = grace_from_parser(), value_name = "FROM")]
    grace_from: Option<GraceFrom>,
    /// The distribution point its computers install from.
    #[arg(long, value_name = "POINT")]
    point: Option<DpName>,
    /// From this level on, a group getting worse is notified.
    #[arg(long, value_parser = level_parser(), value_name = "LEVEL")]
    notify_level: Option<Level>,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

/// Parses `--grace-from`, and lists its values in `--help`.
fn grace_from_parser() -> impl clap::builder::TypedValueParser<Value = GraceFrom> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(GraceFrom::ALL.iter().map(|g| g.as_str()))
        .map(|s| s.parse::<GraceFrom>().expect("one of the values listed"))
}

/// Parses `--notify-level` (every level a group can get worse to), and lists them in `--help`.
fn level_parser() -> impl clap::builder::TypedValueParser<Value = Level> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Level::ALL.iter().filter(|l| **l != Level::Compliant).map(|l| l.as_str()))
        .map(|s| s.parse::<Level>().expect("one of the values listed"))
}

#[derive(Args)]
pub struct GroupNameArgs {
    name: ComputerGroupName,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Which report.
    #[arg(long, value_enum, default_value = "all")]
    kind: ReportKind,
    /// The update whose computers `--kind not-applied` lists (all updates by default).
    #[arg(long, value_name = "ID")]
    update: Option<String>,
    /// text, json or html (a self-contained page with pictures).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write to this file (whole or not at all; never inside the data directory) instead of
    /// standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportKind {
    All,
    Updates,
    Computers,
    NotApplied,
    Policies,
    /// Installation results: per update by outcome, and the failures.
    Results,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

pub fn run(ctx: &Context, command: ComputersCommand) -> anyhow::Result<u8> {
    match command {
        ComputersCommand::Import(args) => import(ctx, args),
        ComputersCommand::List(args) => list(ctx, args),
        ComputersCommand::Show(args) => show(ctx, args),
        ComputersCommand::Remove(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write_configured()?;
            let (name, run) = computers::remove(&mut data, &args.name, &actor)?;
            outln!("computer {} removed with everything it reported", safe(&name));
            notify_worse(&data, &run)?;
            Ok(code::OK)
        }
        ComputersCommand::Judge(args) => {
            let mut data = ctx.write_configured()?;
            let run = computers::judge(&mut data)?;
            print_judgment(&run, args.json)?;
            notify_worse(&data, &run)?;
            Ok(code::OK)
        }
        ComputersCommand::Assign(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write_configured()?;
            let group = if args.none { None } else { args.group.as_ref() };
            let (done, run) = computers::assign(&mut data, group, &args.computers, &actor)?;
            let to = group.map_or("no group".to_string(), |g| format!("computer group {g}"));
            outln!("{} now in {}: {}", count(done.len() as u64, "computer"), safe(&to), safe(&done.join(", ")));
            notify_worse(&data, &run)?;
            Ok(code::OK)
        }
        ComputersCommand::Group(command) => group(ctx, command),
        ComputersCommand::Report(args) => {
            crate::commands::compliance::run(ctx, args.kind, args.update, args.format, args.out)
        }
    }
}

fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<u8> {
    let actor = Actor::acting(args.by.as_deref())?;
    let mut data = ctx.write_configured()?;
    let result = computers::import(&mut data, &args.paths, args.computer.as_ref(), &actor)?;
    for o in &result.outcomes {
        if args.json {
            json_line("inventory", o)?;
            continue;
        }
        let when = match o.time_from {
            ferry_core::server::registry::TimeFrom::Report => format!("report of {}", o.time),
            ferry_core::server::registry::TimeFrom::File => format!("no time in the report; the file's, {}", o.time),
        };
        let new = if o.new_computer { " (new computer)" } else { "" };
        if o.replaced.is_empty() {
            let kept: Vec<String> = o.kept.iter().map(|(f, t)| format!("{} of {t}", f.as_str())).collect();
            outln!(
                "{}{new}: {} from {} ignored: not newer than what is held ({})",
                safe(&o.computer),
                when,
                safe(&o.source),
                kept.join(", ")
            );
        } else {
            let replaced: Vec<&str> = o.replaced.iter().map(|f| f.as_str()).collect();
            let kept = if o.kept.is_empty() {
                String::new()
            } else {
                let kept: Vec<String> = o.kept.iter().map(|(f, t)| format!("{} (held of {t})", f.as_str())).collect();
                format!("; kept newer {}", kept.join(", "))
            };
            outln!(
                "{}{new}: {} {} from {}: {}{kept}",
                safe(&o.computer),
                o.format,
                when,
                safe(&o.source),
                replaced.join(", ")
            );
        }
    }
    let worst = refusals_and_judgment(&data, "inventory-refused", &result.refused, result.judged.as_ref(), args.json)?;
    if !args.json {
        let changed = result.outcomes.iter().filter(|o| !o.replaced.is_empty()).count();
        outln!(
            "{} read, {} changed what is held, {} refused",
            count(result.outcomes.len() as u64, "report"),
            changed,
            result.refused.len()
        );
    }
    Ok(worst)
}

/// Prints the files an import refused (each a `kind` JSON line, or a line on stderr), then
/// the judgment that followed and its notification; returns the worst refusal's exit code.
pub(crate) fn refusals_and_judgment(
    data: &ferry_core::server::datadir::DataDir,
    kind: &str,
    refused: &[(std::path::PathBuf, ferry_core::Error)],
    judged: Option<&JudgmentRun>,
    json: bool,
) -> anyhow::Result<u8> {
    let mut worst = code::OK;
    for (path, error) in refused {
        let class = error.class();
        if json {
            json_line(
                kind,
                &serde_json::json!({"path": path.display().to_string(), "class": class.as_str(), "reason": error.to_string()}),
            )?;
        } else {
            eprintln!("ingest: refused: {}", safe(&error.to_string()));
        }
        worst = worst.max(exit_code(class));
    }
    if let Some(run) = judged {
        print_judgment(run, json)?;
        notify_worse(data, run)?;
    }
    Ok(worst)
}

/// Notifies, through the configured channels, of the groups `run` made worse to their
/// notify level or beyond.
pub(crate) fn notify_worse(data: &ferry_core::server::datadir::DataDir, run: &JudgmentRun) -> anyhow::Result<()> {
    if let Some(alert) = computers::alert(data, run)? {
        crate::context::notify(&data.config.notify, ferry_core::ingest::notify::Notice::Compliance(&alert));
    }
    Ok(())
}

pub(crate) fn print_judgment(run: &JudgmentRun, json: bool) -> anyhow::Result<()> {
    if json {
        return json_line("judgment", run);
    }
    let levels: Vec<String> = run.levels.iter().map(|(l, n)| format!("{n} {}", l.as_str())).collect();
    outln!(
        "judged {}: {}",
        count(run.computers, "computer"),
        if levels.is_empty() { "none".to_string() } else { levels.join(", ") }
    );
    for (group, was, now) in &run.worsened {
        let group = if group.is_empty() { "(no group)" } else { group };
        outln!("  computer group {} got worse: {} → {}", safe(group), was.as_str(), now.as_str());
    }
    Ok(())
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<u8> {
    let stale_days = ctx.effective()?.config.computers.stale_days;
    let data = ctx.read()?;
    let all = computers::list(&data, args.group.as_ref(), stale_days)?;
    if args.json {
        for c in &all {
            json_line("computer", c)?;
        }
        return Ok(code::OK);
    }
    if all.is_empty() {
        outln!("no computers yet (`ingest computers import FILE|DIR` reads their inventories)");
        return Ok(code::OK);
    }
    let mut table = crate::common::Table::new(&[
        "COMPUTER",
        "GROUP",
        "LEVEL",
        "APPLY",
        "OK",
        "GRACE",
        "MISSING",
        "FAILED",
        "LAST REPORT",
    ]);
    for c in &all {
        table.row(vec![
            c.name.clone(),
            c.group.clone().unwrap_or_else(|| "-".into()),
            c.level.map_or("-", |l| l.as_str()).to_string(),
            c.applicable.to_string(),
            c.satisfied.to_string(),
            c.within_grace.to_string(),
            c.missing.to_string(),
            c.failed.to_string(),
            format!("{}{}", c.last_report, if c.stale { " STALE" } else { "" }),
        ]);
    }
    table.print();
    let stale = all.iter().filter(|c| c.stale).count();
    if stale > 0 {
        outln!(
            "{} without a report for more than {stale_days} days (computers.stale_days)",
            count(stale as u64, "computer")
        );
    }
    Ok(code::OK)
}

fn show(ctx: &Context, args: ShowArgs) -> anyhow::Result<u8> {
    let data = ctx.read()?;
    let view = computers::show(&data, &args.name)?;
    if args.json {
        json_line(
            "computer-detail",
            &serde_json::json!({
                "name": view.name,
                "group": view.group,
                "policy": view.policy,
                "level": view.level,
                "os": view.facts.os,
                "sources": view.sources,
                "verdicts": view.judgments.iter().map(|j| serde_json::json!({
                    "update": view.index.updates[j.update].id,
                    "verdict": j.verdict,
                    "reason": j.reason,
                })).collect::<Vec<_>>(),
            }),
        )?;
        return Ok(code::OK);
    }
    outln!("{}  level {}", safe(&view.name), view.level.as_str());
    outln!("  group {}: {}", safe(view.group.as_deref().unwrap_or("(none)")), safe(&view.policy.describe()));
    if let Some(os) = &view.facts.os {
        outln!("  {} build {}", safe(&os.product), safe(&os.build));
    }
    for s in &view.sources {
        outln!(
            "  {:<8} {} ({} time) from {} [{}], sha256 {}",
            s.facet.as_str(),
            s.reported_at,
            s.time_from,
            safe(&s.source),
            s.format,
            s.sha256
        );
    }
    if let Some(h) = &view.facts.hotfixes {
        outln!("  {} installed updates listed", h.len());
    }
    if let Some(p) = &view.facts.programs {
        outln!("  {} programs", p.len());
    }
    if let Some(p) = &view.facts.packages {
        outln!("  {} winget packages", p.len());
    }
    outln!();
    if view.judgments.is_empty() {
        outln!("no update of its policy applies to it");
        return Ok(code::OK);
    }
    let mut table = crate::common::Table::new(&["VERDICT", "UPDATE", "SEVERITY", "WHY"]);
    let mut judgments: Vec<_> = view.judgments.iter().collect();
    judgments.sort_by_key(|j| (std::cmp::Reverse(worst_first(j.verdict)), &view.index.updates[j.update].id));
    for j in judgments {
        let u = &view.index.updates[j.update];
        table.row(vec![j.verdict.as_str().into(), u.id.clone(), u.severity.as_str().into(), j.reason.clone()]);
    }
    table.print();
    Ok(code::OK)
}

/// The order `computers show` lists verdicts in: what needs action first.
fn worst_first(v: Verdict) -> u8 {
    match v {
        Verdict::Failed => 6,
        Verdict::Missing => 5,
        Verdict::WithinGrace => 4,
        Verdict::Unknown => 3,
        Verdict::Superseded => 2,
        Verdict::ScanClear => 1,
        Verdict::Installed => 0,
    }
}

fn group(ctx: &Context, command: GroupCommand) -> anyhow::Result<u8> {
    match command {
        GroupCommand::Add(args) => save(ctx, args, true),
        GroupCommand::Set(args) => save(ctx, args, false),
        GroupCommand::Delete(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write_configured()?;
            let (g, run) = computers::delete_group(&mut data, &args.name, &actor)?;
            outln!("computer group {} deleted ({} now in no group)", safe(&g.name), count(g.computers, "computer"));
            notify_worse(&data, &run)?;
            Ok(code::OK)
        }
        GroupCommand::List(args) => {
            let data = ctx.read()?;
            let groups = computers::groups(&data)?;
            if args.json {
                for g in &groups {
                    json_line("computer-group", g)?;
                }
            } else if groups.is_empty() {
                outln!("no computer groups (create one with `ingest computers group add NAME`)");
            } else {
                for g in &groups {
                    print_group(g);
                }
            }
            Ok(code::OK)
        }
    }
}

fn print_group(g: &ComputerGroup) {
    outln!(
        "{}{}  {}  ({})",
        safe(&g.name),
        if g.test { " [test]" } else { "" },
        safe(&g.policy.describe()),
        count(g.computers, "computer")
    );
    if let Some(p) = &g.point {
        outln!("  installs from distribution point {}", safe(p));
    }
    outln!("  notifies when it gets worse at {} or beyond", g.notify_level.as_str());
    if !g.description.is_empty() {
        outln!("  {}", safe(&g.description));
    }
}

fn save(ctx: &Context, args: GroupArgs, create: bool) -> anyhow::Result<u8> {
    let actor = Actor::acting(args.by.as_deref())?;
    let settings = GroupSettings {
        description: args.description,
        test: args.test,
        update_group: if args.all_approved { Some(None) } else { args.update_group.map(Some) },
        grace_days: args.grace_days,
        grace_from: args.grace_from,
        point: args.point.map(Some),
        notify_level: args.notify_level,
    };
    let mut data = ctx.write_configured()?;
    let (g, run) = computers::save_group(&mut data, &args.name, &settings, create, &actor)?;
    outln!("computer group {} {}", safe(&g.name), if create { "created" } else { "changed" });
    print_group(&g);
    notify_worse(&data, &run)?;
    Ok(code::OK)
}
