//! The registry's side of CSV exchange: the rows an export writes, and the merge of an
//! imported list or set of groups in one transaction.

use rusqlite::{TransactionBehavior, params};
use serde::Serialize;

use super::list::{eula_acceptance, hindrance_of, words};
use super::row::{row_columns, update_row};
use super::rules::refresh_in;
use super::{
    ImportChanges, RefreshReport, Registry, Unavailable, append_audit, exec, merge_update, query_row, sql_error,
};
use crate::base::clock::{Date, Timestamp};
use crate::base::error::Result;
use crate::formats::approval::{Skipped, Status, eula_digest};
use crate::formats::list_csv::{ExportRow, GroupRow, ListRow};
use crate::formats::model::Update;

/// What an imported list changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListMerge {
    #[serde(flatten)]
    pub updates: ImportChanges,
    /// Updates whose status a person set on the other server later than anyone here.
    pub statuses_taken: Vec<String>,
    /// Statuses the CSV gives that this server cannot take (a licence not accepted here,
    /// a withdrawn update approved).
    pub statuses_refused: Vec<Skipped>,
    pub groups_created: Vec<String>,
    pub memberships_added: usize,
    /// Updates of the CSV still missing files here: they need a bundle or `ingest register`.
    pub unavailable: Vec<String>,
    /// Files the list now describes that the store does not hold.
    pub files_missing: usize,
    /// Updates of an unsigned list that this server does not hold: without metadata they
    /// cannot be added.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_held: Vec<String>,
}

/// What imported groups changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupMerge {
    pub groups_created: Vec<String>,
    pub memberships_added: usize,
    /// Members named by the CSV that this list does not hold, as "group: id".
    pub unknown_members: Vec<String>,
}

/// Whether the list holds update `id`.
fn holds(tx: &rusqlite::Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    query_row(tx, "SELECT EXISTS (SELECT 1 FROM updates WHERE id = ?1)", [id], |r| r.get(0))
}

/// A CSV of at least this many rows is merged in bulk: see [`Registry::import_list`].
const BULK_ROWS: usize = 10_000;

/// Drops the secondary indexes of the tables a merge fills and returns the statements that
/// create them again. Inserting 200,000 updates key by key into five indexes of the update
/// table and one each of their files, supersedence and group memberships costs more than
/// building each index from its finished table with one sort (tests/bench/update-list-scale.sh:
/// a fresh import of that list went from 18.8 s to 15.0 s). The statements come from the
/// schema itself, so that they cannot drift from the migrations; the caller runs them in the
/// same transaction, so that no reader and no crash ever sees the list without them.
fn drop_secondary_indexes(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Vec<String>> {
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('updates', 'update_files', 'supersedence', 'group_members') ORDER BY name",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut create = Vec::with_capacity(indexes.len());
    for (name, sql) in indexes {
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
        create.push(sql);
    }
    Ok(create)
}

/// Describes the files of `rows` the list does not know yet (never as present: files come
/// from bundles and registration, not from a CSV), in digest order, so that the b-tree
/// fills page after page instead of splitting pages at random.
fn insert_files(
    tx: &rusqlite::Transaction<'_>,
    mut files: Vec<(crate::base::names::Sha256, u64)>,
) -> rusqlite::Result<()> {
    files.sort_unstable();
    files.dedup();
    for (digest, size) in files {
        exec(tx, "INSERT OR IGNORE INTO files (sha256, size) VALUES (?1, ?2)", params![digest.hex(), size as i64])?;
    }
    Ok(())
}

/// The digests and sizes of the files `row`'s update lists.
fn described_files(row: &ListRow) -> impl Iterator<Item = (crate::base::names::Sha256, u64)> + '_ {
    row.metadata.iter().flat_map(|m| m.update.files.iter()).map(|f| (f.sha256, f.size))
}

