//! Accepted bundles and their channels: the one transaction that records an accepted volume
//! (re-checking the rollback rules inside it), refusals in the audit log, and the merge of
//! an update's metadata into the list.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::audit::append_audit;
use super::trust::apply_rotation;
use super::{Registry, exec, query_row, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{Channel, KeyId, Sha256, UpdateId};
use crate::formats::manifest::Manifest;
use crate::formats::model::Update;
use crate::formats::revisions::{self, Merge};
use crate::formats::rotation::Rotation;

/// What the registry remembers of a channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelState {
    pub highest_sequence: Option<u64>,
    pub latest_time: Option<Timestamp>,
}

/// What the registry remembers of an accepted bundle.
#[derive(Debug, Clone)]
pub struct AcceptedBundle {
    pub layout_digest: Sha256,
    pub manifest_digest: Sha256,
    pub volumes: Vec<u32>,
}

/// Everything one accepted bundle volume writes, in one transaction.
pub struct ImportRecord<'a> {
    pub manifest: &'a Manifest,
    pub manifest_digest: Sha256,
    pub volume: u32,
    pub signers: &'a [KeyId],
    /// Digests now present in the store thanks to this volume.
    pub stored: &'a [Sha256],
    pub source: &'a Path,
    /// How freshness was judged; a relaxed expiry is recorded in the audit log.
    pub time: &'a crate::formats::freshness::TimeJudgement,
    /// A key rotation statement the bundle carried, verified: it replaces the channel's keys.
    pub rotation: Option<&'a Rotation>,
}

/// What an import changed in the update list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportChanges {
    pub new: Vec<String>,
    pub revised: Vec<String>,
    /// Revised updates whose files changed: their approval went back to undefined.
    pub status_reset: Vec<String>,
    pub unchanged: Vec<String>,
    /// Metadata older than (or conflicting with) what the list holds; kept as it was.
    pub ignored: Vec<String>,
    pub files_stored: usize,
    /// The scan catalog the bundle carried, described for people (its version and date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_catalog: Option<String>,
    /// The files newly present in the store, for the change report.
    #[serde(skip)]
    pub arrived: Vec<Sha256>,
}

