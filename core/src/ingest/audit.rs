//! `ingest audit`: the hash-chained log of every change, read and proved intact.

use crate::base::error::Result;
use crate::server::datadir::DataDir;
use crate::server::registry::{AuditEntry, AuditReport};

/// Proves the chain intact; with `head`, also that the log still holds that entry (so no
/// later entry was cut off the end).
pub fn verify(data: &DataDir, head: Option<&str>) -> Result<AuditReport> {
    data.registry.verify_audit(head)
}

/// Every entry, oldest first.
pub fn entries(data: &DataDir, each: impl FnMut(AuditEntry) -> Result<()>) -> Result<()> {
    data.registry.audit_entries(each)
}
