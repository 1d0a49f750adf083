//! The registry: ingest's SQLite database holding trust, channel state, accepted bundles,
//! the update list and the audit log.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit survives power loss. Schema changes are
//! an append-only list of migrations tracked by `PRAGMA user_version`: never edit or remove
//! one, only add. Everything a bundle changes is written in one transaction
//! ([`Registry::record_import`]), which re-checks the rollback rules inside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{Channel, KeyId, Sha256, UpdateId};
use crate::formats::manifest::Manifest;
use crate::formats::minisign::PublicKey;
use crate::formats::model::Update;
use crate::formats::rotation::Rotation;
use crate::formats::state::{ChannelPosition, HeldUpdate, IncompleteSet, ServerState};
use crate::formats::trust::TrustStore;

mod dps;
mod exchange;
mod filter;
mod groups;
mod list;
mod manual;
mod peers;
mod reports;
mod rules;
mod watch;

pub use dps::{DistributionPoint, Publication};
pub use exchange::{GroupMerge, ListMerge};
pub use filter::ListFilter;
pub use groups::{GroupSummary, Membership};
pub use list::{ChainLink, EulaAcceptance, EulaView, UpdateDetail, UpdateSummary};
pub use manual::{KnownFile, ManualRecord};
pub use peers::PeerKey;
pub use rules::{GroupAddition, Held, RefreshReport, RuleDecision, StoredRule, Superseded};
pub use watch::Observed;

