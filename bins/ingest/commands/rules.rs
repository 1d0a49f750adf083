//! `ingest rules` and `ingest refresh`: standing approval decisions and applying them.

use clap::{Args, Subcommand};
use ferry_core::base::clock::{Date, Timestamp};
use ferry_core::base::names::{GroupName, RuleName};
use ferry_core::formats::rules::{Action, Conditions, Rule};
use ferry_core::ingest::notify::Notice;
use ferry_core::server::registry::RefreshReport;

use super::select::KindArgs;
use super::usage_error;
use crate::common::{code, json_line, safe};
use crate::context::{Context, notify};
use ferry_core::formats::approval::Actor;
use ferry_core::ingest::rules;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Every rule, as a sentence.
    List(ListArgs),
    /// Add a rule; it applies from the next refresh (every import ends with one).
    Add(AddArgs),
    /// Remove a rule; what it decided stays as it is.
    Remove(RemoveArgs),
    /// Show what a rule would change among the stored ones, without changing anything: a
    /// stored rule by name, a rule described by the same options as `add`, or (with
    /// neither) all rules together.
    Test(TestArgs),
}

/// What a rule does, and when.
#[derive(Args)]
pub struct RuleSpec {
    /// Approve what the rule matches.
    #[arg(long, conflicts_with_all = ["decline", "add_to_group"])]
    approve: bool,
    /// Decline what the rule matches; a matching decline rule wins over any approve rule.
    #[arg(long, conflicts_with = "add_to_group")]
    decline: bool,
    /// Add what the rule matches to this group, once (a person may take it out again).
    #[arg(long, value_name = "GROUP")]
    add_to_group: Option<GroupName>,
    #[command(flatten)]
    kind: KindArgs,
    /// Only members of this group.
    #[arg(long, value_name = "GROUP")]
    group: Option<GroupName>,
    /// ... that have been in it at least N days (the test-group pattern).
    #[arg(long, value_name = "N", requires = "group")]
    days_in_group: Option<u32>,
    /// Only updates that arrived on this server at least N days ago.
    #[arg(long, value_name = "N")]
    days_since_arrival: Option<u32>,
    /// Only updates the vendor released at least N days ago.
    #[arg(long, value_name = "N")]
    days_since_release: Option<u32>,
    /// Only updates superseded by an update present on this server.
    #[arg(long, conflicts_with = "not_superseded")]
    superseded: bool,
    /// Only updates not superseded by an update present on this server.
    #[arg(long)]
    not_superseded: bool,
    /// Only updates with a file its vendor names by SHA-1 only (Microsoft's scan catalog).
    #[arg(long, conflicts_with = "not_sha1_only")]
    sha1_only: bool,
    /// Only updates whose files are all known by their vendor's SHA-256 (or registered here).
    #[arg(long)]
    not_sha1_only: bool,
}

impl RuleSpec {
    fn action(&self) -> Option<Action> {
        if self.approve {
            Some(Action::Approve)
        } else if self.decline {
            Some(Action::Decline)
        } else {
            self.add_to_group.clone().map(|group| Action::AddToGroup { group })
        }
    }

    fn conditions(&self) -> Conditions {
        Conditions {
            products: self.kind.products.clone(),
            classifications: self.kind.classifications.clone(),
            severities: self.kind.severities.clone(),
            group: self.group.clone(),
            days_in_group: self.days_in_group,
            days_since_arrival: self.days_since_arrival,
            days_since_release: self.days_since_release,
            superseded: (self.superseded || self.not_superseded).then_some(self.superseded),
            sha1_only: (self.sha1_only || self.not_sha1_only).then_some(self.sha1_only),
        }
    }

    fn is_empty(&self) -> bool {
        self.action().is_none() && self.conditions().is_empty()
    }
}

