//! The CSV files servers exchange: the update list (`export-list` / `import-list`) and update
//! groups (`export-groups` / `import-groups`), the counterparts of JP1's
//! `ioutils exportupdatelist` / `importupdatelist`. Columns, rows, and the rules of reading
//! and writing them; merging them into the registry is `exchange`'s.
//!
//! The files are RFC 4180 CSV in UTF-8 with a byte order mark, CRLF line ends and a header
//! row, which Excel and any other spreadsheet open as they are. What a spreadsheet saves
//! back (`;` separators, Windows-1252, cut cells) is read too; see [`records`].
//! Columns and merge rules are documented in README.md ("Sharing the update list").
//! - The `metadata` column holds the update as received (JSON) and is what an import uses;
//!   the columns before it are there to be read and sorted. The status columns, the licence
//!   acceptance and `groups` are merged.
//! - A cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or
//!   a carriage return) is written with a leading `'`, which an import removes again.
//! - A bad row is named by its line; none is longer than [`MAX_ROW_BYTES`].

use std::io::{Read, Write};

use serde::Serialize;

use crate::base::clock::Timestamp;
use crate::base::error::{Error, Result};
use crate::base::names::{GroupName, UpdateId};
use crate::formats::approval::Status;
use crate::formats::model::{Update, UpdateRow};

/// The update list's columns, in order.
pub const LIST_COLUMNS: [&str; 21] = [
    "id",
    "revision",
    "title",
    "vendor",
    "product",
    "version",
    "classification",
    "severity",
    "kb",
    "release_date",
    "withdrawn",
    "origin",
    "available",
    "status",
    "status_set_by",
    "status_actor",
    "status_set_at",
    "eula_accepted_by",
    "eula_accepted_at",
    "groups",
    "metadata",
];

/// The update groups' columns, in order.
pub const GROUP_COLUMNS: [&str; 5] = ["name", "description", "created_by", "created_at", "members"];

/// Separates the names in a `groups` or `members` cell.
const LIST_SEPARATOR: char = ';';

/// One update as exported: the registry's columns as stored.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub update: UpdateRow,
    pub withdrawn: bool,
    pub origin: String,
    pub available: bool,
    pub status: Status,
    pub status_set_by: String,
    pub status_actor: Option<String>,
    pub status_set_at: String,
    /// Who accepted the licence in its current wording, and when.
    pub eula_accepted: Option<(String, String)>,
    pub groups: Vec<String>,
    /// The update as received (JSON).
    pub metadata: String,
}

/// One update as imported, checked.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub id: UpdateId,
    /// The update as received, when the import takes metadata (a list signed by a trusted
    /// peer); an unsigned list's metadata cell is not read at all.
    pub metadata: Option<ListMetadata>,
    pub origin: String,
    pub status: Status,
    pub status_set_by: String,
    pub status_actor: Option<String>,
    pub status_set_at: Timestamp,
    /// Who accepted the licence (in the wording `metadata` has), and when.
    pub eula_accepted: Option<(String, Timestamp)>,
    pub groups: Vec<GroupName>,
}

/// A row's update as received.
#[derive(Debug, Clone)]
pub struct ListMetadata {
    pub update: Update,
    /// `update` as the registry stores it.
    pub json: String,
}

/// One update group as exported and imported.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub name: GroupName,
    pub description: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub members: Vec<String>,
}

/// A row an import refused, by its line in the file.
#[derive(Debug, Clone, Serialize)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// Writes a cell so that no spreadsheet runs it as a formula.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        // A leading quote is doubled too, so that restoring is exact: "'=x" sent comes back
        // as "'=x", not as "=x".
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A neutralised cell, as the CSV writer takes it.
struct Cell<'a>(std::borrow::Cow<'a, str>);

impl AsRef<[u8]> for Cell<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Undoes [`neutralise`].
fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if matches!(rest.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'')) => rest,
        _ => cell,
    }
}

