//! The state file: what the offline server already holds, carried out by the courier so that
//! `fetch` builds a delta bundle with only what is missing.
//!
//! The file is JSON with a detached minisign signature (`FILE.minisig`) by the management
//! server's own key, so `fetch` (and an auditor with `minisign -V`) can tell it came from that
//! server and was not edited on the way. This module holds the format and its signing rules;
//! the registry gathers the content and `pack` uses it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{Channel, Sha256, UpdateId};
use crate::formats::manifest::BUNDLE_FORMAT;
use crate::formats::minisign::{PublicKey, SecretKey, SignatureFile, VerifyFailure};

pub const STATE_FORMAT: u32 = 1;
/// Largest state file read: about a million held files.
const MAX_STATE_BYTES: u64 = 128 << 20;

/// Where a channel stands on the offline server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPosition {
    pub highest_sequence: Option<u64>,
    pub latest_time: Option<Timestamp>,
}

/// An update the server holds, at the revision it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldUpdate {
    pub id: UpdateId,
    pub revision: u32,
}

/// A volume set some of whose volumes have not arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteSet {
    pub channel: Channel,
    pub sequence: u64,
    pub missing_volumes: Vec<u32>,
}

/// An update computers on the closed network are judged to need that the server cannot give
/// them: it lacks the update, or the update's files. Counts only: computer names never leave
/// the closed network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputerNeed {
    pub id: UpdateId,
    pub kb: Option<String>,
    /// How many computers need it.
    pub computers: u64,
}

impl ComputerNeed {
    /// Whether this need names the update `id` of KB `kb` (ids and KBs compare without case:
    /// a scan reports Microsoft's ids in lower case).
    pub fn names(&self, id: &UpdateId, kb: Option<&str>) -> bool {
        self.id.as_str().eq_ignore_ascii_case(id.as_str())
            || self.kb.as_deref().zip(kb).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    pub format: u32,
    /// The key id of the server key that signs this file.
    pub server_key: String,
    pub created: Timestamp,
    /// Bundle format versions the server reads.
    pub bundle_formats: Vec<u32>,
    pub channels: BTreeMap<Channel, ChannelPosition>,
    pub updates: Vec<HeldUpdate>,
    /// Digests of the update files in the server's store.
    pub files: Vec<Sha256>,
    pub incomplete_sets: Vec<IncompleteSet>,
    /// Updates the server knows but cannot use yet: files are missing.
    pub needs: Vec<UpdateId>,
    /// What the computers miss and the server lacks. Absent from state files written before
    /// ferry judged computers.
    #[serde(default)]
    pub computers_need: Vec<ComputerNeed>,
}

/// The signature file that goes with a state file.
pub fn signature_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

impl ServerState {
    pub fn new(server_key: &PublicKey) -> ServerState {
        ServerState {
            format: STATE_FORMAT,
            server_key: server_key.key_id.to_string(),
            created: Timestamp::now(),
            bundle_formats: vec![BUNDLE_FORMAT],
            channels: BTreeMap::new(),
            updates: Vec::new(),
            files: Vec::new(),
            incomplete_sets: Vec::new(),
            needs: Vec::new(),
            computers_need: Vec::new(),
        }
    }

    fn trusted_comment(&self) -> String {
        format!("ferry-state v1 server={} created={}", self.server_key, self.created)
    }

    /// Writes the state and its signature next to each other (`FILE`, `FILE.minisig`), never
    /// into `protected` (the data directory).
    pub fn write_signed(&self, path: &Path, key: &SecretKey, protected: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a state always serialises");
        bytes.push(b'\n');
        let sig = key
            .sign(&bytes, &self.trusted_comment(), &format!("ferry state file signed by server key {}", key.key_id))
            .map_err(Error::Internal)?;
        let sig_path = signature_path(path);
        crate::base::output::write_bytes(path, Some(protected), &bytes)?;
        crate::base::output::write_bytes(&sig_path, Some(protected), sig.to_file_string().as_bytes())
    }

    /// Reads a state file and checks its signature against the server's public key.
    pub fn read_verified(path: &Path, server_key: &PublicKey) -> Result<ServerState> {
        let refuse = |reason: String| Error::StateFile { path: path.to_path_buf(), reason };
        let len = std::fs::metadata(path).at(path)?.len();
        if len > MAX_STATE_BYTES {
            return Err(refuse(format!("{len} bytes; at most {MAX_STATE_BYTES} are read")));
        }
        let bytes = std::fs::read(path).at(path)?;
        let sig_path = signature_path(path);
        let sig_text = std::fs::read_to_string(&sig_path).at(&sig_path)?;
        let sig =
            SignatureFile::parse(&sig_text).map_err(|e| refuse(format!("signature {}: {e}", sig_path.display())))?;
        match server_key.verify(&bytes, &sig) {
            Ok(()) => {}
            Err(VerifyFailure::KeyIdMismatch) => {
                return Err(refuse(format!(
                    "signed by key {}, not by the server key {}",
                    sig.key_id, server_key.key_id
                )));
            }
            Err(VerifyFailure::Message) => return Err(refuse("the file was altered after signing".into())),
            Err(VerifyFailure::Legacy) => {
                return Err(refuse("signed in minisign's legacy form (\"Ed\"); the server key signs prehashed".into()));
            }
            Err(VerifyFailure::TrustedComment) => {
                return Err(refuse("the trusted comment was altered after signing".into()));
            }
        }
        let state: ServerState =
            serde_json::from_slice(&bytes).map_err(|e| refuse(format!("not a state file: {e}")))?;
        if state.format != STATE_FORMAT {
            return Err(refuse(format!("format {} is not supported (this ferry reads {STATE_FORMAT})", state.format)));
        }
        if sig.trusted_comment != state.trusted_comment() {
            return Err(refuse(format!("the trusted comment {:?} does not match the file", sig.trusted_comment)));
        }
        if !state.bundle_formats.contains(&BUNDLE_FORMAT) {
            return Err(refuse(format!(
                "the server reads bundle formats {:?}, not format {BUNDLE_FORMAT} that this fetch writes",
                state.bundle_formats
            )));
        }
        Ok(state)
    }

    /// The revision of `id` the server holds.
    pub fn revision_of(&self, id: &UpdateId) -> Option<u32> {
        self.updates.iter().find(|u| &u.id == id).map(|u| u.revision)
    }

    /// How many computers need the update `id` (of KB `kb`), by its id or else its KB.
    pub fn needed_by(&self, id: &UpdateId, kb: Option<&str>) -> Option<u64> {
        let by_id = self.computers_need.iter().find(|n| n.id.as_str().eq_ignore_ascii_case(id.as_str()));
        by_id.or_else(|| self.computers_need.iter().find(|n| n.names(id, kb))).map(|n| n.computers)
    }

    pub fn held_files(&self) -> BTreeSet<Sha256> {
        self.files.iter().copied().collect()
    }
}
