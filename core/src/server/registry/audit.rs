//! The audit log: a hash chain of every change, appended inside the transaction that makes it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{Registry, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::Sha256;

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub event: String,
    pub subject: String,
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// What `audit verify` proved.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub entries: u64,
    /// The hash of the last entry: keep it (a receipt does) to prove later that no entry
    /// after it was removed.
    pub head: Option<String>,
}

impl Registry {
    /// Calls `each` with every audit log row as stored (seq and the six text columns, in the
    /// order the hash covers them), oldest first.
    fn audit_rows(&self, mut each: impl FnMut(i64, [String; 6]) -> Result<()>) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, event, subject, detail, prev_hash, hash FROM audit_log ORDER BY seq")
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        while let Some(r) = rows.next().map_err(self.err())? {
            let seq: i64 = r.get(0).map_err(self.err())?;
            let mut fields: [String; 6] = Default::default();
            for (i, field) in fields.iter_mut().enumerate() {
                *field = r.get(i + 1).map_err(self.err())?;
            }
            each(seq, fields)?;
        }
        Ok(())
    }

    /// Calls `each` for every audit log entry, oldest first.
    pub fn audit_entries(&self, mut each: impl FnMut(AuditEntry) -> Result<()>) -> Result<()> {
        self.audit_rows(|seq, [at, event, subject, detail, prev_hash, hash]| {
            let detail = serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail));
            each(AuditEntry { seq, at, event, subject, detail, prev_hash, hash })
        })
    }

    /// Recomputes the audit log's hash chain: every entry must hash to its recorded hash and
    /// name the previous entry's hash, with no gap in the numbering. With `head`, the chain
    /// must also still hold the entry with that hash (taken from a receipt), so that
    /// removing the latest entries shows too.
    pub fn verify_audit(&self, head: Option<&str>) -> Result<AuditReport> {
        let broken = |seq: i64, reason: String| Error::AuditBroken { path: self.path.clone(), seq, reason };
        let mut prev = "0".repeat(64);
        let mut expected_seq = None;
        let mut entries = 0;
        let mut head_seen = head.is_none();
        self.audit_rows(|seq, [at, event, subject, detail, prev_hash, hash]| {
            if let Some(want) = expected_seq
                && seq != want
            {
                return Err(broken(seq, format!("entries {want} to {} are missing", seq - 1)));
            }
            if prev_hash != prev {
                return Err(broken(
                    seq,
                    "it does not follow the entry before it (an entry was removed or changed)".into(),
                ));
            }
            if audit_hash(&prev_hash, &at, &event, &subject, &detail).hex() != hash {
                return Err(broken(seq, "its content does not match its hash (the entry was edited)".into()));
            }
            head_seen |= head == Some(hash.as_str());
            prev = hash;
            expected_seq = Some(seq + 1);
            entries += 1;
            Ok(())
        })?;
        if !head_seen {
            return Err(broken(
                expected_seq.unwrap_or(1),
                format!("no entry has hash {}: entries after it were removed", head.unwrap_or_default()),
            ));
        }
        Ok(AuditReport { entries, head: (entries > 0).then_some(prev) })
    }

    /// The hash of the latest audit entry.
    pub fn audit_head(&self) -> Result<Option<String>> {
        audit_head(&self.conn, &self.path)
    }
}

/// Appends one entry to the hash-chained audit log: each entry's hash covers the previous
/// hash and the entry's own fields, so an edited or deleted entry breaks the chain.
pub(super) fn append_audit(
    tx: &Transaction<'_>,
    path: &Path,
    event: &str,
    subject: &str,
    detail: &impl Serialize,
) -> Result<()> {
    let e = sql_error(path);
    let prev = audit_head(tx, path)?.unwrap_or_else(|| "0".repeat(64));
    let at = Timestamp::now().to_string();
    let detail = serde_json::to_string(detail).expect("an audit detail serialises");
    let hash = audit_hash(&prev, &at, event, subject, &detail);
    tx.execute(
        "INSERT INTO audit_log (at, event, subject, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, event, subject, detail, prev, hash.hex()],
    )
    .map_err(&e)?;
    Ok(())
}

/// The hash of the latest audit entry, which the next one chains to.
pub(super) fn audit_head(conn: &Connection, path: &Path) -> Result<Option<String>> {
    conn.query_row("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
        .optional()
        .map_err(sql_error(path))
}

pub(super) fn audit_hash(prev: &str, at: &str, event: &str, subject: &str, detail: &str) -> Sha256 {
    // Length-prefixed fields, so that no two different entries hash the same bytes.
    let mut bytes = Vec::new();
    for field in [prev, at, event, subject, detail] {
        bytes.extend_from_slice(&(field.len() as u64).to_le_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    Sha256::of(&bytes)
}
