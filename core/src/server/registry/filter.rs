//! Which updates a command acts on: the criteria of `list`, `approve`, `decline` and the
//! group commands, as SQL over `updates u`, and the look-up of updates named by id.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::sql_error;
use crate::base::clock::Date;
use crate::base::error::{Error, Result};
use crate::base::names::{GroupName, UpdateId};
use crate::formats::model::{Classification, Severity};

/// Which updates `list` shows. Unset criteria match everything.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub products: Vec<String>,
    pub classifications: Vec<Classification>,
    pub severities: Vec<Severity>,
    pub statuses: Vec<String>,
    /// KB numbers, as "KB5034122" or "5034122".
    pub kbs: Vec<String>,
    /// Released on or before this date.
    pub released_before: Option<Date>,
    /// Released on or after this date.
    pub released_after: Option<Date>,
    /// Members of any of these update groups.
    pub groups: Vec<GroupName>,
    /// Superseded (true) or not (false) by an update present on this server.
    pub superseded: Option<bool>,
    /// With (true) or without (false) a file its vendor names by SHA-1 only.
    pub sha1_only: Option<bool>,
    pub available: Option<bool>,
}

impl ListFilter {
    /// The SQL condition (on `updates u`) and its arguments; availability is judged apart.
    pub(crate) fn condition(&self) -> (String, Vec<String>) {
        let mut sql = String::from("1 = 1");
        let mut args: Vec<String> = Vec::new();
        let mut any_of = |column: &str, values: Vec<String>, sql: &mut String| {
            if values.is_empty() {
                return;
            }
            let marks: Vec<String> = values
                .into_iter()
                .map(|v| {
                    args.push(v);
                    format!("?{}", args.len())
                })
                .collect();
            sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
        };
        any_of("u.product COLLATE NOCASE", self.products.clone(), &mut sql);
        any_of("u.classification", self.classifications.iter().map(|c| c.to_string()).collect(), &mut sql);
        any_of("u.severity", self.severities.iter().map(|c| c.to_string()).collect(), &mut sql);
        any_of("u.status", self.statuses.clone(), &mut sql);
        any_of("u.kb", self.kbs.iter().map(|k| crate::formats::model::normalise_kb(k)).collect(), &mut sql);
        if !self.groups.is_empty() {
            let marks: Vec<String> = self
                .groups
                .iter()
                .map(|g| {
                    args.push(g.to_string());
                    format!("?{}", args.len())
                })
                .collect();
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM group_members gm WHERE gm.update_id = u.id AND gm.group_name IN ({}))",
                marks.join(", ")
            ));
        }
        if let Some(superseded) = self.superseded {
            sql.push_str(if superseded {
                " AND u.superseded_since IS NOT NULL"
            } else {
                " AND u.superseded_since IS NULL"
            });
        }
        if let Some(sha1_only) = self.sha1_only {
            sql.push_str(if sha1_only {
                " AND EXISTS (SELECT 1 FROM update_files x WHERE x.update_id = u.id AND x.sha256_from = 'fetch')"
            } else {
                " AND NOT EXISTS (SELECT 1 FROM update_files x WHERE x.update_id = u.id AND x.sha256_from = 'fetch')"
            });
        }
        if let Some(d) = self.released_before {
            args.push(d.to_string());
            sql.push_str(&format!(" AND u.release_date <= ?{}", args.len()));
        }
        if let Some(d) = self.released_after {
            args.push(d.to_string());
            sql.push_str(&format!(" AND u.release_date >= ?{}", args.len()));
        }
        (sql, args)
    }
}

/// The rows (`columns` of `updates u`) of the updates named by `ids`, each of which must
/// exist, or else of those `filter` matches; a group the filter names must exist.
pub(crate) fn select<T>(
    conn: &Connection,
    path: &Path,
    ids: &[UpdateId],
    filter: &ListFilter,
    columns: &str,
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let e = sql_error(path);
    let mut selected = Vec::new();
    if ids.is_empty() {
        for group in &filter.groups {
            require_group(conn, path, group)?;
        }
        let (condition, args) = filter.condition();
        let sql = format!("SELECT {columns} FROM updates u WHERE {condition} ORDER BY u.id");
        let mut stmt = conn.prepare(&sql).map_err(&e)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row).map_err(&e)?;
        for r in rows {
            selected.push(r.map_err(&e)?);
        }
    } else {
        let sql = format!("SELECT {columns} FROM updates u WHERE u.id = ?1");
        for id in ids {
            match conn.query_row(&sql, [id.as_str()], &row).optional().map_err(&e)? {
                Some(found) => selected.push(found),
                None => return Err(Error::NotFound { what: "update", id: id.to_string() }),
            }
        }
    }
    Ok(selected)
}

/// Fails with "not found" unless group `name` exists; returns its name as stored.
pub(crate) fn require_group(conn: &Connection, path: &Path, name: &GroupName) -> Result<String> {
    conn.query_row("SELECT name FROM update_groups WHERE name = ?1", [name.as_str()], |r| r.get(0))
        .optional()
        .map_err(sql_error(path))?
        .ok_or_else(|| Error::NotFound { what: "update group", id: name.to_string() })
}
