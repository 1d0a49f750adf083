//! The trust store as the import pipeline sees it: which public keys are trusted for which
//! channel, and how many distinct trusted keys must sign a channel's bundles.
//!
//! A pure value; the registry loads it, `bundle::reader` consults it.

use std::collections::BTreeMap;

use crate::minisign::PublicKey;
use crate::names::{Channel, KeyId};

#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<(Channel, PublicKey)>,
    thresholds: BTreeMap<Channel, usize>,
}

impl TrustStore {
    pub fn new(keys: Vec<(Channel, PublicKey)>, thresholds: BTreeMap<Channel, usize>) -> TrustStore {
        TrustStore { keys, thresholds }
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
        self.keys.iter().filter(|(c, _)| c.as_str() == channel).map(|(_, k)| k.key_id).collect()
    }
}
