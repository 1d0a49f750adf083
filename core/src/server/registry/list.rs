//! The update list: what `list` and `show` print, and the approval decisions a person takes
//! on it (status and licence acceptance).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::filter::{ListFilter, select};
use super::row::{row_columns, update_row};
use super::{Registry, append_audit, available_sql, query_row, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{Sha256, UpdateId};
use crate::formats::approval::{self, Actor, Candidate, Changed, Skipped, Status, StatusChange};
use crate::formats::model::{Update, UpdateRow};
use crate::formats::rules::SetBy;

/// Who accepted the licence of update `id` in the wording whose digest is `eula`, and when.
pub(super) fn eula_acceptance(
    conn: &Connection,
    path: &std::path::Path,
    id: &str,
    eula: &Sha256,
) -> Result<Option<EulaAcceptance>> {
    conn.prepare_cached(
        "SELECT accepted_by, accepted_at FROM eula_acceptances WHERE update_id = ?1 AND eula_sha256 = ?2",
    )
    .and_then(|mut s| {
        s.query_row(params![id, eula.hex()], |r| Ok(EulaAcceptance { by: r.get(0)?, at: r.get(1)? })).optional()
    })
    .map_err(sql_error(path))
}

/// Why update `id` (with its withdrawn flag and stored metadata) cannot take status `to`:
/// withdrawn by its vendor, or a licence not accepted in its current wording.
pub(super) fn hindrance(
    conn: &Connection,
    path: &std::path::Path,
    id: &str,
    withdrawn: bool,
    metadata: &str,
    to: Status,
) -> Result<Option<String>> {
    if to != Status::Approved {
        return Ok(None);
    }
    // Only metadata that mentions a licence needs parsing (a refresh may judge thousands).
    let update: Option<Update> = if metadata.contains("\"eula\"") { serde_json::from_str(metadata).ok() } else { None };
    let eula = update.as_ref().and_then(|u| u.eula.as_ref());
    let accepted_eula = match eula {
        Some(licence) => {
            let digest = approval::eula_digest(licence);
            eula_acceptance(conn, path, id, &digest)?.map(|_| digest)
        }
        None => None,
    };
    Ok(approval::hindrance(to, &Candidate { id, withdrawn, eula, accepted_eula }))
}

/// [`hindrance`] for update `id` as the registry holds it.
pub(super) fn hindrance_of(conn: &Connection, path: &std::path::Path, id: &str, to: Status) -> Result<Option<String>> {
    if to != Status::Approved {
        return Ok(None);
    }
    let (withdrawn, metadata): (bool, String) = query_row(
        conn,
        "SELECT u.withdrawn, m.metadata FROM updates u JOIN update_metadata m ON m.update_id = u.id WHERE u.id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(sql_error(path))?;
    hindrance(conn, path, id, withdrawn, &metadata, to)
}

/// An update's licence, as `ingest eula show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct EulaView {
    pub id: String,
    pub title: String,
    pub eula: crate::formats::model::Eula,
    /// What identifies this wording: an acceptance is for one wording.
    pub sha256: Sha256,
    pub accepted: Option<EulaAcceptance>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EulaAcceptance {
    pub by: String,
    pub at: String,
}

/// One row of the update list, as `ingest list --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateSummary {
    #[serde(flatten)]
    pub update: UpdateRow,
    pub withdrawn: bool,
    pub origin: String,
    pub status: Status,
    pub status_set_by: String,
    /// Shown by `show`; left out of `list --json`, so that two servers holding the same
    /// content print the same list whenever they received it.
    #[serde(skip)]
    pub status_set_at: String,
    pub available: bool,
    pub files: u32,
    pub files_present: u32,
    pub superseded_by: Vec<String>,
    /// Whether an update that is present on this server (every file in the store, not
    /// withdrawn) supersedes it; marked by each refresh.
    pub superseded: bool,
    /// Since when; shown by `show` (left out of `list --json` like `status_set_at`).
    #[serde(skip)]
    pub superseded_since: Option<String>,
    /// The update groups it belongs to.
    pub groups: Vec<String>,
}

/// One update in full, as `ingest show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateDetail {
    #[serde(flatten)]
    pub summary: UpdateSummary,
    pub origin_detail: String,
    pub status_set_at: String,
    pub status_actor: Option<String>,
    pub first_seen: String,
    pub updated_at: String,
    pub metadata: Update,
    /// Digests of this update's files that are not in the store yet.
    pub missing_files: Vec<String>,
    pub superseded_since: Option<String>,
    /// What supersedes this update, what supersedes that, and so on, nearest first.
    pub supersedence_chain: Vec<ChainLink>,
}

