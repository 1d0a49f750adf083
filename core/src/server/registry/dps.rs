//! Distribution points as the registry knows them (name, directory, what they carry, the
//! last generation published), and what each should carry now.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::filter::require_group;
use super::{Registry, Unavailable, append_audit, sql_error};
use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{DpName, GroupName};
use crate::formats::approval::Actor;
use crate::formats::manifest::ScanCatalog;
use crate::formats::model::Update;

/// A distribution point as `ingest dp list` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistributionPoint {
    pub name: String,
    pub path: PathBuf,
    /// The update group it carries; none: every approved update.
    pub group: Option<String>,
    /// With a group: its undecided members too (a pilot group), never declined ones.
    pub include_unapproved: bool,
    pub created_by: String,
    pub created_at: String,
    /// The last generation published, if any.
    pub generation: Option<u64>,
    pub published_at: Option<String>,
    /// [`Registry::publication_fingerprint`] as of the last publish.
    #[serde(skip)]
    pub fingerprint: Option<String>,
}

impl DistributionPoint {
    /// What it carries, in words.
    pub fn carries(&self) -> String {
        match (&self.group, self.include_unapproved) {
            (Some(g), true) => format!("approved and undecided updates of group {g} (a pilot)"),
            (Some(g), false) => format!("approved updates of group {g}"),
            (None, _) => "all approved updates".to_string(),
        }
    }
}

/// What a distribution point should carry now.
#[derive(Debug, Clone, Default)]
pub struct Publication {
    /// Approved, available updates, by id.
    pub updates: Vec<Update>,
    /// Approved updates that still lack files in the store: not published until they arrive.
    pub waiting: Vec<String>,
    /// The newest scan catalog in the store, which every point publishes.
    pub scan_catalog: Option<ScanCatalog>,
}

fn dp_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DistributionPoint> {
    Ok(DistributionPoint {
        name: r.get(0)?,
        path: PathBuf::from(r.get::<_, String>(1)?),
        group: r.get(2)?,
        created_by: r.get(3)?,
        created_at: r.get(4)?,
        generation: r.get::<_, Option<i64>>(5)?.map(|g| g as u64),
        published_at: r.get(6)?,
        fingerprint: r.get(7)?,
        include_unapproved: r.get(8)?,
    })
}

const DP_COLUMNS: &str = "name, path, group_name, created_by, created_at, generation, published_at, published_fingerprint, include_unapproved";

/// The approved updates (of group `?1`, if not null) that a distribution point carries, by id;
/// whether each is available is decided apart ([`Unavailable`]).
const CARRIED: &str = "WHERE (u.status = 'approved' OR (?2 AND ?1 IS NOT NULL AND u.status = 'undefined')) \
     AND u.withdrawn = 0 \
     AND (?1 IS NULL OR EXISTS (SELECT 1 FROM group_members g WHERE g.update_id = u.id AND g.group_name = ?1)) \
     ORDER BY u.id";

