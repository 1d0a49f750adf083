//! A point's generations: writing an index and its signature, switching `current`, reading
//! them back without following links or waiting on special files, and pruning what neither
//! of the last two generations lists.

use std::collections::BTreeSet;

use super::place::{TEMP_PREFIX, set_published_mode};
use crate::base::error::{Error, IoContext, Result};
use crate::base::shared_tree::{Kind, SharedTree};
use crate::formats::dp_index::{
    ASSIGNMENT_FILE, ASSIGNMENT_SIGNATURE_FILE, Assignment, CURRENT_FILE, FILES_DIR, INDEX_FILE, Index, SIGNATURE_FILE,
    assignment_comment, parse_assignment, parse_index, trusted_comment,
};
use crate::formats::minisign::SecretKey;

/// A generation being written; renamed to its number when complete.
pub(crate) const PARTIAL_PREFIX: &str = ".partial-";

/// Largest index read back (about 500,000 updates).
pub(crate) const MAX_INDEX_BYTES: u64 = 512 << 20;

/// Removes what an interrupted publish left: partial generations, half-placed files and a
/// half-written pointer.
pub(crate) fn remove_leftovers(root: &SharedTree, generations_dir: &SharedTree, files_dir: &SharedTree) -> Result<()> {
    for name in generations_dir.names()? {
        if name.starts_with(PARTIAL_PREFIX) {
            generations_dir.remove(&name)?;
        }
    }
    for (dir, kind) in files_dir.entries()? {
        if kind == Kind::Dir {
            let sub = files_dir.existing_subdir(&dir)?.expect("a directory just listed");
            for name in sub.names()? {
                if name.starts_with(TEMP_PREFIX) {
                    sub.remove(&name)?;
                }
            }
        }
    }
    root.remove(CURRENT_TEMP)
}

/// Writes generation `index.generation` whole, its index and its assignment each with its
/// signature: into a partial directory, synced, renamed.
pub(crate) fn write_generation(
    generations_dir: &SharedTree,
    index: &Index,
    assignment: &Assignment,
    key: &SecretKey,
) -> Result<()> {
    let signed = |bytes: &mut Vec<u8>, comment: String, what: &str| {
        bytes.push(b'\n');
        key.sign(bytes, &comment, &format!("{what}, signed by server key {}", key.key_id))
            .map(|s| s.to_file_string().into_bytes())
            .map_err(Error::Internal)
    };
    let mut bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
    let comment = trusted_comment(&index.distribution_point, index.generation, &index.published);
    let signature = signed(&mut bytes, comment, "ferry distribution point index")?;
    let mut assigned = serde_json::to_vec_pretty(assignment).expect("an assignment serialises");
    let comment = assignment_comment(&assignment.distribution_point, assignment.generation, &assignment.published);
    let assigned_signature = signed(&mut assigned, comment, "ferry distribution point assignment")?;
    let partial_name = format!("{PARTIAL_PREFIX}{}", index.generation);
    generations_dir.remove(&partial_name)?;
    let partial = generations_dir.subdir(&partial_name, &mut Vec::new())?;
    for (name, content) in [
        (INDEX_FILE, bytes),
        (SIGNATURE_FILE, signature),
        (ASSIGNMENT_FILE, assigned),
        (ASSIGNMENT_SIGNATURE_FILE, assigned_signature),
    ] {
        let path = partial.display(name);
        let mut file = partial.create_new(name)?;
        std::io::Write::write_all(&mut file, &content).at(&path)?;
        file.sync_all().at(&path)?;
        set_published_mode(&file, &path)?;
    }
    partial.sync()?;
    // Windows refuses to rename a directory while a handle to it is open (a sharing
    // violation): the partial directory's own handle goes first.
    drop(partial);
    generations_dir.rename(&partial_name, &index.generation.to_string())?;
    generations_dir.sync()
}

/// The pointer being written; renamed over `current` when complete.
const CURRENT_TEMP: &str = ".ferry-current";

/// Replaces `current` atomically (temporary file, sync, rename); whatever was planted at that
/// name (a directory, a FIFO, a link) is removed first, never followed.
pub(crate) fn write_current(root: &SharedTree, generation: u64) -> Result<()> {
    if let Some(kind) = root.kind(CURRENT_FILE)?
        && !matches!(kind, Kind::File { .. })
    {
        root.remove(CURRENT_FILE)?;
    }
    root.remove(CURRENT_TEMP)?;
    let path = root.display(CURRENT_TEMP);
    let mut file = root.create_new(CURRENT_TEMP)?;
    std::io::Write::write_all(&mut file, format!("{generation}\n").as_bytes()).at(&path)?;
    file.sync_all().at(&path)?;
    set_published_mode(&file, &path)?;
    drop(file);
    root.rename(CURRENT_TEMP, CURRENT_FILE)?;
    root.sync()
}

/// Longest `current` read: a generation number and a newline.
const MAX_CURRENT_BYTES: u64 = 64;

