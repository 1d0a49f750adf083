//! What a distribution point's assignment says: per computer group, its policy, its
//! computers and the updates of the point it is to install.

use rustc_hash::FxHashSet;

use super::Registry;
use crate::base::error::Result;
use crate::formats::compliance::Policy;
use crate::formats::dp_index::AssignedGroup;
use crate::server::registry::DistributionPoint;

impl Registry {
    /// The assignment of `dp`, whose index carries the updates `carried`: every computer
    /// group (a group that installs from another point with no updates), then the computers
    /// in no group with every approved update the point carries.
    pub fn assignment(&self, dp: &DistributionPoint, carried: &[&str]) -> Result<Vec<AssignedGroup>> {
        let e = self.err();
        let approved: FxHashSet<String> = {
            let mut stmt =
                self.conn.prepare("SELECT id FROM updates WHERE status = 'approved' AND withdrawn = 0").map_err(&e)?;
            stmt.query_map([], |r| r.get(0)).map_err(&e)?.collect::<rusqlite::Result<_>>().map_err(&e)?
        };
        let members = |group: &str| -> Result<FxHashSet<String>> {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT update_id FROM group_members WHERE group_name = ?1 COLLATE NOCASE")
                .map_err(&e)?;
            stmt.query_map([group], |r| r.get(0)).map_err(&e)?.collect::<rusqlite::Result<_>>().map_err(&e)
        };
        let covered = |policy: &Policy| -> Result<Vec<String>> {
            let in_group = policy.update_group.as_deref().map(members).transpose()?;
            Ok(carried
                .iter()
                .filter(|id| approved.contains(**id) && in_group.as_ref().is_none_or(|m| m.contains(**id)))
                .map(|id| id.to_string())
                .collect())
        };
        let mut groups = Vec::new();
        for g in self.computer_groups()? {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT name FROM computers WHERE group_name = ?1 ORDER BY name")
                .map_err(&e)?;
            let computers: Vec<String> =
                stmt.query_map([&g.name], |r| r.get(0)).map_err(&e)?.collect::<rusqlite::Result<_>>().map_err(&e)?;
            let here = g.point.as_deref().is_none_or(|p| p.eq_ignore_ascii_case(&dp.name));
            groups.push(AssignedGroup {
                group: Some(g.name),
                test: g.test,
                updates: if here { covered(&g.policy)? } else { Vec::new() },
                policy: g.policy,
                point: g.point,
                computers,
            });
        }
        let default = Policy::default_policy();
        groups.push(AssignedGroup {
            group: None,
            test: false,
            updates: covered(&default)?,
            policy: default,
            point: None,
            computers: Vec::new(),
        });
        Ok(groups)
    }
}