impl Registry {
    /// Records a distribution point. Its directory must be absolute, outside the data
    /// directory, and no other distribution point's (two would prune each other's files).
    pub fn add_dp(
        &mut self,
        name: &DpName,
        path: &Path,
        group: Option<&GroupName>,
        include_unapproved: bool,
        data_dir: &Path,
        actor: &Actor,
    ) -> Result<DistributionPoint> {
        if include_unapproved && group.is_none() {
            return Err(Error::Invalid(format!(
                "distribution point {name}: only a point for an update group (a pilot) carries undecided updates"
            )));
        }
        if !path.is_absolute() {
            return Err(Error::Invalid(format!("distribution point {name}: path {} is not absolute", path.display())));
        }
        let Some(text) = path.to_str() else {
            return Err(Error::Invalid(format!("distribution point {name}: path {} is not UTF-8", path.display())));
        };
        let data_dir = std::path::absolute(data_dir).map_err(|e| Error::io(data_dir, e))?;
        if path.starts_with(&data_dir) || data_dir.starts_with(path) {
            return Err(Error::Invalid(format!(
                "distribution point {name}: path {} overlaps the data directory {}",
                path.display(),
                data_dir.display()
            )));
        }
        for other in self.dps()? {
            if other.name.eq_ignore_ascii_case(name.as_str()) {
                return Err(Error::AlreadyExists { what: format!("distribution point {:?}", other.name) });
            }
            if other.path.starts_with(path) || path.starts_with(&other.path) {
                return Err(Error::Invalid(format!(
                    "distribution point {name}: path {} overlaps that of distribution point {} ({})",
                    path.display(),
                    other.name,
                    other.path.display()
                )));
            }
        }
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        let group = group.map(|g| require_group(&tx, &self.path, g)).transpose()?;
        tx.execute(
            "INSERT INTO distribution_points (name, path, group_name, created_by, created_at, include_unapproved) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name.as_str(), text, group, actor.as_str(), Timestamp::now().to_string(), include_unapproved],
        )
        .map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "dp-added",
            name.as_str(),
            &serde_json::json!({"by": actor.as_str(), "path": text, "group": group, "include_unapproved": include_unapproved}),
        )?;
        tx.commit().map_err(&e)?;
        self.dp(name)
    }

    pub fn dp(&self, name: &DpName) -> Result<DistributionPoint> {
        self.conn
            .query_row(
                &format!("SELECT {DP_COLUMNS} FROM distribution_points WHERE name = ?1"),
                [name.as_str()],
                dp_from_row,
            )
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| Error::NotFound { what: "distribution point", id: name.to_string() })
    }

    pub fn dps(&self) -> Result<Vec<DistributionPoint>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {DP_COLUMNS} FROM distribution_points ORDER BY name"))
            .map_err(self.err())?;
        let rows = stmt.query_map([], dp_from_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(self.err())
    }

    /// Forgets a distribution point; its directory is left as it is (clients may still be
    /// reading it).
    pub fn remove_dp(&mut self, name: &DpName, actor: &Actor) -> Result<DistributionPoint> {
        let dp = self.dp(name)?;
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        tx.execute("DELETE FROM distribution_points WHERE name = ?1", [dp.name.as_str()]).map_err(&e)?;
        append_audit(
            &tx,
            &self.path,
            "dp-removed",
            &dp.name,
            &serde_json::json!({"by": actor.as_str(), "path": dp.path, "generation": dp.generation}),
        )?;
        tx.commit().map_err(&e)?;
        Ok(dp)
    }

    /// The names of the distribution points that carry group `name`.
    pub(super) fn dps_carrying(&self, group: &str) -> Result<Vec<String>> {
        Ok(self
            .dps()?
            .into_iter()
            .filter(|d| d.group.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(group)))
            .map(|d| d.name)
            .collect())
    }

    /// What `dp` should carry now: the approved updates (of its group, if it has one) whose
    /// files are all in the store; approved updates still lacking files are named apart.
    pub fn publication(&self, dp: &DistributionPoint) -> Result<Publication> {
        let e = self.err();
        let unavailable = Unavailable::load(&self.conn).map_err(&e)?;
        let sql =
            format!("SELECT u.id, m.metadata FROM updates u JOIN update_metadata m ON m.update_id = u.id {CARRIED}");
        let mut stmt = self.conn.prepare(&sql).map_err(&e)?;
        let mut rows = stmt.query(params![dp.group.as_deref(), dp.include_unapproved]).map_err(&e)?;
        let mut publication = Publication::default();
        while let Some(r) = rows.next().map_err(&e)? {
            let id: String = r.get(0).map_err(&e)?;
            if !unavailable.available(&id) {
                publication.waiting.push(id);
                continue;
            }
            let metadata: String = r.get(1).map_err(&e)?;
            let update: Update = serde_json::from_str(&metadata).map_err(|err| Error::RegistryDamaged {
                path: self.path.to_path_buf(),
                reason: format!("metadata of {id} is damaged: {err}"),
            })?;
            publication.updates.push(update);
        }
        publication.scan_catalog = self.newest_scan_catalog()?;
        Ok(publication)
    }

    /// The newest scan catalog whose file is in the store: by the catalog's own creation
    /// time, then by arrival.
    pub fn newest_scan_catalog(&self) -> Result<Option<ScanCatalog>> {
        self.conn
            .query_row(
                "SELECT s.sha256, s.size, s.signer, s.root, s.package_version, s.created FROM scan_catalogs s \
                 JOIN files f ON f.sha256 = s.sha256 WHERE f.present = 1 \
                 ORDER BY COALESCE(s.created, '') DESC, s.received_at DESC LIMIT 1",
                [],
                |r| {
                    let digest: String = r.get(0)?;
                    Ok((digest, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                },
            )
            .optional()
            .map_err(self.err())?
            .map(|(digest, size, signer, root, package_version, created)| {
                let sha256 = digest.parse().map_err(|_| Error::RegistryDamaged {
                    path: self.path.to_path_buf(),
                    reason: format!("scan catalog digest {digest:?} is damaged"),
                })?;
                Ok(ScanCatalog { sha256, size: size as u64, signer, root, package_version, created })
            })
            .transpose()
    }

    /// A digest of what `dp` should carry now: each approved, available update's id,
    /// revision and last change (an update's metadata changes only with its revision), and
    /// the point's group. Equal to the one stored at the last publish: nothing to publish.
    /// Reads no metadata, so that asking costs little (`ingest watch` asks every pass).
    pub fn publication_fingerprint(&self, dp: &DistributionPoint) -> Result<String> {
        use sha2::Digest;
        let e = self.err();
        let unavailable = Unavailable::load(&self.conn).map_err(&e)?;
        let mut hash = sha2::Sha256::new();
        hash.update(format!("carries {:?} {}\n", dp.group, dp.include_unapproved));
        let sql = format!("SELECT u.id, u.revision, u.updated_at, u.status FROM updates u {CARRIED}");
        let mut stmt = self.conn.prepare(&sql).map_err(&e)?;
        let mut rows = stmt.query(params![dp.group.as_deref(), dp.include_unapproved]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let id: String = r.get(0).map_err(&e)?;
            if unavailable.available(&id) {
                let revision: i64 = r.get(1).map_err(&e)?;
                let updated: String = r.get(2).map_err(&e)?;
                let status: String = r.get(3).map_err(&e)?;
                hash.update(format!("{id}\t{revision}\t{updated}\t{status}\n"));
            }
        }
        if let Some(scan) = self.newest_scan_catalog()? {
            hash.update(format!("scan catalog {}\n", scan.sha256));
        }
        // What the assignment says: the computer groups with their policies and points, who
        // is in them, and the members of the update groups their policies name.
        for sql in [
            "SELECT name, test, update_group, grace_days, grace_from, point FROM computer_groups ORDER BY name",
            "SELECT name, group_name FROM computers WHERE group_name IS NOT NULL ORDER BY name",
            "SELECT group_name, update_id FROM group_members \
             WHERE group_name IN (SELECT update_group FROM computer_groups) ORDER BY 1, 2",
        ] {
            let mut stmt = self.conn.prepare(sql).map_err(&e)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).map_err(&e)?;
            while let Some(r) = rows.next().map_err(&e)? {
                for i in 0..columns {
                    hash.update(format!("{:?}\t", r.get::<_, rusqlite::types::Value>(i).map_err(&e)?));
                }
                hash.update("\n");
            }
        }
        Ok(crate::base::names::Sha256(hash.finalize().into()).to_string())
    }

    /// Records that generation `generation` of `dp` is published, with what changed, and
    /// the fingerprint of what it carries.
    pub fn record_publish(
        &mut self,
        dp: &DistributionPoint,
        generation: u64,
        fingerprint: &str,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let e = sql_error(&self.path);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
        tx.execute(
            "UPDATE distribution_points SET generation = ?2, published_at = ?3, published_fingerprint = ?4 WHERE name = ?1",
            params![dp.name, generation as i64, Timestamp::now().to_string(), fingerprint],
        )
        .map_err(&e)?;
        append_audit(&tx, &self.path, "published", &dp.name, detail)?;
        tx.commit().map_err(&e)?;
        Ok(())
    }

    /// Stores the fingerprint of a publish that found the point up to date (a point published
    /// before fingerprints were kept).
    pub fn record_fingerprint(&mut self, dp: &DistributionPoint, fingerprint: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE distribution_points SET published_fingerprint = ?2 WHERE name = ?1",
                params![dp.name, fingerprint],
            )
            .map_err(self.err())?;
        Ok(())
    }
}