fn csv_error(what: &str) -> impl Fn(csv::Error) -> Error + '_ {
    move |e| Error::Environment { what: format!("writing {what}"), cause: e.to_string() }
}

/// Writing a CSV file failed: the output (a full disk, a closed pipe), not the input.
fn csv_output(cause: String) -> Error {
    Error::Environment { what: "writing CSV".into(), cause }
}

/// Writes the update list.
pub struct ListWriter<W: Write> {
    csv: csv::Writer<W>,
}

/// A CSV writer as Excel opens it right: UTF-8 after a byte order mark (without one, Excel
/// reads the file as the system's code page and garbles every accented title), comma
/// separated, CRLF line ends.
fn csv_writer<W: Write>(mut out: W) -> Result<csv::Writer<W>> {
    out.write_all("\u{feff}".as_bytes()).map_err(|e| csv_output(e.to_string()))?;
    Ok(csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out))
}

impl<W: Write> ListWriter<W> {
    pub fn new(out: W) -> Result<Self> {
        let mut csv = csv_writer(out)?;
        csv.write_record(LIST_COLUMNS).map_err(csv_error("CSV"))?;
        Ok(ListWriter { csv })
    }

    pub fn write(&mut self, row: &ExportRow) -> Result<()> {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let u = &row.update;
        let revision = u.revision.to_string();
        let release_date = u.release_date.map(|d| d.to_string()).unwrap_or_default();
        let groups = row.groups.join(&LIST_SEPARATOR.to_string());
        let (eula_by, eula_at) = match &row.eula_accepted {
            Some((by, at)) => (by.as_str(), at.as_str()),
            None => ("", ""),
        };
        let cells: [&str; 21] = [
            u.id.as_str(),
            &revision,
            &u.title,
            &u.vendor,
            &u.product,
            &u.version,
            u.classification.as_str(),
            u.severity.as_str(),
            u.kb.as_deref().unwrap_or_default(),
            &release_date,
            yes_no(row.withdrawn),
            &row.origin,
            yes_no(row.available),
            row.status.as_str(),
            &row.status_set_by,
            row.status_actor.as_deref().unwrap_or_default(),
            &row.status_set_at,
            eula_by,
            eula_at,
            &groups,
            &row.metadata,
        ];
        self.csv.write_record(cells.iter().map(|c| Cell(neutralise(c)))).map_err(csv_error("CSV"))
    }

    pub fn finish(mut self) -> Result<W> {
        self.csv.flush().map_err(|e| csv_output(e.to_string()))?;
        self.csv.into_inner().map_err(|e| csv_output(e.error().to_string()))
    }
}

/// Writes update groups.
pub fn write_groups<W: Write>(out: W, groups: &[GroupRow]) -> Result<W> {
    let mut csv = csv_writer(out)?;
    csv.write_record(GROUP_COLUMNS).map_err(csv_error("CSV"))?;
    for g in groups {
        let cells = [
            g.name.to_string(),
            g.description.clone(),
            g.created_by.clone(),
            g.created_at.to_string(),
            g.members.join(&LIST_SEPARATOR.to_string()),
        ];
        csv.write_record(cells.iter().map(|c| Cell(neutralise(c)))).map_err(csv_error("CSV"))?;
    }
    csv.flush().map_err(|e| csv_output(e.to_string()))?;
    csv.into_inner().map_err(|e| csv_output(e.error().to_string()))
}

/// The longest row read: the largest metadata the model accepts (a licence text of 1 MiB,
/// which JSON escaping can make six times longer, and the update's other fields) with room
/// to spare. A longer row refuses the file; memory holds at most one such row.
pub const MAX_ROW_BYTES: u64 = 8 << 20;