/// Append-only. Each entry moves the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE channels (
    channel          TEXT PRIMARY KEY,
    threshold        INTEGER NOT NULL DEFAULT 1 CHECK (threshold >= 1),
    root_version     INTEGER NOT NULL DEFAULT 1,
    highest_sequence INTEGER,
    latest_time      TEXT
);
CREATE TABLE trusted_keys (
    channel    TEXT NOT NULL REFERENCES channels(channel),
    key_id     TEXT NOT NULL,
    public_key TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (channel, key_id)
);
CREATE TABLE bundles (
    channel         TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    bundle_id       TEXT NOT NULL,
    layout_digest   TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    kind            TEXT NOT NULL,
    created         TEXT NOT NULL,
    volumes         INTEGER NOT NULL,
    accepted_at     TEXT NOT NULL,
    PRIMARY KEY (channel, sequence)
);
CREATE TABLE bundle_volumes (
    channel     TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    volume      INTEGER NOT NULL,
    signers     TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    PRIMARY KEY (channel, sequence, volume),
    FOREIGN KEY (channel, sequence) REFERENCES bundles(channel, sequence)
);
CREATE TABLE updates (
    id             TEXT PRIMARY KEY,
    revision       INTEGER NOT NULL,
    title          TEXT NOT NULL,
    vendor         TEXT NOT NULL,
    product        TEXT NOT NULL,
    version        TEXT NOT NULL,
    classification TEXT NOT NULL,
    severity       TEXT NOT NULL,
    kb             TEXT,
    release_date   TEXT NOT NULL,
    withdrawn      INTEGER NOT NULL DEFAULT 0,
    metadata       TEXT NOT NULL,
    origin         TEXT NOT NULL CHECK (origin IN ('bundle', 'manual', 'csv')),
    origin_detail  TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'undefined' CHECK (status IN ('undefined', 'approved', 'declined')),
    status_set_by  TEXT NOT NULL DEFAULT 'system' CHECK (status_set_by IN ('system', 'person', 'rule', 'csv')),
    status_actor   TEXT,
    status_set_at  TEXT NOT NULL,
    first_seen     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX updates_product ON updates(product COLLATE NOCASE);
CREATE INDEX updates_classification ON updates(classification);
CREATE INDEX updates_status ON updates(status);
CREATE TABLE files (
    sha256    TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    present   INTEGER NOT NULL DEFAULT 0,
    stored_at TEXT
);
CREATE TABLE update_files (
    update_id    TEXT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL REFERENCES files(sha256),
    url          TEXT NOT NULL,
    architecture TEXT,
    language     TEXT,
    PRIMARY KEY (update_id, position)
);
CREATE INDEX update_files_sha256 ON update_files(sha256);
CREATE TABLE supersedence (
    update_id  TEXT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    supersedes TEXT NOT NULL,
    PRIMARY KEY (update_id, supersedes)
);
CREATE INDEX supersedence_supersedes ON supersedence(supersedes);
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    event     TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE rotations (
    channel          TEXT NOT NULL,
    version          INTEGER NOT NULL,
    statement_sha256 TEXT NOT NULL,
    applied_at       TEXT NOT NULL,
    carried_by       TEXT NOT NULL,
    PRIMARY KEY (channel, version)
);
"#,
    r#"
CREATE TABLE eula_acceptances (
    update_id   TEXT NOT NULL,
    eula_sha256 TEXT NOT NULL,
    accepted_by TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    PRIMARY KEY (update_id, eula_sha256)
);
"#,
    r#"
CREATE TABLE update_groups (
    name        TEXT PRIMARY KEY COLLATE NOCASE,
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE group_members (
    group_name TEXT NOT NULL COLLATE NOCASE REFERENCES update_groups(name) ON DELETE CASCADE,
    update_id  TEXT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    added_by   TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (group_name, update_id)
);
CREATE INDEX group_members_update ON group_members(update_id);
"#,
    r#"
ALTER TABLE updates ADD COLUMN superseded_since TEXT;
CREATE INDEX updates_superseded ON updates(superseded_since);
CREATE TABLE rules (
    name       TEXT PRIMARY KEY COLLATE NOCASE,
    definition TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE rule_group_additions (
    rule      TEXT NOT NULL COLLATE NOCASE,
    update_id TEXT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    added_at  TEXT NOT NULL,
    PRIMARY KEY (rule, update_id)
);
"#,
    r#"
CREATE TABLE reports (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    kind       TEXT NOT NULL,
    by_whom    TEXT NOT NULL,
    headline   TEXT NOT NULL,
    body       TEXT NOT NULL
);
"#,
    // `ingest list --kb` answers from an index, not a scan of the whole list.
    r#"
CREATE INDEX updates_kb ON updates(kb);
"#,
    // An update's metadata (its whole document, about a kilobyte) lives beside its row, so
    // that the rows a refresh scans and rewrites stay small: at 200,000 updates the update
    // table shrinks from 195 MB to about 40 MB (tests/bench/update-list-scale.sh).
    r#"
CREATE TABLE update_metadata (
    update_id TEXT PRIMARY KEY REFERENCES updates(id) ON DELETE CASCADE,
    metadata  TEXT NOT NULL
);
INSERT INTO update_metadata (update_id, metadata) SELECT id, metadata FROM updates ORDER BY id;
ALTER TABLE updates DROP COLUMN metadata;
"#,
    r#"
CREATE TABLE distribution_points (
    name           TEXT PRIMARY KEY COLLATE NOCASE,
    path           TEXT NOT NULL UNIQUE,
    group_name     TEXT COLLATE NOCASE REFERENCES update_groups(name),
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    generation     INTEGER,
    published_at   TEXT
);
"#,
    // `ingest watch`: the day a report's refresh judged the rules for, as a column, so that
    // whether the daily refresh is due is one look-up of the latest refresh; a fingerprint of
    // what each distribution point carries as published, so that whether it is behind needs
    // no metadata and no index read; and the files of drop folders that could not be moved
    // away (a read-only stick), so that a pass does not read them again while unchanged.
    r#"
ALTER TABLE reports ADD COLUMN refreshed_day TEXT;
UPDATE reports SET refreshed_day = json_extract(body, '$.day');
CREATE INDEX reports_refreshed ON reports(refreshed_day) WHERE refreshed_day IS NOT NULL;
ALTER TABLE distribution_points ADD COLUMN published_fingerprint TEXT;
CREATE TABLE watch_seen (
    path     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    outcome  TEXT NOT NULL,
    seen_at  TEXT NOT NULL,
    PRIMARY KEY (path, size, modified)
);
"#,
    // The tables looked up by key on every listed row, merged row and refresh keep their rows
    // in the key's own b-tree (WITHOUT ROWID) instead of in a rowid table beside a key index:
    // one b-tree to search and write instead of two, and a walk in id order reads the rows
    // themselves in order. At 200,000 updates and 400,000 files the list, CSV import and
    // refresh touch fewer pages (tests/bench/update-list-scale.sh). Each table is rebuilt
    // under its own name; `open` runs migrations with foreign keys off and checks them before
    // committing. (An update's metadata, about a kilobyte, stays in a rowid table: rows that
    // large do not belong in a key's b-tree.)
    r#"
CREATE TABLE updates_rebuilt (
    id               TEXT PRIMARY KEY,
    revision         INTEGER NOT NULL,
    title            TEXT NOT NULL,
    vendor           TEXT NOT NULL,
    product          TEXT NOT NULL,
    version          TEXT NOT NULL,
    classification   TEXT NOT NULL,
    severity         TEXT NOT NULL,
    kb               TEXT,
    release_date     TEXT NOT NULL,
    withdrawn        INTEGER NOT NULL DEFAULT 0,
    origin           TEXT NOT NULL CHECK (origin IN ('bundle', 'manual', 'csv')),
    origin_detail    TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'undefined' CHECK (status IN ('undefined', 'approved', 'declined')),
    status_set_by    TEXT NOT NULL DEFAULT 'system' CHECK (status_set_by IN ('system', 'person', 'rule', 'csv')),
    status_actor     TEXT,
    status_set_at    TEXT NOT NULL,
    first_seen       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    superseded_since TEXT
) WITHOUT ROWID;
INSERT INTO updates_rebuilt (id, revision, title, vendor, product, version, classification, severity, kb,
        release_date, withdrawn, origin, origin_detail, status, status_set_by, status_actor, status_set_at,
        first_seen, updated_at, superseded_since)
    SELECT id, revision, title, vendor, product, version, classification, severity, kb,
        release_date, withdrawn, origin, origin_detail, status, status_set_by, status_actor, status_set_at,
        first_seen, updated_at, superseded_since FROM updates;
DROP TABLE updates;
ALTER TABLE updates_rebuilt RENAME TO updates;
CREATE INDEX updates_product ON updates(product COLLATE NOCASE);
CREATE INDEX updates_classification ON updates(classification);
CREATE INDEX updates_status ON updates(status);
CREATE INDEX updates_kb ON updates(kb);
CREATE INDEX updates_superseded ON updates(superseded_since);

CREATE TABLE files_rebuilt (
    sha256    TEXT PRIMARY KEY,
    size      INTEGER NOT NULL,
    present   INTEGER NOT NULL DEFAULT 0,
    stored_at TEXT
) WITHOUT ROWID;
INSERT INTO files_rebuilt (sha256, size, present, stored_at) SELECT sha256, size, present, stored_at FROM files;
DROP TABLE files;
ALTER TABLE files_rebuilt RENAME TO files;

CREATE TABLE update_files_rebuilt (
    update_id    TEXT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL REFERENCES files(sha256),
    url          TEXT NOT NULL,
    architecture TEXT,
    language     TEXT,
    PRIMARY KEY (update_id, position)
) WITHOUT ROWID;
INSERT INTO update_files_rebuilt (update_id, position, name, sha256, url, architecture, language)
    SELECT update_id, position, name, sha256, url, architecture, language FROM update_files;
DROP TABLE update_files;
ALTER TABLE update_files_rebuilt RENAME TO update_files;
CREATE INDEX update_files_sha256 ON update_files(sha256);

CREATE TABLE supersedence_rebuilt (
    update_id  TEXT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    supersedes TEXT NOT NULL,
    PRIMARY KEY (update_id, supersedes)
) WITHOUT ROWID;
INSERT INTO supersedence_rebuilt (update_id, supersedes) SELECT update_id, supersedes FROM supersedence;
DROP TABLE supersedence;
ALTER TABLE supersedence_rebuilt RENAME TO supersedence;
CREATE INDEX supersedence_supersedes ON supersedence(supersedes);

CREATE TABLE group_members_rebuilt (
    group_name TEXT NOT NULL COLLATE NOCASE REFERENCES update_groups(name) ON DELETE CASCADE,
    update_id  TEXT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    added_by   TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (group_name, update_id)
) WITHOUT ROWID;
INSERT INTO group_members_rebuilt (group_name, update_id, added_by, added_at)
    SELECT group_name, update_id, added_by, added_at FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_rebuilt RENAME TO group_members;
CREATE INDEX group_members_update ON group_members(update_id);
"#,
    // 12: the chunks accepted volumes wait on (a file that travels in pieces), so that `ingest
    // check` can tell them from chunks nobody waits for (left by a refused or interrupted import).
    r#"
CREATE TABLE waiting_chunks (
    chunk TEXT PRIMARY KEY,
    file  TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 13: the server keys of peer management servers, whose signed update lists and groups
    // this server takes; apart from the keys trusted for bundles.
    r#"
CREATE TABLE peer_keys (
    key_id     TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   TEXT NOT NULL
) WITHOUT ROWID;
"#,
];

/// The schema version this ferry writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub struct Registry {
    conn: Connection,
    path: PathBuf,
}

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
    /// The files newly present in the store, for the change report.
    #[serde(skip)]
    pub arrived: Vec<Sha256>,
}

/// Availability in SQL: update `alias` is not withdrawn, lists files, and every one is in
/// the store (the rule `UpdateSummary::available` states for a listed row).
fn available_sql(alias: &str) -> String {
    format!(
        "({alias}.withdrawn = 0 AND EXISTS (SELECT 1 FROM update_files x WHERE x.update_id = {alias}.id) \
         AND NOT EXISTS (SELECT 1 FROM update_files x JOIN files f ON f.sha256 = x.sha256 \
                         WHERE x.update_id = {alias}.id AND f.present = 0))"
    )
}

/// The updates that cannot be installed from this store, for work over the whole list: one
/// pass from the missing files instead of [`available_sql`]'s probe per update (at 200,000
/// updates the probes take seconds, the pass a fraction of one).
struct Unavailable {
    /// Updates that list no file, or a file the store lacks.
    lacking_files: FxHashSet<String>,
    withdrawn: FxHashSet<String>,
}

impl Unavailable {
    fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let mut lacking_files = FxHashSet::default();
        let mut withdrawn = FxHashSet::default();
        let collect = |sql: &str, into: &mut FxHashSet<String>| -> rusqlite::Result<()> {
            let mut stmt = conn.prepare(sql)?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id = r.get_ref(0)?.as_str()?;
                if !into.contains(id) {
                    into.insert(id.to_string());
                }
            }
            Ok(())
        };
        // Both walks go in key order through clustered b-trees: the file index of the
        // update files (which holds the update ids) beside the files themselves, and the
        // update ids beside the update files' own key. Neither seeks at random, whether few
        // files are missing or all of them (a fresh CSV import).
        collect(
            "SELECT uf.update_id FROM update_files uf JOIN files f ON f.sha256 = uf.sha256 WHERE f.present = 0",
            &mut lacking_files,
        )?;
        collect(
            "SELECT u.id FROM updates u WHERE NOT EXISTS (SELECT 1 FROM update_files uf WHERE uf.update_id = u.id)",
            &mut lacking_files,
        )?;
        collect("SELECT id FROM updates WHERE withdrawn <> 0", &mut withdrawn)?;
        Ok(Unavailable { lacking_files, withdrawn })
    }

    /// The rule of [`available_sql`], for update `id` of the list.
    fn available(&self, id: &str) -> bool {
        !self.lacking_files.contains(id) && !self.withdrawn.contains(id)
    }
}

