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
/// unless `override_people`. With `dry_run`, says what would change and writes nothing.
pub fn set_status(
    data: &mut DataDir,
    ids: &[UpdateId],
    filter: &ListFilter,
    to: Status,
    actor: &Actor,
    override_people: bool,
    dry_run: bool,
) -> Result<StatusChange> {
    data.registry.set_status(ids, filter, to, actor, override_people, dry_run)
}

/// For each of `typed` that names no product of the list (letter case ignored), the closest
/// products the list holds (at most three), so that a misspelt filter says what was meant.
pub fn unknown_products(data: &DataDir, typed: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    if typed.is_empty() {
        return Ok(Vec::new());
    }
    let known = data.registry.products()?;
    let mut out = Vec::new();
    for t in typed {
        if known.iter().any(|k| k.eq_ignore_ascii_case(t)) {
            continue;
        }
        let lower = t.to_lowercase();
        let mut scored: Vec<(f64, &String)> = known
            .iter()
            .map(|k| (strsim::jaro_winkler(&lower, &k.to_lowercase()), k))
            .filter(|(score, _)| *score >= 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        out.push((t.clone(), scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()));
    }
    Ok(out)
}

/// An update's licence and whether it was accepted in its current wording.
pub fn eula(data: &DataDir, id: &UpdateId) -> Result<EulaView> {
    data.registry.eula(id)
}

/// Accepts an update's licence in the wording it has now, recorded with `actor`.
pub fn accept_eula(data: &mut DataDir, id: &UpdateId, actor: &Actor) -> Result<EulaView> {
    data.registry.accept_eula(id, actor)
}
