//! What this server holds, as the state file `fetch` builds delta bundles against.

use std::collections::BTreeSet;

use super::Registry;
use crate::base::error::Result;
use crate::base::names::{Channel, UpdateId};
use crate::formats::minisign::PublicKey;
use crate::formats::state::{ChannelPosition, ComputerNeed, HeldUpdate, IncompleteSet, ServerState};

impl Registry {
    /// What this server holds, for the state file `fetch` builds deltas against.
    pub fn server_state(&self, server_key: &PublicKey) -> Result<ServerState> {
        let e = self.err();
        let mut state = ServerState::new(server_key);
        let mut stmt = self
            .conn
            .prepare("SELECT channel, highest_sequence, latest_time FROM channels ORDER BY channel")
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .map_err(&e)?;
        for row in rows {
            let (channel, highest, latest) = row.map_err(&e)?;
            let Ok(channel) = channel.parse::<Channel>() else { continue };
            state.channels.insert(
                channel,
                ChannelPosition {
                    highest_sequence: highest.map(|h| h as u64),
                    latest_time: latest.and_then(|t| t.parse().ok()),
                },
            );
        }
        let mut stmt = self.conn.prepare("SELECT id, revision FROM updates ORDER BY id").map_err(&e)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))).map_err(&e)?;
        for row in rows {
            let (id, revision) = row.map_err(&e)?;
            if let Ok(id) = id.parse::<UpdateId>() {
                state.updates.push(HeldUpdate { id, revision });
            }
        }
        let mut stmt = self.conn.prepare("SELECT sha256 FROM files WHERE present = 1 ORDER BY sha256").map_err(&e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&e)?;
        for row in rows {
            if let Ok(d) = row.map_err(&e)?.parse() {
                state.files.push(d);
            }
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT u.id FROM updates u WHERE u.withdrawn = 0 AND EXISTS (SELECT 1 FROM update_files uf \
                 JOIN files f ON f.sha256 = uf.sha256 WHERE uf.update_id = u.id AND f.present = 0) ORDER BY u.id",
            )
            .map_err(&e)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&e)?;
        for row in rows {
            if let Ok(id) = row.map_err(&e)?.parse() {
                state.needs.push(id);
            }
        }
        state.computers_need = self.computers_need()?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT b.channel, b.sequence, b.volumes, group_concat(v.volume, ' ') FROM bundles b \
                 LEFT JOIN bundle_volumes v ON v.channel = b.channel AND v.sequence = b.sequence \
                 GROUP BY b.channel, b.sequence HAVING COUNT(v.volume) < b.volumes ORDER BY b.channel, b.sequence",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, u32>(2)?, r.get::<_, Option<String>>(3)?))
            })
            .map_err(&e)?;
        for row in rows {
            let (channel, sequence, volumes, have) = row.map_err(&e)?;
            let have: BTreeSet<u32> = have.unwrap_or_default().split(' ').filter_map(|v| v.parse().ok()).collect();
            if let Ok(channel) = channel.parse() {
                state.incomplete_sets.push(IncompleteSet {
                    channel,
                    sequence: sequence as u64,
                    missing_volumes: (1..=volumes).filter(|v| !have.contains(v)).collect(),
                });
            }
        }
        Ok(state)
    }

    /// What the computers miss and this server cannot give them, as of the last judgment:
    /// updates of the list judged missing, within grace or failed whose files the store
    /// lacks, and updates the offline scan found missing that the list does not know.
    pub fn computers_need(&self) -> Result<Vec<ComputerNeed>> {
        let e = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT u.id, u.kb, COUNT(*) FROM judgments j JOIN updates u ON u.id = j.update_id \
                 WHERE j.verdict IN ('missing', 'within-grace', 'failed') AND u.withdrawn = 0 \
                 AND (EXISTS (SELECT 1 FROM update_files uf JOIN files f ON f.sha256 = uf.sha256 \
                              WHERE uf.update_id = u.id AND f.present = 0) \
                      OR NOT EXISTS (SELECT 1 FROM update_files uf WHERE uf.update_id = u.id)) \
                 GROUP BY u.id \
                 UNION ALL \
                 SELECT m.update_id, MAX(m.kb), COUNT(*) FROM computer_scan_missing m \
                 WHERE NOT EXISTS (SELECT 1 FROM updates u WHERE u.id = m.update_id) \
                 AND (m.kb IS NULL OR NOT EXISTS (SELECT 1 FROM updates u WHERE u.kb = m.kb)) \
                 GROUP BY m.update_id ORDER BY 1",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?)))
            .map_err(&e)?;
        let mut needs = Vec::new();
        for row in rows {
            let (id, kb, computers) = row.map_err(&e)?;
            if let Ok(id) = id.parse() {
                needs.push(ComputerNeed { id, kb, computers: computers as u64 });
            }
        }
        Ok(needs)
    }
}