impl Registry {
    /// Forgets the latest bundle time of `channel`, which expiry is judged against, after a
    /// bundle dated in the future made fresh bundles look expired. Logged with the time
    /// forgotten. Returns it.
    pub fn reset_clock(&mut self, channel: &Channel) -> Result<Option<Timestamp>> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let state = channel_state(&tx, &self.path, channel)?;
        tx.execute("UPDATE channels SET latest_time = NULL WHERE channel = ?1", [channel.as_str()]).map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "clock-reset",
            channel.as_str(),
            &serde_json::json!({
                "forgotten_latest_time": state.latest_time.map(|t| t.to_string()),
                "system_clock": Timestamp::now().to_string(),
            }),
        )?;
        tx.commit().map_err(&e)?;
        Ok(state.latest_time)
    }

    pub fn channel_state(&self, channel: &Channel) -> Result<ChannelState> {
        channel_state(&self.conn, &self.path, channel)
    }

    pub fn accepted_bundle(&self, channel: &Channel, sequence: u64) -> Result<Option<AcceptedBundle>> {
        accepted_bundle(&self.conn, &self.path, channel, sequence)
    }

    /// Digests the store holds according to the registry.
    pub fn has_file(&self, digest: &Sha256) -> Result<bool> {
        self.conn
            .query_row("SELECT present FROM files WHERE sha256 = ?1", [digest.hex()], |r| r.get::<_, bool>(0))
            .optional()
            .map(|p| p.unwrap_or(false))
            .map_err(self.err())
    }

    /// Writes everything an accepted bundle volume brings, in one transaction. `judge` is
    /// called inside the transaction with the current channel state and accepted bundle, and
    /// may refuse; nothing is written then.
    pub fn record_import(
        &mut self,
        record: &ImportRecord<'_>,
        judge: impl FnOnce(&ChannelState, Option<&AcceptedBundle>) -> Result<()>,
    ) -> Result<ImportChanges> {
        self.cache_for_merge(record.manifest.updates.len())?;
        let path = self.path.clone();
        let e = sql_error(&path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let m = record.manifest;
        let state = channel_state(&tx, &path, &m.channel)?;
        let accepted = accepted_bundle(&tx, &path, &m.channel, m.sequence)?;
        judge(&state, accepted.as_ref())?;
        crate::failpoint_refuse!("registry.refuse-import");

        if let Some(rotation) = record.rotation {
            apply_rotation(&tx, &path, rotation, &m.bundle_id.to_string())?;
        }
        let now = Timestamp::now().to_string();
        let origin_detail = format!("bundle {} sequence {} of channel {}", m.bundle_id, m.sequence, m.channel);
        let mut changes = ImportChanges::default();

        for f in &m.files {
            tx.execute(
                "INSERT OR IGNORE INTO files (sha256, size) VALUES (?1, ?2)",
                params![f.sha256.hex(), f.size as i64],
            )
            .map_err(&e)?;
        }
        for d in record.stored {
            let n = tx
                .execute(
                    "UPDATE files SET present = 1, stored_at = ?2 WHERE sha256 = ?1 AND present = 0",
                    params![d.hex(), now],
                )
                .map_err(&e)?;
            changes.files_stored += n;
            if n > 0 {
                changes.arrived.push(*d);
            }
        }
        for p in &m.layout.payloads {
            if let Some(chunk) = &p.chunk_of {
                tx.execute(
                    "INSERT OR IGNORE INTO waiting_chunks (chunk, file) VALUES (?1, ?2)",
                    params![p.sha256.hex(), chunk.file.hex()],
                )
                .map_err(&e)?;
            }
        }
        for update in &m.updates {
            merge_update(&tx, &path, update, &update.stored_json(), "bundle", &origin_detail, &now, &mut changes)?;
        }
        if let Some(scan) = &m.scan_catalog {
            changes.scan_catalog = Some(format!(
                "version {} of {}",
                scan.package_version.as_deref().unwrap_or("unknown"),
                scan.created.as_deref().unwrap_or("an unknown date")
            ));
            tx.execute(
                "INSERT OR IGNORE INTO scan_catalogs (sha256, size, signer, root, package_version, created, bundle_id, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    scan.sha256.hex(),
                    scan.size as i64,
                    scan.signer,
                    scan.root,
                    scan.package_version,
                    scan.created,
                    m.bundle_id.as_str(),
                    now
                ],
            )
            .map_err(&e)?;
        }

        if accepted.is_none() {
            tx.execute(
                "INSERT INTO bundles (channel, sequence, bundle_id, layout_digest, manifest_digest, kind, created, volumes, accepted_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    m.channel.as_str(),
                    m.sequence as i64,
                    m.bundle_id.as_str(),
                    m.layout.digest().hex(),
                    record.manifest_digest.hex(),
                    m.kind.to_string(),
                    m.created.to_string(),
                    m.layout.volumes,
                    now
                ],
            )
            .map_err(&e)?;
        }
        let signers: Vec<String> = record.signers.iter().map(|k| k.to_string()).collect();
        tx.execute(
            "INSERT OR IGNORE INTO bundle_volumes (channel, sequence, volume, signers, accepted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![m.channel.as_str(), m.sequence as i64, record.volume, signers.join(" "), now],
        )
        .map_err(&e)?;
        let highest = state.highest_sequence.map_or(m.sequence, |h| h.max(m.sequence));
        let latest = state.latest_time.map_or(m.created, |t| t.max(m.created));
        tx.execute(
            "INSERT INTO channels (channel, highest_sequence, latest_time) VALUES (?1, ?2, ?3) \
             ON CONFLICT(channel) DO UPDATE SET highest_sequence = ?2, latest_time = ?3",
            params![m.channel.as_str(), highest as i64, latest.to_string()],
        )
        .map_err(&e)?;
        append_audit(
            &tx,
            &path,
            "bundle-accepted",
            &format!("{}#{}", m.channel, m.sequence),
            &serde_json::json!({
                "bundle_id": m.bundle_id.as_str(),
                "volume": record.volume,
                "volumes": m.layout.volumes,
                "layout": m.layout.digest().hex(),
                "manifest_sha256": record.manifest_digest.hex(),
                "signers": signers,
                "files_stored": record.stored.iter().map(|d| d.hex()).collect::<Vec<_>>(),
                "source": record.source.display().to_string(),
                "time": record.time,
                "changes": &changes,
            }),
        )?;
        crate::failpoint!("registry.before-commit");
        tx.commit().map_err(&e)?;
        Ok(changes)
    }

    /// Records in the audit log that a bundle volume imported before was met again (no
    /// change report is stored for it).
    pub fn log_already_imported(&mut self, source: &Path, position: &str) -> Result<()> {
        self.log_bundle_event("bundle-already-imported", source, serde_json::json!({"volume": position}))
    }

    /// Records a refused bundle in the audit log (the only trace a refusal leaves).
    pub fn log_refusal(&mut self, source: &Path, reason: &str) -> Result<()> {
        self.log_bundle_event("bundle-refused", source, serde_json::json!({"reason": reason}))
    }

    fn log_bundle_event(&mut self, event: &str, source: &Path, detail: serde_json::Value) -> Result<()> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        append_audit(&tx, &self.path, event, &source.display().to_string(), &detail)?;
        tx.commit().map_err(&e)
    }
}

