//! fetch's work directory: what `fetch` must remember between runs (the last sequence and
//! creation time per channel, and the revisions it numbered for feeds that have none), kept
//! in `state.json` and guarded by `fetch.lock`.
//!
//! A sequence is reserved (written durably) before its bundle is written, so a crash can leave
//! a gap in the sequence but never reuse a number for different content.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{Channel, Sha256, UpdateId};
use crate::formats::model::Update;

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "fetch.lock";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    channels: BTreeMap<Channel, ChannelRecord>,
    /// For updates of feeds without revisions (winget): the revision last packed under each
    /// id, and the digest of its metadata then.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    revisions: BTreeMap<UpdateId, RevisionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RevisionRecord {
    revision: u32,
    metadata: Sha256,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChannelRecord {
    sequence: u64,
    created: Timestamp,
}

pub struct WorkDir {
    root: PathBuf,
    state: State,
    _lock: File,
}

/// A sequence number and creation time reserved for one bundle.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    pub sequence: u64,
    pub created: Timestamp,
    /// The system clock was behind the last bundle's time; `created` was held at that time.
    pub clock_behind: bool,
}

impl WorkDir {
    pub fn open(root: &Path) -> Result<WorkDir> {
        let lock = crate::base::lock::acquire(root, LOCK_FILE)?;
        let path = root.join(STATE_FILE);
        let state = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Damaged {
                what: format!("work-directory state {}", path.display()),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        Ok(WorkDir { root: root.to_path_buf(), state, _lock: lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reserves the next sequence for `channel`: above every one written from this work
    /// directory and at least `min_sequence`; dated no earlier than the last bundle.
    pub fn reserve(&mut self, channel: &Channel, min_sequence: Option<u64>) -> Result<Reservation> {
        let now = Timestamp::now();
        let last = self.state.channels.get(channel);
        // Never past the largest sequence a bundle may carry, and never wrapping to 1.
        let next = match last {
            None => Some(1),
            Some(r) => r.sequence.checked_add(1),
        };
        let sequence = next
            .map(|n| n.max(min_sequence.unwrap_or(1)))
            .filter(|s| *s <= crate::formats::manifest::MAX_SEQUENCE)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "channel {channel}: no sequence is left after {} (the largest is {}); \
                     a new channel continues from 1",
                    last.map_or(0, |r| r.sequence).max(min_sequence.unwrap_or(0)),
                    crate::formats::manifest::MAX_SEQUENCE
                ))
            })?;
        let (created, clock_behind) = match last {
            Some(r) if r.created > now => (r.created, true),
            _ => (now, false),
        };
        self.state.channels.insert(channel.clone(), ChannelRecord { sequence, created });
        self.save()?;
        Ok(Reservation { sequence, created, clock_behind })
    }

    /// Numbers the revisions of `updates`, which come from a feed that has none (winget: a
    /// manifest corrected in place keeps its version). An update whose metadata differs from
    /// what this work directory last packed under its id gets the next revision, so that the
    /// offline side takes the correction (and, if its files changed, sends its approval back
    /// to undefined) instead of keeping the old metadata; unchanged metadata keeps its
    /// revision. Recorded at once, so a pack that fails later numbers the same way again.
    pub fn number_revisions(&mut self, updates: &mut [Update]) -> Result<()> {
        let mut changed = false;
        for update in updates.iter_mut() {
            update.revision = 1;
            let metadata = Sha256::of(update.stored_json().as_bytes());
            let revision = match self.state.revisions.get(&update.id) {
                Some(r) if r.metadata == metadata => r.revision,
                Some(r) => r.revision.saturating_add(1),
                None => 1,
            };
            if self.state.revisions.get(&update.id).is_none_or(|r| r.metadata != metadata) {
                self.state.revisions.insert(update.id.clone(), RevisionRecord { revision, metadata });
                changed = true;
            }
            update.revision = revision;
        }
        if changed {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let path = self.root.join(STATE_FILE);
        let mut temp = tempfile::Builder::new().prefix(".state-").tempfile_in(&self.root).at(&self.root)?;
        let bytes = serde_json::to_vec_pretty(&self.state).expect("state always serialises");
        temp.write_all(&bytes).at(temp.path())?;
        temp.as_file().sync_all().at(temp.path())?;
        temp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        crate::base::durable::sync_dir(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_grow_and_respect_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let ch = Channel::default_channel();
        let mut w = WorkDir::open(dir.path()).unwrap();
        assert_eq!(w.reserve(&ch, None).unwrap().sequence, 1);
        assert_eq!(w.reserve(&ch, None).unwrap().sequence, 2);
        assert_eq!(w.reserve(&ch, Some(10)).unwrap().sequence, 10);
        assert_eq!(w.reserve(&ch, Some(3)).unwrap().sequence, 11);
        drop(w);
        let mut w = WorkDir::open(dir.path()).unwrap();
        assert_eq!(w.reserve(&ch, None).unwrap().sequence, 12);
    }

    #[test]
    fn revisions_grow_when_metadata_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WorkDir::open(dir.path()).unwrap();
        let mut u = vec![crate::formats::model::tests::sample()];
        w.number_revisions(&mut u).unwrap();
        assert_eq!(u[0].revision, 1);
        w.number_revisions(&mut u).unwrap();
        assert_eq!(u[0].revision, 1, "the same metadata keeps its revision");
        u[0].title.push_str(" (corrected)");
        w.number_revisions(&mut u).unwrap();
        assert_eq!(u[0].revision, 2);
        drop(w);
        let mut w = WorkDir::open(dir.path()).unwrap();
        w.number_revisions(&mut u).unwrap();
        assert_eq!(u[0].revision, 2, "remembered across runs");
    }

    #[test]
    fn a_second_fetch_is_told_the_work_directory_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let _w = WorkDir::open(dir.path()).unwrap();
        assert!(matches!(WorkDir::open(dir.path()), Err(Error::Busy { .. })));
    }
}
