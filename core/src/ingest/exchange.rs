//! CSV exchange between management servers: exporting the update list and update groups
//! (signed by the server key), and merging another server's files into the registry, as
//! their signature allows. The files' format is `list_csv`'s.
//!
//! An import with a bad row changes nothing (unless told to skip bad rows) and names each
//! bad row by line.

use std::io::{Read, Write};

use serde::Serialize;

use crate::base::clock::Timestamp;
use crate::base::error::IoContext;
use crate::base::error::{Error, Result};
use crate::base::progress::{Counted, Meter, Task, Watch};
use crate::formats::list_csv::{
    BadRow, CLOCK_SKEW, Exchanged, LIST_SIGNATURE_FORMAT, ListRow, ListWriter, read_groups, read_list, refusal,
    signature_path, write_groups,
};
use crate::server::datadir::DataDir;
use crate::server::registry::{GroupMerge, ListMerge, RefreshReport};
use crate::server::report::{ChangeKind, ReportBuilder, ReportKind};

/// What the reading thread of an import hands the merge.
#[allow(clippy::large_enum_variant, reason = "nearly every value is a row: a box would cost each row an allocation")]
enum Reading {
    Row(ListRow),
    Bad(BadRow),
    /// The file could not be read to its end.
    Failed(Error),
    /// The file was read to its end; the BLAKE2b-512 of every byte read.
    End(crate::formats::minisign::Prehash),
}

/// The rows of an update list being read on another thread, as the merge takes them: good
/// rows while the file has no bad one (or all good rows, with `--skip-invalid`); at the end,
/// the refusal naming every bad row. An error ends the merge, and its transaction with it.
struct CheckedRows<'a> {
    receive: std::sync::mpsc::Receiver<Vec<Reading>>,
    batch: std::vec::IntoIter<Reading>,
    what: &'a str,
    /// Checked at the end, against the bytes read, before the merge may commit.
    trust: &'a ListTrust,
    skip_invalid: bool,
    good: usize,
    bad: Vec<BadRow>,
    done: bool,
}

impl Iterator for CheckedRows<'_> {
    type Item = Result<ListRow>;

    fn next(&mut self) -> Option<Result<ListRow>> {
        while !self.done {
            let Some(reading) = self.batch.next() else {
                match self.receive.recv() {
                    Ok(batch) => self.batch = batch.into_iter(),
                    // Only a reader that stopped without saying why (a panic) gets here; the
                    // rows so far must not be taken for the whole file.
                    Err(_) => {
                        self.done = true;
                        return Some(Err(Error::Invalid(format!(
                            "{}: the reading stopped before the end of the file",
                            self.what
                        ))));
                    }
                }
                continue;
            };
            let ended = match reading {
                // After a bad row the file is refused whole: the rest is only read to name
                // every bad row.
                Reading::Row(row) if self.skip_invalid || self.bad.is_empty() => {
                    self.good += 1;
                    return Some(Ok(row));
                }
                Reading::Row(_) => continue,
                Reading::Bad(bad) => {
                    self.bad.push(bad);
                    continue;
                }
                Reading::Failed(error) => Err(error),
                // A signature that does not match what was read ends the merge without a
                // change, whatever the rows said.
                Reading::End(prehash) => match self.trust.check(self.what, &prehash) {
                    Err(e) => Err(e),
                    Ok(()) if self.bad.is_empty() || self.skip_invalid => Ok(()),
                    Ok(()) => Err(refusal(self.what, &self.bad)),
                },
            };
            self.done = true;
            return ended.err().map(Err);
        }
        None
    }
}

/// Writes the whole update list as CSV to `out`; returns how many rows. The binary chooses
/// `out`: standard output, or a file through [`crate::base::output::write_file`] (whole or not at
/// all, never inside the data directory).
pub fn export_list(data: &DataDir, out: &mut dyn Write) -> Result<usize> {
    let mut rows = 0;
    let mut writer = ListWriter::new(out)?;
    data.registry.export_list(|row| {
        rows += 1;
        writer.write(row)
    })?;
    writer.finish()?;
    Ok(rows)
}

/// Writes every update group and its members as CSV to `out`; returns how many groups.
pub fn export_groups(data: &DataDir, out: &mut dyn Write) -> Result<usize> {
    let groups = data.registry.export_groups()?;
    write_groups(out, &groups)?;
    Ok(groups.len())
}

