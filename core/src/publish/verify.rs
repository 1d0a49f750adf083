//! `dp verify`: what a client of a point would find, checked against the server key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::generations::{generation_numbers_read_only, read_assignment_file, read_current, read_generation};
use crate::base::error::{Error, IoContext, Result};
use crate::base::shared_tree::{Kind, SharedTree};
use crate::formats::dp_index::{
    ASSIGNMENT_FILE, ASSIGNMENT_SIGNATURE_FILE, Assignment, CURRENT_FILE, FILES_DIR, GENERATIONS_DIR, INDEX_FILE,
    Index, SIGNATURE_FILE, assignment_comment, file_path, parse_assignment, parse_index, split_file_path,
    trusted_comment,
};
use crate::formats::minisign::{PublicKey, SignatureFile, VerifyFailure};

/// What `ingest dp verify` found in a distribution point.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedPoint {
    pub path: PathBuf,
    pub distribution_point: String,
    pub generation: u64,
    pub published: String,
    pub server_key: String,
    pub updates: usize,
    /// The computer groups its signed assignment names (with the entry for computers in no
    /// group); none for a generation published before assignments were written.
    pub assigned_groups: Option<usize>,
    pub files: usize,
    pub bytes: u64,
    /// Listed by the current index and absent.
    pub missing: Vec<String>,
    /// Listed and present with other content, or as something other than a plain file,
    /// with what is wrong.
    pub corrupt: Vec<String>,
    /// Present under `files/` and listed by neither the current nor the previous generation.
    pub extra: Vec<String>,
}

impl VerifiedPoint {
    pub fn is_intact(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.extra.is_empty()
    }
}

/// Checks `bytes` of `file` in generation `g` against its signature `sig_text` by `key`,
/// and that the signature's trusted comment is the one `expected` derives from the
/// content it parses.
fn verified<T>(
    dir: &Path,
    g: u64,
    (file, sig_file): (&str, &str),
    (bytes, sig_text): (&[u8], Option<String>),
    key: &PublicKey,
    parse: impl FnOnce(&[u8]) -> Result<T>,
    expected: impl FnOnce(&T) -> String,
) -> Result<T> {
    let refuse = |reason: String| Error::DpIndex { dir: dir.to_path_buf(), reason };
    let sig_text = sig_text.ok_or_else(|| refuse(format!("generation {g}: no {sig_file}")))?;
    let sig = SignatureFile::parse(&sig_text).map_err(|e| refuse(format!("generation {g}: {sig_file}: {e}")))?;
    key.verify(bytes, &sig).map_err(|failure| {
        refuse(format!(
            "generation {g}: {}",
            match failure {
                VerifyFailure::KeyIdMismatch =>
                    format!("{file} is signed by key {}, not by the server key {}", sig.key_id, key.key_id),
                VerifyFailure::Message => format!("{file} was altered after signing"),
                VerifyFailure::TrustedComment => format!("the trusted comment of {sig_file} was altered after signing"),
                VerifyFailure::Legacy =>
                    format!("{sig_file} is in minisign's legacy form (\"Ed\"); the server key signs prehashed"),
            }
        ))
    })?;
    let parsed = parse(bytes)?;
    let expected = expected(&parsed);
    if sig.trusted_comment != expected {
        return Err(refuse(format!(
            "generation {g}: the trusted comment of {sig_file} {:?} does not match {file} ({expected:?})",
            sig.trusted_comment
        )));
    }
    Ok(parsed)
}

/// Reads and verifies generation `g`'s index and signature against `key`.
pub(crate) fn verified_index(generations_dir: &SharedTree, dir: &Path, g: u64, key: &PublicKey) -> Result<Index> {
    let (bytes, sig_text) = read_generation(generations_dir, g)?;
    verified(
        dir,
        g,
        (INDEX_FILE, SIGNATURE_FILE),
        (&bytes, sig_text),
        key,
        |b| parse_index(dir, b, g),
        |i: &Index| trusted_comment(&i.distribution_point, i.generation, &i.published),
    )
}

/// Reads and verifies generation `g`'s assignment and signature against `key`, and that it
/// belongs with `index`; none in a generation published before assignments were written.
pub(crate) fn verified_assignment(
    generations_dir: &SharedTree,
    dir: &Path,
    index: &Index,
    key: &PublicKey,
) -> Result<Option<Assignment>> {
    let g = index.generation;
    let Some((bytes, sig_text)) = read_assignment_file(generations_dir, g)? else { return Ok(None) };
    let assignment = verified(
        dir,
        g,
        (ASSIGNMENT_FILE, ASSIGNMENT_SIGNATURE_FILE),
        (&bytes, sig_text),
        key,
        |b| parse_assignment(dir, b, g),
        |a: &Assignment| assignment_comment(&a.distribution_point, a.generation, &a.published),
    )?;
    if assignment.distribution_point != index.distribution_point || assignment.published != index.published {
        return Err(Error::DpIndex {
            dir: dir.to_path_buf(),
            reason: format!(
                "generation {g}: {ASSIGNMENT_FILE} is of point {} published {}, the index of point {} published {}",
                assignment.distribution_point, assignment.published, index.distribution_point, index.published
            ),
        });
    }
    let listed: BTreeSet<&str> = index.updates.iter().map(|u| u.update.id.as_str()).collect();
    if let Some(stray) = assignment.groups.iter().flat_map(|a| &a.updates).find(|u| !listed.contains(u.as_str())) {
        return Err(Error::DpIndex {
            dir: dir.to_path_buf(),
            reason: format!("generation {g}: {ASSIGNMENT_FILE} assigns {stray}, which the index does not list"),
        });
    }
    Ok(Some(assignment))
}

