//! Approval rules as `ingest rules` manages them: standing decisions every refresh applies.

use crate::base::clock::Date;
use crate::base::error::Result;
use crate::base::names::RuleName;
use crate::formats::approval::Actor;
use crate::formats::rules::Rule;
use crate::server::datadir::DataDir;
use crate::server::registry::{RefreshReport, StoredRule};

pub fn all(data: &DataDir) -> Result<Vec<StoredRule>> {
    data.registry.rules()
}

pub fn get(data: &DataDir, name: &RuleName) -> Result<StoredRule> {
    data.registry.rule(name)
}

pub fn add(data: &mut DataDir, rule: &Rule, actor: &Actor) -> Result<StoredRule> {
    data.registry.add_rule(rule, actor)
}

/// Removes a rule; what it decided stays as it is.
pub fn remove(data: &mut DataDir, name: &RuleName, actor: &Actor) -> Result<StoredRule> {
    data.registry.remove_rule(name, actor)
}

/// What a refresh on `day` would change, with `tested` (a stored or described rule) among
/// the stored ones; nothing is written.
pub fn test(data: &mut DataDir, tested: Option<&Rule>, day: Date) -> Result<RefreshReport> {
    data.registry.refresh(day, tested, true, false)
}
