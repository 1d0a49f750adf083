//! The compliance reports, as the products ferry replaces give them: Windows Update status
//! (per update, the computers it is not applied on, most first), computer security status
//! (per computer, its level and what it misses), the computers an update is not applied on,
//! per policy the computers at each violation level, with a picture of each group's levels
//! and of compliance over time, and the installation results (per update, the latest result
//! on each computer by outcome, and the failures with their meaning). Text, JSON lines and
//! one self-contained HTML page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::base::clock::Timestamp;
use crate::base::error::Result;
use crate::base::text::for_terminal as t;
use crate::formats::compliance::{Level, Policy};
use crate::formats::install_results::Outcome;
use crate::server::registry::{
    ComputerSummary, HistoryPoint, JudgedResult, JudgmentRun, Registry, ResultsSummary, StoredJudgment, UpdateStatus,
};
use crate::server::report::{esc, html_page};

/// The computers of one policy at each level.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyLevels {
    /// The computer group; none for the computers in no group.
    pub group: Option<String>,
    pub policy: Policy,
    pub test: bool,
    pub levels: BTreeMap<Level, u32>,
    pub not_judged: u32,
    pub stale: u32,
}

/// Everything the reports show, read at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct ComplianceReport {
    pub generated: Timestamp,
    pub judged_at: Option<String>,
    pub stale_days: u32,
    pub updates: Vec<UpdateStatus>,
    pub computers: Vec<ComputerSummary>,
    /// Verdicts that are not satisfied, by computer then update.
    pub unsatisfied: Vec<StoredJudgment>,
    pub policies: Vec<PolicyLevels>,
    pub history: Vec<HistoryPoint>,
    /// Per update, the latest installation result on each computer, by outcome.
    pub results: Vec<ResultsSummary>,
    /// The latest results per computer and update that are failures, newest first.
    pub failures: Vec<JudgedResult>,
}

impl ComplianceReport {
    /// Reads the reports; `verdicts` also reads every stored verdict (the per-computer and
    /// not-applied lists and the page need them; at 10,000 computers they are 1.7 million).
    pub fn build(registry: &Registry, stale_days: u32, now: Timestamp, verdicts: bool) -> Result<ComplianceReport> {
        let computers = registry.computers(None, stale_days, now)?;
        let mut policies: Vec<PolicyLevels> = registry
            .computer_groups()?
            .into_iter()
            .map(|g| PolicyLevels {
                group: Some(g.name),
                policy: g.policy,
                test: g.test,
                levels: BTreeMap::new(),
                not_judged: 0,
                stale: 0,
            })
            .collect();
        if computers.iter().any(|c| c.group.is_none()) {
            policies.push(PolicyLevels {
                group: None,
                policy: Policy::default_policy(),
                test: false,
                levels: BTreeMap::new(),
                not_judged: 0,
                stale: 0,
            });
        }
        for c in &computers {
            let Some(p) = policies.iter_mut().find(|p| same_group(p.group.as_deref(), c.group.as_deref())) else {
                continue;
            };
            match c.level {
                Some(l) => *p.levels.entry(l).or_default() += 1,
                None => p.not_judged += 1,
            }
            p.stale += u32::from(c.stale);
        }
        Ok(ComplianceReport {
            generated: now,
            judged_at: computers.iter().filter_map(|c| c.judged_at.clone()).max(),
            stale_days,
            updates: registry.update_status()?,
            unsatisfied: if verdicts { registry.unsatisfied()? } else { Vec::new() },
            computers,
            policies,
            history: registry.compliance_history()?,
            results: registry.results_summary()?,
            failures: registry.install_results(None, None, Some(Outcome::Failure), true)?,
        })
    }

