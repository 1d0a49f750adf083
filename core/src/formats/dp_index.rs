//! A distribution point's layout and its signed index: what a client reads to choose, fetch,
//! check and install its updates.
//!
//! ```text
//! DIR/current                              the generation clients read: "7\n"
//! DIR/generations/7/index.json             immutable once written
//! DIR/generations/7/index.json.minisig     signed by the management server's key
//! DIR/generations/7/assignment.json        which computers are meant to install what
//! DIR/generations/7/assignment.json.minisig
//! DIR/files/ab/<sha256>-<file name>      read-only; shared by every generation listing it
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::names::{FileName, Sha256};
use crate::formats::compliance::Policy;
use crate::formats::model::{ExitCodes, Install, Update, UpdateRow};

pub const INDEX_FORMAT: &str = "ferry-dp-index v1";

pub const CURRENT_FILE: &str = "current";

pub const GENERATIONS_DIR: &str = "generations";

pub const FILES_DIR: &str = "files";

pub const INDEX_FILE: &str = "index.json";

pub const SIGNATURE_FILE: &str = "index.json.minisig";

pub const ASSIGNMENT_FORMAT: &str = "ferry-dp-assignment v1";

pub const ASSIGNMENT_FILE: &str = "assignment.json";

pub const ASSIGNMENT_SIGNATURE_FILE: &str = "assignment.json.minisig";

/// Which computers are meant to install which of a point's updates: per computer group, its
/// policy and the ids of the index's updates the policy covers. Written and signed by the
/// server key beside the index of the same generation, so that a client checks both and
/// refuses either from a generation older than the last it accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub format: String,
    pub distribution_point: String,
    pub generation: u64,
    pub published: String,
    pub server_key: String,
    /// Each computer group, and last the computers in no group (`group` null).
    pub groups: Vec<AssignedGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignedGroup {
    /// None: every computer not named by another group.
    pub group: Option<String>,
    pub test: bool,
    pub policy: Policy,
    /// The point its computers install from; none for any.
    pub point: Option<String>,
    /// The group's computers, by name.
    pub computers: Vec<String>,
    /// The updates of this point's index its computers are to install; empty when the group
    /// installs from another point.
    pub updates: Vec<String>,
}

impl Assignment {
    /// What is meant for the computer `name`: its group's entry, else the one for computers
    /// in no group (names compare without letter case, as Windows does).
    pub fn for_computer(&self, name: &str) -> Option<&AssignedGroup> {
        self.groups
            .iter()
            .find(|g| g.group.is_some() && g.computers.iter().any(|c| c.eq_ignore_ascii_case(name)))
            .or_else(|| self.groups.iter().find(|g| g.group.is_none()))
    }
}

pub(crate) fn assignment_comment(dp: &str, generation: u64, published: &str) -> String {
    format!("{ASSIGNMENT_FORMAT} dp={dp} generation={generation} published={published}")
}

pub(crate) fn parse_assignment(dir: &Path, bytes: &[u8], g: u64) -> Result<Assignment> {
    let refuse = |reason: String| Error::DpIndex { dir: dir.to_path_buf(), reason };
    let assignment: Assignment = serde_json::from_slice(bytes)
        .map_err(|e| refuse(format!("generation {g}: {ASSIGNMENT_FILE} is not a ferry assignment: {e}")))?;
    if assignment.format != ASSIGNMENT_FORMAT || assignment.generation != g {
        return Err(refuse(format!(
            "generation {g}: {ASSIGNMENT_FILE} says format {:?}, generation {}",
            assignment.format, assignment.generation
        )));
    }
    Ok(assignment)
}

/// What a client agent reports after running an update's install command, as JP1/IT
/// Desktop Management documents it for its distribution scripts.
pub const AGENT_RETURN_CODES: [(u8, &str); 6] = [
    (0, "success"),
    (1, "failed: the installer reported an error"),
    (2, "invalid environment: too little memory or disk, or a damaged or unsuitable file"),
    (3, "internal error of the agent"),
    (4, "invalid Windows Script Host state"),
    (5, "internal error of the agent"),
];

/// A distribution point's index: everything a client needs to choose, fetch, check and
/// install its updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub format: String,
    pub distribution_point: String,
    pub generation: u64,
    pub published: String,
    /// The key id of the management server that signed it.
    pub server_key: String,
    pub carries: String,
    /// How the agent's own return codes are judged (see [`AGENT_RETURN_CODES`]).
    pub agent_return_codes: BTreeMap<String, String>,
    pub updates: Vec<IndexedUpdate>,
    /// Microsoft's offline scan catalog, for the computers' own scans (the Windows Update
    /// Agent's offline scan service): the newest the server holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_catalog: Option<IndexedScanCatalog>,
}

/// The scan catalog a point publishes, as a file of the point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedScanCatalog {
    #[serde(flatten)]
    pub file: IndexedFile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// The name a point gives the scan catalog's file: `files/<ab>/<sha256>-wsusscn2.cab`.
