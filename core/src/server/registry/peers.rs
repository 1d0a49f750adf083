//! Peer keys: the server keys of other management servers whose update lists and groups
//! this server takes (CSV exchange). Kept apart from the keys trusted for bundles: a bundle
//! key never validates a list, and a peer key never validates a bundle.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::{Registry, append_audit, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::KeyId;
use crate::formats::approval::Actor;
use crate::formats::minisign::PublicKey;

/// A peer key as `ingest trust peers` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerKey {
    pub key_id: String,
    pub public_key: String,
    pub added_by: String,
    pub added_at: String,
}

impl Registry {
    /// Trusts `key` for lists and groups from another server. Returns false if it was
    /// trusted already.
    pub fn add_peer_key(&mut self, key: &PublicKey, actor: &Actor) -> Result<bool> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let existing: Option<String> = tx
            .query_row("SELECT public_key FROM peer_keys WHERE key_id = ?1", [key.key_id.to_string()], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        if existing.as_ref().is_some_and(|k| *k != key.to_base64()) {
            return Err(Error::Invalid(format!(
                "another peer key with id {} is trusted already; remove it first",
                key.key_id
            )));
        }
        if existing.is_some() {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO peer_keys (key_id, public_key, added_by, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![key.key_id.to_string(), key.to_base64(), actor.as_str(), Timestamp::now().to_string()],
        )
        .map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "peer-trusted",
            &key.key_id.to_string(),
            &serde_json::json!({"by": actor.as_str()}),
        )?;
        tx.commit().map_err(&e)?;
        Ok(true)
    }

    /// Stops trusting a peer key.
    pub fn remove_peer_key(&mut self, key_id: &KeyId, actor: &Actor) -> Result<()> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        if tx.execute("DELETE FROM peer_keys WHERE key_id = ?1", [key_id.to_string()]).map_err(&e)? == 0 {
            return Err(Error::NotFound { what: "peer key", id: key_id.to_string() });
        }
        append_audit(&tx, &self.path, "peer-removed", &key_id.to_string(), &serde_json::json!({"by": actor.as_str()}))?;
        tx.commit().map_err(&e)
    }

    pub fn peer_keys(&self) -> Result<Vec<PeerKey>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key_id, public_key, added_by, added_at FROM peer_keys ORDER BY key_id")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PeerKey { key_id: r.get(0)?, public_key: r.get(1)?, added_by: r.get(2)?, added_at: r.get(3)? })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.err())
    }

    /// The trusted peer key with this id, if any.
    pub fn peer_key(&self, key_id: &KeyId) -> Result<Option<PublicKey>> {
        let text: Option<String> = self
            .conn
            .query_row("SELECT public_key FROM peer_keys WHERE key_id = ?1", [key_id.to_string()], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        text.map(|t| {
            PublicKey::parse(&t).map_err(|reason| Error::RegistryDamaged {
                path: self.path.to_path_buf(),
                reason: format!("peer key {key_id}: {reason}"),
            })
        })
        .transpose()
    }
}
