//! Publishing to distribution points, and checking one.
//!
//! A distribution point is a directory that a web server or a file share serves, laid out
//! as `formats::dp_index` describes.
//!
//! Readers never see a half-published state: files first, then the new generation (written
//! under a temporary name and renamed whole), then one atomic replacement of `current`. A
//! file is pruned only when neither of the last two generations lists it, so a client that
//! read the previous index a moment ago still finds every file it names. A crash at any
//! point leaves the previous generation valid; the next publish finishes the job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::FileName;
use crate::base::names::{DpName, Sha256};
use crate::base::progress::{Meter, Task, Watch};
use crate::base::shared_tree::SharedTree;
use crate::formats::dp_index::{
    AGENT_RETURN_CODES, ASSIGNMENT_FORMAT, Assignment, FILES_DIR, GENERATIONS_DIR, INDEX_FORMAT, Index, IndexedFile,
    IndexedScanCatalog, IndexedUpdate, SCAN_CATALOG_NAME, file_path, indexed, split_file_path,
};
use crate::formats::minisign::SecretKey;
use crate::server::datadir::DataDir;
use crate::server::registry::{DistributionPoint, Registry};

mod generations;
mod place;
pub mod points;
mod preview;
mod verify;

use generations::{
    generation_numbers, prune_files, read_assignment, read_current, read_index, remove_leftovers, write_current,
    write_generation,
};
pub use place::Placed;
use place::Placer;
pub use preview::{Preview, preview};
pub use verify::{VerifiedPoint, current_verified, verify_point};

/// What one publish did to one distribution point.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub name: String,
    pub path: PathBuf,
    pub carries: String,
    /// The generation `current` names now.
    pub generation: u64,
    /// False when the content was what the current generation lists already.
    pub new_generation: bool,
    pub updates: usize,
    pub files: usize,
    pub bytes: u64,
    /// Updates added and removed since the previous generation.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub placed: Placed,
    /// What was found in the point that ferry did not put there and was put right: links,
    /// special files, a damaged `current`, hard links to the store.
    pub repaired: Vec<String>,
    pub pruned_files: usize,
    pub pruned_generations: Vec<u64>,
    /// Approved updates not published because the store still lacks some of their files.
    pub waiting: Vec<String>,
}

/// Brings the distribution points named (all of them if none) up to date, one after the
/// other, telling `watch` how far the placing of each point's files has come; the first
/// failure stops the run, leaving that point at its previous generation. A file already
/// published is kept if its size is right, or with `check` only if its content hashes to
/// its digest.
pub fn publish(data: &mut DataDir, names: &[DpName], check: bool, watch: &dyn Watch) -> Result<Vec<Published>> {
    let dps = named_points(data, names)?;
    let key = data.server_key()?;
    let store_root =
        data.store().ok_or_else(|| Error::Internal("publishing needs the data directory's lock".into()))?;
    let store_root = store_root.root().to_path_buf();
    let mut done = Vec::new();
    for dp in dps {
        let fingerprint = data.registry.publication_fingerprint(&dp)?;
        let published = publish_one(&data.registry, &store_root, &key, &dp, check, watch)?;
        if published.new_generation || dp.generation != Some(published.generation) {
            data.registry.record_publish(
                &dp,
                published.generation,
                &fingerprint,
                &serde_json::to_value(&published).expect("serialises"),
            )?;
        } else if dp.fingerprint.as_deref() != Some(fingerprint.as_str()) {
            data.registry.record_fingerprint(&dp, &fingerprint)?;
        }
        done.push(published);
    }
    Ok(done)
}

/// The distribution points named, each refused by name if unknown; all of them if none.
fn named_points(data: &DataDir, names: &[DpName]) -> Result<Vec<DistributionPoint>> {
    if names.is_empty() { data.registry.dps() } else { names.iter().map(|n| data.registry.dp(n)).collect() }
}

