//! Freshness without a trusted clock: the offline server judges a bundle's expiry against the
//! later of its system clock and the latest creation time of an accepted bundle of the same
//! channel, so that a clock set back cannot make an expired bundle fresh again.

use serde::Serialize;

use crate::base::clock::Timestamp;

/// How a bundle's expiry is judged against the later of the
/// system clock and the latest creation time of an accepted bundle of its channel.
#[derive(Debug, Clone, Serialize)]
pub struct TimeJudgement {
    pub system_clock: Timestamp,
    pub latest_seen: Option<Timestamp>,
    pub judged_against: Timestamp,
    /// The system clock is earlier than a bundle already accepted: it went backwards, or
    /// that bundle was dated in the future (`ingest trust clock-reset` recovers from that).
    pub clock_behind: bool,
    pub expires: Option<Timestamp>,
    /// The bundle had expired and was accepted because the operator relaxed enforcement.
    pub expiry_relaxed: bool,
}

impl TimeJudgement {
    /// Judges a bundle that `expires` (if ever) at `system_clock`, the channel's latest
    /// accepted creation time being `latest_seen`. `expiry_relaxed` is set when it has
    /// expired: the caller refuses it unless the operator allowed expired bundles.
    pub fn judge(expires: Option<Timestamp>, latest_seen: Option<Timestamp>, system_clock: Timestamp) -> TimeJudgement {
        let judged_against = latest_seen.map_or(system_clock, |t| t.max(system_clock));
        TimeJudgement {
            system_clock,
            latest_seen,
            judged_against,
            clock_behind: latest_seen.is_some_and(|t| t > system_clock),
            expires,
            expiry_relaxed: expires.is_some_and(|e| e <= judged_against),
        }
    }
}
