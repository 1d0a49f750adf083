//! Update groups: named sets of updates ("tested-on-servers", "sales-dept") that filters,
//! rules, reports and distribution points refer to. Names compare without letter case.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::filter::{ListFilter, require_group, select};
use super::{Registry, append_audit, available_sql, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{GroupName, UpdateId};
use crate::formats::approval::Actor;

/// Longest group description kept.
const MAX_DESCRIPTION: usize = 200;

/// A group as `ingest group list` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct GroupSummary {
    pub name: String,
    pub description: String,
    pub created_by: String,
    pub created_at: String,
    pub members: u32,
    pub approved: u32,
    pub available: u32,
}

/// What `group add` or `group remove` changed.
#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub group: String,
    /// Updates added to (or removed from) the group.
    pub changed: Vec<String>,
    /// Updates that were members already (or were not members).
    pub unchanged: Vec<String>,
}

/// A group's columns and counts, on `update_groups g`.
fn group_columns() -> String {
    format!(
        "g.name, g.description, g.created_by, g.created_at, \
         (SELECT COUNT(*) FROM group_members m WHERE m.group_name = g.name), \
         (SELECT COUNT(*) FROM group_members m JOIN updates u ON u.id = m.update_id \
            WHERE m.group_name = g.name AND u.status = 'approved'), \
         (SELECT COUNT(*) FROM group_members m JOIN updates u ON u.id = m.update_id \
            WHERE m.group_name = g.name AND {})",
        available_sql("u")
    )
}

fn group_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GroupSummary> {
    Ok(GroupSummary {
        name: r.get(0)?,
        description: r.get(1)?,
        created_by: r.get(2)?,
        created_at: r.get(3)?,
        members: r.get(4)?,
        approved: r.get(5)?,
        available: r.get(6)?,
    })
}

impl Registry {
    /// Creates an empty update group.
    pub fn create_group(&mut self, name: &GroupName, description: &str, actor: &Actor) -> Result<GroupSummary> {
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION || description.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "group {name}: the description must be at most {MAX_DESCRIPTION} characters, without control characters"
            )));
        }
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        if let Ok(existing) = require_group(&tx, &self.path, name) {
            return Err(Error::Invalid(format!("update group {existing:?} exists already")));
        }
        tx.execute(
            "INSERT INTO update_groups (name, description, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name.as_str(), description, actor.as_str(), Timestamp::now().to_string()],
        )
        .map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "group-created",
            name.as_str(),
            &serde_json::json!({"by": actor.as_str(), "description": description}),
        )?;
        tx.commit().map_err(&e)?;
        self.group(name)
    }

    /// Deletes an update group (its updates stay in the list). A group that an approval rule
    /// uses is kept: the rule would silently stop matching.
    pub fn delete_group(&mut self, name: &GroupName, actor: &Actor) -> Result<GroupSummary> {
        let group = self.group(name)?;
        let users = self.rules_using_group(&group.name)?;
        if !users.is_empty() {
            return Err(Error::Invalid(format!(
                "update group {:?} is used by approval rule {}; remove the rule first",
                group.name,
                users.join(", ")
            )));
        }
        let carriers = self.dps_carrying(&group.name)?;
        if !carriers.is_empty() {
            return Err(Error::Invalid(format!(
                "update group {:?} is carried by distribution point {}; remove the distribution point first",
                group.name,
                carriers.join(", ")
            )));
        }
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        tx.execute("DELETE FROM update_groups WHERE name = ?1", [group.name.as_str()]).map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "group-deleted",
            &group.name,
            &serde_json::json!({"by": actor.as_str(), "members": group.members}),
        )?;
        tx.commit().map_err(&e)?;
        Ok(group)
    }

    pub fn groups(&self) -> Result<Vec<GroupSummary>> {
        let sql = format!("SELECT {} FROM update_groups g ORDER BY g.name", group_columns());
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt.query_map([], group_from_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    pub fn group(&self, name: &GroupName) -> Result<GroupSummary> {
        let sql = format!("SELECT {} FROM update_groups g WHERE g.name = ?1", group_columns());
        self.conn
            .query_row(&sql, [name.as_str()], group_from_row)
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| Error::NotFound { what: "update group", id: name.to_string() })
    }

    /// Adds the updates named by `ids`, or else those `filter` matches, to group `name`.
    pub fn add_to_group(
        &mut self,
        name: &GroupName,
        ids: &[UpdateId],
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<Membership> {
        self.change_membership(name, ids, filter, actor, true)
    }

    /// Removes the updates named by `ids`, or else those `filter` matches, from group `name`.
    pub fn remove_from_group(
        &mut self,
        name: &GroupName,
        ids: &[UpdateId],
        filter: &ListFilter,
        actor: &Actor,
    ) -> Result<Membership> {
        self.change_membership(name, ids, filter, actor, false)
    }

    fn change_membership(
        &mut self,
        name: &GroupName,
        ids: &[UpdateId],
        filter: &ListFilter,
        actor: &Actor,
        add: bool,
    ) -> Result<Membership> {
        let e = sql_error(&self.path);
        let path = self.path.clone();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let group = require_group(&tx, &path, name)?;
        let selected: Vec<String> = select(&tx, &path, ids, filter, "u.id", |r| r.get(0))?;
        let now = Timestamp::now().to_string();
        let mut change = Membership { group: group.clone(), changed: vec![], unchanged: vec![] };
        for id in selected {
            let n = if add {
                tx.execute(
                    "INSERT OR IGNORE INTO group_members (group_name, update_id, added_by, added_at) VALUES (?1, ?2, ?3, ?4)",
                    params![group, id, actor.as_str(), now],
                )
            } else {
                tx.execute("DELETE FROM group_members WHERE group_name = ?1 AND update_id = ?2", params![group, id])
            }
            .map_err(&e)?;
            if n == 0 { change.unchanged.push(id) } else { change.changed.push(id) }
        }
        if !change.changed.is_empty() {
            append_audit(
                &tx,
                &path,
                if add { "group-members-added" } else { "group-members-removed" },
                &group,
                &serde_json::json!({"by": actor.as_str(), "updates": change.changed}),
            )?;
        }
        tx.commit().map_err(&e)?;
        Ok(change)
    }
}
