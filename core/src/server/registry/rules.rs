//! Approval rules as stored, and the refresh that re-marks supersedence and applies them
//! (after every import, and by `ingest refresh`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::filter::require_group;
use super::{Registry, Unavailable, append_audit, exec, sql_error};
use crate::base::clock::{Date, Timestamp};
use crate::base::error::{Error, Result};
use crate::base::names::RuleName;
use crate::formats::approval::{Actor, Status};
use crate::formats::rules::{Action, Facts, Rule, SetBy, decide};

/// A rule with who made it when.
#[derive(Debug, Clone, Serialize)]
pub struct StoredRule {
    #[serde(flatten)]
    pub rule: Rule,
    /// The rule as a sentence.
    pub reads: String,
    pub created_by: String,
    pub created_at: String,
}

/// An update now superseded by an update that is present on this server.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Superseded {
    pub id: String,
    pub by: Vec<String>,
}

/// A status a rule gave.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RuleDecision {
    pub id: String,
    pub rule: String,
    pub from: String,
    pub to: String,
}

/// An update a rule put in a group.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct GroupAddition {
    pub id: String,
    pub rule: String,
    pub group: String,
}

/// An update a rule would approve but cannot yet, and why.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Held {
    pub id: String,
    pub rule: String,
    pub reason: String,
}

/// What a refresh changed (or, tested, would change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RefreshReport {
    /// The day the rules were judged for.
    pub day: String,
    pub newly_superseded: Vec<Superseded>,
    /// Marked superseded before; the update that superseded it is gone or withdrawn.
    pub no_longer_superseded: Vec<String>,
    pub decisions: Vec<RuleDecision>,
    pub group_additions: Vec<GroupAddition>,
    pub held: Vec<Held>,
    /// The rules were not applied: `rules.apply` is false (a change freeze).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rules_suspended: bool,
}

impl RefreshReport {
    /// Whether a command that ended with this refresh should show it: it changed something,
    /// or the rules were suspended (which the administrator must not miss).
    pub fn worth_showing(&self) -> bool {
        self.changed_anything() || self.rules_suspended
    }

    pub fn changed_anything(&self) -> bool {
        !(self.newly_superseded.is_empty()
            && self.no_longer_superseded.is_empty()
            && self.decisions.is_empty()
            && self.group_additions.is_empty())
    }
}

fn parse_rule(path: &std::path::Path, name: &str, definition: &str) -> Result<Rule> {
    serde_json::from_str(definition).map_err(|e| Error::RegistryDamaged {
        path: path.to_path_buf(),
        reason: format!("approval rule {name:?} is damaged: {e}"),
    })
}

