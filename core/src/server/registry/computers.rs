//! Computers: what each reported (per facet), the computer groups with their policies, and
//! the stored judgment. The rules of the judgment are in `formats::compliance`; this file
//! loads their facts and keeps their results.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::{Registry, append_audit, exec, query_row};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{ComputerGroupName, ComputerName, DpName, GroupName, Sha256};
use crate::formats::approval::Actor;
use crate::formats::compliance::{
    self, ComputerFacts, GraceFrom, Level, Policy, PolicyUpdate, ScanFacts, UpdateIndex, Verdict,
};
use crate::formats::inventory::{Facet, Hotfix, Inventory, Os, Package, Program};
use crate::formats::model::{Severity, Update};

/// Longest computer group description kept.
const MAX_DESCRIPTION: usize = 200;

/// Where the time that orders an inventory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFrom {
    /// The inventory's own time.
    Report,
    /// The file's modification time: the format gives none.
    File,
}

impl TimeFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeFrom::Report => "report",
            TimeFrom::File => "file",
        }
    }
}

/// One inventory to record, with where it came from.
pub struct InventoryRecord {
    pub inventory: Inventory,
    pub time: Timestamp,
    pub time_from: TimeFrom,
    /// The file it was read from, as given.
    pub source: String,
    pub sha256: Sha256,
}

/// What recording one inventory changed.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryOutcome {
    pub computer: String,
    pub source: String,
    pub format: String,
    pub time: Timestamp,
    pub time_from: TimeFrom,
    /// The computer was not known before.
    pub new_computer: bool,
    /// Facets this inventory replaced.
    pub replaced: Vec<Facet>,
    /// Facets kept because the stored one is as new or newer, with its time.
    pub kept: Vec<(Facet, String)>,
}

/// A computer group and its policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComputerGroup {
    pub name: String,
    pub description: String,
    /// A test group: its computers receive updates first (from its pilot point).
    pub test: bool,
    pub policy: Policy,
    /// The distribution point its computers install from.
    pub point: Option<String>,
    /// The level at which a worsening is notified.
    pub notify_level: Level,
    pub computers: u32,
    pub created_by: String,
    pub created_at: String,
}

/// What `computer-group add`/`set` give; None leaves a value as it is (or at its default).
#[derive(Debug, Clone, Default)]
pub struct GroupSettings {
    pub description: Option<String>,
    pub test: Option<bool>,
    /// Some(None) for all approved updates.
    pub update_group: Option<Option<GroupName>>,
    pub grace_days: Option<u32>,
    pub grace_from: Option<GraceFrom>,
    pub point: Option<Option<DpName>>,
    pub notify_level: Option<Level>,
}

/// A computer as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ComputerSummary {
    pub name: String,
    pub group: Option<String>,
    pub os: Option<String>,
    pub build: Option<String>,
    pub last_report: String,
    /// No report for longer than the days the administrator set.
    pub stale: bool,
    /// None until judged.
    pub level: Option<Level>,
    pub applicable: u32,
    pub satisfied: u32,
    pub within_grace: u32,
    pub missing: u32,
    pub failed: u32,
    pub unknown: u32,
    pub judged_at: Option<String>,
}

/// Where one facet of a computer came from.
#[derive(Debug, Clone, Serialize)]
pub struct FacetSource {
    pub facet: Facet,
    pub reported_at: String,
    pub time_from: String,
    pub format: String,
    pub source: String,
    pub sha256: String,
    pub imported_at: String,
}

/// A stored verdict that is not satisfied.
#[derive(Debug, Clone, Serialize)]
pub struct StoredJudgment {
    pub computer: String,
    pub update: String,
    pub verdict: Verdict,
    pub reason: String,
}

/// Per update: the computers of its policy it is not applied on.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateStatus {
    pub id: String,
    pub title: String,
    pub kb: Option<String>,
    pub severity: Severity,
    pub not_applied: u32,
    pub missing: u32,
    pub within_grace: u32,
    pub failed: u32,
    pub unknown: u32,
    /// The store holds its files (a distribution point can carry it).
    pub available: bool,
}

/// Counts of computers per group and level on one day.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    pub day: String,
    pub group: String,
    pub level: Level,
    pub computers: u32,
}

