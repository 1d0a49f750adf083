//! What `ingest watch` keeps between passes: when the update list was last refreshed, and
//! which files of a drop folder it could not move away.

use rusqlite::{OptionalExtension, params};

use super::Registry;
use crate::base::clock::Timestamp;
use crate::base::error::Result;

/// A file of a drop folder as observed: where, how large, and when last modified
/// (nanoseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub path: String,
    pub size: u64,
    pub modified: i64,
}

impl Registry {
    /// When the latest refresh ran (an import that accepted something, a registration, a
    /// CSV import or `ingest refresh`), as its change report records it.
    pub fn last_refresh(&self) -> Result<Option<Timestamp>> {
        let created: Option<String> = self
            .conn
            .query_row(
                "SELECT created_at FROM reports WHERE id = \
                 (SELECT max(id) FROM reports WHERE refreshed_day IS NOT NULL)",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())?;
        Ok(created.and_then(|c| c.parse().ok()))
    }

    /// Whether a file was handled before, unchanged since, and could not be moved away.
    pub fn watch_seen(&self, file: &Observed) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT 1 FROM watch_seen WHERE path = ?1 AND size = ?2 AND modified = ?3",
                params![file.path, file.size as i64, file.modified],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(self.err())
    }

    /// Remembers a file that was handled but stays where it was found, so that later passes
    /// leave it alone until it changes.
    pub fn remember_seen(&mut self, file: &Observed, outcome: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO watch_seen (path, size, modified, outcome, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![file.path, file.size as i64, file.modified, outcome, Timestamp::now().to_string()],
            )
            .map_err(self.err())?;
        Ok(())
    }
}