#[derive(Args)]
pub struct ListArgs {
    /// One JSON object per rule.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct AddArgs {
    name: RuleName,
    #[command(flatten)]
    spec: RuleSpec,
    /// Who adds it (recorded in the audit log); the login name (else the account name of the process) by default.
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct RemoveArgs {
    name: RuleName,
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
}

#[derive(Args)]
pub struct TestArgs {
    /// A stored rule; leave out to test the rule the options describe, or all rules.
    name: Option<RuleName>,
    #[command(flatten)]
    spec: RuleSpec,
    /// Judge as of this day (YYYY-MM-DD) instead of today: "what will be approved next week".
    #[arg(long, value_name = "DATE")]
    at: Option<Date>,
    /// One JSON object: what would change.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RefreshArgs {
    /// One JSON object: what changed.
    #[arg(long)]
    json: bool,
}

const NO_ACTION: &str = "say what the rule does: --approve, --decline or --add-to-group GROUP";

pub fn run(ctx: &Context, command: RulesCommand) -> anyhow::Result<u8> {
    match command {
        RulesCommand::List(args) => {
            let data = ctx.read()?;
            let rules = rules::all(&data)?;
            if args.json {
                for r in &rules {
                    json_line("rule", r)?;
                }
            } else if rules.is_empty() {
                outln!("no approval rules (add one with `ingest rules add NAME --approve ...`)");
            } else {
                for r in &rules {
                    outln!("{}: {}", safe(r.rule.name.as_str()), safe(&r.reads));
                    outln!("    added by {} at {}", safe(&r.created_by), r.created_at);
                }
            }
        }
        RulesCommand::Add(args) => {
            let Some(action) = args.spec.action() else { return Ok(usage_error(NO_ACTION)) };
            let rule = Rule::new(args.name, action, args.spec.conditions())?;
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write()?;
            let stored = rules::add(&mut data, &rule, &actor)?;
            outln!("rule {} added: {}", safe(stored.rule.name.as_str()), safe(&stored.reads));
            outln!("it applies from the next refresh (`ingest refresh`, or the next import)");
        }
        RulesCommand::Remove(args) => {
            let actor = Actor::acting(args.by.as_deref())?;
            let mut data = ctx.write()?;
            let stored = rules::remove(&mut data, &args.name, &actor)?;
            outln!("rule {} removed; what it decided stays as it is", safe(stored.rule.name.as_str()));
        }
        RulesCommand::Test(args) => {
            if args.name.is_some() && !args.spec.is_empty() {
                return Ok(usage_error("name a stored rule or describe one, not both"));
            }
            let mut data = ctx.write()?;
            let rule = match (&args.name, args.spec.is_empty()) {
                (Some(name), _) => Some(rules::get(&data, name)?.rule),
                (None, true) => None,
                (None, false) => {
                    let Some(action) = args.spec.action() else { return Ok(usage_error(NO_ACTION)) };
                    Some(Rule::new("tested".parse()?, action, args.spec.conditions())?)
                }
            };
            let day = args.at.unwrap_or_else(|| Timestamp::now().date());
            let report = rules::test(&mut data, rule.as_ref(), day)?;
            if args.json {
                json_line("rule-test", &report)?;
            } else {
                match &rule {
                    Some(r) => outln!("testing: {} (nothing is changed)", safe(&r.to_string())),
                    None => outln!("testing every rule as of {day} (nothing is changed)"),
                }
                print_refresh(&report, "would be");
            }
        }
    }
    Ok(code::OK)
}

pub fn refresh(ctx: &Context, args: RefreshArgs) -> anyhow::Result<u8> {
    let mut data = ctx.write_configured()?;
    let (refreshed, report) = ferry_core::ingest::import::refresh_reported(&mut data, &Actor::running())?;
    if args.json {
        let mut shown = serde_json::to_value(&refreshed)?;
        shown["report"] = report.id.into();
        json_line("refresh", &shown)?;
    } else {
        outln!("refreshed the update list as of {}", refreshed.day);
        print_refresh(&refreshed, "");
        super::report::print_pointer(report.id);
    }
    notify(&data.config.notify, Notice::Report(&report));
    Ok(code::OK)
}

/// What a refresh changed, one line per change; `mood` is "" for done, "would be" for a test.
pub fn print_refresh(report: &RefreshReport, mood: &str) {
    let verb = |done: &str| if mood.is_empty() { done.to_string() } else { format!("{mood} {done}") };
    for s in &report.newly_superseded {
        outln!("  {}: {} (by {})", safe(&s.id), verb("superseded"), safe(&s.by.join(", ")));
    }
    for id in &report.no_longer_superseded {
        outln!("  {}: {} (what superseded it is gone or withdrawn)", safe(id), verb("no longer superseded"));
    }
    for a in &report.group_additions {
        outln!("  {}: {} to group {} by rule {}", safe(&a.id), verb("added"), safe(&a.group), safe(&a.rule));
    }
    for d in &report.decisions {
        outln!("  {}: {} -> {} by rule {}", safe(&d.id), d.from, d.to, safe(&d.rule));
    }
    for h in &report.held {
        outln!("  {}: rule {} cannot approve it yet: {}", safe(&h.id), safe(&h.rule), safe(&h.reason));
    }
    if !report.changed_anything() {
        outln!("  {}", if mood.is_empty() { "nothing changed" } else { "nothing would change" });
    }
    if report.rules_suspended {
        outln!("  approval rules not applied: rules.apply is false (a change freeze)");
    }
}
