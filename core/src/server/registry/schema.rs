//! The registry's schema: an append-only list of migrations tracked by `PRAGMA user_version`.
//! Never edit or remove one, only add.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::sql_error;
use crate::base::error::{Error, Result};

/// Append-only. Each entry moves the schema from version `index` to `index + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // Migration 14: an update's release date may be unknown (a winget manifest without
    // ReleaseDate): the column takes NULL; the table is rebuilt under its own name as in 11.
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
    release_date     TEXT,
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
"#,
    // 15: each file's digest provenance: the vendor's SHA-1 where its metadata gives one, and
    // where the SHA-256 comes from (the vendor; fetch, after checking the vendor's SHA-1;
    // ingest, for a file registered by hand), so that lists, reports and rules can tell
    // the files Microsoft names by SHA-1 only.
    r#"
ALTER TABLE update_files ADD COLUMN sha1 TEXT;
ALTER TABLE update_files ADD COLUMN sha256_from TEXT NOT NULL DEFAULT 'vendor'
    CHECK (sha256_from IN ('vendor', 'fetch', 'registered'));
UPDATE update_files SET sha256_from = 'registered'
    WHERE update_id IN (SELECT id FROM updates WHERE origin = 'manual');
"#,
    // 16: Microsoft's offline scan catalogs the bundles carried, for the computers' own
    // scans; distribution points publish the newest whose file is present.
    r#"
CREATE TABLE scan_catalogs (
    sha256          TEXT PRIMARY KEY REFERENCES files(sha256),
    size            INTEGER NOT NULL,
    signer          TEXT NOT NULL,
    root            TEXT NOT NULL,
    package_version TEXT,
    created         TEXT,
    bundle_id       TEXT NOT NULL,
    received_at     TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 17: a point for a pilot group carries the group's undecided members too, so that a
    // test group receives an update before it is approved for everyone.
    r#"
ALTER TABLE distribution_points ADD COLUMN include_unapproved INTEGER NOT NULL DEFAULT 0;
"#,
    // 18: computers, what they reported (per facet, replaced whole by a newer report), the
    // computer groups with their policies, and the judgment: verdicts that are not satisfied
    // (with their reasons) per computer and update, a summary per computer, and a daily
    // count per group and level for the picture of compliance over time. Computers have an
    // integer key: their 3 million installed updates at 10,000 computers are keyed by it.
    r#"
CREATE TABLE computer_groups (
    name         TEXT PRIMARY KEY COLLATE NOCASE,
    description  TEXT NOT NULL DEFAULT '',
    test         INTEGER NOT NULL DEFAULT 0,
    update_group TEXT COLLATE NOCASE REFERENCES update_groups(name),
    grace_days   INTEGER NOT NULL DEFAULT 0,
    grace_from   TEXT NOT NULL DEFAULT 'approval' CHECK (grace_from IN ('approval', 'release')),
    point        TEXT COLLATE NOCASE REFERENCES distribution_points(name),
    notify_level TEXT NOT NULL DEFAULT 'missing-important',
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE computers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    group_name  TEXT COLLATE NOCASE REFERENCES computer_groups(name),
    os_product  TEXT,
    os_build    TEXT,
    os_arch     TEXT,
    first_seen  TEXT NOT NULL,
    last_report TEXT NOT NULL
);
CREATE TABLE computer_facets (
    computer_id INTEGER NOT NULL REFERENCES computers(id) ON DELETE CASCADE,
    facet       TEXT NOT NULL CHECK (facet IN ('os', 'hotfixes', 'programs', 'packages', 'scan')),
    reported_at TEXT NOT NULL,
    time_from   TEXT NOT NULL CHECK (time_from IN ('report', 'file')),
    format      TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (computer_id, facet)
) WITHOUT ROWID;
CREATE TABLE computer_hotfixes (
    computer_id  INTEGER NOT NULL REFERENCES computers(id) ON DELETE CASCADE,
    kb           TEXT NOT NULL,
    description  TEXT,
    installed_on TEXT,
    PRIMARY KEY (computer_id, kb)
) WITHOUT ROWID;
CREATE TABLE computer_programs (
    computer_id  INTEGER NOT NULL REFERENCES computers(id) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT,
    publisher    TEXT,
    product_code TEXT,
    PRIMARY KEY (computer_id, n)
) WITHOUT ROWID;
CREATE TABLE computer_packages (
    computer_id INTEGER NOT NULL REFERENCES computers(id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    package_id  TEXT NOT NULL,
    version     TEXT NOT NULL,
    source      TEXT,
    PRIMARY KEY (computer_id, n)
) WITHOUT ROWID;
CREATE TABLE computer_scans (
    computer_id    INTEGER PRIMARY KEY REFERENCES computers(id) ON DELETE CASCADE,
    scanned        TEXT NOT NULL,
    catalog_sha256 TEXT
);
CREATE TABLE computer_scan_missing (
    computer_id INTEGER NOT NULL REFERENCES computers(id) ON DELETE CASCADE,
    update_id   TEXT NOT NULL,
    kb          TEXT,
    title       TEXT,
    PRIMARY KEY (computer_id, update_id)
) WITHOUT ROWID;
CREATE TABLE judgments (
    computer_id INTEGER NOT NULL REFERENCES computers(id) ON DELETE CASCADE,
    update_id   TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('within-grace', 'missing', 'failed', 'unknown')),
    reason      TEXT NOT NULL,
    PRIMARY KEY (computer_id, update_id)
) WITHOUT ROWID;
CREATE INDEX judgments_update ON judgments(update_id, verdict);
CREATE TABLE computer_status (
    computer_id INTEGER PRIMARY KEY REFERENCES computers(id) ON DELETE CASCADE,
    level       TEXT NOT NULL,
    applicable  INTEGER NOT NULL,
    installed   INTEGER NOT NULL,
    superseded  INTEGER NOT NULL,
    scan_clear  INTEGER NOT NULL,
    within_grace INTEGER NOT NULL,
    missing     INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    unknown     INTEGER NOT NULL,
    judged_at   TEXT NOT NULL
);
CREATE TABLE compliance_history (
    day        TEXT NOT NULL,
    group_name TEXT NOT NULL,
    level      TEXT NOT NULL,
    computers  INTEGER NOT NULL,
    PRIMARY KEY (day, group_name, level)
) WITHOUT ROWID;
CREATE TABLE install_results (
    computer_id INTEGER NOT NULL REFERENCES computers(id) ON DELETE CASCADE,
    update_id   TEXT NOT NULL,
    sha256      TEXT,
    at          TEXT NOT NULL,
    return_code INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'reboot', 'already-installed', 'failure')),
    meaning     TEXT NOT NULL,
    source      TEXT NOT NULL,
    PRIMARY KEY (computer_id, update_id, at)
) WITHOUT ROWID;
"#,
];

/// The schema version this ferry writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema from `version` to [`SCHEMA_VERSION`] in one exclusive transaction.
/// Foreign keys stay off while tables are rebuilt and are checked whole before the commit: an
/// upgrade that finds rows referring to rows that do not exist changes nothing.
pub(super) fn migrate(conn: &mut Connection, path: &Path, version: i64) -> Result<()> {
    let e = sql_error(path);
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
    Ok(())
}
