//! The trust store as the import pipeline sees it: which public keys are trusted for which
//! channel, and how many distinct trusted keys must sign a channel's bundles.
//!
//! A pure value; the registry loads it, `bundle::reader` consults it.

use std::collections::BTreeMap;

use crate::base::names::{Channel, KeyId, Sha256};
use crate::formats::minisign::PublicKey;

/// What an administrator allowed for one import or verification, beyond what is trusted by
/// default: each is off unless a flag says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allowed {
    /// minisign's legacy "Ed" signatures (`--allow-legacy-signature`).
    pub legacy_signatures: bool,
    /// A rotation statement that makes the public demo key trusted (`--allow-demo-key`).
    pub demo_key: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<(Channel, PublicKey)>,
    thresholds: BTreeMap<Channel, usize>,
    /// Each channel's trust version, raised by every rotation statement (1 when absent).
    versions: BTreeMap<Channel, u32>,
    /// The SHA-256 of each rotation statement applied, by channel and the version it made.
    applied: BTreeMap<(Channel, u32), Sha256>,
}

impl TrustStore {
    pub fn new(keys: Vec<(Channel, PublicKey)>, thresholds: BTreeMap<Channel, usize>) -> TrustStore {
        TrustStore { keys, thresholds, versions: BTreeMap::new(), applied: BTreeMap::new() }
    }

    pub fn with_versions(self, versions: BTreeMap<Channel, u32>) -> TrustStore {
        TrustStore { versions, ..self }
    }

    pub fn with_applied(self, applied: BTreeMap<(Channel, u32), Sha256>) -> TrustStore {
        TrustStore { applied, ..self }
    }

    /// The SHA-256 of the rotation statement that made `channel`'s trust version `version`.
    pub fn applied(&self, channel: &str, version: u32) -> Option<Sha256> {
        self.applied.iter().find(|((c, v), _)| c.as_str() == channel && *v == version).map(|(_, d)| *d)
    }

    /// The channel's trust version: 1 until a rotation statement raises it.
    pub fn version(&self, channel: &str) -> u32 {
        self.versions.iter().find(|(c, _)| c.as_str() == channel).map_or(1, |(_, v)| *v)
    }

    /// The keys trusted for `channel`.
    pub fn keys_of(&self, channel: &str) -> Vec<&PublicKey> {
        self.keys.iter().filter(|(c, _)| c.as_str() == channel).map(|(_, k)| k).collect()
    }

    /// The trust store with `channel`'s keys, threshold and version replaced, recording the
    /// SHA-256 of the rotation statement that made this version.
    pub fn with_channel(
        &self,
        channel: &Channel,
        keys: Vec<PublicKey>,
        threshold: usize,
        version: u32,
        statement: Sha256,
    ) -> TrustStore {
        let mut all: Vec<(Channel, PublicKey)> = self.keys.iter().filter(|(c, _)| c != channel).cloned().collect();
        all.extend(keys.into_iter().map(|k| (channel.clone(), k)));
        let mut thresholds = self.thresholds.clone();
        thresholds.insert(channel.clone(), threshold);
        let mut versions = self.versions.clone();
        versions.insert(channel.clone(), version);
        let mut applied = self.applied.clone();
        applied.insert((channel.clone(), version), statement);
        TrustStore { keys: all, thresholds, versions, applied }
    }

    /// The key with `key_id` trusted for the channel named `channel`, if any.
    pub fn key(&self, channel: &str, key_id: &KeyId) -> Option<&PublicKey> {
        self.keys.iter().find(|(c, k)| c.as_str() == channel && k.key_id == *key_id).map(|(_, k)| k)
    }

    /// How many distinct trusted keys must sign a bundle of `channel` (at least 1).
    pub fn threshold(&self, channel: &str) -> usize {
        self.thresholds.iter().find(|(c, _)| c.as_str() == channel).map_or(1, |(_, t)| *t).max(1)
    }

    /// Key ids trusted for `channel`, for messages.
    pub fn key_ids(&self, channel: &str) -> Vec<KeyId> {
        self.keys_of(channel).into_iter().map(|k| k.key_id).collect()
    }
}