/// What judging every computer found.
#[derive(Debug, Clone, Serialize)]
pub struct JudgmentRun {
    pub computers: u32,
    pub judged_at: Timestamp,
    /// Computers per level.
    pub levels: Vec<(Level, u32)>,
    /// Groups whose worst level got worse than at the previous judgment: (group, before, now).
    pub worsened: Vec<(String, Level, Level)>,
}

const GROUP_COLUMNS: &str = "g.name, g.description, g.test, g.update_group, g.grace_days, g.grace_from, g.point, \
     g.notify_level, (SELECT COUNT(*) FROM computers c WHERE c.group_name = g.name), g.created_by, g.created_at";

fn group_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ComputerGroup> {
    Ok(ComputerGroup {
        name: r.get(0)?,
        description: r.get(1)?,
        test: r.get(2)?,
        policy: Policy { update_group: r.get(3)?, grace_days: r.get(4)?, grace_from: r.get(5)? },
        point: r.get(6)?,
        notify_level: r.get(7)?,
        computers: r.get(8)?,
        created_by: r.get(9)?,
        created_at: r.get(10)?,
    })
}

impl Registry {
    /// Records inventories in one transaction, each facet replacing the stored one only when
    /// newer. A computer is made on its first inventory.
    pub fn record_inventories(&mut self, items: &[InventoryRecord], actor: &Actor) -> Result<Vec<InventoryOutcome>> {
        // An inventory is some 500 rows: a batch writes as many as a large merge.
        self.cache_for_merge(items.len() * 4)?;
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let now = Timestamp::now().to_string();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let inv = &item.inventory;
            let time = item.time.to_string();
            let existing: Option<i64> =
                query_row(&tx, "SELECT id FROM computers WHERE name = ?1", [inv.computer.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(&e)?;
            let new_computer = existing.is_none();
            let id = match existing {
                Some(id) => id,
                None => {
                    exec(
                        &tx,
                        "INSERT INTO computers (name, first_seen, last_report) VALUES (?1, ?2, ?3)",
                        params![inv.computer.as_str(), now, time],
                    )
                    .map_err(&e)?;
                    tx.last_insert_rowid()
                }
            };
            let mut outcome = InventoryOutcome {
                computer: inv.computer.to_string(),
                source: item.source.clone(),
                format: inv.format.as_str().to_string(),
                time: item.time,
                time_from: item.time_from,
                new_computer,
                replaced: Vec::new(),
                kept: Vec::new(),
            };
            for facet in inv.facets() {
                let stored: Option<String> = query_row(
                    &tx,
                    "SELECT reported_at FROM computer_facets WHERE computer_id = ?1 AND facet = ?2",
                    params![id, facet.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&e)?;
                if let Some(stored) = stored
                    && stored >= time
                {
                    outcome.kept.push((facet, stored));
                    continue;
                }
                write_facet(&tx, id, facet, inv).map_err(&e)?;
                exec(
                    &tx,
                    "INSERT OR REPLACE INTO computer_facets (computer_id, facet, reported_at, time_from, format, source, \
                     sha256, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        id,
                        facet.as_str(),
                        time,
                        item.time_from.as_str(),
                        inv.format.as_str(),
                        item.source,
                        item.sha256.to_string(),
                        now
                    ],
                )
                .map_err(&e)?;
                outcome.replaced.push(facet);
            }
            exec(&tx, "UPDATE computers SET last_report = max(last_report, ?2) WHERE id = ?1", params![id, time])
                .map_err(&e)?;
            outcomes.push(outcome);
        }
        let changed = outcomes.iter().filter(|o| !o.replaced.is_empty()).count();
        append_audit(
            &tx,
            &self.path,
            "inventories-imported",
            &format!("{changed} of {} inventories", outcomes.len()),
            &serde_json::json!({
                "by": actor.as_str(),
                "inventories": outcomes.iter().map(|o| serde_json::json!({
                    "computer": o.computer, "source": o.source, "time": o.time, "replaced": o.replaced,
                })).collect::<Vec<_>>(),
            }),
        )?;
        tx.commit().map_err(&e)?;
        Ok(outcomes)
    }

    /// Removes a computer and everything it reported.
    pub fn remove_computer(&mut self, name: &ComputerName, actor: &Actor) -> Result<String> {
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let stored: Option<String> = tx
            .query_row("SELECT name FROM computers WHERE name = ?1", [name.as_str()], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        let Some(stored) = stored else {
            return Err(Error::NotFound { what: "computer", id: name.to_string() });
        };
        tx.execute("DELETE FROM computers WHERE name = ?1", [name.as_str()]).map_err(&e)?;
        append_audit(&tx, &self.path, "computer-removed", &stored, &serde_json::json!({"by": actor.as_str()}))?;
        tx.commit().map_err(&e)?;
        Ok(stored)
    }

    /// Creates a computer group, or changes one (`create` false).
    pub fn save_computer_group(
        &mut self,
        name: &ComputerGroupName,
        settings: &GroupSettings,
        create: bool,
        actor: &Actor,
    ) -> Result<ComputerGroup> {
        if let Some(d) = &settings.description
            && (d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control))
        {
            return Err(Error::Invalid(format!(
                "computer group {name}: the description must be at most {MAX_DESCRIPTION} characters, without control characters"
            )));
        }
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let existing: Option<String> = tx
            .query_row("SELECT name FROM computer_groups WHERE name = ?1", [name.as_str()], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        match (&existing, create) {
            (Some(n), true) => return Err(Error::Invalid(format!("computer group {n:?} exists already"))),
            (None, false) => return Err(Error::NotFound { what: "computer group", id: name.to_string() }),
            _ => {}
        }
        if let Some(Some(g)) = &settings.update_group {
            let found: Option<String> = tx
                .query_row("SELECT name FROM update_groups WHERE name = ?1", [g.as_str()], |r| r.get(0))
                .optional()
                .map_err(&e)?;
            if found.is_none() {
                return Err(Error::NotFound { what: "update group", id: g.to_string() });
            }
        }
        if let Some(Some(p)) = &settings.point {
            let found: Option<String> = tx
                .query_row("SELECT name FROM distribution_points WHERE name = ?1", [p.as_str()], |r| r.get(0))
                .optional()
                .map_err(&e)?;
            if found.is_none() {
                return Err(Error::NotFound { what: "distribution point", id: p.to_string() });
            }
        }
        if create {
            tx.execute(
                "INSERT INTO computer_groups (name, created_by, created_at) VALUES (?1, ?2, ?3)",
                params![name.as_str(), actor.as_str(), Timestamp::now().to_string()],
            )
            .map_err(&e)?;
        }
        let n = name.as_str();
        // Each setting given, as its column and value; the others stay as they are.
        use rusqlite::types::Value;
        let text = |t: &str| Value::Text(t.to_string());
        let optional = |t: Option<&str>| t.map_or(Value::Null, text);
        let changes: Vec<(&str, Value)> = [
            settings.description.as_deref().map(|d| ("description", text(d.trim()))),
            settings.test.map(|t| ("test", Value::Integer(i64::from(t)))),
            settings.update_group.as_ref().map(|g| ("update_group", optional(g.as_ref().map(|g| g.as_str())))),
            settings.grace_days.map(|d| ("grace_days", Value::Integer(i64::from(d)))),
            settings.grace_from.map(|f| ("grace_from", text(f.as_str()))),
            settings.point.as_ref().map(|p| ("point", optional(p.as_ref().map(|p| p.as_str())))),
            settings.notify_level.map(|l| ("notify_level", text(l.as_str()))),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (column, value) in changes {
            tx.execute(&format!("UPDATE computer_groups SET {column} = ?2 WHERE name = ?1"), params![n, value])
                .map_err(&e)?;
        }
        let group = tx
            .query_row(&format!("SELECT {GROUP_COLUMNS} FROM computer_groups g WHERE g.name = ?1"), [n], group_from_row)
            .map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            if create { "computer-group-created" } else { "computer-group-changed" },
            &group.name,
            &serde_json::json!({"by": actor.as_str(), "policy": group.policy, "test": group.test, "point": group.point}),
        )?;
        tx.commit().map_err(&e)?;
        Ok(group)
    }

    /// Deletes a computer group; its computers stay, in no group.
    pub fn delete_computer_group(&mut self, name: &ComputerGroupName, actor: &Actor) -> Result<ComputerGroup> {
        let group = self.computer_group(name)?;
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        tx.execute("UPDATE computers SET group_name = NULL WHERE group_name = ?1", [group.name.as_str()])
            .map_err(&e)?;
        tx.execute("DELETE FROM computer_groups WHERE name = ?1", [group.name.as_str()]).map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "computer-group-deleted",
            &group.name,
            &serde_json::json!({"by": actor.as_str()}),
        )?;
        tx.commit().map_err(&e)?;
        Ok(group)
    }

    pub fn computer_group(&self, name: &ComputerGroupName) -> Result<ComputerGroup> {
        self.conn
            .query_row(
                &format!("SELECT {GROUP_COLUMNS} FROM computer_groups g WHERE g.name = ?1"),
                [name.as_str()],
                group_from_row,
            )
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| Error::NotFound { what: "computer group", id: name.to_string() })
    }

