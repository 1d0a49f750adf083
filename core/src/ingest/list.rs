//! The update list as people read it and decide on it: `list`, `show`, `approve`, `decline`,
//! `reset` and licence acceptance.

use crate::base::error::Result;
use crate::base::names::UpdateId;
use crate::formats::approval::{Actor, Status, StatusChange};
use crate::server::datadir::DataDir;
use crate::server::registry::{EulaView, ListFilter, UpdateDetail, UpdateSummary};

/// The updates `filter` matches, by id.
pub fn list(data: &DataDir, filter: &ListFilter) -> Result<Vec<UpdateSummary>> {
    data.registry.list(filter)
}

/// One update in full: its metadata, status, files and supersedence chain.
pub fn show(data: &DataDir, id: &UpdateId) -> Result<UpdateDetail> {
    data.registry.show(id)
}

/// Gives status `to` to the updates named by `ids`, or else to those `filter` matches, in one
/// transaction logged with `actor`. Named updates that cannot take it refuse the command;
/// matched ones are skipped and reported, and so are those whose status a person set,
/// unless `override_people`.
pub fn set_status(
    data: &mut DataDir,
    ids: &[UpdateId],
    filter: &ListFilter,
    to: Status,
    actor: &Actor,
    override_people: bool,
) -> Result<StatusChange> {
    data.registry.set_status(ids, filter, to, actor, override_people)
}

/// An update's licence and whether it was accepted in its current wording.
pub fn eula(data: &DataDir, id: &UpdateId) -> Result<EulaView> {
    data.registry.eula(id)
}

/// Accepts an update's licence in the wording it has now, recorded with `actor`.
pub fn accept_eula(data: &mut DataDir, id: &UpdateId, actor: &Actor) -> Result<EulaView> {
    data.registry.accept_eula(id, actor)
}
