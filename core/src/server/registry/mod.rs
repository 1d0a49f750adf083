//! The registry: ingest's SQLite database holding trust, channel state, accepted bundles,
//! the update list and the audit log.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit survives power loss. Everything a
//! bundle changes is written in one transaction ([`Registry::record_import`]), which
//! re-checks the rollback rules inside it; every change appends to the audit chain in the
//! transaction that makes it.
//!
//! One file per concern, each adding the methods of its tables to [`Registry`]: `schema`
//! (migrations), `trust`, `bundles` (accepted bundles, channels, the metadata merge), `state`
//! (the state file's contents), `files`, `audit`; the update list in `list`, `filter`,
//! `groups`, `rules`, `manual` and `exchange`; `dps`, `peers`, `reports` and `watch` for what
//! those commands remember. This file holds the connection and the helpers they share.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rustc_hash::FxHashSet;

use crate::base::error::{Error, Result};

mod assignment;
mod audit;
mod bundles;
mod computers;
mod dps;
mod exchange;
mod files;
mod filter;
mod groups;
mod install_results;
mod list;
mod manual;
mod peers;
mod reports;
mod row;
mod rules;
mod schema;
mod state;
mod trust;
mod watch;

pub use audit::{AuditEntry, AuditReport};
pub use bundles::{AcceptedBundle, ChannelState, ImportChanges, ImportRecord};
pub use computers::{
    ComputerGroup, ComputerSummary, FacetSource, GroupSettings, HistoryPoint, InventoryOutcome, InventoryRecord,
    JudgmentRun, StoredJudgment, TimeFrom, UpdateStatus,
};
pub use dps::{DistributionPoint, Publication};
pub use exchange::{GroupMerge, ListMerge};
pub use files::FileRow;
pub use filter::ListFilter;
pub use groups::{GroupSummary, Membership};
pub use install_results::{JudgedResult, Refusal, ResultsOutcome, ResultsRecord, ResultsSummary};
pub use list::{ChainLink, EulaAcceptance, EulaView, UpdateDetail, UpdateSummary};
pub use manual::{KnownFile, ManualRecord};
pub use peers::PeerKey;
pub use rules::{GroupAddition, Held, RefreshReport, RuleDecision, StoredRule, Superseded};
pub use schema::SCHEMA_VERSION;
pub use trust::TrustedKey;
pub use watch::Observed;

use audit::append_audit;
use bundles::merge_update;
use schema::migrate;

pub struct Registry {
    conn: Connection,
    path: PathBuf,
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

/// A registry error with the file it concerns. A value that does not read back as its type
/// is damage (ingest never writes one), not a failure of SQLite.
fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| match source {
        rusqlite::Error::FromSqlConversionFailure(column, _, cause) => {
            Error::RegistryDamaged { path: path.to_path_buf(), reason: format!("column {column}: {cause}") }
        }
        source => Error::Registry { path: path.to_path_buf(), source },
    }
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
            migrate(&mut conn, path, version)?;
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
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::schema::MIGRATIONS;
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
