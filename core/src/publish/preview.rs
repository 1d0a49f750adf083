//! What a publish would do, found without changing anything: `ingest publish --dry-run`.
//!
//! A publish deletes (files and generations no index it keeps names), so a person may want to
//! see it first. The preview reads the registry and each point as the publish would, through
//! the same handle-relative tree that never follows a link, and writes nothing; it needs no
//! exclusive lock on the data directory.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use super::generations::{generation_numbers_read_only, read_current, read_index};
use super::{Content, content};
use crate::base::error::{Error, Result};
use crate::base::names::DpName;
use crate::base::shared_tree::{Kind, SharedTree};
use crate::formats::dp_index::{FILES_DIR, GENERATIONS_DIR, split_file_path};
use crate::server::datadir::DataDir;

/// What publishing one distribution point would do.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub name: String,
    pub path: PathBuf,
    pub carries: String,
    /// The generation `current` names now (none before the first publish, or when `current`
    /// is damaged: the publish writes a new one).
    pub current: Option<u64>,
    /// Whether the publish would write a new generation (the content changed).
    pub new_generation: bool,
    pub updates: usize,
    pub files: usize,
    pub bytes: u64,
    /// Updates the point would gain and lose.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Files to be copied (absent, of the wrong size, or not a plain file of their own).
    pub to_place: usize,
    pub bytes_to_place: u64,
    /// Files there already with the right size, which a publish without `--check` keeps.
    pub in_place: usize,
    /// Files under `files/` that no kept generation would list: the publish deletes them.
    pub to_prune: Vec<String>,
    /// Generations the publish would delete.
    pub generations_to_prune: Vec<u64>,
    /// Approved updates left out because the store still lacks some of their files.
    pub waiting: Vec<String>,
}

/// What publishing the points named (all of them if none) would do.
pub fn preview(data: &DataDir, names: &[DpName]) -> Result<Vec<Preview>> {
    let dps = super::named_points(data, names)?;
    let mut out = Vec::new();
    for dp in dps {
        let Content { publication, updates, scan_catalog, wanted } = content(&data.registry, &dp)?;
        let root = match SharedTree::open(&dp.path) {
            Ok(root) => Some(root),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let current = match root.as_ref().map(read_current) {
            Some(Ok(current)) => current,
            // A damaged pointer is written anew by the publish.
            Some(Err(Error::DpIndex { .. })) | None => None,
            Some(Err(e)) => return Err(e),
        };
        let existing = |name: &str| -> Result<Option<SharedTree>> {
            match &root {
                Some(root) => root.existing_subdir(name),
                None => Ok(None),
            }
        };
        let (files_dir, generations_dir) = (existing(FILES_DIR)?, existing(GENERATIONS_DIR)?);
        let previous = match (&generations_dir, current) {
            (Some(dir), Some(g)) => read_index(dir, g).ok(),
            _ => None,
        };
        let unchanged = previous
            .as_ref()
            .is_some_and(|p| p.updates == updates && p.scan_catalog == scan_catalog && p.distribution_point == dp.name);
        let before: BTreeSet<&str> =
            previous.iter().flat_map(|p| p.updates.iter().map(|u| u.update.id.as_str())).collect();
        let after: BTreeSet<&str> = updates.iter().map(|u| u.update.id.as_str()).collect();

        let (mut to_place, mut bytes_to_place, mut in_place) = (0, 0, 0);
        for (path, (_, size)) in &wanted {
            let (dir, name) = split_file_path(path).expect("file_path builds files/<ab>/<name>");
            let here = match &files_dir {
                Some(files) => files.existing_subdir(dir)?,
                None => None,
            };
            let kind = match &here {
                Some(here) => here.kind(name)?,
                None => None,
            };
            if matches!(kind, Some(Kind::File { len, links: 1 }) if len == *size) {
                in_place += 1;
            } else {
                to_place += 1;
                bytes_to_place += size;
            }
        }

        // Kept after the publish: the generation then current and the one before it.
        let generations = match &generations_dir {
            Some(dir) => generation_numbers_read_only(dir)?,
            None => Vec::new(),
        };
        let kept: Vec<u64> = if unchanged {
            let now = current.expect("unchanged content has a current generation");
            [Some(now), generations.iter().copied().filter(|g| *g < now).max()].into_iter().flatten().collect()
        } else {
            current.into_iter().collect()
        };
        let generations_to_prune = generations.iter().copied().filter(|g| !kept.contains(g)).collect();
        let mut keep: BTreeSet<String> = wanted.keys().cloned().collect();
        for g in &kept {
            if let Some(index) = generations_dir.as_ref().and_then(|dir| read_index(dir, *g).ok()) {
                keep.extend(index.files().map(|f| f.path.clone()));
            }
        }
        let mut to_prune = Vec::new();
        if let Some(files) = &files_dir {
            for (dir, kind) in files.entries()? {
                if kind != Kind::Dir {
                    to_prune.push(format!("{FILES_DIR}/{dir}"));
                    continue;
                }
                if let Some(sub) = files.existing_subdir(&dir)? {
                    for name in sub.names()? {
                        let path = format!("{FILES_DIR}/{dir}/{name}");
                        if !keep.contains(&path) {
                            to_prune.push(path);
                        }
                    }
                }
            }
        }

        out.push(Preview {
            name: dp.name.clone(),
            path: dp.path.clone(),
            carries: dp.carries(),
            current,
            new_generation: !unchanged,
            updates: updates.len(),
            files: wanted.len(),
            bytes: wanted.values().map(|(_, size)| size).sum(),
            added: after.difference(&before).map(|s| s.to_string()).collect(),
            removed: before.difference(&after).map(|s| s.to_string()).collect(),
            to_place,
            bytes_to_place,
            in_place,
            to_prune,
            generations_to_prune,
            waiting: publication.waiting,
        });
    }
    Ok(out)
}