/// Merges one row of an imported list: the update, its licence acceptance, its status when
/// the CSV's is to be taken, and its group memberships.
fn merge_row(
    tx: &rusqlite::Transaction<'_>,
    path: &std::path::Path,
    row: &ListRow,
    metadata: bool,
    detail: &str,
    now: &str,
    merge: &mut ListMerge,
) -> Result<()> {
    let e = sql_error(path);
    let id = row.id.as_str();
    let before = merge.updates.new.len();
    let taken = row.metadata.as_ref().filter(|_| metadata);
    let local = if let Some(taken) = taken {
        // Here, an update that arrived by CSV is of origin csv whatever it was there: its
        // metadata is unsigned on this server.
        merge_update(tx, path, &taken.update, &taken.json, "csv", detail, now, &mut merge.updates)?
    } else {
        query_row(tx, "SELECT status_set_at FROM updates WHERE id = ?1", [id], |r| r.get(0)).map_err(&e)?
    };
    let is_new = merge.updates.new.len() > before;
    // A licence acceptance names the licence text of the metadata: metadata that is not
    // signed cannot vouch for which text was accepted.
    if let Some((by, at)) = &row.eula_accepted
        && let Some(eula) = taken.and_then(|t| t.update.eula.as_ref())
    {
        exec(
            tx,
            "INSERT OR IGNORE INTO eula_acceptances (update_id, eula_sha256, accepted_by, accepted_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, eula_digest(eula).hex(), by, at.to_string()],
        )
        .map_err(&e)?;
    }
    let later_by_a_person = row.status_set_by == "person"
        && local.as_deref().and_then(|l| l.parse::<Timestamp>().ok()).is_none_or(|l| row.status_set_at > l);
    // A new update arrives undefined, as the system set it: only another status needs taking.
    let default_status = row.status == Status::Undefined && row.status_set_by == "system";
    if (is_new && !default_status) || later_by_a_person {
        if let Some(reason) = hindrance_of(tx, path, id, row.status)? {
            merge.statuses_refused.push(Skipped { id: id.to_string(), reason });
        } else {
            exec(
                tx,
                "UPDATE updates SET status = ?2, status_set_by = ?3, status_actor = ?4, status_set_at = ?5 WHERE id = ?1",
                params![id, row.status.as_str(), row.status_set_by, row.status_actor, row.status_set_at.to_string()],
            )
            .map_err(&e)?;
            if !is_new && row.status != Status::Undefined {
                merge.statuses_taken.push(id.to_string());
            }
        }
    }
    for group in &row.groups {
        let created = exec(
            tx,
            "INSERT OR IGNORE INTO update_groups (name, description, created_by, created_at) VALUES (?1, '', ?2, ?3)",
            params![group.as_str(), detail, now],
        )
        .map_err(&e)?;
        if created > 0 {
            merge.groups_created.push(group.to_string());
        }
        merge.memberships_added += exec(
            tx,
            "INSERT OR IGNORE INTO group_members (group_name, update_id, added_by, added_at) VALUES (?1, ?2, 'csv', ?3)",
            params![group.as_str(), id, now],
        )
        .map_err(&e)?;
    }
    Ok(())
}

impl Registry {
    /// Calls `each` with every update as exported, by id.
    pub fn export_list(&self, mut each: impl FnMut(&ExportRow) -> Result<()>) -> Result<()> {
        // Availability from one pass over the list, not a probe per update (at 200,000
        // updates the probes were a third of the export: tests/bench/update-list-scale.sh).
        let unavailable = Unavailable::load(&self.conn).map_err(self.err())?;
        let sql = concat!(
            "SELECT ",
            row_columns!(),
            ", u.withdrawn, u.origin, u.status, u.status_set_by, u.status_actor, u.status_set_at, \
             (SELECT group_concat(gm.group_name, ' ') FROM group_members gm WHERE gm.update_id = u.id), \
             m.metadata FROM updates u JOIN update_metadata m ON m.update_id = u.id ORDER BY u.id"
        );
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        let e = self.err();
        while let Some(r) = rows.next().map_err(&e)? {
            let groups = words(r.get(16).map_err(&e)?);
            let update = update_row(r, 0).map_err(&e)?;
            let mut row = ExportRow {
                available: unavailable.available(update.id.as_str()),
                update,
                withdrawn: r.get(10).map_err(&e)?,
                origin: r.get(11).map_err(&e)?,
                status: r.get(12).map_err(&e)?,
                status_set_by: r.get(13).map_err(&e)?,
                status_actor: r.get(14).map_err(&e)?,
                status_set_at: r.get(15).map_err(&e)?,
                eula_accepted: None,
                groups,
                metadata: r.get(17).map_err(&e)?,
            };
            // Only updates with a licence need their metadata read.
            if row.metadata.contains("\"eula\"")
                && let Ok(update) = serde_json::from_str::<Update>(&row.metadata)
                && let Some(eula) = &update.eula
            {
                row.eula_accepted =
                    eula_acceptance(&self.conn, &self.path, row.update.id.as_str(), &eula_digest(eula))?
                        .map(|a| (a.by, a.at));
            }
            each(&row)?;
        }
        Ok(())
    }

