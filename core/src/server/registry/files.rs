//! The files the registry describes, as `ingest check` compares them with the store, and the
//! chunks accepted volumes wait on.

use std::collections::BTreeMap;

use rusqlite::{TransactionBehavior, params};

use super::audit::append_audit;
use super::{Registry, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::Sha256;

/// A file the registry describes, as `ingest check` compares it with the store.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub sha256: Sha256,
    pub size: u64,
    pub present: bool,
}

impl Registry {
    /// The latest creation time of a bundle accepted on any channel: with the system clock,
    /// what "now" is at least on a server without a trusted clock.
    pub fn latest_time_seen(&self) -> Result<Option<Timestamp>> {
        let latest: Option<String> =
            self.conn.query_row("SELECT MAX(latest_time) FROM channels", [], |r| r.get(0)).map_err(self.err())?;
        Ok(latest.and_then(|t| t.parse().ok()))
    }

    /// The chunks whose file is whole in the store now: their chunk files are to be removed,
    /// and then [`Registry::forget_chunks`].
    pub fn chunks_of_whole_files(&self) -> Result<Vec<Sha256>> {
        self.chunk_digests("SELECT w.chunk FROM waiting_chunks w JOIN files f ON f.sha256 = w.file WHERE f.present = 1")
    }

    /// The chunk digests `sql` selects.
    fn chunk_digests<C: FromIterator<Sha256>>(&self, sql: &str) -> Result<C> {
        let mut stmt = self.conn.prepare(sql).map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(self.err())?;
        rows.map(|row| {
            let hex = row.map_err(self.err())?;
            hex.parse().map_err(|_| Error::RegistryDamaged {
                path: self.path.to_path_buf(),
                reason: format!("waiting chunk {hex:?} is no SHA-256"),
            })
        })
        .collect()
    }

    /// Forgets chunks whose files were removed from the store.
    pub fn forget_chunks(&mut self, chunks: &[Sha256]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let e = sql_error(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        for chunk in chunks {
            tx.execute("DELETE FROM waiting_chunks WHERE chunk = ?1", [chunk.hex()]).map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    /// The chunks accepted volumes wait on (or whose removal, once their file was whole, was
    /// interrupted: the lock holder finishes it at start).
    pub fn waiting_chunks(&self) -> Result<std::collections::BTreeSet<Sha256>> {
        self.chunk_digests("SELECT chunk FROM waiting_chunks")
    }

    /// Every file the registry describes, by digest.
    pub fn file_rows(&self) -> Result<BTreeMap<Sha256, FileRow>> {
        let mut stmt = self.conn.prepare("SELECT sha256, size, present FROM files").map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, bool>(2)?)))
            .map_err(self.err())?;
        let mut files = BTreeMap::new();
        for row in rows {
            let (hex, size, present) = row.map_err(self.err())?;
            let sha256: Sha256 = hex.parse().map_err(|_| Error::RegistryDamaged {
                path: self.path.to_path_buf(),
                reason: format!("file row {hex:?} is not a SHA-256"),
            })?;
            files.insert(sha256, FileRow { sha256, size: size as u64, present });
        }
        Ok(files)
    }

    /// SQLite's own consistency check of the registry file: "ok", or what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(self.err())?;
        let lines = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())?;
        Ok(lines.join("; "))
    }

    /// Records what `ingest check --repair` did, in one transaction: files now known to be in
    /// the store, files no longer there, and the repair in the audit log.
    pub fn record_repair(&mut self, present: &[Sha256], absent: &[Sha256], detail: &serde_json::Value) -> Result<()> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let now = Timestamp::now().to_string();
        for d in present {
            tx.execute("UPDATE files SET present = 1, stored_at = ?2 WHERE sha256 = ?1", params![d.hex(), now])
                .map_err(&e)?;
        }
        for d in absent {
            tx.execute("UPDATE files SET present = 0, stored_at = NULL WHERE sha256 = ?1", [d.hex()]).map_err(&e)?;
        }
        append_audit(&tx, &self.path, "check-repair", "store", detail)?;
        tx.commit().map_err(&e)
    }
}