/// What `import-list` did.
#[derive(Debug, Clone, Serialize)]
pub struct ListImport {
    pub rows: usize,
    /// Rows left out because of `--skip-invalid`.
    pub skipped: Vec<BadRow>,
    #[serde(flatten)]
    pub merge: ListMerge,
    pub refresh: RefreshReport,
    /// The number of the change report stored (`ingest report ID`); none for a dry run.
    pub report: Option<u64>,
    /// True when nothing was kept: what the import would do, rolled back.
    pub dry_run: bool,
}

impl ListImport {
    /// Records the rows taken, the updates changed and the refresh in a report.
    fn record(&self, what: &str, report: &mut ReportBuilder) {
        let skipped = if self.skipped.is_empty() { String::new() } else { format!(", {} skipped", self.skipped.len()) };
        report.source(what, "imported", format!("{} rows{skipped}", self.rows));
        report.import_changes(&self.merge.updates);
        for id in &self.merge.statuses_taken {
            report.change(id, ChangeKind::StatusTaken, "set by a person on the other server".into());
        }
        report.refresh(&self.refresh);
    }
}

/// What `import-groups` did.
#[derive(Debug, Clone, Serialize)]
pub struct GroupsImport {
    pub rows: usize,
    pub skipped: Vec<BadRow>,
    #[serde(flatten)]
    pub merge: GroupMerge,
    /// True when nothing was kept: what the import would do, rolled back.
    pub dry_run: bool,
}

/// The detached signature of an exported file whose BLAKE2b-512 is `prehash`, by the
/// server key: a peer that trusts this key (`ingest trust add-peer`) takes the file's
/// statuses, groups and metadata; `minisign -V` checks it too.
fn sign_export(
    key: &crate::formats::minisign::SecretKey,
    kind: Exchanged,
    prehash: &crate::formats::minisign::Prehash,
) -> Result<crate::formats::minisign::SignatureFile> {
    let comment =
        format!("{LIST_SIGNATURE_FORMAT} kind={} server={} created={}", kind.as_str(), key.key_id, Timestamp::now());
    key.sign_prehashed(prehash, &comment, &format!("ferry {} signed by server key {}", kind.as_str(), key.key_id))
        .map_err(Error::Internal)
}

/// Where an export goes: the process's standard output (the binary's writer), or a file.
pub enum ExportTarget<'a> {
    Stdout(&'a mut dyn Write),
    File(&'a std::path::Path),
}

impl ExportTarget<'_> {
    /// Where its signature goes unless one is named: beside a file; a device or pipe (such
    /// as /dev/stdout) or standard output has no "beside it".
    pub fn default_signature(&self) -> Result<std::path::PathBuf> {
        match self {
            ExportTarget::File(path) if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) => {
                Err(Error::Invalid(format!(
                    "--out {} is not a file that a signature can sit beside: give --signature FILE",
                    path.display()
                )))
            }
            ExportTarget::File(path) => Ok(signature_path(path)),
            ExportTarget::Stdout(_) => {
                Err(Error::Invalid("--out - writes to standard output: give --signature FILE for its signature".into()))
            }
        }
    }
}

/// Writes an export of `kind` (what `write` produces) to `target`, hashing it as it is
/// written, then its signature by the server key to `signature`; returns `write`'s count.
/// Neither goes inside the data directory, which is checked before the server key is made
/// on first use, so a refusal leaves nothing behind.
pub fn export_signed(
    data: &DataDir,
    kind: Exchanged,
    target: ExportTarget<'_>,
    signature: &std::path::Path,
    write: fn(&DataDir, &mut dyn Write) -> Result<usize>,
) -> Result<usize> {
    crate::base::output::refuse_inside(signature, data.root())?;
    if let ExportTarget::File(path) = &target {
        crate::base::output::refuse_inside(path, data.root())?;
    }
    let key = data.server_key()?;
    let mut count = 0;
    let prehash = match target {
        ExportTarget::Stdout(out) => {
            let mut hashing = crate::formats::minisign::Prehasher::new(out);
            count = write(data, &mut hashing)?;
            hashing.finish().1
        }
        ExportTarget::File(path) => {
            let mut prehash = None;
            crate::base::output::write_file(path, Some(data.root()), |sink| {
                let mut hashing = crate::formats::minisign::Prehasher::new(sink);
                count = write(data, &mut hashing)?;
                prehash = Some(hashing.finish().1);
                Ok(())
            })?;
            prehash.expect("write_file ran the writer")
        }
    };
    let signed = sign_export(&key, kind, &prehash)?;
    crate::base::output::write_bytes(signature, Some(data.root()), signed.to_file_string().as_bytes())?;
    Ok(count)
}