    /// Merges an update list from another server, in one transaction with one audit entry:
    /// a revision never goes down; a status from the CSV wins only if a person set it later
    /// than the status here was set; group memberships are added; files are never taken
    /// from a CSV, and those the store lacks are counted. The list is then refreshed as of
    /// `day` ([`Registry::refresh`], the rules applied unless `apply_rules` is false) in the
    /// same transaction. An error from `rows` ends the merge without a change; so does
    /// `dry_run`, once everything is merged and counted.
    ///
    /// A list of [`BULK_ROWS`] rows or more is merged in bulk, the rows taken as they come:
    /// - foreign keys are not checked row by row (at 200,000 updates the checks were a
    ///   tenth of the import: tests/bench/update-list-scale.sh); every reference the merge
    ///   writes is to a row it writes itself (an update's files, supersedence and
    ///   memberships to that update; its files' digests to the files described at the end;
    ///   memberships to groups created first; the refresh's memberships to updates it read
    ///   and groups it looked up), and the tests check the result whole;
    /// - once it has merged as many rows as the list held before, the secondary indexes
    ///   are dropped and built again at the end (see [`drop_secondary_indexes`]).
    pub fn import_list(
        &mut self,
        rows: impl Iterator<Item = Result<ListRow>>,
        source: &str,
        metadata: bool,
        day: Date,
        apply_rules: bool,
        dry_run: bool,
    ) -> Result<(ListMerge, RefreshReport)> {
        let mut rows = rows;
        let mut ahead = Vec::new();
        while ahead.len() < BULK_ROWS {
            match rows.next() {
                Some(row) => ahead.push(row?),
                None => {
                    return self.merge_list(
                        ahead,
                        std::iter::empty(),
                        source,
                        false,
                        metadata,
                        (day, apply_rules, dry_run),
                    );
                }
            }
        }
        self.conn.pragma_update(None, "foreign_keys", "OFF").map_err(self.err())?;
        let merged = self.merge_list(ahead, rows, source, true, metadata, (day, apply_rules, dry_run));
        let checks_back = self.conn.pragma_update(None, "foreign_keys", "ON").map_err(self.err());
        let merged = merged?;
        checks_back?;
        Ok(merged)
    }