impl Registry {
    pub fn rules(&self) -> Result<Vec<StoredRule>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, definition, created_by, created_at FROM rules ORDER BY name")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?)))
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (name, definition, created_by, created_at) = row.map_err(self.err())?;
            let rule = parse_rule(&self.path, &name, &definition)?;
            out.push(StoredRule { reads: rule.to_string(), rule, created_by, created_at });
        }
        Ok(out)
    }

    pub fn rule(&self, name: &RuleName) -> Result<StoredRule> {
        self.rules()?
            .into_iter()
            .find(|r| r.rule.name.as_str().eq_ignore_ascii_case(name.as_str()))
            .ok_or_else(|| Error::NotFound { what: "approval rule", id: name.to_string() })
    }

    /// Stores a rule. The groups it names must exist. It takes effect at the next refresh.
    pub fn add_rule(&mut self, rule: &Rule, actor: &Actor) -> Result<StoredRule> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        for group in rule.groups() {
            require_group(&tx, &self.path, group)?;
        }
        let existing: Option<String> = tx
            .query_row("SELECT name FROM rules WHERE name = ?1", [rule.name.as_str()], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        if let Some(existing) = existing {
            return Err(Error::Invalid(format!("approval rule {existing:?} exists already")));
        }
        let definition = serde_json::to_string(rule).expect("a rule serialises");
        tx.execute(
            "INSERT INTO rules (name, definition, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![rule.name.as_str(), definition, actor.as_str(), Timestamp::now().to_string()],
        )
        .map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "rule-added",
            rule.name.as_str(),
            &serde_json::json!({"by": actor.as_str(), "rule": rule, "reads": rule.to_string()}),
        )?;
        tx.commit().map_err(&e)?;
        self.rule(&rule.name)
    }

    /// Removes a rule. What it decided stays as it is (set by that rule).
    pub fn remove_rule(&mut self, name: &RuleName, actor: &Actor) -> Result<StoredRule> {
        let stored = self.rule(name)?;
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        tx.execute("DELETE FROM rules WHERE name = ?1", [stored.rule.name.as_str()]).map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "rule-removed",
            stored.rule.name.as_str(),
            &serde_json::json!({"by": actor.as_str(), "rule": &stored.rule}),
        )?;
        tx.commit().map_err(&e)?;
        Ok(stored)
    }

    /// The names of the rules that refer to group `name`.
    pub(super) fn rules_using_group(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .rules()?
            .into_iter()
            .filter(|r| r.rule.groups().any(|g| g.as_str().eq_ignore_ascii_case(name)))
            .map(|r| r.rule.name.to_string())
            .collect())
    }

    /// Re-marks supersedence and applies the approval rules as of `day`, in one transaction
    /// with one audit entry. With `tested`, that rule joins the stored ones (replacing one
    /// of its name) and the report keeps only its own decisions, so that it is judged as it
    /// would act among the others. With `commit` false nothing is written: the report says
    /// what would change. With `apply_rules` false (a change freeze) only supersedence is
    /// marked.
    pub fn refresh(
        &mut self,
        day: Date,
        tested: Option<&Rule>,
        apply_rules: bool,
        commit: bool,
    ) -> Result<RefreshReport> {
        let path = self.path.clone();
        let e = sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let unavailable = Unavailable::load(&tx).map_err(&e)?;
        let report = refresh_in(&tx, &path, &unavailable, day, tested, apply_rules, commit)?;
        if commit {
            tx.commit().map_err(&e)?;
        }
        Ok(report)
    }
}

/// [`Registry::refresh`] inside the caller's transaction (a CSV merge refreshes in its own),
/// with the list's availability as it stands in it.
pub(super) fn refresh_in(
    tx: &Transaction<'_>,
    path: &std::path::Path,
    unavailable: &Unavailable,
    day: Date,
    tested: Option<&Rule>,
    apply_rules: bool,
    audit: bool,
) -> Result<RefreshReport> {
    let e = sql_error(path);
    let now = Timestamp::now().to_string();
    let mut report = RefreshReport { day: day.to_string(), rules_suspended: !apply_rules, ..RefreshReport::default() };
    mark_supersedence(tx, path, unavailable, &now, &mut report)?;

    let mut rules: Vec<Rule> = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT name, definition FROM rules ORDER BY name").map_err(&e)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(&e)?;
        for row in rows {
            let (name, definition) = row.map_err(&e)?;
            rules.push(parse_rule(path, &name, &definition)?);
        }
    }
    if let Some(tested) = tested {
        rules.retain(|r| !r.name.as_str().eq_ignore_ascii_case(tested.name.as_str()));
        rules.push(tested.clone());
    }
    if !rules.is_empty() && apply_rules {
        apply(tx, path, &rules, day, &now, &mut report)?;
    }
    if let Some(tested) = tested {
        let own = |rule: &str| rule.eq_ignore_ascii_case(tested.name.as_str());
        report.decisions.retain(|d| own(&d.rule));
        report.group_additions.retain(|a| own(&a.rule));
        report.held.retain(|h| own(&h.rule));
    }
    if audit && report.changed_anything() {
        // Written straight to text: a first refresh of a large list records tens of thousands
        // of decisions, and building them as a JSON tree first cost a tenth of it.
        #[derive(Serialize)]
        struct Detail<'a> {
            decisions: &'a [RuleDecision],
            group_additions: &'a [GroupAddition],
            newly_superseded: Vec<&'a str>,
            no_longer_superseded: &'a [String],
        }
        let detail = Detail {
            decisions: &report.decisions,
            group_additions: &report.group_additions,
            newly_superseded: report.newly_superseded.iter().map(|s| s.id.as_str()).collect(),
            no_longer_superseded: &report.no_longer_superseded,
        };
        append_audit(tx, path, "refresh", &report.day, &detail)?;
    }
    Ok(report)
}