/// One step of a supersedence chain: `id` is superseded by `by`.
#[derive(Debug, Clone, Serialize)]
pub struct ChainLink {
    pub id: String,
    pub by: String,
    /// Whether the list knows `by` at all ...
    pub known: bool,
    /// ... and whether it is present (every file in the store, not withdrawn).
    pub present: bool,
}

/// Longest supersedence chain followed; a longer one (or a cycle) is cut there.
const MAX_CHAIN: usize = 256;

/// The metadata of update `u`, as a column.
const METADATA: &str = "(SELECT m.metadata FROM update_metadata m WHERE m.update_id = u.id)";

const SUMMARY_COLUMNS: &str = concat!(
    row_columns!(),
    ", u.withdrawn, u.origin, u.status, u.status_set_by, u.status_set_at, \
     (SELECT COUNT(*) FROM update_files uf WHERE uf.update_id = u.id), \
     (SELECT COUNT(*) FROM update_files uf JOIN files f ON f.sha256 = uf.sha256 WHERE uf.update_id = u.id AND f.present = 1), \
     (SELECT group_concat(s.update_id, ' ') FROM supersedence s WHERE s.supersedes = u.id), \
     (SELECT group_concat(gm.group_name, ' ') FROM group_members gm WHERE gm.update_id = u.id), \
     u.superseded_since"
);

/// The column after [`SUMMARY_COLUMNS`].
const AFTER_SUMMARY: usize = 20;

/// Splits a `group_concat(…, ' ')` of names into a sorted list.
pub(super) fn words(joined: Option<String>) -> Vec<String> {
    let mut words: Vec<String> = joined.map(|s| s.split(' ').map(str::to_string).collect()).unwrap_or_default();
    words.sort();
    words
}

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UpdateSummary> {
    let superseded_since: Option<String> = row.get(19)?;
    let withdrawn: bool = row.get(10)?;
    let files: u32 = row.get(15)?;
    let files_present: u32 = row.get(16)?;
    Ok(UpdateSummary {
        update: update_row(row, 0)?,
        withdrawn,
        origin: row.get(11)?,
        status: row.get(12)?,
        status_set_by: row.get(13)?,
        status_set_at: row.get(14)?,
        available: !withdrawn && files > 0 && files == files_present,
        files,
        files_present,
        superseded_by: words(row.get(17)?),
        groups: words(row.get(18)?),
        superseded: superseded_since.is_some(),
        superseded_since,
    })
}

impl Registry {
    // ----- the update list -----