    /// The computers `update` is not applied on.
    pub fn not_applied<'a>(&'a self, update: &'a str) -> impl Iterator<Item = &'a StoredJudgment> + 'a {
        self.unsatisfied.iter().filter(move |j| j.update.eq_ignore_ascii_case(update))
    }

    /// The verdicts of one computer that are not satisfied.
    pub fn missing_on<'a>(&'a self, computer: &'a str) -> impl Iterator<Item = &'a StoredJudgment> + 'a {
        self.unsatisfied.iter().filter(move |j| j.computer.eq_ignore_ascii_case(computer))
    }

    pub fn to_html(&self) -> String {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>ferry compliance report</h1>\n<p class=\"meta\">generated {} &middot; judged {} &middot; {} computers \
             &middot; stale after {} days</p>\n",
            self.generated,
            esc(self.judged_at.as_deref().unwrap_or("never")),
            self.computers.len(),
            self.stale_days
        );
        body.push_str("<h2>Violation levels per policy</h2>\n");
        body.push_str(&levels_svg(&self.policies));
        if let Some(svg) = history_svg(&self.history) {
            body.push_str("<h2>Compliant computers over time</h2>\n");
            body.push_str(&svg);
        }
        body.push_str(
            "<table><thead><tr><th>Group</th><th>Policy</th><th>Compliant</th><th>Grace</th><th>Missing</th>\
             <th>Missing important</th><th>Critical</th><th>Not judged</th><th>Stale</th></tr></thead><tbody>\n",
        );
        for p in &self.policies {
            let n = |l: Level| p.levels.get(&l).copied().unwrap_or(0);
            let _ = writeln!(
                body,
                "<tr><td>{}{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(p.group.as_deref().unwrap_or("(no group)")),
                if p.test { " [test]" } else { "" },
                esc(&p.policy.describe()),
                n(Level::Compliant),
                n(Level::Grace),
                n(Level::Missing),
                n(Level::MissingImportant),
                n(Level::Critical),
                p.not_judged,
                p.stale
            );
        }
        body.push_str("</tbody></table>\n");
        body.push_str(
            "<h2>Windows Update status: updates not applied</h2>\n<table class=\"sortable\" id=\"updates\"><thead><tr>\
             <th>Update</th><th>KB</th><th>Title</th><th>Severity</th><th>Not applied</th><th>Missing</th>\
             <th>In grace</th><th>Failed</th><th>Unknown</th><th>Available here</th><th>Computers</th></tr></thead><tbody>\n",
        );
        for u in &self.updates {
            let names: Vec<String> = self.not_applied(&u.id).map(|j| esc(&j.computer)).collect();
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"sev-{sev}\">{sev}</td><td class=\"n\" data-sort=\"{n}\">{n}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&u.id),
                esc(u.kb.as_deref().unwrap_or("")),
                esc(&u.title),
                u.missing,
                u.within_grace,
                u.failed,
                u.unknown,
                if u.available { "yes" } else { "no: needed from outside" },
                names.join(", "),
                sev = u.severity.as_str(),
                n = u.not_applied,
            );
        }
        body.push_str("</tbody></table>\n");
        body.push_str(
            "<h2>Computer security status</h2>\n<table class=\"sortable\" id=\"computers\"><thead><tr><th>Computer</th>\
             <th>Group</th><th>Level</th><th>Applicable</th><th>In place</th><th>Missing</th><th>In grace</th>\
             <th>Failed</th><th>Last report</th><th>Missing updates</th></tr></thead><tbody>\n",
        );
        for c in &self.computers {
            let missing: Vec<String> =
                self.missing_on(&c.name).map(|j| format!("{} ({})", esc(&j.update), j.verdict.as_str())).collect();
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td class=\"lvl-{lvl}\">{lvl}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}{}</td><td>{}</td></tr>",
                esc(&c.name),
                esc(c.group.as_deref().unwrap_or("")),
                c.applicable,
                c.satisfied,
                c.missing,
                c.within_grace,
                c.failed,
                esc(&c.last_report),
                if c.stale { " (stale)" } else { "" },
                missing.join(", "),
                lvl = c.level.map_or("not-judged", |l| l.as_str()),
            );
        }
        body.push_str("</tbody></table>\n");
        body.push_str(
            "<h2>Installation results</h2>\n<table class=\"sortable\" id=\"results\"><thead><tr><th>Update</th>\
             <th>Success</th><th>Restart needed</th><th>Already installed</th><th>Failed</th></tr></thead><tbody>\n",
        );
        for r in &self.results {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td></tr>",
                esc(&r.update),
                r.success,
                r.reboot,
                r.already_installed,
                r.failure
            );
        }
        body.push_str("</tbody></table>\n");
        if !self.failures.is_empty() {
            body.push_str(
                "<table id=\"failures\"><thead><tr><th>When</th><th>Computer</th><th>Update</th><th>Code</th>\
                 <th>Meaning</th></tr></thead><tbody>\n",
            );
            for f in &self.failures {
                let _ = writeln!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    f.at,
                    esc(&f.computer),
                    esc(&f.update),
                    f.return_code,
                    esc(&f.meaning)
                );
            }
            body.push_str("</tbody></table>\n");
        }
        html_page("ferry compliance report", LEVEL_STYLE, &body)
    }
}