/// Refuses to read more than [`MAX_ROW_BYTES`] past the end of the last whole record, so
/// that one endless cell cannot make a CSV import hold the file in memory.
struct RowCap<R> {
    inner: R,
    read: u64,
    /// Where the last whole record ended, set by the reading loop.
    boundary: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for RowCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read.saturating_sub(self.boundary.get()) > MAX_ROW_BYTES {
            return Err(std::io::Error::other(format!(
                "a row longer than {MAX_ROW_BYTES} bytes (the largest metadata an update may have, and more)"
            )));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The longest first line looked at for the separator.
const MAX_HEAD_BYTES: usize = 64 << 10;

/// A spreadsheet's limit for one cell, in characters (Excel's): a cell of exactly this
/// length in a file a spreadsheet saved may have been cut.
pub const SPREADSHEET_CELL_LIMIT: usize = 32_767;

/// Reads the first line of `input` (the separator line or the header) to find the
/// separator: Excel's `sep=X` line, or the character after the first column's name, which
/// is `;` where Excel saves in a locale whose decimal mark is a comma. Returns the bytes
/// read, which the CSV reader reads again.
fn separator(input: &mut impl Read, first_column: &str, what: &str) -> Result<(Vec<u8>, u8)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while head.len() < MAX_HEAD_BYTES && head.last() != Some(&b'\n') {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Invalid(format!("{what}: {e}"))),
        }
    }
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return Err(Error::Invalid(format!(
            "{what}: the file is UTF-16 (what Excel saves as \"Unicode Text\"); save it as \"CSV UTF-8 (Comma \
             delimited)\" or \"CSV (Comma delimited)\""
        )));
    }
    let line = head.strip_prefix(b"\xef\xbb\xbf".as_slice()).unwrap_or(&head);
    let separator = match line {
        [b's' | b'S', b'e' | b'E', b'p' | b'P', b'=', sep, ..] => *sep,
        _ => match line.strip_prefix(first_column.as_bytes()) {
            Some([sep @ (b';' | b'\t'), ..]) => *sep,
            _ => b',',
        },
    };
    Ok((head, separator))
}

/// The text encoding of a file a spreadsheet saved, found as it is read: UTF-8 (with or
/// without a byte order mark) until a row is not, then Windows-1252 (what Excel saves as
/// "CSV (Comma delimited)" in Western locales) for the rest, unless an earlier row was
/// UTF-8 beyond ASCII: one file has one encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    /// Every row so far ASCII, which reads the same in both.
    Undecided,
    Utf8,
    Windows1252,
}

impl Encoding {
    /// `raw` as text, or why not.
    fn decode(&mut self, raw: csv::ByteRecord) -> std::result::Result<csv::StringRecord, (csv::ByteRecord, String)> {
        if *self != Encoding::Windows1252 {
            let ascii = raw.as_slice().is_ascii();
            match csv::StringRecord::from_byte_record(raw) {
                Ok(record) => {
                    if !ascii {
                        *self = Encoding::Utf8;
                    }
                    return Ok(record);
                }
                Err(e) if *self == Encoding::Utf8 => {
                    return Err((
                        e.into_byte_record(),
                        "not UTF-8, though earlier rows were: one file must have one encoding".into(),
                    ));
                }
                Err(e) => {
                    *self = Encoding::Windows1252;
                    return self.decode(e.into_byte_record());
                }
            }
        }
        let mut record = csv::StringRecord::with_capacity(raw.as_slice().len() * 3 / 2, raw.len());
        for field in &raw {
            record.push_field(&encoding_rs::WINDOWS_1252.decode_without_bom_handling(field).0);
        }
        record.set_position(raw.position().cloned());
        Ok(record)
    }
}

