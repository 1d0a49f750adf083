//! Trust as the registry keeps it: keys trusted per channel, thresholds, trust versions and
//! the rotation statements applied, and the clock each channel's expiry is judged against.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::audit::append_audit;
use super::{Registry, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{Channel, KeyId, Sha256};
use crate::formats::minisign::PublicKey;
use crate::formats::rotation::Rotation;
use crate::formats::trust::TrustStore;

/// A trusted key as listed.
#[derive(Debug, Clone, Serialize)]
pub struct TrustedKey {
    pub channel: String,
    pub key_id: String,
    pub public_key: String,
    pub added_at: String,
    /// The channel's threshold: how many distinct trusted keys must sign its bundles.
    pub threshold: usize,
}

impl Registry {
    /// Adds a trusted key to a channel. Returns false if it was trusted already.
    pub fn add_trusted_key(&mut self, channel: &Channel, key: &PublicKey) -> Result<bool> {
        let now = Timestamp::now().to_string();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_error(&self.path))?;
        let e = sql_error(&self.path);
        tx.execute("INSERT OR IGNORE INTO channels (channel) VALUES (?1)", [channel.as_str()]).map_err(&e)?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT public_key FROM trusted_keys WHERE channel = ?1 AND key_id = ?2",
                params![channel.as_str(), key.key_id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(&e)?;
        if existing.is_some_and(|k| k != key.to_base64()) {
            // Signatures name their key by id: two keys with one id would make it ambiguous
            // which key a signature counts for.
            return Err(Error::TrustPolicy {
                channel: channel.to_string(),
                reason: format!("another key with id {} is trusted already; remove it first", key.key_id),
            });
        }
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO trusted_keys (channel, key_id, public_key, added_at) VALUES (?1, ?2, ?3, ?4)",
                params![channel.as_str(), key.key_id.to_string(), key.to_base64(), now],
            )
            .map_err(&e)?
            == 1;
        if added {
            append_audit(
                &tx,
                &self.path,
                "trust-added",
                channel.as_str(),
                &serde_json::json!({"key_id": key.key_id.to_string()}),
            )?;
        }
        tx.commit().map_err(&e)?;
        Ok(added)
    }

    /// Removes a trusted key, unless that would leave the channel fewer keys than its
    /// threshold (no bundle could be accepted then).
    pub fn remove_trusted_key(&mut self, channel: &Channel, key_id: &KeyId) -> Result<()> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let (keys, threshold) = channel_policy(&tx, &self.path, channel)?;
        if keys > 0 && keys - 1 < threshold && keys - 1 > 0 {
            return Err(Error::TrustPolicy {
                channel: channel.to_string(),
                reason: format!(
                    "removing key {key_id} would leave {} keys for a threshold of {threshold}; lower the threshold first (`ingest trust threshold`)",
                    keys - 1
                ),
            });
        }
        let removed = tx
            .execute(
                "DELETE FROM trusted_keys WHERE channel = ?1 AND key_id = ?2",
                params![channel.as_str(), key_id.to_string()],
            )
            .map_err(&e)?;
        if removed == 0 {
            return Err(Error::NotFound { what: "trusted key", id: format!("{key_id} in channel {channel}") });
        }
        append_audit(
            &tx,
            &self.path,
            "trust-removed",
            channel.as_str(),
            &serde_json::json!({"key_id": key_id.to_string()}),
        )?;
        tx.commit().map_err(&e)
    }

    /// Sets how many distinct trusted keys must sign each bundle of `channel`: at least 1 and
    /// at most the number of keys trusted for it.
    pub fn set_threshold(&mut self, channel: &Channel, threshold: usize) -> Result<()> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let (keys, old) = channel_policy(&tx, &self.path, channel)?;
        if threshold == 0 || threshold > keys {
            return Err(Error::TrustPolicy {
                channel: channel.to_string(),
                reason: format!(
                    "a threshold of {threshold} is impossible with {keys} trusted keys (at least 1, at most {keys})"
                ),
            });
        }
        tx.execute(
            "UPDATE channels SET threshold = ?2 WHERE channel = ?1",
            params![channel.as_str(), threshold as i64],
        )
        .map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "trust-threshold",
            channel.as_str(),
            &serde_json::json!({"threshold": threshold, "previous": old, "keys": keys}),
        )?;
        tx.commit().map_err(&e)
    }

    /// Each channel that has trusted keys: (channel, keys, threshold, trust version).
    pub fn channel_policies(&self) -> Result<Vec<(String, usize, usize, u32)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT c.channel, COUNT(k.key_id), c.threshold, c.root_version FROM channels c \
                 JOIN trusted_keys k ON k.channel = c.channel GROUP BY c.channel ORDER BY c.channel",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as usize,
                    r.get::<_, i64>(2)? as usize,
                    r.get::<_, i64>(3)? as u32,
                ))
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    pub fn trusted_keys(&self, channel: Option<&Channel>) -> Result<Vec<TrustedKey>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT k.channel, k.key_id, k.public_key, k.added_at, c.threshold \
                 FROM trusted_keys k JOIN channels c ON c.channel = k.channel \
                 WHERE ?1 IS NULL OR k.channel = ?1 ORDER BY k.channel, k.added_at, k.key_id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([channel.map(|c| c.as_str())], |r| {
                Ok(TrustedKey {
                    channel: r.get(0)?,
                    key_id: r.get(1)?,
                    public_key: r.get(2)?,
                    added_at: r.get(3)?,
                    threshold: r.get::<_, i64>(4)?.max(1) as usize,
                })
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// Every trusted key with its channel, and each channel's threshold.
    pub fn trust_store(&self) -> Result<TrustStore> {
        let mut keys = Vec::new();
        for k in self.trusted_keys(None)? {
            let damaged = |reason: String| Error::RegistryDamaged {
                path: self.path.clone(),
                reason: format!("trusted key {} is damaged: {reason}", k.key_id),
            };
            let channel: Channel = k.channel.parse().map_err(|e: Error| damaged(e.to_string()))?;
            keys.push((channel, PublicKey::parse(&k.public_key).map_err(damaged)?));
        }
        let mut stmt =
            self.conn.prepare("SELECT channel, threshold, root_version FROM channels").map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
            .map_err(self.err())?;
        let mut thresholds = BTreeMap::new();
        let mut versions = BTreeMap::new();
        for row in rows {
            let (channel, threshold, version) = row.map_err(self.err())?;
            if let Ok(channel) = channel.parse::<Channel>() {
                thresholds.insert(channel.clone(), threshold.max(1) as usize);
                versions.insert(channel, version.max(1) as u32);
            }
        }
        let mut stmt =
            self.conn.prepare("SELECT channel, version, statement_sha256 FROM rotations").map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))
            .map_err(self.err())?;
        let mut applied = BTreeMap::new();
        for row in rows {
            let (channel, version, digest) = row.map_err(self.err())?;
            if let (Ok(channel), Ok(version), Ok(digest)) =
                (channel.parse::<Channel>(), u32::try_from(version), digest.parse::<Sha256>())
            {
                applied.insert((channel, version), digest);
            }
        }
        Ok(TrustStore::new(keys, thresholds).with_versions(versions).with_applied(applied))
    }
}