/// Computers a notice names per group; the attached page has them all.
const ALERT_COMPUTERS: usize = 100;

/// A computer group whose worst level got worse, to its notify level or beyond.
#[derive(Debug, Clone, Serialize)]
pub struct GroupWorsened {
    /// None for the computers in no group.
    pub group: Option<String>,
    pub was: Level,
    pub now: Level,
    pub notify_level: Level,
    /// The group's computers at the new level (the first [`ALERT_COMPUTERS`]).
    pub computers: Vec<String>,
}

/// What a notification of worse compliance says.
#[derive(Debug, Clone, Serialize)]
pub struct ComplianceAlert {
    pub judged_at: Timestamp,
    pub groups: Vec<GroupWorsened>,
    /// The whole compliance report as one page, attached to mail.
    #[serde(skip)]
    pub page: String,
}

impl ComplianceAlert {
    /// The groups of `run` that got worse to their notify level or beyond (for computers in
    /// no group, `missing-important`); none when no group did.
    pub fn of(registry: &Registry, run: &JudgmentRun, stale_days: u32) -> Result<Option<ComplianceAlert>> {
        let groups = registry.computer_groups()?;
        let mut alert = ComplianceAlert { judged_at: run.judged_at, groups: Vec::new(), page: String::new() };
        for (group, was, now) in &run.worsened {
            let notify_level = match groups.iter().find(|g| g.name.eq_ignore_ascii_case(group)) {
                Some(g) => g.notify_level,
                None => Level::MissingImportant,
            };
            if *now >= notify_level {
                alert.groups.push(GroupWorsened {
                    group: (!group.is_empty()).then(|| group.clone()),
                    was: *was,
                    now: *now,
                    notify_level,
                    computers: Vec::new(),
                });
            }
        }
        if alert.groups.is_empty() {
            return Ok(None);
        }
        let report = ComplianceReport::build(registry, stale_days, run.judged_at, true)?;
        for g in &mut alert.groups {
            g.computers = report
                .computers
                .iter()
                .filter(|c| c.level == Some(g.now) && same_group(c.group.as_deref(), g.group.as_deref()))
                .take(ALERT_COMPUTERS)
                .map(|c| c.name.clone())
                .collect();
        }
        alert.page = report.to_html();
        Ok(Some(alert))
    }

    pub fn headline(&self) -> String {
        let parts: Vec<String> = self
            .groups
            .iter()
            .map(|g| format!("{} got worse: {} to {}", g.group.as_deref().unwrap_or("(no group)"), g.was, g.now))
            .collect();
        parts.join("; ")
    }

    pub fn to_text(&self) -> String {
        let mut out = format!("ferry compliance, judged {}\n\n", self.judged_at);
        for g in &self.groups {
            let _ = writeln!(
                out,
                "computer group {}: {} to {} (notified from {} on)",
                t(g.group.as_deref().unwrap_or("(no group)")),
                g.was,
                g.now,
                g.notify_level
            );
            for c in &g.computers {
                let _ = writeln!(out, "  {}", t(c));
            }
        }
        out.push_str("\n`ingest computers report` and `ingest computers show NAME` say what each computer misses.\n");
        out
    }
}