/// Reads a CSV file: its header checked, then each record handed to `each` with its line
/// number as it is read (one record in memory at a time, not the whole file twice over;
/// none longer than [`MAX_ROW_BYTES`]), until the end or until `each` returns false.
///
/// It takes what ferry writes (UTF-8 with a byte order mark, `,`, CRLF) and what a
/// spreadsheet saves after editing it: with or without the byte order mark, in
/// Windows-1252, separated by `;` or tabs, with Excel's `sep=` line, LF or CRLF.
fn records<R: Read>(
    input: R,
    columns: &[&str],
    what: &str,
    mut each: impl FnMut(u64, std::result::Result<&csv::StringRecord, String>) -> bool,
) -> Result<()> {
    let boundary = std::rc::Rc::new(std::cell::Cell::new(0));
    let mut input = RowCap { inner: input, read: 0, boundary: boundary.clone() };
    let (head, separator) = separator(&mut input, columns[0], what)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator)
        .from_reader(std::io::Cursor::new(head).chain(input));
    let read_error = |e: csv::Error| Error::Invalid(format!("{what}: {e}"));
    let mut raw = csv::ByteRecord::new();
    let mut encoding = Encoding::Undecided;
    let mut header = csv::StringRecord::new();
    let mut header_line = 0;
    for _ in 0..2 {
        header_line += 1;
        if !reader.read_byte_record(&mut raw).map_err(read_error)? {
            break;
        }
        header =
            encoding.decode(std::mem::take(&mut raw)).map_err(|(_, why)| Error::Invalid(format!("{what}: {why}")))?;
        // Excel's "sep=;" reads as one or two cells (the second empty) with `;` between.
        let sep_line = header.len() <= 2
            && header[0].trim_start_matches('\u{feff}').to_ascii_lowercase().starts_with("sep=")
            && header.iter().skip(1).all(str::is_empty);
        if !sep_line {
            break;
        }
    }
    let found: Vec<&str> = header.iter().map(|h| h.trim_start_matches('\u{feff}')).collect();
    if found != columns {
        return Err(Error::Invalid(format!(
            "{what}: line {header_line}: the header must be exactly: {} (found: {})",
            columns.join(","),
            found.join(&char::from(separator).to_string())
        )));
    }
    // The reader's position counts the lines before a record; people count from its first.
    let line_of = |p: Option<&csv::Position>| p.map_or(0, |p| p.line() + 1);
    loop {
        boundary.set(reader.position().byte());
        let go_on = match reader.read_byte_record(&mut raw) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = line_of(raw.position());
                match encoding.decode(std::mem::take(&mut raw)) {
                    Ok(record) => {
                        let go_on = if record.len() != columns.len() {
                            each(line, Err(format!("{} cells, expected {}", record.len(), columns.len())))
                        } else {
                            each(line, Ok(&record))
                        };
                        raw = record.into_byte_record();
                        go_on
                    }
                    Err((back, why)) => {
                        raw = back;
                        each(line, Err(why))
                    }
                }
            }
            Err(e) => {
                let line = line_of(e.position());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(read_error(e));
                }
                each(line, Err(e.to_string()))
            }
        };
        if !go_on {
            return Ok(());
        }
    }
}

fn names(cell: &str) -> std::result::Result<Vec<GroupName>, String> {
    cell.split(LIST_SEPARATOR)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.parse::<GroupName>().map_err(|e| e.to_string()))
        .collect()
}

fn timestamp(column: &str, cell: &str) -> std::result::Result<Timestamp, String> {
    cell.parse().map_err(|_| format!("{column} {cell:?} is not a time such as 2026-01-13T09:30:00Z"))
}

fn actor(column: &str, cell: &str) -> std::result::Result<Option<String>, String> {
    let cell = restore(cell).trim();
    if cell.is_empty() {
        return Ok(None);
    }
    cell.parse::<crate::formats::approval::Actor>().map(|a| Some(a.to_string())).map_err(|e| format!("{column}: {e}"))
}

