//! The update row as the registry reads it: the columns every list selects, and the validated
//! types they are read into. A value that does not parse is a damaged registry (ingest never
//! writes one), not bad input.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

use crate::base::clock::{Date, Timestamp};
use crate::base::names::UpdateId;
use crate::formats::approval::Status;
use crate::formats::compliance::{GraceFrom, Level, Verdict};
use crate::formats::install_results::Outcome;
use crate::formats::inventory::Facet;
use crate::formats::model::{Classification, Severity, UpdateRow};

/// The columns of [`UpdateRow`] on `updates u`, in the order [`update_row`] reads them, as a
/// literal for `concat!`.
macro_rules! row_columns {
    () => {
        "u.id, u.revision, u.title, u.vendor, u.product, u.version, u.classification, u.severity, u.kb, u.release_date"
    };
}
pub(super) use row_columns;

/// Reads an [`UpdateRow`] from [`ROW_COLUMNS`] starting at column `at`.
pub(super) fn update_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<UpdateRow> {
    Ok(UpdateRow {
        id: r.get(at)?,
        revision: r.get(at + 1)?,
        title: r.get(at + 2)?,
        vendor: r.get(at + 3)?,
        product: r.get(at + 4)?,
        version: r.get(at + 5)?,
        classification: r.get(at + 6)?,
        severity: r.get(at + 7)?,
        kb: r.get(at + 8)?,
        release_date: r.get(at + 9)?,
    })
}

/// Reads a text column through the type's own parser.
fn parsed<T: std::str::FromStr>(value: ValueRef<'_>) -> FromSqlResult<T>
where
    T::Err: std::fmt::Display,
{
    let text = value.as_str()?;
    text.parse().map_err(|e: T::Err| FromSqlError::Other(format!("{text:?}: {e}").into()))
}

macro_rules! from_sql_by_parsing {
    ($($ty:ty),*) => {$(
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                parsed(value)
            }
        }
    )*};
}

from_sql_by_parsing!(
    UpdateId,
    Classification,
    Severity,
    Date,
    Timestamp,
    Status,
    Verdict,
    Level,
    GraceFrom,
    Facet,
    Outcome
);