fn same_group(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (None, None) => true,
        _ => false,
    }
}

const LEVEL_STYLE: &str = ".lvl-critical{color:#a00;font-weight:600}.lvl-missing-important{color:#c50}\
svg{margin:.5em 0 1em;font:12px system-ui,sans-serif}";

/// The colour of each level in the pictures, from green to red.
fn colour(level: Level) -> &'static str {
    match level {
        Level::Compliant => "#2e7d32",
        Level::Grace => "#9ccc65",
        Level::Missing => "#fbc02d",
        Level::MissingImportant => "#ef6c00",
        Level::Critical => "#c62828",
    }
}

/// One bar per policy, split by level in proportion to its computers: which groups are
/// where, at a glance (a table of five counts per group does not show it).
fn levels_svg(policies: &[PolicyLevels]) -> String {
    let (width, bar, gap, label) = (640.0, 22.0, 8.0, 160.0);
    let height = (policies.len() as f64) * (bar + gap) + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" \
         aria-label=\"computers per violation level and group\">\n",
        width + label + 20.0
    );
    for (i, p) in policies.iter().enumerate() {
        let y = i as f64 * (bar + gap);
        let total: u32 = p.levels.values().sum::<u32>() + p.not_judged;
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + bar * 0.7,
            esc(p.group.as_deref().unwrap_or("(no group)"))
        );
        let mut x = label;
        for &level in Level::ALL {
            let n = p.levels.get(&level).copied().unwrap_or(0);
            if n == 0 || total == 0 {
                continue;
            }
            let w = width * f64::from(n) / f64::from(total);
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{}\"><title>{}: {n}</title></rect>",
                colour(level),
                level.as_str()
            );
            x += w;
        }
    }
    let legend_y = policies.len() as f64 * (bar + gap) + 14.0;
    let mut x = label;
    for &level in Level::ALL {
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{legend_y}\">{}</text>",
            legend_y - 9.0,
            colour(level),
            x + 14.0,
            level.as_str()
        );
        x += 120.0;
    }
    svg.push_str("</svg>\n");
    svg
}

/// The share of compliant computers per group, day by day; none before two days are known.
fn history_svg(history: &[HistoryPoint]) -> Option<String> {
    let mut days: Vec<&str> = history.iter().map(|h| h.day.as_str()).collect();
    days.dedup();
    if days.len() < 2 {
        return None;
    }
    let mut per_group: BTreeMap<&str, BTreeMap<&str, (u32, u32)>> = BTreeMap::new();
    for h in history {
        let e = per_group.entry(h.group.as_str()).or_default().entry(h.day.as_str()).or_default();
        e.1 += h.computers;
        if h.level == Level::Compliant {
            e.0 += h.computers;
        }
    }
    let (width, height, left) = (640.0, 200.0, 40.0);
    let x_of = |i: usize| left + width * i as f64 / (days.len() - 1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" \
         aria-label=\"share of compliant computers per group over time\">\n\
         <line x1=\"{left}\" y1=\"0\" x2=\"{left}\" y2=\"{height}\" stroke=\"#999\"/>\
         <line x1=\"{left}\" y1=\"{height}\" x2=\"{}\" y2=\"{height}\" stroke=\"#999\"/>\
         <text x=\"0\" y=\"10\">100%</text><text x=\"0\" y=\"{height}\">0%</text>\n",
        width + left + 160.0,
        height + 30.0,
        left + width
    );
    let palette = ["#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#4e342e", "#37474f"];
    for (g, (group, by_day)) in per_group.iter().enumerate() {
        let points: Vec<String> = days
            .iter()
            .enumerate()
            .filter_map(|(i, d)| by_day.get(d).map(|(ok, all)| (i, f64::from(*ok) / f64::from((*all).max(1)))))
            .map(|(i, share)| format!("{:.1},{:.1}", x_of(i), height - share * height))
            .collect();
        let colour = palette[g % palette.len()];
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>",
            points.join(" "),
            left + width + 8.0,
            14.0 + 14.0 * g as f64,
            esc(if group.is_empty() { "(no group)" } else { group })
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text></svg>",
        height + 20.0,
        esc(days[0]),
        left + width,
        height + 20.0,
        esc(days[days.len() - 1])
    );
    Some(svg)
}