/// The distribution points that are behind: what they should carry changed since their last
/// publish (approvals, groups, arrived files), their `current` is not the generation last
/// published, or they were never published. Reads the registry (no metadata) and each
/// point's `current`, no index and no published file: `ingest watch` asks every pass, and a
/// pass with nothing to do must stay cheap. What changed is for the publish to find out.
pub fn pending(data: &DataDir) -> Result<Vec<DistributionPoint>> {
    let registry = &data.registry;
    let mut out = Vec::new();
    for dp in registry.dps()? {
        let current = SharedTree::open(&dp.path).ok().and_then(|root| read_current(&root).ok().flatten());
        let up_to_date = current.is_some()
            && current == dp.generation
            && dp.fingerprint.as_deref() == Some(registry.publication_fingerprint(&dp)?.as_str());
        if !up_to_date {
            out.push(dp);
        }
    }
    Ok(out)
}

/// What a point is to carry now: the registry's publication, as index entries, and every file
/// by its path in the point.
struct Content {
    publication: crate::server::registry::Publication,
    updates: Vec<IndexedUpdate>,
    scan_catalog: Option<IndexedScanCatalog>,
    wanted: BTreeMap<String, (Sha256, u64)>,
}

fn content(registry: &Registry, dp: &DistributionPoint) -> Result<Content> {
    let publication = registry.publication(dp)?;
    let updates: Vec<IndexedUpdate> = publication.updates.iter().map(indexed).collect();
    let scan_catalog = publication.scan_catalog.as_ref().map(|s| {
        let name: FileName = SCAN_CATALOG_NAME.parse().expect("a valid file name");
        IndexedScanCatalog {
            file: IndexedFile { path: file_path(&s.sha256, &name), name, sha256: s.sha256, size: s.size },
            package_version: s.package_version.clone(),
            created: s.created.clone(),
        }
    });
    let mut wanted: BTreeMap<String, (Sha256, u64)> = BTreeMap::new();
    for f in updates.iter().flat_map(|u| &u.files).chain(scan_catalog.iter().map(|s| &s.file)) {
        wanted.insert(f.path.clone(), (f.sha256, f.size));
    }
    Ok(Content { publication, updates, scan_catalog, wanted })
}

