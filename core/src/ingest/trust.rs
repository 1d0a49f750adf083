//! `ingest trust`: which keys may sign bundles for which channel, how many must, the clock a
//! channel's expiry is judged against, and the peer servers whose update lists are taken.

use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{Channel, KeyId};
use crate::formats::approval::Actor;
use crate::formats::keys::is_demo_key;
use crate::formats::minisign::PublicKey;
use crate::server::datadir::DataDir;
use crate::server::registry::{PeerKey, TrustedKey};

/// A channel's trust as `trust list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPolicy {
    pub channel: String,
    pub keys: usize,
    /// How many distinct trusted keys must sign each bundle.
    pub threshold: usize,
    /// Raised by every rotation statement applied.
    pub version: u32,
}

/// Refuses the public demo key (anyone can sign with it) unless `allow_demo_key`: checked
/// before the data directory is opened, so that a refusal leaves nothing behind.
pub fn may_trust(key: &PublicKey, allow_demo_key: bool) -> Result<()> {
    if is_demo_key(key) && !allow_demo_key {
        return Err(Error::DemoKey { key_id: key.key_id });
    }
    Ok(())
}

/// Trusts `key` for `channel`; false if it was trusted already. The demo key as
/// [`may_trust`] says.
pub fn add_key(data: &mut DataDir, channel: &Channel, key: &PublicKey, allow_demo_key: bool) -> Result<bool> {
    may_trust(key, allow_demo_key)?;
    data.registry.add_trusted_key(channel, key)
}

/// Stops trusting a key, unless the channel would be left fewer keys than its threshold.
pub fn remove_key(data: &mut DataDir, channel: &Channel, key_id: &KeyId) -> Result<()> {
    data.registry.remove_trusted_key(channel, key_id)
}

/// Sets how many distinct trusted keys must sign each bundle of `channel`.
pub fn set_threshold(data: &mut DataDir, channel: &Channel, threshold: usize) -> Result<()> {
    data.registry.set_threshold(channel, threshold)
}

/// Forgets the latest bundle time of `channel` (logged); returns it.
pub fn reset_clock(data: &mut DataDir, channel: &Channel) -> Result<Option<Timestamp>> {
    data.registry.reset_clock(channel)
}

/// Every channel that has trusted keys.
pub fn policies(data: &DataDir) -> Result<Vec<ChannelPolicy>> {
    Ok(data
        .registry
        .channel_policies()?
        .into_iter()
        .map(|(channel, keys, threshold, version)| ChannelPolicy { channel, keys, threshold, version })
        .collect())
}

/// The trusted keys, of one channel or all.
pub fn keys(data: &DataDir, channel: Option<&Channel>) -> Result<Vec<TrustedKey>> {
    data.registry.trusted_keys(channel)
}

/// Trusts another server's key for the update lists and groups it exports (never for
/// bundles); false if it was trusted already. The demo key is never a peer.
pub fn add_peer(data: &mut DataDir, key: &PublicKey, actor: &Actor) -> Result<bool> {
    may_trust(key, false)?;
    data.registry.add_peer_key(key, actor)
}

pub fn remove_peer(data: &mut DataDir, key_id: &KeyId, actor: &Actor) -> Result<()> {
    data.registry.remove_peer_key(key_id, actor)
}

pub fn peers(data: &DataDir) -> Result<Vec<PeerKey>> {
    data.registry.peer_keys()
}