/// The plain-text form, for a terminal or a mail.
pub fn text_of(report: &ComplianceReport, sections: &[&str], update: Option<&str>) -> String {
    let mut out = String::new();
    let want = |s: &str| sections.contains(&s);
    if want("policies") {
        let _ =
            writeln!(out, "Violation levels per policy (judged {})", report.judged_at.as_deref().unwrap_or("never"));
        for p in &report.policies {
            let levels: Vec<String> = Level::ALL
                .iter()
                .map(|l| format!("{} {}", p.levels.get(l).copied().unwrap_or(0), l.as_str()))
                .collect();
            let _ = writeln!(
                out,
                "  {}{}: {}; {}{}{}",
                t(p.group.as_deref().unwrap_or("(no group)")),
                if p.test { " [test]" } else { "" },
                t(&p.policy.describe()),
                levels.join(", "),
                if p.not_judged > 0 { format!(", {} not judged", p.not_judged) } else { String::new() },
                if p.stale > 0 { format!(", {} stale", p.stale) } else { String::new() }
            );
        }
        out.push('\n');
    }
    if want("updates") {
        let _ = writeln!(out, "Windows Update status: updates not applied, most computers first");
        if report.updates.is_empty() {
            let _ = writeln!(out, "  every update of every policy is in place");
        }
        for u in &report.updates {
            let _ = writeln!(
                out,
                "  {:<5} {:<40} {:<10} {} missing, {} in grace, {} failed, {} unknown{}",
                u.not_applied,
                t(&u.id),
                u.severity.as_str(),
                u.missing,
                u.within_grace,
                u.failed,
                u.unknown,
                if u.available { "" } else { "  (not held here: needed from outside)" }
            );
        }
        out.push('\n');
    }
    if want("computers") {
        let _ = writeln!(out, "Computer security status");
        for c in &report.computers {
            let _ = writeln!(
                out,
                "  {:<20} {:<18} {} of {} in place{}",
                t(&c.name),
                c.level.map_or("not-judged", |l| l.as_str()),
                c.satisfied,
                c.applicable,
                if c.stale { format!("; no report since {} (stale)", c.last_report) } else { String::new() }
            );
            for j in report.missing_on(&c.name) {
                let _ = writeln!(out, "      {:<12} {}: {}", j.verdict.as_str(), t(&j.update), t(&j.reason));
            }
        }
        out.push('\n');
    }
    if want("not-applied") {
        let ids: Vec<&str> = match update {
            Some(u) => vec![u],
            None => report.updates.iter().map(|u| u.id.as_str()).collect(),
        };
        let _ = writeln!(out, "Computers an update is not applied on");
        for id in ids {
            let _ = writeln!(out, "  {}", t(id));
            let mut any = false;
            for j in report.not_applied(id) {
                any = true;
                let _ = writeln!(out, "      {:<20} {:<12} {}", t(&j.computer), j.verdict.as_str(), t(&j.reason));
            }
            if !any {
                let _ = writeln!(out, "      applied everywhere it applies");
            }
        }
    }
    if want("results") {
        let _ = writeln!(out, "Installation results: the latest on each computer, most failures first");
        if report.results.is_empty() {
            let _ = writeln!(out, "  none reported yet");
        }
        for r in &report.results {
            let _ = writeln!(
                out,
                "  {:<40} {} succeeded, {} need a restart, {} were installed already, {} failed",
                t(&r.update),
                r.success,
                r.reboot,
                r.already_installed,
                r.failure
            );
        }
        for f in &report.failures {
            let _ = writeln!(out, "      {:<20} {} at {}: {}", t(&f.computer), t(&f.update), f.at, t(&f.meaning));
        }
        out.push('\n');
    }
    out
}