    /// Merges `ahead` and then `rest`; see [`Registry::import_list`] for `bulk`. Without
    /// `metadata` (a list that is not signed by a trusted peer), only the statuses and groups
    /// of updates held here are taken.
    fn merge_list(
        &mut self,
        ahead: Vec<ListRow>,
        rest: impl Iterator<Item = Result<ListRow>>,
        source: &str,
        bulk: bool,
        metadata: bool,
        (day, apply_rules, dry_run): (Date, bool, bool),
    ) -> Result<(ListMerge, RefreshReport)> {
        self.cache_for_merge(ahead.len())?;
        let path = self.path.clone();
        let e = sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let now = Timestamp::now().to_string();
        let detail = format!("CSV import from {source}");
        let mut merge = ListMerge::default();
        let held_before =
            query_row(&tx, "SELECT COUNT(*) FROM updates", [], |r| r.get::<_, i64>(0)).map_err(&e)? as usize;
        // With foreign keys checked, a file is described before the rows that name it.
        let mut files = Vec::new();
        if !bulk && metadata {
            insert_files(&tx, ahead.iter().flat_map(described_files).collect()).map_err(&e)?;
        }
        let mut rebuild = None;
        let mut ids = Vec::new();
        for row in ahead.into_iter().map(Ok).chain(rest) {
            let row = row?;
            if bulk {
                if rebuild.is_none() && ids.len() >= held_before {
                    rebuild = Some(drop_secondary_indexes(&tx).map_err(&e)?);
                }
                if metadata {
                    files.extend(described_files(&row));
                }
            }
            if !metadata && !holds(&tx, row.id.as_str()).map_err(&e)? {
                merge.not_held.push(row.id.to_string());
                continue;
            }
            merge_row(&tx, &path, &row, metadata, &detail, &now, &mut merge)?;
            ids.push(row.id.to_string());
        }
        if bulk {
            insert_files(&tx, files).map_err(&e)?;
        }
        for index in rebuild.iter().flatten() {
            tx.execute_batch(index).map_err(&e)?;
        }
        // Which of the rows' updates lack files here: one pass over the list, not one query
        // per row, and the same for the refresh.
        let unavailable = Unavailable::load(&tx).map_err(&e)?;
        let rows = ids.len();
        merge.unavailable = ids
            .into_iter()
            .filter(|id| unavailable.lacking_files.contains(id) && !unavailable.withdrawn.contains(id))
            .collect();
        merge.files_missing = query_row(&tx, "SELECT COUNT(*) FROM files WHERE present = 0", [], |r| r.get::<_, i64>(0))
            .map_err(&e)? as usize;
        append_audit(
            &tx,
            &path,
            "list-imported",
            source,
            &serde_json::json!({
                "rows": rows,
                "new": merge.updates.new.len(),
                "revised": merge.updates.revised.len(),
                "ignored": merge.updates.ignored,
                "statuses_taken": merge.statuses_taken,
                "statuses_refused": merge.statuses_refused,
                "groups_created": merge.groups_created,
                "memberships_added": merge.memberships_added,
            }),
        )?;
        let refreshed = refresh_in(&tx, &path, &unavailable, day, None, apply_rules, true)?;
        if dry_run {
            // Everything merged and refreshed as it would be, then rolled back.
            tx.rollback().map_err(&e)?;
        } else {
            tx.commit().map_err(&e)?;
        }
        Ok((merge, refreshed))
    }

    /// Every update group with its members, by name.
    pub fn export_groups(&self) -> Result<Vec<GroupRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT g.name, g.description, g.created_by, g.created_at, \
                 (SELECT group_concat(m.update_id, ' ') FROM group_members m WHERE m.group_name = g.name) \
                 FROM update_groups g ORDER BY g.name",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (name, description, created_by, created_at, members) = row.map_err(self.err())?;
            let members = words(members);
            let (Ok(name), Ok(created_at)) = (name.parse(), created_at.parse()) else { continue };
            out.push(GroupRow { name, description, created_by, created_at, members });
        }
        Ok(out)
    }

    /// Merges update groups from another server in one transaction: missing groups are
    /// created as they were there, members this list holds are added (none removed).
    pub fn import_groups(&mut self, rows: &[GroupRow], source: &str, dry_run: bool) -> Result<GroupMerge> {
        let path = self.path.clone();
        let e = sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let now = Timestamp::now().to_string();
        let mut merge = GroupMerge::default();
        for g in rows {
            let created = tx
                .execute(
                    "INSERT OR IGNORE INTO update_groups (name, description, created_by, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![g.name.as_str(), g.description, g.created_by, g.created_at.to_string()],
                )
                .map_err(&e)?;
            if created > 0 {
                merge.groups_created.push(g.name.to_string());
            }
            for id in &g.members {
                let known: bool = tx
                    .query_row("SELECT EXISTS (SELECT 1 FROM updates WHERE id = ?1)", [id], |r| r.get(0))
                    .map_err(&e)?;
                if !known {
                    merge.unknown_members.push(format!("{}: {id}", g.name));
                    continue;
                }
                merge.memberships_added += tx
                    .execute(
                        "INSERT OR IGNORE INTO group_members (group_name, update_id, added_by, added_at) VALUES (?1, ?2, 'csv', ?3)",
                        params![g.name.as_str(), id, now],
                    )
                    .map_err(&e)?;
            }
        }
        append_audit(&tx, &path, "groups-imported", source, &serde_json::to_value(&merge).expect("serialises"))?;
        if dry_run {
            tx.rollback().map_err(&e)?;
        } else {
            tx.commit().map_err(&e)?;
        }
        Ok(merge)
    }
}