/// The generation `current` names; none before the first publish. Anything but a plain file
/// holding a number (a FIFO, a link, a directory, other text) is refused without being
/// followed or waited on.
pub(crate) fn read_current(root: &SharedTree) -> Result<Option<u64>> {
    let refuse = |reason: String| Error::DpIndex { dir: root.path().to_path_buf(), reason };
    let bytes = match root.read_capped(CURRENT_FILE, MAX_CURRENT_BYTES) {
        Ok(None) => return Ok(None),
        Ok(Some(bytes)) => bytes,
        Err(Error::NotAPlainFile { found, .. }) => {
            return Err(refuse(format!("{CURRENT_FILE} is {found}, not a plain file")));
        }
        Err(Error::TooLarge { .. }) => {
            return Err(refuse(format!(
                "{CURRENT_FILE} is larger than {MAX_CURRENT_BYTES} bytes, not a generation number"
            )));
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| refuse(format!("{CURRENT_FILE} holds {:?}, not a generation number", truncate(&text))))
}

pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// The numbered generation directories. A numbered name that is not a real directory (a
/// link to somewhere else) is removed, never followed, and said in `repaired`.
pub(crate) fn generation_numbers(generations_dir: &SharedTree, repaired: &mut Vec<String>) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for (name, kind) in generations_dir.entries()? {
        let Ok(g) = name.parse::<u64>() else { continue };
        if kind == Kind::Dir {
            out.push(g);
        } else {
            generations_dir.remove(&name)?;
            repaired.push(format!("{} was {}; removed", generations_dir.display(&name).display(), kind.describe()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Generation `g`'s index and its signature's bytes, read without following links.
pub(crate) fn read_generation(generations_dir: &SharedTree, g: u64) -> Result<(Vec<u8>, Option<String>)> {
    let refuse = |reason: String| Error::DpIndex { dir: generations_dir.path().to_path_buf(), reason };
    let generation = generations_dir
        .existing_subdir(&g.to_string())
        .map_err(|e| refuse(format!("generation {g}: {e}")))?
        .ok_or_else(|| refuse(format!("generation {g} is missing")))?;
    let bytes = match generation.read_capped(INDEX_FILE, MAX_INDEX_BYTES) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(refuse(format!("generation {g}: no {INDEX_FILE}"))),
        Err(e @ (Error::NotAPlainFile { .. } | Error::TooLarge { .. })) => {
            return Err(refuse(format!("generation {g}: {e}")));
        }
        Err(e) => return Err(e),
    };
    let signature = match generation.read_capped(SIGNATURE_FILE, MAX_SIGNATURE_BYTES) {
        Ok(Some(sig)) => Some(String::from_utf8_lossy(&sig).into_owned()),
        Ok(None) => None,
        Err(e @ (Error::NotAPlainFile { .. } | Error::TooLarge { .. })) => {
            return Err(refuse(format!("generation {g}: {e}")));
        }
        Err(e) => return Err(e),
    };
    Ok((bytes, signature))
}

/// Generation `g`'s assignment and its signature, read without following links; none in a
/// generation published before assignments were written.
pub(crate) fn read_assignment_file(generations_dir: &SharedTree, g: u64) -> Result<Option<(Vec<u8>, Option<String>)>> {
    let refuse = |reason: String| Error::DpIndex { dir: generations_dir.path().to_path_buf(), reason };
    let generation = generations_dir
        .existing_subdir(&g.to_string())
        .map_err(|e| refuse(format!("generation {g}: {e}")))?
        .ok_or_else(|| refuse(format!("generation {g} is missing")))?;
    let read = |name: &str, cap: u64| match generation.read_capped(name, cap) {
        Err(e @ (Error::NotAPlainFile { .. } | Error::TooLarge { .. })) => Err(refuse(format!("generation {g}: {e}"))),
        other => other,
    };
    let Some(bytes) = read(ASSIGNMENT_FILE, MAX_INDEX_BYTES)? else { return Ok(None) };
    let signature = read(ASSIGNMENT_SIGNATURE_FILE, MAX_SIGNATURE_BYTES)?;
    Ok(Some((bytes, signature.map(|s| String::from_utf8_lossy(&s).into_owned()))))
}

/// Generation `g`'s assignment as written, not verified (for publishing, which wrote it).
pub(crate) fn read_assignment(generations_dir: &SharedTree, g: u64) -> Result<Option<Assignment>> {
    match read_assignment_file(generations_dir, g)? {
        Some((bytes, _)) => Ok(Some(parse_assignment(generations_dir.path(), &bytes, g)?)),
        None => Ok(None),
    }
}

/// Largest index signature read.
const MAX_SIGNATURE_BYTES: u64 = 16 << 10;

/// Generation `g`'s index as written, not verified (for publishing, which wrote it).
pub(crate) fn read_index(generations_dir: &SharedTree, g: u64) -> Result<Index> {
    let (bytes, _) = read_generation(generations_dir, g)?;
    parse_index(generations_dir.path(), &bytes, g)
}

/// Removes everything under `files/` that `keep` does not list (links and special files
/// included, never followed); returns how many names went.
pub(crate) fn prune_files(files_dir: &SharedTree, keep: &BTreeSet<String>) -> Result<usize> {
    let mut pruned = 0;
    for (dir, kind) in files_dir.entries()? {
        if kind != Kind::Dir {
            files_dir.remove(&dir)?;
            pruned += 1;
            continue;
        }
        let sub = files_dir.existing_subdir(&dir)?.expect("a directory just listed");
        let mut removed_here = false;
        for name in sub.names()? {
            if !keep.contains(&format!("{FILES_DIR}/{dir}/{name}")) {
                sub.remove(&name)?;
                pruned += 1;
                removed_here = true;
            }
        }
        if removed_here {
            let emptied = sub.names()?.is_empty();
            if !emptied {
                sub.sync()?;
            }
            // Windows cannot remove a directory while a handle to it is open.
            drop(sub);
            if emptied {
                files_dir.remove_if_empty(&dir)?;
            }
        }
    }
    if pruned > 0 {
        files_dir.sync()?;
    }
    Ok(pruned)
}

/// The numbered generation directories, for a check that changes nothing.
pub(crate) fn generation_numbers_read_only(generations_dir: &SharedTree) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = generations_dir
        .entries()?
        .into_iter()
        .filter(|(_, kind)| *kind == Kind::Dir)
        .filter_map(|(name, _)| name.parse().ok())
        .collect();
    out.sort_unstable();
    Ok(out)
}