/// How far past "now" a time in a list may be: clocks of two servers on one closed network
/// disagree by minutes at most.
pub const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Checks one row of an update list. Without `takes_metadata` (an unsigned list, perhaps
/// saved by a spreadsheet), the metadata cell is not read: a spreadsheet cuts it at
/// [`SPREADSHEET_CELL_LIMIT`] characters, and only the id, status and groups are taken.
fn list_row(r: &csv::StringRecord, not_after: Timestamp, takes_metadata: bool) -> std::result::Result<ListRow, String> {
    let col = |name: &str| r.get(LIST_COLUMNS.iter().position(|c| *c == name).expect("a known column")).unwrap_or("");
    let origin = col("origin");
    if !matches!(origin, "bundle" | "manual" | "csv") {
        return Err(format!("origin {origin:?} is not bundle, manual or csv"));
    }
    let (id, metadata) = if takes_metadata {
        let metadata: Update = serde_json::from_str(col("metadata")).map_err(|e| format!("metadata: {e}"))?;
        metadata.check().map_err(|(field, reason)| format!("metadata: {field}: {reason}"))?;
        if metadata.id.as_str() != col("id") {
            return Err(format!("id {:?} differs from the metadata's id {:?}", col("id"), metadata.id.as_str()));
        }
        if metadata.revision.to_string() != col("revision") {
            return Err(format!("revision {:?} differs from the metadata's {}", col("revision"), metadata.revision));
        }
        // The manual- namespace belongs to registration, and a manual id is its files'
        // digest: a row cannot give a bundle's update such an id, nor a manual id to other
        // files.
        let digests: Vec<_> = metadata.files.iter().map(|f| f.sha256).collect();
        let derived = !digests.is_empty() && crate::formats::model::manual_id(&digests) == metadata.id;
        if (origin == "manual" || crate::formats::model::is_manual_id(&metadata.id)) && (origin == "bundle" || !derived)
        {
            return Err(format!(
                "id {} with origin {origin}: the manual- namespace holds only files registered by hand, \
                 under the id their digests give",
                metadata.id
            ));
        }
        (metadata.id.clone(), Some(ListMetadata { json: metadata.stored_json(), update: metadata }))
    } else {
        let id: UpdateId = col("id").trim().parse().map_err(|e: Error| format!("id: {e}"))?;
        if col("groups").chars().count() >= SPREADSHEET_CELL_LIMIT {
            return Err(format!(
                "groups: {SPREADSHEET_CELL_LIMIT} characters or more, a spreadsheet's limit for a cell: the list \
                 may have been cut; export the groups with ingest export-groups instead"
            ));
        }
        (id, None)
    };
    let status: Status = col("status").parse().map_err(|e: Error| e.to_string())?;
    let set_by = col("status_set_by");
    if !matches!(set_by, "system" | "person" | "rule" | "csv") {
        return Err(format!("status_set_by {set_by:?} is not system, person, rule or csv"));
    }
    let status_actor = actor("status_actor", col("status_actor"))?;
    if set_by == "person" && status_actor.is_none() {
        return Err("status_set_by is person but status_actor names nobody".into());
    }
    // A decision dated in the future would outrank every real one until then.
    let not_future = |column: &str, t: Timestamp| {
        if t > not_after {
            Err(format!(
                "{column} {t} is in the future (after {not_after}: the later of this server's clock and the latest \
                 bundle time accepted, plus {} minutes)",
                CLOCK_SKEW.as_secs() / 60
            ))
        } else {
            Ok(t)
        }
    };
    let status_set_at = not_future("status_set_at", timestamp("status_set_at", col("status_set_at"))?)?;
    let eula_accepted = match (actor("eula_accepted_by", col("eula_accepted_by"))?, col("eula_accepted_at")) {
        (None, "") => None,
        (Some(by), at) => Some((by, not_future("eula_accepted_at", timestamp("eula_accepted_at", at)?)?)),
        (None, _) => return Err("eula_accepted_at is given but eula_accepted_by is not".into()),
    };
    Ok(ListRow {
        id,
        metadata,
        origin: origin.to_string(),
        status,
        status_set_by: set_by.to_string(),
        status_actor,
        status_set_at,
        eula_accepted,
        groups: names(col("groups")).map_err(|e| format!("groups: {e}"))?,
    })
}

/// Reads an update list, handing `each` every row as it is checked: a good one, or a bad
/// one with its line (a second row for an id is bad). Stops early when `each` returns false.
/// Times after `not_after` are refused. Without `takes_metadata`, rows carry no metadata
/// (see [`ListRow::metadata`]).
pub fn read_list<R: Read>(
    input: R,
    what: &str,
    not_after: Timestamp,
    takes_metadata: bool,
    mut each: impl FnMut(std::result::Result<ListRow, BadRow>) -> bool,
) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    records(input, &LIST_COLUMNS, what, |line, record| {
        match record.and_then(|r| list_row(r, not_after, takes_metadata)) {
            Ok(row) => match seen.insert(row.id.to_string(), line) {
                Some(first) => {
                    each(Err(BadRow { line, reason: format!("update {} is listed on line {first} already", row.id) }))
                }
                None => each(Ok(row)),
            },
            Err(reason) => each(Err(BadRow { line, reason })),
        }
    })
}