    pub fn list(&self, filter: &ListFilter) -> Result<Vec<UpdateSummary>> {
        for group in &filter.groups {
            super::filter::require_group(&self.conn, &self.path, group)?;
        }
        let (condition, args) = filter.condition();
        let sql =
            format!("SELECT {SUMMARY_COLUMNS} FROM updates u WHERE {condition} ORDER BY u.release_date DESC, u.id");
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), summary_from_row).map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let row = row.map_err(self.err())?;
            if filter.available.is_none_or(|a| a == row.available) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Every product the list holds, once, in order.
    pub fn products(&self) -> Result<Vec<String>> {
        let mut stmt =
            self.conn.prepare("SELECT DISTINCT product FROM updates ORDER BY product").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    // ----- approval -----

    /// Gives `to` to the updates named by `ids`, or else to those `filter` matches, in one
    /// transaction with one audit entry naming `actor`. An update that cannot take the
    /// status (approving a withdrawn update, or one whose licence is not accepted) refuses
    /// the whole command when named by id, and is skipped and reported when matched by a
    /// filter. A filter also skips, and reports, an update whose status a person set (here,
    /// or on another server by CSV), unless `override_people`: only naming it, or saying so,
    /// overturns a person's decision. Reset (to undefined) hands the update back to the
    /// rules; by filter it reports the people's decisions it hands back.
    pub fn set_status(
        &mut self,
        ids: &[UpdateId],
        filter: &ListFilter,
        to: Status,
        actor: &Actor,
        override_people: bool,
        dry_run: bool,
    ) -> Result<StatusChange> {
        let e = sql_error(&self.path);
        let path = self.path.clone();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        type Row = (String, String, bool, String, String, Option<String>);
        let selected: Vec<Row> = select(
            &tx,
            &path,
            ids,
            filter,
            &format!("u.id, u.status, u.withdrawn, {METADATA}, u.status_set_by, u.status_actor"),
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
        let mut change = StatusChange {
            status: to,
            actor: actor.clone(),
            changed: vec![],
            unchanged: vec![],
            skipped: vec![],
            handed_back: vec![],
            dry_run,
        };
        let mut refusals = Vec::new();
        for (id, from, withdrawn, metadata, set_by, decided_by) in selected {
            let by_person = SetBy::from_column(&set_by) == SetBy::Person && from != Status::Undefined.as_str();
            if by_person && ids.is_empty() && !override_people && to != Status::Undefined && from != to.as_str() {
                let who = decided_by.map_or_else(String::new, |a| format!(" ({a})"));
                change.skipped.push(Skipped {
                    id,
                    reason: format!(
                        "a person{who} set it to {from}: a filter does not overturn that; name the update, or add --override-people"
                    ),
                });
                continue;
            }
            if by_person && to == Status::Undefined && ids.is_empty() {
                change.handed_back.push(id.clone());
            }
            if let Some(reason) = hindrance(&tx, &path, &id, withdrawn, &metadata, to)? {
                if ids.is_empty() {
                    change.skipped.push(Skipped { id, reason });
                } else {
                    refusals.push(format!("{id}: {reason}"));
                }
                continue;
            }
            if from == to.as_str() && to != Status::Undefined {
                change.unchanged.push(id);
                continue;
            }
            change.changed.push(Changed { id, from, to });
        }
        if !refusals.is_empty() {
            return Err(Error::Invalid(format!("nothing was changed: cannot set {to}: {}", refusals.join("; "))));
        }
        if dry_run {
            // What would change, said; the transaction is dropped, so nothing is written.
            return Ok(change);
        }
        let now = Timestamp::now().to_string();
        // A person's decision holds against the rules; a reset hands the update back to them.
        let set_by = if to == Status::Undefined { "system" } else { "person" };
        for c in &change.changed {
            tx.execute(
                "UPDATE updates SET status = ?2, status_set_by = ?3, status_actor = ?4, status_set_at = ?5 WHERE id = ?1",
                params![c.id, to.as_str(), set_by, actor.as_str(), now],
            )
            .map_err(&e)?;
        }
        if !change.changed.is_empty() {
            let ids: Vec<&str> = change.changed.iter().map(|c| c.id.as_str()).collect();
            append_audit(
                &tx,
                &path,
                "status-set",
                to.as_str(),
                &serde_json::json!({"by": actor.as_str(), "updates": ids}),
            )?;
        }
        tx.commit().map_err(&e)?;
        Ok(change)
    }

    /// The licence of update `id`: its wording, and who accepted it when.
    pub fn eula(&self, id: &UpdateId) -> Result<EulaView> {
        let metadata: Option<String> = self
            .conn
            .query_row("SELECT metadata FROM update_metadata WHERE update_id = ?1", [id.as_str()], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        let Some(metadata) = metadata else {
            return Err(Error::NotFound { what: "update", id: id.to_string() });
        };
        let update: Update = serde_json::from_str(&metadata).map_err(|e| Error::RegistryDamaged {
            path: self.path.to_path_buf(),
            reason: format!("metadata of {id} is damaged: {e}"),
        })?;
        let Some(eula) = update.eula else {
            return Err(Error::NotFound { what: "licence of update", id: id.to_string() });
        };
        let digest = approval::eula_digest(&eula);
        let accepted = eula_acceptance(&self.conn, &self.path, id.as_str(), &digest)?;
        Ok(EulaView { id: id.to_string(), title: update.title, eula, sha256: digest, accepted })
    }

    /// Records that `actor` accepted the licence of update `id`, in the wording it has now.
    pub fn accept_eula(&mut self, id: &UpdateId, actor: &Actor) -> Result<EulaView> {
        let view = self.eula(id)?;
        if view.accepted.is_some() {
            return Ok(view);
        }
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let now = Timestamp::now().to_string();
        tx.execute(
            "INSERT INTO eula_acceptances (update_id, eula_sha256, accepted_by, accepted_at) VALUES (?1, ?2, ?3, ?4)",
            params![id.as_str(), view.sha256.hex(), actor.as_str(), now],
        )
        .map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "eula-accepted",
            id.as_str(),
            &serde_json::json!({"by": actor.as_str(), "eula_sha256": view.sha256.hex()}),
        )?;
        tx.commit().map_err(&e)?;
        self.eula(id)
    }

    pub fn show(&self, id: &UpdateId) -> Result<UpdateDetail> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, u.origin_detail, u.status_actor, u.first_seen, u.updated_at, {METADATA} \
             FROM updates u WHERE u.id = ?1"
        );
        let found = self
            .conn
            .query_row(&sql, [id.as_str()], |r| {
                Ok((
                    summary_from_row(r)?,
                    r.get::<_, String>(AFTER_SUMMARY)?,
                    r.get(AFTER_SUMMARY + 1)?,
                    r.get(AFTER_SUMMARY + 2)?,
                    r.get(AFTER_SUMMARY + 3)?,
                    r.get::<_, String>(AFTER_SUMMARY + 4)?,
                ))
            })
            .optional()
            .map_err(self.err())?;
        let Some((summary, origin_detail, status_actor, first_seen, updated_at, metadata)) = found else {
            return Err(Error::NotFound { what: "update", id: id.to_string() });
        };
        let metadata: Update = serde_json::from_str(&metadata).map_err(|e| Error::RegistryDamaged {
            path: self.path.to_path_buf(),
            reason: format!("metadata of {id} is damaged: {e}"),
        })?;
        let mut missing = Vec::new();
        for f in &metadata.files {
            if !self.has_file(&f.sha256)? {
                missing.push(f.sha256.hex());
            }
        }
        let status_set_at = summary.status_set_at.clone();
        let superseded_since = summary.superseded_since.clone();
        let supersedence_chain = self.supersedence_chain(id)?;
        Ok(UpdateDetail {
            superseded_since,
            supersedence_chain,
            summary,
            origin_detail,
            status_set_at,
            status_actor,
            first_seen,
            updated_at,
            metadata,
            missing_files: missing,
        })
    }

    /// Follows "superseded by" from update `id`, breadth first, each update once.
    fn supersedence_chain(&self, id: &UpdateId) -> Result<Vec<ChainLink>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.update_id, n.id IS NOT NULL, n.id IS NOT NULL AND {} \
                 FROM supersedence s LEFT JOIN updates n ON n.id = s.update_id \
                 WHERE s.supersedes = ?1 ORDER BY s.update_id",
                available_sql("n")
            ))
            .map_err(self.err())?;
        let mut chain = Vec::new();
        let mut seen = std::collections::BTreeSet::from([id.to_string()]);
        let mut queue = std::collections::VecDeque::from([id.to_string()]);
        while let Some(current) = queue.pop_front() {
            let rows = stmt
                .query_map([&current], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
                .map_err(self.err())?;
            for row in rows {
                let (by, known, present) = row.map_err(self.err())?;
                if chain.len() == MAX_CHAIN {
                    return Ok(chain);
                }
                chain.push(ChainLink { id: current.clone(), by: by.clone(), known, present });
                if seen.insert(by.clone()) {
                    queue.push_back(by);
                }
            }
        }
        Ok(chain)
    }
}