/// Marks the updates that an update present here supersedes, and clears the mark of those
/// no longer superseded. Worked out from three passes (supersedence, availability, the
/// marks), not a correlated query per update: the first refresh of a large list marks
/// hundreds of thousands.
fn mark_supersedence(
    tx: &Transaction<'_>,
    path: &std::path::Path,
    unavailable: &Unavailable,
    now: &str,
    report: &mut RefreshReport,
) -> Result<()> {
    let e = sql_error(path);
    // For each superseded id: every update that claims to supersede it, and whether one of
    // them (another update) can be installed here.
    let mut claims: HashMap<String, (Vec<String>, bool)> = HashMap::new();
    {
        let mut stmt =
            tx.prepare("SELECT supersedes, update_id FROM supersedence ORDER BY supersedes, update_id").map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let (old, by): (String, String) = (r.get(0).map_err(&e)?, r.get(1).map_err(&e)?);
            let present = by != old && unavailable.available(&by);
            let claim = claims.entry(old).or_default();
            claim.1 |= present;
            claim.0.push(by);
        }
    }
    let mut newly = Vec::new();
    let mut cleared = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT id, superseded_since IS NOT NULL FROM updates ORDER BY id").map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let (id, marked): (String, bool) = (r.get(0).map_err(&e)?, r.get(1).map_err(&e)?);
            match claims.remove(&id) {
                Some((by, true)) if !marked => newly.push(Superseded { id, by }),
                Some((_, false)) | None if marked => cleared.push(id),
                _ => {}
            }
        }
    }
    // One statement for all the marks (the first refresh of a large list sets hundreds of
    // thousands), the ids passed as one JSON array.
    let newly_ids: Vec<&String> = newly.iter().map(|s| &s.id).collect();
    tx.execute(
        "UPDATE updates SET superseded_since = ?2 WHERE id IN (SELECT value FROM json_each(?1))",
        params![serde_json::to_string(&newly_ids).expect("strings serialise"), now],
    )
    .map_err(&e)?;
    tx.execute(
        "UPDATE updates SET superseded_since = NULL WHERE id IN (SELECT value FROM json_each(?1))",
        [serde_json::to_string(&cleared).expect("strings serialise")],
    )
    .map_err(&e)?;
    report.newly_superseded.extend(newly);
    report.no_longer_superseded.extend(cleared);
    Ok(())
}

/// Parses a registry date or timestamp column into the day it names.
fn day_of(value: &str) -> Option<Date> {
    value.parse::<Timestamp>().map(|t| t.date()).or_else(|_| value.get(..10).unwrap_or(value).parse()).ok()
}