/// Reads update groups: every row checked.
pub fn read_groups<R: Read>(input: R, what: &str) -> Result<(Vec<GroupRow>, Vec<BadRow>)> {
    let mut good: Vec<GroupRow> = Vec::new();
    let mut bad = Vec::new();
    records(input, &GROUP_COLUMNS, what, |line, record| {
        let row = record.and_then(|r| {
            let name: GroupName = r[0].parse().map_err(|e: Error| e.to_string())?;
            let description = restore(&r[1]).to_string();
            if description.chars().any(char::is_control) {
                return Err("description: control characters are not allowed".into());
            }
            let created_by = actor("created_by", &r[2])?.ok_or("created_by names nobody")?;
            let created_at = timestamp("created_at", &r[3])?;
            let members = r[4]
                .split(LIST_SEPARATOR)
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| {
                    m.parse::<crate::base::names::UpdateId>()
                        .map(|id| id.to_string())
                        .map_err(|e| format!("members: {e}"))
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            Ok(GroupRow { name, description, created_by, created_at, members })
        });
        match row {
            Ok(row) if good.iter().any(|g| g.name.as_str().eq_ignore_ascii_case(row.name.as_str())) => {
                bad.push(BadRow { line, reason: format!("group {} is listed twice", row.name) })
            }
            Ok(row) => good.push(row),
            Err(reason) => bad.push(BadRow { line, reason }),
        }
        true
    })?;
    Ok((good, bad))
}

/// The refusal of a file with bad rows, naming each (at most 50, then how many more).
pub fn refusal(what: &str, bad: &[BadRow]) -> Error {
    let mut lines: Vec<String> = bad.iter().take(50).map(|b| format!("line {}: {}", b.line, b.reason)).collect();
    if bad.len() > 50 {
        lines.push(format!("and {} more bad rows", bad.len() - 50));
    }
    Error::Invalid(format!(
        "{what}: {} bad rows; nothing was imported (--skip-invalid imports the good rows):\n  {}",
        bad.len(),
        lines.join("\n  ")
    ))
}

/// What a signed list's trusted comment starts with.
pub const LIST_SIGNATURE_FORMAT: &str = "ferry-list v1";

/// Which exchange file a signature is for: an update list or update groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchanged {
    List,
    Groups,
}

impl Exchanged {
    pub fn as_str(self) -> &'static str {
        match self {
            Exchanged::List => "list",
            Exchanged::Groups => "groups",
        }
    }
}

/// Where an export's signature goes by default: beside it, `FILE.minisig`.
pub fn signature_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".minisig");
    std::path::PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_restored() {
        for cell in ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx"] {
            let written = neutralise(cell);
            assert!(written.starts_with('\''), "{cell:?}");
            assert_eq!(restore(&written), cell);
        }
        assert_eq!(neutralise("Windows 11"), "Windows 11");
        assert_eq!(restore("'quoted on purpose"), "'quoted on purpose");
        // Round trips are exact, whatever the cell starts with.
        for cell in ["'=already quoted", "''", "'", "'quoted on purpose", "=1", "plain", ""] {
            assert_eq!(restore(&neutralise(cell)), cell, "{cell:?}");
        }
    }

    #[test]
    fn a_wrong_header_is_refused_whole() {
        let err = read_groups("name,members\r\nx,y\r\n".as_bytes(), "groups.csv").unwrap_err();
        assert!(err.to_string().contains("line 1: the header must be exactly"), "{err}");
    }
}
