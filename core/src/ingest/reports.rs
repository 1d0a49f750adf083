//! Stored change reports, as `ingest report` reads them.

use crate::base::error::Result;
use crate::server::datadir::DataDir;
use crate::server::report::{ChangeReport, ReportHeader};

/// Report `id`, or the latest.
pub fn get(data: &DataDir, id: Option<u64>) -> Result<ChangeReport> {
    data.registry.report(id)
}

/// The latest `limit` reports' headers, newest first.
pub fn list(data: &DataDir, limit: usize) -> Result<Vec<ReportHeader>> {
    data.registry.reports(limit)
}