    pub fn computer_groups(&self) -> Result<Vec<ComputerGroup>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {GROUP_COLUMNS} FROM computer_groups g ORDER BY g.name COLLATE NOCASE"))
            .map_err(self.err())?;
        let rows = stmt.query_map([], group_from_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Puts computers into a group (or into none); every one must be known.
    pub fn assign_computers(
        &mut self,
        group: Option<&ComputerGroupName>,
        names: &[ComputerName],
        actor: &Actor,
    ) -> Result<Vec<String>> {
        let group_name = match group {
            Some(g) => Some(self.computer_group(g)?.name),
            None => None,
        };
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let mut done = Vec::new();
        for name in names {
            let stored: Option<String> = tx
                .query_row("SELECT name FROM computers WHERE name = ?1", [name.as_str()], |r| r.get(0))
                .optional()
                .map_err(&e)?;
            let Some(stored) = stored else {
                return Err(Error::NotFound { what: "computer", id: name.to_string() });
            };
            tx.execute("UPDATE computers SET group_name = ?2 WHERE name = ?1", params![name.as_str(), group_name])
                .map_err(&e)?;
            done.push(stored);
        }
        append_audit(
            &tx,
            &self.path,
            "computers-assigned",
            group_name.as_deref().unwrap_or("(no group)"),
            &serde_json::json!({"by": actor.as_str(), "computers": done}),
        )?;
        tx.commit().map_err(&e)?;
        Ok(done)
    }

    /// Every computer (or those of `group`), by name.
    pub fn computers(
        &self,
        group: Option<&ComputerGroupName>,
        stale_days: u32,
        now: Timestamp,
    ) -> Result<Vec<ComputerSummary>> {
        let stale_before = Timestamp::from_unix_seconds(now.unix_seconds() - i64::from(stale_days) * 86_400)
            .unwrap_or(now)
            .to_string();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.name, c.group_name, c.os_product, c.os_build, c.last_report, s.level, s.applicable, \
                 s.installed + s.superseded + s.scan_clear, s.within_grace, s.missing, s.failed, s.unknown, s.judged_at \
                 FROM computers c LEFT JOIN computer_status s ON s.computer_id = c.id \
                 WHERE ?1 IS NULL OR c.group_name = ?1 ORDER BY c.name COLLATE NOCASE",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([group.map(|g| g.as_str())], |r| {
                let last_report: String = r.get(4)?;
                Ok(ComputerSummary {
                    name: r.get(0)?,
                    group: r.get(1)?,
                    os: r.get(2)?,
                    build: r.get(3)?,
                    stale: last_report < stale_before,
                    last_report,
                    level: r.get(5)?,
                    applicable: r.get::<_, Option<u32>>(6)?.unwrap_or(0),
                    satisfied: r.get::<_, Option<u32>>(7)?.unwrap_or(0),
                    within_grace: r.get::<_, Option<u32>>(8)?.unwrap_or(0),
                    missing: r.get::<_, Option<u32>>(9)?.unwrap_or(0),
                    failed: r.get::<_, Option<u32>>(10)?.unwrap_or(0),
                    unknown: r.get::<_, Option<u32>>(11)?.unwrap_or(0),
                    judged_at: r.get(12)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// A computer's stored key, name and group, by name.
    pub fn computer_key(&self, name: &ComputerName) -> Result<(i64, String, Option<String>)> {
        self.conn
            .query_row("SELECT id, name, group_name FROM computers WHERE name = ?1", [name.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| Error::NotFound { what: "computer", id: name.to_string() })
    }

    /// Where each facet of a computer came from.
    pub fn computer_sources(&self, id: i64) -> Result<Vec<FacetSource>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT facet, reported_at, time_from, format, source, sha256, imported_at FROM computer_facets \
                 WHERE computer_id = ?1",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(FacetSource {
                    facet: r.get(0)?,
                    reported_at: r.get(1)?,
                    time_from: r.get(2)?,
                    format: r.get(3)?,
                    source: r.get(4)?,
                    sha256: r.get(5)?,
                    imported_at: r.get(6)?,
                })
            })
            .map_err(self.err())?;
        let mut out: Vec<FacetSource> = rows.collect::<rusqlite::Result<_>>().map_err(self.err())?;
        out.sort_by_key(|f| f.facet);
        Ok(out)
    }