/// How an import takes a file's contents, as its signature allows.
#[derive(Debug, Clone)]
pub enum ListTrust {
    /// Signed by a trusted peer key: statuses, groups and metadata; the signature is checked
    /// against the bytes as they are read, before anything is committed.
    Peer { key: crate::formats::minisign::PublicKey, signature: Box<crate::formats::minisign::SignatureFile> },
    /// Unsigned or not by a trusted peer, taken only because the administrator said so:
    /// statuses and groups of updates this server holds, never metadata.
    Unsigned { why: String },
}

impl ListTrust {
    /// Judges the signature at `signature` (None: there is none) for an import of `kind`
    /// from `what`: by a trusted peer key, or refused unless `allow_unsigned`.
    pub fn judge(
        data: &DataDir,
        kind: Exchanged,
        what: &str,
        signature: Option<&std::path::Path>,
        allow_unsigned: bool,
    ) -> Result<ListTrust> {
        let refuse = |reason: String| Error::ListSignature { what: what.to_string(), reason };
        let unsigned = |why: String| {
            if allow_unsigned {
                Ok(ListTrust::Unsigned { why })
            } else {
                Err(refuse(format!(
                    "{why}; a list is taken from a server whose key is trusted with `ingest trust add-peer` \
                     (--allow-unsigned takes its statuses and groups only, never metadata)"
                )))
            }
        };
        let Some(path) = signature else { return unsigned("no signature".into()) };
        let text = match crate::base::shared_tree::open_regular(path, crate::base::shared_tree::Links::Follow) {
            Ok(opened) => {
                let mut text = String::new();
                opened.file.take(16 << 10).read_to_string(&mut text).at(path)?;
                text
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return unsigned(format!("no signature {}", path.display()));
            }
            Err(e) => return Err(e),
        };
        let signature = crate::formats::minisign::SignatureFile::parse(&text)
            .map_err(|e| refuse(format!("signature {}: {e}", path.display())))?;
        let expected = format!("{LIST_SIGNATURE_FORMAT} kind={} ", kind.as_str());
        if !signature.trusted_comment.starts_with(&expected) {
            return Err(refuse(format!(
                "signature {}: its trusted comment {:?} is not that of a ferry {} export",
                path.display(),
                signature.trusted_comment,
                kind.as_str()
            )));
        }
        match data.registry.peer_key(&signature.key_id)? {
            Some(key) => Ok(ListTrust::Peer { key, signature: Box::new(signature) }),
            None => unsigned(format!("signed by key {}, which is not a trusted peer key", signature.key_id)),
        }
    }

    /// Checks the signature against the BLAKE2b-512 of the bytes read.
    fn check(&self, what: &str, prehash: &crate::formats::minisign::Prehash) -> Result<()> {
        let ListTrust::Peer { key, signature } = self else { return Ok(()) };
        key.verify_prehashed(prehash, signature).map_err(|failure| Error::ListSignature {
            what: what.to_string(),
            reason: match failure {
                crate::formats::minisign::VerifyFailure::TrustedComment => {
                    "the trusted comment was altered after signing"
                }
                crate::formats::minisign::VerifyFailure::Legacy => {
                    "signed in minisign's legacy form; exports are prehashed"
                }
                _ => "the file was altered after signing",
            }
            .to_string(),
        })
    }

    pub fn takes_metadata(&self) -> bool {
        matches!(self, ListTrust::Peer { .. })
    }
}

/// Where a CSV import reads from: a file, or standard input (`-` on the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvInput {
    File(std::path::PathBuf),
    Stdin,
}

impl CsvInput {
    /// `-` is standard input; anything else a file.
    pub fn from_arg(arg: &std::path::Path) -> CsvInput {
        if arg.as_os_str() == "-" { CsvInput::Stdin } else { CsvInput::File(arg.to_path_buf()) }
    }

    /// How messages and reports name it.
    pub fn what(&self) -> String {
        match self {
            CsvInput::File(path) => path.display().to_string(),
            CsvInput::Stdin => "standard input".to_string(),
        }
    }

    /// The input, hashed as it is read (the signature is checked against what was read,
    /// not against the file as it may be later).
    fn open(&self) -> Result<std::io::BufReader<crate::formats::minisign::Prehasher<Box<dyn Read + Send>>>> {
        let reader: Box<dyn Read + Send> = match self {
            CsvInput::File(path) => Box::new(std::fs::File::open(path).at(path)?),
            CsvInput::Stdin => Box::new(std::io::stdin()),
        };
        Ok(std::io::BufReader::with_capacity(1 << 16, crate::formats::minisign::Prehasher::new(reader)))
    }
}