/// Runs a statement through the connection's statement cache. A merge or a refresh runs
/// the same few statements once per update; preparing each anew costs more than running
/// it (tests/bench/update-list-scale.sh).
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `Connection::query_row` through the statement cache.
fn query_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| Error::Registry { path: path.to_path_buf(), source }
}

impl Registry {
    /// Opens (creating if needed) the registry at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Registry> {
        let e = sql_error(path);
        let mut conn = Connection::open(path).map_err(&e)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(&e)?;
        // Room for every statement a CSV merge runs per row (see `exec`).
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL").map_err(&e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(&e)?;
        conn.pragma_update(None, "foreign_keys", "OFF").map_err(&e)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(&e)?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
        }
        if version < SCHEMA_VERSION {
            // Foreign keys stay off while tables are rebuilt (dropping a parent table would
            // otherwise delete or refuse its children) and are checked whole before the commit.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(&e)?;
            for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.execute_batch(migration).map_err(&e)?;
                tx.pragma_update(None, "user_version", i as i64 + 1).map_err(&e)?;
            }
            let broken: Option<String> = tx
                .query_row("SELECT \"table\" FROM pragma_foreign_key_check LIMIT 1", [], |r| r.get(0))
                .optional()
                .map_err(&e)?;
            if let Some(table) = broken {
                return Err(Error::UpgradeRefused { path: path.to_path_buf(), version: SCHEMA_VERSION, table });
            }
            tx.commit().map_err(&e)?;
        }
        conn.pragma_update(None, "foreign_keys", "ON").map_err(&e)?;
        Ok(Registry { conn, path: path.to_path_buf() })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sql_error(&self.path)
    }

    /// Before a merge of `updates` updates in one transaction: from 1,000 on, lets the page
    /// cache grow to 64 MiB for the rest of this connection (with SQLite's 2 MiB a large merge
    /// spills dirty pages and reads them back). Reading commands keep the small cache:
    /// `ingest list` of 2,000 rows from a list of 200,000 reads 10,000 pages once each, and a
    /// large cache only made it fault in fresh memory for each (85 ms with 64 MiB, 57 ms with
    /// 2 MiB; tests/bench/update-list-scale.sh).
    fn cache_for_merge(&self, updates: usize) -> Result<()> {
        if updates < 1_000 {
            return Ok(());
        }
        self.conn.pragma_update(None, "cache_size", -65536).map_err(self.err())
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(self.err())
    }

    // ----- trust -----

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
            let damaged = |reason: String| {
                Error::Invalid(format!(
                    "registry {}: trusted key {} is damaged: {reason}",
                    self.path.display(),
                    k.key_id
                ))
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

    // ----- channel state and accepted bundles -----

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

    /// Records a refused bundle in the audit log (the only trace a refusal leaves).
    pub fn log_refusal(&mut self, source: &Path, reason: &str) -> Result<()> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "bundle-refused",
            &source.display().to_string(),
            &serde_json::json!({"reason": reason}),
        )?;
        tx.commit().map_err(&e)
    }

    /// What this server holds, for the state file `fetch` builds deltas against.
    pub fn server_state(&self, server_key: &PublicKey) -> Result<ServerState> {
        let e = self.err();
        let mut state = ServerState::new(server_key);
        let mut stmt = self
            .conn
            .prepare("SELECT channel, highest_sequence, latest_time FROM channels ORDER BY channel")
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .map_err(&e)?;
        for row in rows {
            let (channel, highest, latest) = row.map_err(&e)?;
            let Ok(channel) = channel.parse::<Channel>() else { continue };
            state.channels.insert(
                channel,
                ChannelPosition {
                    highest_sequence: highest.map(|h| h as u64),
                    latest_time: latest.and_then(|t| t.parse().ok()),
                },
            );
        }
        let mut stmt = self.conn.prepare("SELECT id, revision FROM updates ORDER BY id").map_err(&e)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))).map_err(&e)?;
        for row in rows {
            let (id, revision) = row.map_err(&e)?;
            if let Ok(id) = id.parse::<UpdateId>() {
                state.updates.push(HeldUpdate { id, revision });
            }
        }
        let mut stmt = self.conn.prepare("SELECT sha256 FROM files WHERE present = 1 ORDER BY sha256").map_err(&e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&e)?;
        for row in rows {
            if let Ok(d) = row.map_err(&e)?.parse() {
                state.files.push(d);
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT u.id FROM updates u WHERE u.withdrawn = 0 AND EXISTS (SELECT 1 FROM update_files uf \
                 JOIN files f ON f.sha256 = uf.sha256 WHERE uf.update_id = u.id AND f.present = 0) ORDER BY u.id",
            )
            .map_err(&e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&e)?;
        for row in rows {
            if let Ok(id) = row.map_err(&e)?.parse() {
                state.needs.push(id);
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT b.channel, b.sequence, b.volumes, group_concat(v.volume, ' ') FROM bundles b \
                 LEFT JOIN bundle_volumes v ON v.channel = b.channel AND v.sequence = b.sequence \
                 GROUP BY b.channel, b.sequence HAVING COUNT(v.volume) < b.volumes ORDER BY b.channel, b.sequence",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, u32>(2)?, r.get::<_, Option<String>>(3)?))
            })
            .map_err(&e)?;
        for row in rows {
            let (channel, sequence, volumes, have) = row.map_err(&e)?;
            let have: BTreeSet<u32> = have.unwrap_or_default().split(' ').filter_map(|v| v.parse().ok()).collect();
            if let Ok(channel) = channel.parse() {
                state.incomplete_sets.push(IncompleteSet {
                    channel,
                    sequence: sequence as u64,
                    missing_volumes: (1..=volumes).filter(|v| !have.contains(v)).collect(),
                });
            }
        }
        Ok(state)
    }
}