fn publish_one(
    registry: &Registry,
    store_root: &Path,
    key: &SecretKey,
    dp: &DistributionPoint,
    check: bool,
    watch: &dyn Watch,
) -> Result<Published> {
    // The point is a share others write to: everything below its root is reached through
    // directory handles, and whatever was planted (links, FIFOs, directories at file names)
    // is removed and reported, never followed.
    let root = SharedTree::create(&dp.path)?;
    let mut repaired = Vec::new();
    let files_dir = root.subdir(FILES_DIR, &mut repaired)?;
    let generations_dir = root.subdir(GENERATIONS_DIR, &mut repaired)?;
    remove_leftovers(&root, &generations_dir, &files_dir)?;

    let Content { publication, updates, scan_catalog, wanted } = content(registry, dp)?;
    let current = match read_current(&root) {
        Ok(current) => current,
        // The point is the server's own output: a damaged pointer is written anew.
        Err(Error::DpIndex { reason, .. }) => {
            repaired.push(format!("{reason}; a new generation is written and named"));
            None
        }
        Err(e) => return Err(e),
    };
    let generations = generation_numbers(&generations_dir, &mut repaired)?;
    let previous = current.and_then(|g| read_index(&generations_dir, g).ok());

    let mut placer = Placer::new(store_root, &files_dir, check, &mut repaired);
    let meter = Meter::start(
        watch,
        Task::Publish,
        dp.name.clone(),
        wanted.len() as u64,
        wanted.values().map(|(_, size)| size).sum::<u64>(),
    );
    let placed = wanted.iter().try_for_each(|(path, (digest, size))| {
        let (dir, name) = split_file_path(path).expect("file_path builds files/<ab>/<name>");
        placer.place(dir, name, digest, *size, &meter)
    });
    meter.finish();
    placed?;
    placer.sync()?;
    let placed = placer.finish();

    let carried: Vec<&str> = updates.iter().map(|u| u.update.id.as_str()).collect();
    let assigned = registry.assignment(dp, &carried)?;
    let previous_assignment = current.and_then(|g| read_assignment(&generations_dir, g).ok().flatten());
    let unchanged = previous
        .as_ref()
        .is_some_and(|p| p.updates == updates && p.scan_catalog == scan_catalog && p.distribution_point == dp.name)
        && previous_assignment.as_ref().is_some_and(|a| a.groups == assigned);
    let before: BTreeSet<&str> = previous.iter().flat_map(|p| p.updates.iter().map(|u| u.update.id.as_str())).collect();
    let after: BTreeSet<&str> = updates.iter().map(|u| u.update.id.as_str()).collect();
    let added = after.difference(&before).map(|s| s.to_string()).collect();
    let removed = before.difference(&after).map(|s| s.to_string()).collect();
    let files = wanted.len();
    let bytes = wanted.values().map(|(_, size)| size).sum();
    let update_count = updates.len();

    let (generation, index) = match (current, previous) {
        (Some(g), Some(previous)) if unchanged => (g, previous),
        _ => {
            // Never reuse a number: a crash may have left a generation that `current` never
            // named, and a point emptied by someone else still had the generations recorded.
            let next = generations.iter().copied().chain(current).chain(dp.generation).max().unwrap_or(0) + 1;
            let published = Timestamp::now().to_string();
            let assignment = Assignment {
                format: ASSIGNMENT_FORMAT.to_string(),
                distribution_point: dp.name.clone(),
                generation: next,
                published: published.clone(),
                server_key: key.key_id.to_string(),
                groups: assigned,
            };
            let index = Index {
                format: INDEX_FORMAT.to_string(),
                distribution_point: dp.name.clone(),
                generation: next,
                published,
                server_key: key.key_id.to_string(),
                carries: dp.carries(),
                agent_return_codes: AGENT_RETURN_CODES
                    .iter()
                    .map(|(code, meaning)| (code.to_string(), meaning.to_string()))
                    .collect(),
                updates,
                scan_catalog,
            };
            write_generation(&generations_dir, &index, &assignment, key)?;
            crate::failpoint!("publish.before-switch");
            write_current(&root, next)?;
            (next, index)
        }
    };

    // Keep the generation now current and the one before it; prune the rest.
    let mut remaining = generation_numbers(&generations_dir, &mut repaired)?;
    remaining.retain(|g| *g != generation);
    let kept_previous = remaining.iter().copied().filter(|g| *g < generation).max();
    let mut pruned_generations = Vec::new();
    for g in remaining {
        if Some(g) != kept_previous {
            generations_dir.remove(&g.to_string())?;
            pruned_generations.push(g);
        }
    }
    if !pruned_generations.is_empty() {
        generations_dir.sync()?;
    }
    let mut keep: BTreeSet<String> = index.files().map(|f| f.path.clone()).collect();
    let pruned_files = match kept_previous.map(|g| read_index(&generations_dir, g)) {
        // A previous generation that cannot be read: its readers' files cannot be told
        // apart, so nothing is pruned this time.
        Some(Err(_)) => 0,
        Some(Ok(prev)) => {
            keep.extend(prev.files().map(|f| f.path.clone()));
            prune_files(&files_dir, &keep)?
        }
        None => prune_files(&files_dir, &keep)?,
    };

    Ok(Published {
        name: dp.name.clone(),
        path: dp.path.clone(),
        carries: dp.carries(),
        generation,
        new_generation: !unchanged,
        updates: update_count,
        files,
        bytes,
        added,
        removed,
        placed,
        repaired,
        pruned_files,
        pruned_generations,
        waiting: publication.waiting,
    })
}