pub const SCAN_CATALOG_NAME: &str = "wsusscn2.cab";

impl Index {
    /// Every file the index names: the updates' and the scan catalog's.
    pub fn files(&self) -> impl Iterator<Item = &IndexedFile> {
        self.updates.iter().flat_map(|u| &u.files).chain(self.scan_catalog.iter().map(|s| &s.file))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedUpdate {
    #[serde(flatten)]
    pub update: UpdateRow,
    /// What to run (`{file}` stands for the first file's local path) and how the
    /// installer's exit codes are judged: success, success needing a restart, failure.
    pub install: Install,
    pub files: Vec<IndexedFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedFile {
    pub name: FileName,
    /// Relative to the distribution point: `files/<first two hex digits>/<sha256>-<name>`.
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// Longest name a point gives a file: what Linux file systems and NTFS both hold in one
/// path component (NTFS counts UTF-16 units, never more than UTF-8 bytes).
const MAX_COMPONENT: usize = 255;

/// Where a file is published inside a distribution point: `files/<ab>/<sha256>-<name>`.
/// The digest keeps names unique; a name too long to fit one path component beside it
/// keeps its beginning and its extension, joined by `~`, so it stays recognisable.
pub fn file_path(digest: &Sha256, name: &FileName) -> String {
    let hex = digest.hex();
    format!("{FILES_DIR}/{}/{hex}-{}", &hex[..2], bounded_name(name.as_str(), MAX_COMPONENT - hex.len() - 1))
}

/// `name` cut to at most `max` bytes at character boundaries, keeping a short extension.
pub(crate) fn bounded_name(name: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if name.len() <= max {
        return name.into();
    }
    let extension = name.rfind('.').map(|i| &name[i..]).filter(|e| e.len() <= 16).unwrap_or("");
    let mut head_len = max - extension.len() - 1;
    while !name.is_char_boundary(head_len) {
        head_len -= 1;
    }
    format!("{}~{extension}", &name[..head_len]).into()
}

/// `files/<ab>/<name>` split into its directory and file name.
pub(crate) fn split_file_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(FILES_DIR)?.strip_prefix('/')?;
    let (dir, name) = rest.split_once('/')?;
    (dir.len() == 2 && !name.is_empty() && !name.contains('/')).then_some((dir, name))
}

/// The install command an update's metadata gives, or the usual one for its first file's
/// kind (.msu with wusa, .cab with DISM, .msi with msiexec, .exe run as is), all quiet and
/// without a forced restart.
pub fn install_of(update: &Update) -> Install {
    if let Some(install) = &update.install {
        return install.clone();
    }
    let name = update.files.first().map(|f| f.name.as_str().to_ascii_lowercase()).unwrap_or_default();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let codes = |success: &[i64], reboot: &[i64]| ExitCodes {
        success: success.to_vec(),
        reboot: reboot.to_vec(),
        failure: vec![],
    };
    let (command, arguments, exit_codes) = if name.ends_with(".msu") {
        // 0x240006: the update is installed already.
        ("wusa.exe", args(&["{file}", "/quiet", "/norestart"]), codes(&[0, 0x240006], &[3010]))
    } else if name.ends_with(".cab") {
        (
            "dism.exe",
            args(&["/online", "/add-package", "/packagepath:{file}", "/quiet", "/norestart"]),
            codes(&[0], &[3010]),
        )
    } else if name.ends_with(".msi") {
        ("msiexec.exe", args(&["/i", "{file}", "/qn", "/norestart"]), codes(&[0], &[3010, 1641]))
    } else {
        ("{file}", vec![], codes(&[0], &[3010]))
    };
    Install { command: command.to_string(), arguments, nested: None, exit_codes }
}

pub(crate) fn indexed(update: &Update) -> IndexedUpdate {
    IndexedUpdate {
        update: update.row(),
        install: install_of(update),
        files: update
            .files
            .iter()
            .map(|f| IndexedFile {
                name: f.name.clone(),
                path: file_path(&f.sha256, &f.name),
                sha256: f.sha256,
                size: f.size,
            })
            .collect(),
    }
}

pub(crate) fn trusted_comment(dp: &str, generation: u64, published: &str) -> String {
    format!("{INDEX_FORMAT} dp={dp} generation={generation} published={published}")
}

pub(crate) fn parse_index(dir: &Path, bytes: &[u8], g: u64) -> Result<Index> {
    let index: Index = serde_json::from_slice(bytes).map_err(|e| Error::DpIndex {
        dir: dir.to_path_buf(),
        reason: format!("generation {g}: {INDEX_FILE} is not a ferry index: {e}"),
    })?;
    if index.format != INDEX_FORMAT || index.generation != g {
        return Err(Error::DpIndex {
            dir: dir.to_path_buf(),
            reason: format!(
                "generation {g}: {INDEX_FILE} says format {:?}, generation {}",
                index.format, index.generation
            ),
        });
    }
    Ok(index)
}