/// The reading thread of an import hands the merge its rows in batches of this many (one
/// row at a time, the two threads woke each other for every row, and the switches cost more
/// than the reading saved), and holds at most [`BATCHES_AHEAD`] batches ahead of it.
const BATCH: usize = 256;
const BATCHES_AHEAD: usize = 4;

/// Merges the update list in the CSV at `path` and refreshes, in one transaction, telling
/// `watch` how many rows and bytes have been read. Bad rows refuse the whole file unless
/// `skip_invalid`: the merge then ends without a change. With `dry_run`, the merge and
/// refresh run whole and are rolled back: what would change, and no report stored.
///
/// The file is read and checked on a thread of its own while the registry merges the rows
/// before (reading and checking a large list is a fifth of its import, and the merge needs
/// no more than one core: tests/bench/update-list-scale.sh); only a few batches of rows wait
/// in memory, not the whole list.
pub fn import_list(
    data: &mut DataDir,
    input: &CsvInput,
    trust: &ListTrust,
    skip_invalid: bool,
    by: &str,
    watch: &dyn Watch,
    dry_run: bool,
) -> Result<ListImport> {
    let what = input.what();
    let size = match input {
        CsvInput::File(path) => std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| m.len()),
        CsvInput::Stdin => None,
    };
    let input = input.open()?;
    let meter = Meter::start(watch, Task::ImportList, what.clone(), None, size);
    // "Now" as for bundles: the later of the clock and the latest time accepted.
    let now = data.registry.latest_time_seen()?.map_or(Timestamp::now(), |latest| latest.max(Timestamp::now()));
    let not_after = now.plus(CLOCK_SKEW);
    let registry = &mut data.registry;
    let (day, apply_rules) = (Timestamp::now().date(), data.config.rules.apply);
    let takes_metadata = trust.takes_metadata();
    let merged = std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel(BATCHES_AHEAD);
        let reading = what.as_str();
        let meter = &meter;
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut input = input;
            let read = read_list(Counted { inner: &mut input, meter }, reading, not_after, takes_metadata, |row| {
                meter.item();
                batch.push(row.map_or_else(Reading::Bad, Reading::Row));
                batch.len() < BATCH || send.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_ok()
            });
            let (_, prehash) = input.into_inner().finish();
            batch.push(read.map_or_else(Reading::Failed, |()| Reading::End(prehash)));
            // The merge may have stopped listening already: then nobody needs the end.
            let _ = send.send(batch);
        });
        let mut rows = CheckedRows {
            receive,
            batch: Vec::new().into_iter(),
            what: &what,
            trust,
            skip_invalid,
            good: 0,
            bad: Vec::new(),
            done: false,
        };
        let merge = registry.import_list(&mut rows, &what, trust.takes_metadata(), day, apply_rules, dry_run);
        let CheckedRows { receive, good, bad, .. } = rows;
        // A merge that failed early leaves the reader waiting to send: it stops once nobody
        // receives.
        drop(receive);
        reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        merge.map(|(merge, refresh)| (merge, refresh, good, bad))
    });
    meter.finish();
    let (merge, refresh, rows, bad) = merged?;
    let mut done = ListImport { rows, skipped: bad, merge, refresh, report: None, dry_run };
    if !dry_run {
        let mut report = ReportBuilder::new(ReportKind::ImportList, by);
        done.record(&what, &mut report);
        done.report = Some(report.store(&mut data.registry)?.id);
    }
    Ok(done)
}

/// Reads update groups from the CSV `input` and merges them in one transaction, once the
/// signature (if `trust` asks for one) matched the bytes read. Groups carry no metadata, so
/// an unsigned file the administrator allowed is taken whole. With `dry_run`, the merge is
/// rolled back once counted.
pub fn import_groups(
    data: &mut DataDir,
    input: &CsvInput,
    trust: &ListTrust,
    skip_invalid: bool,
    dry_run: bool,
) -> Result<GroupsImport> {
    let what = input.what();
    let mut reader = input.open()?;
    let (rows, bad) = read_groups(&mut reader, &what)?;
    let (_, prehash) = reader.into_inner().finish();
    trust.check(&what, &prehash)?;
    if !bad.is_empty() && !skip_invalid {
        return Err(refusal(&what, &bad));
    }
    let merge = data.registry.import_groups(&rows, &what, dry_run)?;
    Ok(GroupsImport { rows: rows.len(), skipped: bad, merge, dry_run })
}
