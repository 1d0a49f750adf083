//! Update groups: named sets of updates for rules, reports and distribution points.

use crate::base::error::Result;
use crate::base::names::{GroupName, UpdateId};
use crate::formats::approval::Actor;
use crate::server::datadir::DataDir;
use crate::server::registry::{GroupSummary, ListFilter, Membership, UpdateSummary};

pub fn create(data: &mut DataDir, name: &GroupName, description: &str, actor: &Actor) -> Result<GroupSummary> {
    data.registry.create_group(name, description, actor)
}

pub fn delete(data: &mut DataDir, name: &GroupName, actor: &Actor) -> Result<GroupSummary> {
    data.registry.delete_group(name, actor)
}

pub fn all(data: &DataDir) -> Result<Vec<GroupSummary>> {
    data.registry.groups()
}

/// A group and its members.
pub fn show(data: &DataDir, name: &GroupName) -> Result<(GroupSummary, Vec<UpdateSummary>)> {
    let group = data.registry.group(name)?;
    let members = data.registry.list(&ListFilter { groups: vec![name.clone()], ..Default::default() })?;
    Ok((group, members))
}

/// Adds the updates named by `ids`, or else those `filter` matches, to group `name`.
pub fn add(
    data: &mut DataDir,
    name: &GroupName,
    ids: &[UpdateId],
    filter: &ListFilter,
    actor: &Actor,
) -> Result<Membership> {
    data.registry.add_to_group(name, ids, filter, actor)
}

/// Removes the updates named by `ids`, or else those `filter` matches, from group `name`.
pub fn remove(
    data: &mut DataDir,
    name: &GroupName,
    ids: &[UpdateId],
    filter: &ListFilter,
    actor: &Actor,
) -> Result<Membership> {
    data.registry.remove_from_group(name, ids, filter, actor)
}
