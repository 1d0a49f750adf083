//! Change reports as stored: one row each, the report itself as JSON.

use rusqlite::{OptionalExtension, params};

use super::Registry;
use super::row::{row_columns, update_row};
use crate::base::error::{Error, Result};
use crate::base::names::Sha256;
use crate::server::report::{Arrival, ChangeReport, Entry, ReportHeader, ReportKind};

impl Registry {
    /// Stores `report` and returns its number.
    pub fn store_report(&mut self, report: &ChangeReport) -> Result<u64> {
        let path = self.path.clone();
        let e = super::sql_error(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute(
            "INSERT INTO reports (created_at, kind, by_whom, headline, body, refreshed_day) VALUES (?1, ?2, ?3, ?4, '', ?5)",
            params![report.created, report.kind.to_string(), report.by, report.headline(), report.day],
        )
        .map_err(&e)?;
        let id = tx.last_insert_rowid() as u64;
        let stored = ChangeReport { id, ..report.clone() };
        let body = serde_json::to_string(&stored).expect("a report serialises");
        tx.execute("UPDATE reports SET body = ?2 WHERE id = ?1", params![id as i64, body]).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(id)
    }

    /// Report `id`, or the latest one.
    pub fn report(&self, id: Option<u64>) -> Result<ChangeReport> {
        let found: Option<(i64, String)> = match id {
            Some(id) => self
                .conn
                .query_row("SELECT id, body FROM reports WHERE id = ?1", [id as i64], |r| Ok((r.get(0)?, r.get(1)?))),
            None => self
                .conn
                .query_row("SELECT id, body FROM reports ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))),
        }
        .optional()
        .map_err(self.err())?;
        match found {
            Some((id, body)) => crate::server::report::from_stored(id as u64, &body),
            None => Err(Error::NotFound {
                what: "change report",
                id: id.map_or_else(|| "(none stored yet)".to_string(), |i| i.to_string()),
            }),
        }
    }

    /// The headers of the latest `limit` reports, newest first.
    pub fn reports(&self, limit: usize) -> Result<Vec<ReportHeader>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, created_at, by_whom, headline FROM reports ORDER BY id DESC LIMIT ?1")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                let kind: String = r.get(1)?;
                Ok((r.get::<_, i64>(0)?, kind, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, created, by, headline) = row.map_err(self.err())?;
            let kind =
                ReportKind::ALL.into_iter().find(|k| k.to_string() == kind).ok_or_else(|| Error::RegistryDamaged {
                    path: self.path.clone(),
                    reason: format!("change report {id} has an unknown kind {kind:?}"),
                })?;
            out.push(ReportHeader { id: id as u64, kind, created, by, headline });
        }
        Ok(out)
    }

    /// How each of `ids` in the list stands now, for a change report, with its revision (a
    /// report names at most [`crate::server::report::DETAIL_LIMIT`] updates: one look-up each).
    pub fn report_lines(&self, ids: &[String]) -> Result<Vec<Entry>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {}, u.status, {}, u.withdrawn FROM updates u WHERE u.id = ?1",
                row_columns!(),
                super::available_sql("u")
            ))
            .map_err(self.err())?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let line = stmt
                .query_row([id], |r| {
                    Ok(Entry { withdrawn: r.get(12)?, ..Entry::listed(update_row(r, 0)?, r.get(10)?, r.get(11)?) })
                })
                .optional()
                .map_err(self.err())?;
            out.extend(line);
        }
        Ok(out)
    }

    /// Calls `each` with the id, product and severity of every update, for the counts of a
    /// report too large to name every update.
    pub fn each_product_and_severity(&self, mut each: impl FnMut(&str, &str, &str)) -> Result<()> {
        let e = self.err();
        let mut stmt = self.conn.prepare("SELECT id, product, severity FROM updates").map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let text = |i| r.get_ref(i).and_then(|v| v.as_str().map_err(Into::into)).map_err(&e);
            each(text(0)?, text(1)?, text(2)?);
        }
        Ok(())
    }

    /// For each of `digests` the list knows: its size, the names it goes by and its updates.
    pub fn arrivals(&self, digests: &[Sha256]) -> Result<Vec<Arrival>> {
        let mut size = self.conn.prepare("SELECT size FROM files WHERE sha256 = ?1").map_err(self.err())?;
        let mut uses = self
            .conn
            .prepare(
                "SELECT DISTINCT name, update_id, CASE WHEN sha256_from = 'fetch' THEN sha1 END FROM update_files \
                 WHERE sha256 = ?1 ORDER BY update_id, name",
            )
            .map_err(self.err())?;
        let mut out = Vec::new();
        for d in digests {
            let Some(bytes) = size.query_row([d.hex()], |r| r.get::<_, i64>(0)).optional().map_err(self.err())? else {
                continue;
            };
            let mut names = Vec::new();
            let mut updates = Vec::new();
            let mut sha1_only = None;
            let rows = uses
                .query_map([d.hex()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
                })
                .map_err(self.err())?;
            for row in rows {
                let (name, update, sha1) = row.map_err(self.err())?;
                sha1_only = sha1_only.or(sha1);
                if !names.contains(&name) {
                    names.push(name);
                }
                if !updates.contains(&update) {
                    updates.push(update);
                }
            }
            out.push(Arrival { sha256: d.hex(), size: bytes as u64, names, updates, sha1_only });
        }
        Ok(out)
    }
}