fn apply(
    tx: &Transaction<'_>,
    path: &std::path::Path,
    rules: &[Rule],
    day: Date,
    now: &str,
    report: &mut RefreshReport,
) -> Result<()> {
    let e = sql_error(path);
    let mut groups: BTreeMap<String, Vec<(String, Date)>> = BTreeMap::new();
    {
        let mut stmt = tx.prepare("SELECT update_id, group_name, added_at FROM group_members").map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let added: String = r.get(2).map_err(&e)?;
            if let Some(added) = day_of(&added) {
                groups.entry(r.get(0).map_err(&e)?).or_default().push((r.get(1).map_err(&e)?, added));
            }
        }
    }
    let mut added_before: BTreeSet<(String, String)> = BTreeSet::new();
    {
        let mut stmt = tx.prepare("SELECT rule, update_id FROM rule_group_additions").map_err(&e)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?))).map_err(&e)?;
        for row in rows {
            added_before.insert(row.map_err(&e)?);
        }
    }
    let group_rules: Vec<(&Rule, &crate::base::names::GroupName)> = rules
        .iter()
        .filter_map(|r| match &r.action {
            Action::AddToGroup { group } => Some((r, group)),
            _ => None,
        })
        .collect();

    let mut stmt = tx
        .prepare(
            "SELECT u.id, u.product, u.classification, u.severity, u.release_date, u.first_seen, \
             u.superseded_since IS NOT NULL, u.status, u.status_set_by, u.withdrawn, \
             EXISTS (SELECT 1 FROM update_files x WHERE x.update_id = u.id AND x.sha256_from = 'fetch') FROM updates u ORDER BY u.id",
        )
        .map_err(&e)?;
    let mut rows = stmt.query([]).map_err(&e)?;
    let mut approvals: Vec<(String, Status, String, String)> = Vec::new();
    while let Some(r) = rows.next().map_err(&e)? {
        let id: String = r.get(0).map_err(&e)?;
        let (release, arrived): (Option<String>, String) = (r.get(4).map_err(&e)?, r.get(5).map_err(&e)?);
        let Some(arrived) = day_of(&arrived) else { continue };
        let release_date = release.as_deref().and_then(day_of);
        let status: String = r.get(7).map_err(&e)?;
        let set_by: String = r.get(8).map_err(&e)?;
        let mut facts = Facts {
            product: r.get(1).map_err(&e)?,
            classification: r.get(2).map_err(&e)?,
            severity: r.get(3).map_err(&e)?,
            release_date,
            arrived,
            superseded: r.get(6).map_err(&e)?,
            sha1_only: r.get(10).map_err(&e)?,
            withdrawn: r.get(9).map_err(&e)?,
            status: status.parse().unwrap_or(Status::Undefined),
            set_by: SetBy::from_column(&set_by),
            groups: groups.remove(&id).unwrap_or_default(),
        };
        for (rule, group) in &group_rules {
            let key = (rule.name.as_str().to_lowercase(), id.clone());
            if added_before.contains(&key) || !rule.when.matches(&facts, day) {
                continue;
            }
            let stored_group = require_group(tx, path, group)?;
            if !facts.groups.iter().any(|(g, _)| g.eq_ignore_ascii_case(&stored_group)) {
                exec(tx,
                    "INSERT OR IGNORE INTO group_members (group_name, update_id, added_by, added_at) VALUES (?1, ?2, ?3, ?4)",
                    params![stored_group, id, format!("rule {}", rule.name), now],
                )
                .map_err(&e)?;
                facts.groups.push((stored_group.clone(), day));
                report.group_additions.push(GroupAddition {
                    id: id.clone(),
                    rule: rule.name.to_string(),
                    group: stored_group,
                });
            }
            exec(
                tx,
                "INSERT OR IGNORE INTO rule_group_additions (rule, update_id, added_at) VALUES (?1, ?2, ?3)",
                params![rule.name.as_str(), id, now],
            )
            .map_err(&e)?;
        }
        if let Some((to, rule)) = decide(rules, &facts, day)
            && to != facts.status
        {
            approvals.push((id, to, status, rule.name.to_string()));
        }
    }
    drop(rows);
    drop(stmt);

    for (id, to, from, rule) in approvals {
        if let Some(reason) = super::list::hindrance_of(tx, path, &id, to)? {
            report.held.push(Held { id, rule, reason });
            continue;
        }
        exec(tx,
            "UPDATE updates SET status = ?2, status_set_by = 'rule', status_actor = ?3, status_set_at = ?4 WHERE id = ?1",
            params![id, to.as_str(), format!("rule {rule}"), now],
        )
        .map_err(&e)?;
        report.decisions.push(RuleDecision { id, rule, from, to: to.to_string() });
    }
    Ok(())
}
