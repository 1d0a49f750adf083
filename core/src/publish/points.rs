//! `ingest dp add|list|remove`: the distribution points this server publishes to.

use std::path::Path;

use crate::base::error::Result;
use crate::base::names::{DpName, GroupName};
use crate::formats::approval::Actor;
use crate::server::datadir::DataDir;
use crate::server::registry::DistributionPoint;

/// Records a distribution point at `path` (absolute, outside the data directory, no other
/// point's), carrying the approved updates, or the approved members of `group`.
pub fn add(
    data: &mut DataDir,
    name: &DpName,
    path: &Path,
    group: Option<&GroupName>,
    include_unapproved: bool,
    actor: &Actor,
) -> Result<DistributionPoint> {
    let root = data.root().to_path_buf();
    data.registry.add_dp(name, path, group, include_unapproved, &root, actor)
}

pub fn all(data: &DataDir) -> Result<Vec<DistributionPoint>> {
    data.registry.dps()
}

/// Forgets a point; its directory is left as it is.
pub fn remove(data: &mut DataDir, name: &DpName, actor: &Actor) -> Result<DistributionPoint> {
    data.registry.remove_dp(name, actor)
}