pub(super) fn channel_state(conn: &Connection, path: &Path, channel: &Channel) -> Result<ChannelState> {
    let row: Option<(Option<i64>, Option<String>)> = conn
        .query_row("SELECT highest_sequence, latest_time FROM channels WHERE channel = ?1", [channel.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(sql_error(path))?;
    let Some((highest, latest)) = row else { return Ok(ChannelState::default()) };
    Ok(ChannelState { highest_sequence: highest.map(|h| h as u64), latest_time: latest.and_then(|t| t.parse().ok()) })
}

pub(super) fn accepted_bundle(
    conn: &Connection,
    path: &Path,
    channel: &Channel,
    sequence: u64,
) -> Result<Option<AcceptedBundle>> {
    let e = sql_error(path);
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT layout_digest, manifest_digest FROM bundles WHERE channel = ?1 AND sequence = ?2",
            params![channel.as_str(), sequence as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(&e)?;
    let Some((layout, manifest)) = row else { return Ok(None) };
    let damaged = |what: &str| Error::RegistryDamaged {
        path: path.to_path_buf(),
        reason: format!("{what} of {channel}#{sequence} is damaged"),
    };
    let mut stmt = conn
        .prepare("SELECT volume FROM bundle_volumes WHERE channel = ?1 AND sequence = ?2 ORDER BY volume")
        .map_err(&e)?;
    let volumes = stmt
        .query_map(params![channel.as_str(), sequence as i64], |r| r.get(0))
        .map_err(&e)?
        .collect::<rusqlite::Result<Vec<u32>>>()
        .map_err(&e)?;
    Ok(Some(AcceptedBundle {
        layout_digest: layout.parse().map_err(|_| damaged("layout digest"))?,
        manifest_digest: manifest.parse().map_err(|_| damaged("manifest digest"))?,
        volumes,
    }))
}

/// Merges one update's metadata from a bundle into the list. Revisions never go backwards;
/// a new revision that changes any file digest sends the approval back to undefined.
/// `metadata` is `update.stored_json()` (a CSV import has it from reading the rows).
/// Returns when the update's status was set before the merge (None for a new update).
#[allow(clippy::too_many_arguments)]
pub(super) fn merge_update(
    tx: &Transaction<'_>,
    path: &Path,
    update: &Update,
    metadata: &str,
    origin: &str,
    origin_detail: &str,
    now: &str,
    changes: &mut ImportChanges,
) -> Result<Option<String>> {
    let e = sql_error(path);
    let id = update.id.to_string();
    let columns = params![
        id,
        update.revision,
        update.title,
        update.vendor,
        update.product,
        update.version,
        update.classification.to_string(),
        update.severity.to_string(),
        update.kb,
        update.release_date.map(|d| d.to_string()),
        update.withdrawn,
        origin_detail,
        now,
        origin
    ];
    // Inserted if new, looked up only if not: most updates of a large merge are new, and
    // the look-up before each insert was a tenth of a fresh CSV import of 200,000 updates
    // (tests/bench/update-list-scale.sh).
    let inserted = exec(
        tx,
        "INSERT INTO updates (id, revision, title, vendor, product, version, classification, severity, kb, \
         release_date, withdrawn, origin, origin_detail, status, status_set_by, status_set_at, first_seen, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?14, ?12, 'undefined', 'system', ?13, ?13, ?13) \
         ON CONFLICT (id) DO NOTHING",
        columns,
    )
    .map_err(&e)?;
    let existing: Option<(u32, String, String, String)> = if inserted > 0 {
        None
    } else {
        Some(
            query_row(
                tx,
                "SELECT u.revision, m.metadata, u.status_set_at, u.origin FROM updates u \
                 JOIN update_metadata m ON m.update_id = u.id WHERE u.id = ?1",
                [update.id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(&e)?,
        )
    };
    let status_set_at = existing.as_ref().map(|(_, _, at, _)| at.clone());
    let is_new = existing.is_none();
    let held = existing.as_ref().map(|(revision, metadata, _, origin)| revisions::Held {
        revision: *revision,
        metadata,
        origin,
    });
    let held_revision = held.map_or(0, |h| h.revision);
    match revisions::judge(held, update, metadata, origin) {
        Merge::New => {
            exec(tx, "INSERT INTO update_metadata (update_id, metadata) VALUES (?1, ?2)", params![id, metadata])
                .map_err(&e)?;
            changes.new.push(id);
        }
        Merge::Unchanged => {
            changes.unchanged.push(id);
            return Ok(status_set_at);
        }
        Merge::Ignored => {
            changes.ignored.push(id);
            return Ok(status_set_at);
        }
        Merge::Revise { files_changed } => {
            exec(tx,
                "UPDATE updates SET revision = ?2, title = ?3, vendor = ?4, product = ?5, version = ?6, classification = ?7, \
                 severity = ?8, kb = ?9, release_date = ?10, withdrawn = ?11, origin_detail = ?12, updated_at = ?13, origin = ?14 \
                 WHERE id = ?1",
                columns,
            )
            .map_err(&e)?;
            exec(tx, "UPDATE update_metadata SET metadata = ?2 WHERE update_id = ?1", params![id, metadata])
                .map_err(&e)?;
            if files_changed {
                exec(tx,
                    "UPDATE updates SET status = 'undefined', status_set_by = 'system', status_actor = ?2, status_set_at = ?3 WHERE id = ?1",
                    params![id, format!("revision {} changed the update's files", update.revision), now],
                )
                .map_err(&e)?;
                append_audit(
                    tx,
                    path,
                    "status-reset",
                    &id,
                    &serde_json::json!({
                        "from_revision": held_revision,
                        "to_revision": update.revision,
                        "reason": "the new revision changes the update's file digests",
                    }),
                )?;
                changes.status_reset.push(id.clone());
            }
            changes.revised.push(id);
        }
    }
    if !is_new {
        exec(tx, "DELETE FROM update_files WHERE update_id = ?1", [update.id.as_str()]).map_err(&e)?;
        exec(tx, "DELETE FROM supersedence WHERE update_id = ?1", [update.id.as_str()]).map_err(&e)?;
    }
    for (i, f) in update.files.iter().enumerate() {
        exec(tx,
            "INSERT INTO update_files (update_id, position, name, sha256, url, architecture, language, sha1, sha256_from) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                update.id.as_str(),
                i as i64,
                f.name.as_str(),
                f.sha256.hex(),
                f.url,
                f.architecture,
                f.language,
                f.sha1.map(|s| s.hex()),
                f.sha256_from.as_str()
            ],
        )
        .map_err(&e)?;
    }
    let supersedes: BTreeSet<&UpdateId> = update.supersedes.iter().collect();
    for s in supersedes {
        exec(
            tx,
            "INSERT INTO supersedence (update_id, supersedes) VALUES (?1, ?2)",
            params![update.id.as_str(), s.as_str()],
        )
        .map_err(&e)?;
    }
    Ok(status_set_at)
}