/// Replaces a channel's trusted keys, threshold and trust version with a verified rotation
/// statement's, provided the channel is still at the version the statement follows.
pub(super) fn apply_rotation(tx: &Transaction<'_>, path: &Path, rotation: &Rotation, bundle_id: &str) -> Result<()> {
    let e = sql_error(path);
    let statement = &rotation.statement;
    let channel = statement.channel.as_str();
    let keys = statement.public_keys().map_err(Error::Internal)?;
    tx.execute("INSERT OR IGNORE INTO channels (channel) VALUES (?1)", [channel]).map_err(&e)?;
    let version: i64 =
        tx.query_row("SELECT root_version FROM channels WHERE channel = ?1", [channel], |r| r.get(0)).map_err(&e)?;
    if version + 1 != i64::from(statement.version) {
        return Err(Error::Internal(format!(
            "registry {}: channel {channel} is at trust version {version}, not {}, although the statement was judged against it",
            path.display(),
            statement.version - 1
        )));
    }
    let mut old: Vec<String> = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT key_id FROM trusted_keys WHERE channel = ?1").map_err(&e)?;
        let rows = stmt.query_map([channel], |r| r.get::<_, String>(0)).map_err(&e)?;
        for row in rows {
            old.push(row.map_err(&e)?);
        }
    }
    let now = Timestamp::now().to_string();
    tx.execute("DELETE FROM trusted_keys WHERE channel = ?1", [channel]).map_err(&e)?;
    for k in &keys {
        tx.execute(
            "INSERT INTO trusted_keys (channel, key_id, public_key, added_at) VALUES (?1, ?2, ?3, ?4)",
            params![channel, k.key_id.to_string(), k.to_base64(), now],
        )
        .map_err(&e)?;
    }
    tx.execute(
        "UPDATE channels SET threshold = ?2, root_version = ?3 WHERE channel = ?1",
        params![channel, statement.threshold as i64, i64::from(statement.version)],
    )
    .map_err(&e)?;
    tx.execute(
        "INSERT INTO rotations (channel, version, statement_sha256, applied_at, carried_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![channel, i64::from(statement.version), rotation.sha256.hex(), now, bundle_id],
    )
    .map_err(&e)?;
    let new: Vec<String> = keys.iter().map(|k| k.key_id.to_string()).collect();
    append_audit(
        tx,
        path,
        "trust-rotated",
        channel,
        &serde_json::json!({
            "version": statement.version,
            "threshold": statement.threshold,
            "keys": new,
            "added": new.iter().filter(|k| !old.contains(k)).collect::<Vec<_>>(),
            "removed": old.iter().filter(|k| !new.contains(k)).collect::<Vec<_>>(),
            "statement_created": statement.created.to_string(),
            "statement_sha256": rotation.sha256.hex(),
            "carried_by": bundle_id,
        }),
    )
}

/// How many keys a channel trusts and its threshold (0 keys and 1 for an unknown channel).
pub(super) fn channel_policy(conn: &Connection, path: &Path, channel: &Channel) -> Result<(usize, usize)> {
    let e = sql_error(path);
    let keys: i64 = conn
        .query_row("SELECT COUNT(*) FROM trusted_keys WHERE channel = ?1", [channel.as_str()], |r| r.get(0))
        .map_err(&e)?;
    let threshold: Option<i64> = conn
        .query_row("SELECT threshold FROM channels WHERE channel = ?1", [channel.as_str()], |r| r.get(0))
        .optional()
        .map_err(&e)?;
    Ok((keys as usize, threshold.unwrap_or(1).max(1) as usize))
}