/// Replaces a channel's trusted keys, threshold and trust version with a verified rotation
/// statement's, provided the channel is still at the version the statement follows.
fn apply_rotation(tx: &Transaction<'_>, path: &Path, rotation: &Rotation, bundle_id: &str) -> Result<()> {
    let e = sql_error(path);
    let statement = &rotation.statement;
    let channel = statement.channel.as_str();
    let keys = statement.public_keys().map_err(Error::Invalid)?;
    tx.execute("INSERT OR IGNORE INTO channels (channel) VALUES (?1)", [channel]).map_err(&e)?;
    let version: i64 =
        tx.query_row("SELECT root_version FROM channels WHERE channel = ?1", [channel], |r| r.get(0)).map_err(&e)?;
    if version + 1 != i64::from(statement.version) {
        return Err(Error::Invalid(format!(
            "registry {}: channel {channel} is at trust version {version}, not {}",
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
fn channel_policy(conn: &Connection, path: &Path, channel: &Channel) -> Result<(usize, usize)> {
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

fn channel_state(conn: &Connection, path: &Path, channel: &Channel) -> Result<ChannelState> {
    let row: Option<(Option<i64>, Option<String>)> = conn
        .query_row("SELECT highest_sequence, latest_time FROM channels WHERE channel = ?1", [channel.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .map_err(sql_error(path))?;
    let Some((highest, latest)) = row else { return Ok(ChannelState::default()) };
    Ok(ChannelState { highest_sequence: highest.map(|h| h as u64), latest_time: latest.and_then(|t| t.parse().ok()) })
}

fn accepted_bundle(conn: &Connection, path: &Path, channel: &Channel, sequence: u64) -> Result<Option<AcceptedBundle>> {
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

/// An update's metadata as the registry stores it: one canonical serialisation, so that an
/// unchanged update compares equal byte for byte.
/// Merges one update's metadata from a bundle into the list. Revisions never go backwards;
/// a new revision that changes any file digest sends the approval back to undefined.
/// `metadata` is `update.stored_json()` (a CSV import has it from reading the rows).
/// Returns when the update's status was set before the merge (None for a new update).
#[allow(clippy::too_many_arguments)]
fn merge_update(
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
        update.release_date.to_string(),
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
    // Metadata that came signed in a bundle (or was registered here) is never replaced from a
    // CSV, at any revision; and metadata that came only by CSV (unsigned) gives way to a
    // signed bundle's or a registration's, whatever revision the CSV claimed.
    let unsigned_here = existing.as_ref().is_some_and(|(_, _, _, was)| was == "csv");
    match existing.map(|(revision, metadata, _, _)| (revision, metadata)) {
        None => {
            exec(tx, "INSERT INTO update_metadata (update_id, metadata) VALUES (?1, ?2)", params![id, metadata])
                .map_err(&e)?;
            changes.new.push(id);
        }
        Some((revision, old)) if update.revision == revision && old == metadata => {
            changes.unchanged.push(id);
            return Ok(status_set_at);
        }
        Some(_) if origin == "csv" && !unsigned_here => {
            changes.ignored.push(id);
            return Ok(status_set_at);
        }
        Some((revision, old))
            if update.revision > revision || (origin != "csv" && unsigned_here && old != metadata) =>
        {
            let old: Option<Update> = serde_json::from_str(&old).ok();
            let files_changed = old.is_none_or(|o| o.file_digests() != update.file_digests());
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
                        "from_revision": revision,
                        "to_revision": update.revision,
                        "reason": "the new revision changes the update's file digests",
                    }),
                )?;
                changes.status_reset.push(id.clone());
            }
            changes.revised.push(id);
        }
        Some((revision, old)) if update.revision == revision && old == metadata => {
            changes.unchanged.push(id);
            return Ok(status_set_at);
        }
        Some(_) => {
            changes.ignored.push(id);
            return Ok(status_set_at);
        }
    }
    if !is_new {
        exec(tx, "DELETE FROM update_files WHERE update_id = ?1", [update.id.as_str()]).map_err(&e)?;
        exec(tx, "DELETE FROM supersedence WHERE update_id = ?1", [update.id.as_str()]).map_err(&e)?;
    }
    for (i, f) in update.files.iter().enumerate() {
        exec(tx,
            "INSERT INTO update_files (update_id, position, name, sha256, url, architecture, language) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![update.id.as_str(), i as i64, f.name.as_str(), f.sha256.hex(), f.url, f.architecture, f.language],
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
fn append_audit(tx: &Transaction<'_>, path: &Path, event: &str, subject: &str, detail: &impl Serialize) -> Result<()> {
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
fn audit_head(conn: &Connection, path: &Path) -> Result<Option<String>> {
    conn.query_row("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
        .optional()
        .map_err(sql_error(path))
}

fn audit_hash(prev: &str, at: &str, event: &str, subject: &str, detail: &str) -> Sha256 {
    // Length-prefixed fields, so that no two different entries hash the same bytes.
    let mut bytes = Vec::new();
    for field in [prev, at, event, subject, detail] {
        bytes.extend_from_slice(&(field.len() as u64).to_le_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    Sha256::of(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        let r = Registry::open(&path).unwrap();
        assert_eq!(r.schema_version().unwrap(), SCHEMA_VERSION);
        drop(r);
        let r = Registry::open(&path).unwrap();
        assert_eq!(r.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = r.conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = r.conn.pragma_query_value(None, "synchronous", |row| row.get(0)).unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }

    /// An update row with the given id and withdrawn flag, as any origin would write it.
    fn insert_update(conn: &Connection, id: &str, withdrawn: bool) {
        conn.execute(
            "INSERT INTO updates (id, revision, title, vendor, product, version, classification, severity, \
             release_date, withdrawn, origin, origin_detail, status_set_at, first_seen, updated_at) \
             VALUES (?1, 1, 't', 'v', 'p', '1', 'security-update', 'critical', '2026-01-01', ?2, 'manual', '', \
             '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            params![id, withdrawn],
        )
        .unwrap();
    }

    #[test]
    fn metadata_moves_beside_the_update_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..7] {
                conn.execute_batch(m).unwrap();
            }
            conn.pragma_update(None, "user_version", 7).unwrap();
            conn.execute(
                "INSERT INTO updates (id, revision, title, vendor, product, version, classification, severity, \
                 release_date, metadata, origin, origin_detail, status_set_at, first_seen, updated_at) \
                 VALUES ('KB1', 1, 't', 'v', 'p', '1', 'security-update', 'critical', '2026-01-01', '{\"id\":\"KB1\"}', \
                 'manual', '', 'x', 'x', 'x')",
                [],
            )
            .unwrap();
        }
        let r = Registry::open(&path).unwrap();
        let moved: String =
            r.conn.query_row("SELECT metadata FROM update_metadata WHERE update_id = 'KB1'", [], |r| r.get(0)).unwrap();
        assert_eq!(moved, r#"{"id":"KB1"}"#);
        let columns: Vec<String> = r
            .conn
            .prepare("SELECT name FROM pragma_table_info('updates')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(!columns.iter().any(|c| c == "metadata"), "{columns:?}");
    }

    #[test]
    fn the_one_pass_availability_agrees_with_the_per_update_rule() {
        let dir = tempfile::tempdir().unwrap();
        let r = Registry::open(&dir.path().join("registry.sqlite")).unwrap();
        let c = &r.conn;
        c.execute_batch("INSERT INTO files (sha256, size, present) VALUES ('aa', 1, 1), ('bb', 1, 0);").unwrap();
        for (id, withdrawn, files) in [
            ("complete", false, &["aa"][..]),
            ("lacks-one", false, &["aa", "bb"][..]),
            ("no-files", false, &[][..]),
            ("withdrawn", true, &["aa"][..]),
        ] {
            insert_update(c, id, withdrawn);
            for (i, f) in files.iter().enumerate() {
                c.execute(
                    "INSERT INTO update_files (update_id, position, name, sha256, url) VALUES (?1, ?2, 'f', ?3, 'u')",
                    params![id, i as i64, f],
                )
                .unwrap();
            }
        }
        let unavailable = Unavailable::load(c).unwrap();
        let mut stmt = c.prepare(&format!("SELECT u.id, {} FROM updates u", available_sql("u"))).unwrap();
        let rows: Vec<(String, bool)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap();
        assert_eq!(rows.len(), 4);
        for (id, available) in rows {
            assert_eq!(unavailable.available(&id), available, "{id}");
            assert_eq!(available, id == "complete", "{id}");
        }
    }

    /// A registry at schema version 10 holding one update with a file, a supersedence and a
    /// group membership; `dangling` adds a file row naming a file the list does not hold.
    fn registry_at_version_10(path: &Path, dangling: bool) {
        let conn = Connection::open(path).unwrap();
        for m in &MIGRATIONS[..10] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "user_version", 10).unwrap();
        insert_update(&conn, "KB1", false);
        conn.execute_batch(
            "INSERT INTO files (sha256, size, present, stored_at) VALUES ('aa', 7, 1, 'then');
             INSERT INTO update_files (update_id, position, name, sha256, url, architecture)
                 VALUES ('KB1', 0, 'a.msu', 'aa', 'https://u/a.msu', 'x64');
             INSERT INTO supersedence (update_id, supersedes) VALUES ('KB1', 'KB0');
             INSERT INTO update_groups (name, description, created_by, created_at) VALUES ('pilot', '', 'a', 'then');
             INSERT INTO group_members (group_name, update_id, added_by, added_at) VALUES ('pilot', 'KB1', 'a', 'then');",
        )
        .unwrap();
        if dangling {
            // What a registry written without foreign keys could hold.
            conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
            conn.execute(
                "INSERT INTO update_files (update_id, position, name, sha256, url) VALUES ('KB1', 1, 'b.msu', 'bb', 'u')",
                [],
            )
            .unwrap();
        }
    }

    #[test]
    fn the_key_tables_move_into_their_keys_b_trees_with_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        registry_at_version_10(&path, false);
        let r = Registry::open(&path).unwrap();
        let one = |sql: &str| -> String { r.conn.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert_eq!(one("SELECT sha256 || size || present || stored_at FROM files"), "aa71then");
        assert_eq!(
            one("SELECT update_id || position || name || sha256 || url || architecture FROM update_files"),
            "KB10a.msuaahttps://u/a.msux64"
        );
        assert_eq!(one("SELECT update_id || supersedes FROM supersedence"), "KB1KB0");
        assert_eq!(one("SELECT group_name || update_id || added_by || added_at FROM group_members"), "pilotKB1athen");
        for table in ["updates", "files", "update_files", "supersedence", "group_members"] {
            let sql = one(&format!("SELECT sql FROM sqlite_schema WHERE name = '{table}'"));
            assert!(sql.ends_with("WITHOUT ROWID"), "{sql}");
        }
        // The foreign keys hold on the rebuilt tables: deleting the update takes its rows along.
        r.conn.execute("DELETE FROM updates WHERE id = 'KB1'", []).unwrap();
        assert_eq!(one("SELECT CAST(COUNT(*) AS TEXT) FROM update_files"), "0");
        assert_eq!(one("SELECT CAST(COUNT(*) AS TEXT) FROM group_members"), "0");
        let refused = r.conn.execute(
            "INSERT INTO update_files (update_id, position, name, sha256, url) VALUES ('KB9', 0, 'x', 'aa', 'u')",
            [],
        );
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("FOREIGN KEY constraint failed"), "a file row of an update the list does not hold: {err}");
    }

    #[test]
    fn an_upgrade_finding_dangling_references_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        registry_at_version_10(&path, true);
        let err = Registry::open(&path).err().expect("refused");
        assert!(matches!(&err, Error::UpgradeRefused { table, .. } if table == "update_files"), "{err}");
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, 10);
        let sql: String =
            conn.query_row("SELECT sql FROM sqlite_schema WHERE name = 'files'", [], |r| r.get(0)).unwrap();
        assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.sqlite");
        drop(Registry::open(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        assert!(matches!(Registry::open(&path), Err(Error::SchemaTooNew { .. })));
    }
}