/// The current generation of the point at `dir`: its index and assignment, both checked
/// against `key` and against each other, read without following a link or waiting on a
/// FIFO, as a client reads them before installing anything.
pub fn current_verified(dir: &Path, key: &PublicKey) -> Result<(Index, Option<Assignment>)> {
    let refuse = |reason: String| Error::DpIndex { dir: dir.to_path_buf(), reason };
    let root = SharedTree::open(dir)?;
    let g =
        read_current(&root)?.ok_or_else(|| refuse(format!("no {CURRENT_FILE} file: nothing was published here")))?;
    let generations_dir = root
        .existing_subdir(GENERATIONS_DIR)
        .map_err(|e| refuse(e.to_string()))?
        .ok_or_else(|| refuse(format!("no {GENERATIONS_DIR} directory")))?;
    let index = verified_index(&generations_dir, dir, g, key)?;
    let assignment = verified_assignment(&generations_dir, dir, &index, key)?;
    Ok((index, assignment))
}

/// Checks a distribution point as a branch office would: the current index and its
/// signature by `key`, then every file it lists (present, size, SHA-256), then anything
/// under `files/` that neither the current nor the previous generation lists. Reads only:
/// nothing planted there (a link, a FIFO) is followed or waited on; it is reported.
pub fn verify_point(dir: &Path, key: &PublicKey) -> Result<VerifiedPoint> {
    let refuse = |reason: String| Error::DpIndex { dir: dir.to_path_buf(), reason };
    let root = SharedTree::open(dir)?;
    let Some(g) = read_current(&root)? else {
        return Err(refuse(format!("no {CURRENT_FILE} file: nothing was published here")));
    };
    let generations_dir = root
        .existing_subdir(GENERATIONS_DIR)
        .map_err(|e| refuse(e.to_string()))?
        .ok_or_else(|| refuse(format!("no {GENERATIONS_DIR} directory")))?;
    let index = verified_index(&generations_dir, dir, g, key)?;
    let assignment = verified_assignment(&generations_dir, dir, &index, key)?;
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut report = VerifiedPoint {
        path: dir.to_path_buf(),
        distribution_point: index.distribution_point.clone(),
        generation: g,
        published: index.published.clone(),
        server_key: index.server_key.clone(),
        updates: index.updates.len(),
        assigned_groups: assignment.map(|a| a.groups.len()),
        files: 0,
        bytes: 0,
        missing: vec![],
        corrupt: vec![],
        extra: vec![],
    };
    let files_dir = match root.existing_subdir(FILES_DIR) {
        Ok(files_dir) => files_dir,
        Err(e) => {
            report.corrupt.push(format!("{FILES_DIR}: {e}"));
            None
        }
    };
    let mut subdirs: BTreeMap<String, Option<SharedTree>> = BTreeMap::new();
    for f in index.files() {
        let expected = file_path(&f.sha256, &f.name);
        if f.path != expected {
            report.corrupt.push(format!("{}: listed at an unexpected path (expected {expected})", f.path));
            continue;
        }
        if !listed.insert(expected.clone()) {
            continue;
        }
        report.files += 1;
        report.bytes += f.size;
        let (sub, name) = split_file_path(&expected).expect("file_path builds files/<ab>/<name>");
        if !subdirs.contains_key(sub) {
            let opened = match files_dir.as_ref().map(|d| d.existing_subdir(sub)) {
                Some(Ok(opened)) => opened,
                Some(Err(e)) => {
                    report.corrupt.push(format!("{FILES_DIR}/{sub}: {e}"));
                    None
                }
                None => None,
            };
            subdirs.insert(sub.to_string(), opened);
        }
        let Some(here) = &subdirs[sub] else {
            report.missing.push(expected);
            continue;
        };
        match here.kind(name)? {
            None => report.missing.push(expected),
            Some(Kind::File { len, .. }) if len != f.size => {
                report.corrupt.push(format!("{expected}: {len} bytes, the index says {}", f.size))
            }
            Some(Kind::File { .. }) => match here.open_file(name) {
                Ok(Some(file)) => {
                    let (actual, _) = crate::bundle::hash_reader(file).at(here.display(name))?;
                    if actual != f.sha256 {
                        report.corrupt.push(format!("{expected}: SHA-256 {actual}, the index says {}", f.sha256));
                    }
                }
                Ok(None) => report.missing.push(expected),
                Err(Error::NotAPlainFile { found, .. }) => report.corrupt.push(format!("{expected}: is {found}")),
                Err(e) => return Err(e),
            },
            Some(other) => report.corrupt.push(format!("{expected}: is {}, not a plain file", other.describe())),
        }
    }
    let generations = generation_numbers_read_only(&generations_dir)?;
    if let Some(prev) = generations.iter().copied().filter(|p| *p < g).max()
        && let Ok(previous) = verified_index(&generations_dir, dir, prev, key)
    {
        listed.extend(previous.files().map(|f| f.path.clone()));
    }
    if let Some(files_dir) = &files_dir {
        for (sub, kind) in files_dir.entries()? {
            if kind != Kind::Dir {
                report.extra.push(format!("{FILES_DIR}/{sub} ({})", kind.describe()));
                continue;
            }
            let here = files_dir.existing_subdir(&sub)?.expect("a directory just listed");
            for (name, kind) in here.entries()? {
                let relative = format!("{FILES_DIR}/{sub}/{name}");
                if !listed.contains(&relative) {
                    report.extra.push(match kind {
                        Kind::File { .. } => relative,
                        other => format!("{relative} ({})", other.describe()),
                    });
                } else if !matches!(kind, Kind::File { .. }) && !report.corrupt.iter().any(|c| c.starts_with(&relative))
                {
                    report.corrupt.push(format!("{relative}: is {}, not a plain file", kind.describe()));
                }
            }
        }
    }
    Ok(report)
}
