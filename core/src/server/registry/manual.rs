//! Files registered by hand: finding what the list knows of a file, and recording the
//! registration in one transaction.

use rusqlite::{TransactionBehavior, params};

use super::{ImportChanges, Registry, append_audit, merge_update, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{FileName, Sha256, UpdateId};
use crate::formats::approval::Actor;
use crate::formats::model::Update;

/// A file of an update in the list.
#[derive(Debug, Clone)]
pub struct KnownFile {
    pub update_id: String,
    pub name: String,
    pub sha256: Sha256,
}

/// Everything one manual registration writes.
pub struct ManualRecord<'a> {
    /// Digest and size of every file, now in the store.
    pub files: Vec<(Sha256, u64)>,
    /// The manual update made of files the list did not know.
    pub new_update: Option<&'a Update>,
    pub actor: &'a Actor,
    /// The paths registered, for the audit log.
    pub source: &'a str,
}

impl Registry {
    fn known_files(&self, condition: &str, value: &str) -> Result<Vec<KnownFile>> {
        let sql = format!("SELECT update_id, name, sha256 FROM update_files WHERE {condition} ORDER BY update_id");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = stmt
            .query_map([value], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(self.err())?;
        let mut out = Vec::new();
        for row in rows {
            let (update_id, name, hex) = row.map_err(self.err())?;
            let sha256 = hex.parse().map_err(|_| Error::RegistryDamaged {
                path: self.path.to_path_buf(),
                reason: format!("file of {update_id} has no valid SHA-256"),
            })?;
            out.push(KnownFile { update_id, name, sha256 });
        }
        Ok(out)
    }

    /// The update files with this digest.
    pub fn files_with_digest(&self, digest: &Sha256) -> Result<Vec<KnownFile>> {
        self.known_files("sha256 = ?1", &digest.hex())
    }

    /// The update files with this name (letter case ignored).
    pub fn files_named(&self, name: &FileName) -> Result<Vec<KnownFile>> {
        self.known_files("name = ?1 COLLATE NOCASE", name.as_str())
    }

    /// The files of update `id`, which must be in the list.
    pub fn files_of(&self, id: &UpdateId) -> Result<Vec<KnownFile>> {
        let known: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM updates WHERE id = ?1)", [id.as_str()], |r| r.get(0))
            .map_err(self.err())?;
        if !known {
            return Err(Error::NotFound { what: "update", id: id.to_string() });
        }
        self.known_files("update_id = ?1", id.as_str())
    }

    /// Records files registered by hand (already in the store) and the manual update they
    /// form, in one transaction with one audit entry.
    pub fn record_manual(&mut self, record: &ManualRecord<'_>) -> Result<ImportChanges> {
        let path = self.path.clone();
        let e = sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let now = Timestamp::now().to_string();
        let mut changes = ImportChanges::default();
        if let Some(update) = record.new_update {
            for f in &update.files {
                tx.execute(
                    "INSERT OR IGNORE INTO files (sha256, size) VALUES (?1, ?2)",
                    params![f.sha256.hex(), f.size as i64],
                )
                .map_err(&e)?;
            }
            let detail = format!("registered by hand by {} from {}", record.actor, record.source);
            merge_update(&tx, &path, update, &update.stored_json(), "manual", &detail, &now, &mut changes)?;
        }
        for (digest, _) in &record.files {
            let n = tx
                .execute(
                    "UPDATE files SET present = 1, stored_at = ?2 WHERE sha256 = ?1 AND present = 0",
                    params![digest.hex(), now],
                )
                .map_err(&e)?;
            changes.files_stored += n;
            if n > 0 {
                changes.arrived.push(*digest);
            }
        }
        append_audit(
            &tx,
            &path,
            "manual-registration",
            record.new_update.map_or("known updates", |u| u.id.as_str()),
            &serde_json::json!({
                "by": record.actor.as_str(),
                "source": record.source,
                "files": record.files.iter().map(|(d, size)| serde_json::json!({"sha256": d.hex(), "size": size})).collect::<Vec<_>>(),
                "new_update": record.new_update.map(|u| u.id.as_str()),
                "changes": &changes,
            }),
        )?;
        tx.commit().map_err(&e)?;
        Ok(changes)
    }
}