    /// What a computer reported, and what the client's installations say, as the judgment
    /// needs it.
    pub fn computer_facts(&self, id: i64) -> Result<ComputerFacts> {
        computer_facts(&self.conn, id, Wanted::ALL).map_err(self.err())
    }

    /// The policy that judges computers of `group` (the default policy for none).
    pub fn policy_of(&self, group: Option<&str>) -> Result<Policy> {
        match group {
            None => Ok(Policy::default_policy()),
            Some(g) => Ok(self.computer_group(&g.parse()?)?.policy),
        }
    }

    /// Every approved update, with what the judgment needs, and the KB and supersedence
    /// indexes over the whole list.
    pub fn judgment_index(&self) -> Result<UpdateIndex> {
        judgment_index(&self.conn).map_err(self.err())
    }

    /// Judges every computer against its group's policy as of `now` and stores the result,
    /// in one transaction: the verdicts that are not satisfied, a summary per computer, and
    /// today's count per group and level.
    pub fn judge_computers(&mut self, now: Timestamp) -> Result<JudgmentRun> {
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let index = judgment_index(&self.conn).map_err(&e)?;
        let groups: FxHashMap<String, Policy> =
            self.computer_groups()?.into_iter().map(|g| (g.name.to_ascii_lowercase(), g.policy)).collect();
        let before = worst_per_group(&self.conn).map_err(&e)?;
        let wanted = Wanted::of(&index);
        self.cache_for_merge(index.updates.len())?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        tx.execute("DELETE FROM computer_status", []).map_err(&e)?;
        let computers: Vec<(i64, Option<String>)> = {
            let mut stmt = tx.prepare("SELECT id, group_name FROM computers ORDER BY id").map_err(&e)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&e)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&e)?
        };
        let default_policy = Policy::default_policy();
        let judged_at = now.to_string();
        let mut per_group: FxHashMap<(String, Level), u32> = FxHashMap::default();
        let mut levels: FxHashMap<Level, u32> = FxHashMap::default();
        for (id, group) in &computers {
            let policy = group.as_ref().and_then(|g| groups.get(&g.to_ascii_lowercase())).unwrap_or(&default_policy);
            let facts = computer_facts(&tx, *id, wanted).map_err(&e)?;
            let judgments = compliance::judge(&index, &facts, policy, now);
            let mut counts: FxHashMap<Verdict, u32> = FxHashMap::default();
            for j in &judgments {
                *counts.entry(j.verdict).or_default() += 1;
            }
            store_judgments(&tx, *id, &index, &judgments).map_err(&e)?;
            let level = compliance::level(judgments.iter().map(|j| (j.verdict, index.updates[j.update].severity)));
            let count = |v: Verdict| counts.get(&v).copied().unwrap_or(0);
            exec(
                &tx,
                "INSERT INTO computer_status (computer_id, level, applicable, installed, superseded, scan_clear, \
                 within_grace, missing, failed, unknown, judged_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    level.as_str(),
                    judgments.len() as u32,
                    count(Verdict::Installed),
                    count(Verdict::Superseded),
                    count(Verdict::ScanClear),
                    count(Verdict::WithinGrace),
                    count(Verdict::Missing),
                    count(Verdict::Failed),
                    count(Verdict::Unknown),
                    judged_at
                ],
            )
            .map_err(&e)?;
            *per_group.entry((group.clone().unwrap_or_default(), level)).or_default() += 1;
            *levels.entry(level).or_default() += 1;
        }
        let day = now.date().to_string();
        tx.execute("DELETE FROM compliance_history WHERE day = ?1", [&day]).map_err(&e)?;
        for ((group, level), n) in &per_group {
            tx.execute(
                "INSERT INTO compliance_history (day, group_name, level, computers) VALUES (?1, ?2, ?3, ?4)",
                params![day, group, level.as_str(), n],
            )
            .map_err(&e)?;
        }
        let after = worst_per_group(&tx).map_err(&e)?;
        tx.commit().map_err(&e)?;
        let mut worsened: Vec<(String, Level, Level)> = after
            .iter()
            .filter_map(|(g, now_level)| {
                // A group judged for the first time has nothing to get worse from.
                let was = before.get(g).copied()?;
                (*now_level > was).then(|| (g.clone(), was, *now_level))
            })
            .collect();
        worsened.sort();
        let mut levels: Vec<(Level, u32)> = levels.into_iter().collect();
        levels.sort();
        Ok(JudgmentRun { computers: computers.len() as u32, judged_at: now, levels, worsened })
    }

    /// The stored verdicts that are not satisfied, by computer then update.
    pub fn unsatisfied(&self) -> Result<Vec<StoredJudgment>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.name, j.update_id, j.verdict, j.reason FROM judgments j JOIN computers c ON c.id = j.computer_id \
                 ORDER BY c.name COLLATE NOCASE, j.update_id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredJudgment { computer: r.get(0)?, update: r.get(1)?, verdict: r.get(2)?, reason: r.get(3)? })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Per update: how many computers it is not applied on, most first.
    pub fn update_status(&self) -> Result<Vec<UpdateStatus>> {
        let unavailable = super::Unavailable::load(&self.conn).map_err(self.err())?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT j.update_id, u.title, u.kb, u.severity, COUNT(*), \
                 SUM(j.verdict = 'missing'), SUM(j.verdict = 'within-grace'), SUM(j.verdict = 'failed'), \
                 SUM(j.verdict = 'unknown') \
                 FROM judgments j JOIN updates u ON u.id = j.update_id GROUP BY j.update_id \
                 ORDER BY COUNT(*) DESC, j.update_id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                let id: String = r.get(0)?;
                Ok(UpdateStatus {
                    available: unavailable.available(&id),
                    id,
                    title: r.get(1)?,
                    kb: r.get(2)?,
                    severity: r.get(3)?,
                    not_applied: r.get(4)?,
                    missing: r.get(5)?,
                    within_grace: r.get(6)?,
                    failed: r.get(7)?,
                    unknown: r.get(8)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// Computers per group and level, day by day.
    pub fn compliance_history(&self) -> Result<Vec<HistoryPoint>> {
        let mut stmt = self
            .conn
            .prepare("SELECT day, group_name, level, computers FROM compliance_history ORDER BY day, group_name, level")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(HistoryPoint { day: r.get(0)?, group: r.get(1)?, level: r.get(2)?, computers: r.get(3)? })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }
}

/// The worst level per group (computers in no group under "").
/// Stores a computer's verdicts that are not satisfied, writing only what changed since the
/// last judgment: judging 10,000 computers again, most of whose 1.7 million stored verdicts
/// stand, rewrote them all and took most of the time (tests/bench/computers-scale.sh).
fn store_judgments(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    index: &UpdateIndex,
    judgments: &[compliance::Judgment],
) -> rusqlite::Result<()> {
    let mut stored: FxHashMap<String, (String, String)> = FxHashMap::default();
    {
        let mut stmt = tx.prepare_cached("SELECT update_id, verdict, reason FROM judgments WHERE computer_id = ?1")?;
        let mut rows = stmt.query([id])?;
        while let Some(r) = rows.next()? {
            stored.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
        }
    }
    for j in judgments.iter().filter(|j| !j.verdict.satisfied()) {
        let update = &index.updates[j.update].id;
        match stored.remove(update) {
            Some((verdict, reason)) if verdict == j.verdict.as_str() && reason == j.reason => {}
            _ => {
                exec(
                    tx,
                    "INSERT OR REPLACE INTO judgments (computer_id, update_id, verdict, reason) VALUES (?1, ?2, ?3, ?4)",
                    params![id, update, j.verdict.as_str(), j.reason],
                )?;
            }
        }
    }
    for gone in stored.keys() {
        exec(tx, "DELETE FROM judgments WHERE computer_id = ?1 AND update_id = ?2", params![id, gone])?;
    }
    Ok(())
}

fn worst_per_group(conn: &rusqlite::Connection) -> rusqlite::Result<FxHashMap<String, Level>> {
    let mut out: FxHashMap<String, Level> = FxHashMap::default();
    let mut stmt = conn.prepare(
        "SELECT coalesce(c.group_name, ''), s.level FROM computer_status s JOIN computers c ON c.id = s.computer_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let group: String = r.get(0)?;
        let level: Level = r.get(1)?;
        let entry = out.entry(group.to_ascii_lowercase()).or_insert(level);
        *entry = (*entry).max(level);
    }
    Ok(out)
}

/// Replaces one facet of computer `id` with what `inv` says.
fn write_facet(tx: &rusqlite::Transaction<'_>, id: i64, facet: Facet, inv: &Inventory) -> rusqlite::Result<()> {
    match facet {
        Facet::Os => {
            let os = inv.os.as_ref().expect("a facet the inventory carries");
            exec(
                tx,
                "UPDATE computers SET os_product = ?2, os_build = ?3, os_arch = ?4 WHERE id = ?1",
                params![id, os.product, os.build, os.architecture],
            )?;
        }
        Facet::Hotfixes => {
            exec(tx, "DELETE FROM computer_hotfixes WHERE computer_id = ?1", [id])?;
            for h in inv.hotfixes.as_deref().unwrap_or_default() {
                exec(
                    tx,
                    "INSERT INTO computer_hotfixes (computer_id, kb, description, installed_on) VALUES (?1, ?2, ?3, ?4)",
                    params![id, h.kb, h.description, h.installed_on.map(|d| d.to_string())],
                )?;
            }
        }
        Facet::Programs => {
            exec(tx, "DELETE FROM computer_programs WHERE computer_id = ?1", [id])?;
            for (n, p) in inv.programs.as_deref().unwrap_or_default().iter().enumerate() {
                exec(
                    tx,
                    "INSERT INTO computer_programs (computer_id, n, name, version, publisher, product_code) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, n as i64, p.name, p.version, p.publisher, p.product_code],
                )?;
            }
        }
        Facet::Packages => {
            exec(tx, "DELETE FROM computer_packages WHERE computer_id = ?1", [id])?;
            for (n, p) in inv.packages.as_deref().unwrap_or_default().iter().enumerate() {
                exec(
                    tx,
                    "INSERT INTO computer_packages (computer_id, n, package_id, version, source) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, n as i64, p.id, p.version, p.source],
                )?;
            }
        }
        Facet::Scan => {
            let scan = inv.scan.as_ref().expect("a facet the inventory carries");
            exec(tx, "DELETE FROM computer_scan_missing WHERE computer_id = ?1", [id])?;
            exec(
                tx,
                "INSERT OR REPLACE INTO computer_scans (computer_id, scanned, catalog_sha256) VALUES (?1, ?2, ?3)",
                params![id, scan.scanned.to_string(), scan.catalog_sha256.map(|d| d.to_string())],
            )?;
            for m in &scan.missing {
                exec(
                    tx,
                    "INSERT OR IGNORE INTO computer_scan_missing (computer_id, update_id, kb, title) VALUES (?1, ?2, ?3, ?4)",
                    params![id, m.update_id, m.kb, m.title],
                )?;
            }
        }
    }
    Ok(())
}

/// Which facets beyond the OS, installed updates and scan a judgment reads: programs and
/// winget packages are many rows per computer, and only some updates look at them.
#[derive(Clone, Copy)]
struct Wanted {
    programs: bool,
    packages: bool,
}

impl Wanted {
    const ALL: Wanted = Wanted { programs: true, packages: true };

    fn of(index: &UpdateIndex) -> Wanted {
        Wanted { programs: index.needs_programs(), packages: index.needs_packages() }
    }
}

fn computer_facts(conn: &rusqlite::Connection, id: i64, wanted: Wanted) -> rusqlite::Result<ComputerFacts> {
    let mut facts = ComputerFacts::default();
    let facets: FxHashSet<String> = {
        let mut stmt = conn.prepare_cached("SELECT facet FROM computer_facets WHERE computer_id = ?1")?;
        stmt.query_map([id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    if facets.contains("os") {
        facts.os = conn
            .prepare_cached("SELECT os_product, os_build, os_arch FROM computers WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(match (r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?) {
                    (Some(product), Some(build)) => Some(Os { product, build, architecture: r.get(2)? }),
                    _ => None,
                })
            })?;
    }
    if facets.contains("hotfixes") {
        let mut stmt = conn.prepare_cached("SELECT kb FROM computer_hotfixes WHERE computer_id = ?1")?;
        facts.hotfixes = Some(
            stmt.query_map([id], |r| Ok(Hotfix { kb: r.get(0)?, description: None, installed_on: None }))?
                .collect::<rusqlite::Result<_>>()?,
        );
    }
    if wanted.programs && facets.contains("programs") {
        let mut stmt = conn.prepare_cached(
            "SELECT name, version, publisher, product_code FROM computer_programs WHERE computer_id = ?1",
        )?;
        facts.programs = Some(
            stmt.query_map([id], |r| {
                Ok(Program { name: r.get(0)?, version: r.get(1)?, publisher: r.get(2)?, product_code: r.get(3)? })
            })?
            .collect::<rusqlite::Result<_>>()?,
        );
    }
    if wanted.packages && facets.contains("packages") {
        let mut stmt =
            conn.prepare_cached("SELECT package_id, version, source FROM computer_packages WHERE computer_id = ?1")?;
        facts.packages = Some(
            stmt.query_map([id], |r| Ok(Package { id: r.get(0)?, version: r.get(1)?, source: r.get(2)? }))?
                .collect::<rusqlite::Result<_>>()?,
        );
    }
    if facets.contains("scan") {
        let scanned: Option<Timestamp> = conn
            .prepare_cached("SELECT scanned FROM computer_scans WHERE computer_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if let Some(scanned) = scanned {
            let mut scan = ScanFacts { scanned, missing_ids: FxHashSet::default(), missing_kbs: FxHashSet::default() };
            let mut stmt =
                conn.prepare_cached("SELECT update_id, kb FROM computer_scan_missing WHERE computer_id = ?1")?;
            let mut rows = stmt.query([id])?;
            while let Some(r) = rows.next()? {
                scan.missing_ids.insert(r.get(0)?);
                if let Some(kb) = r.get::<_, Option<String>>(1)? {
                    scan.missing_kbs.insert(kb);
                }
            }
            facts.scan = Some(scan);
        }
    }
    // The client's installations: the latest result per update decides.
    let mut stmt = conn.prepare_cached(
        "SELECT update_id, outcome, at FROM install_results r WHERE computer_id = ?1 \
         AND at = (SELECT max(at) FROM install_results x WHERE x.computer_id = r.computer_id AND x.update_id = r.update_id)",
    )?;
    let mut rows = stmt.query([id])?;
    while let Some(r) = rows.next()? {
        let update: String = r.get(0)?;
        let outcome: String = r.get(1)?;
        let at: Timestamp = r.get(2)?;
        if outcome == "failure" {
            facts.failed.insert(update, at);
        } else {
            facts.installed_by_client.insert(update, at);
        }
    }
    Ok(facts)
}

fn judgment_index(conn: &rusqlite::Connection) -> rusqlite::Result<UpdateIndex> {
    let mut index = UpdateIndex::default();
    let mut groups: FxHashMap<String, Vec<String>> = FxHashMap::default();
    {
        let mut stmt = conn.prepare("SELECT update_id, lower(group_name) FROM group_members")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            groups.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
    }
    {
        let mut stmt = conn.prepare("SELECT update_id, supersedes FROM supersedence")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let by: String = r.get(0)?;
            index.superseded_by.entry(r.get(1)?).or_default().push(by);
        }
    }
    {
        let mut stmt = conn.prepare("SELECT id, kb FROM updates WHERE kb IS NOT NULL")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            index.by_kb.entry(r.get(1)?).or_default().push(id);
        }
    }
    let mut stmt = conn.prepare(
        "SELECT u.id, u.status_set_at, m.metadata FROM updates u JOIN update_metadata m ON m.update_id = u.id \
         WHERE u.status = 'approved' AND u.withdrawn = 0 ORDER BY u.id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let approved_at: Timestamp = r.get(1)?;
        let metadata: String = r.get(2)?;
        let Ok(update) = serde_json::from_str::<Update>(&metadata) else { continue };
        index.updates.push(PolicyUpdate {
            microsoft_guid: crate::formats::inventory::is_guid(&id),
            groups: groups.remove(&id).unwrap_or_default(),
            id,
            kb: update.kb,
            product: update.product,
            version: update.version,
            severity: update.severity,
            release_date: update.release_date,
            approved_at: Some(approved_at),
            applicability: update.applicability,
        });
    }
    Ok(index)
}
