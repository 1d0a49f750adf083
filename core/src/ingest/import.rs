//! Verifying and importing a bundle on the offline server, in the fixed order the invariants
//! require: container → signature → manifest, entries and digests → rollback check → store →
//! one registry transaction.
//!
//! Nothing is stored or registered before every check has passed. Payloads are copied into
//! temporary files inside the store and hashed on the way, so what is verified is the copy,
//! not the media (which may change after the check). A refused bundle leaves only an entry
//! in the audit log.

use std::io;
use std::path::Path;

use serde::Serialize;
use tempfile::TempPath;

use crate::bundle::copy::BlockSink;

use std::collections::BTreeMap;

use crate::base::clock::Timestamp;
use crate::base::error::{Error, ErrorClass, IoContext, Result};
use crate::base::names::{KeyId, Sha256};
use crate::base::progress::{Meter, Task, Watch};
use crate::bundle::HashingWriter;
use crate::bundle::reader::{Bundle, SignedBundle};
use crate::formats::freshness::TimeJudgement;
use crate::formats::manifest::{BundleKind, Manifest, Payload};
use crate::formats::trust::Allowed;
use crate::server::datadir::DataDir;
use crate::server::registry::{AcceptedBundle, ChannelState, ImportChanges, ImportRecord};
use crate::server::report::{ChangeKind, ChangeReport, ReportBuilder, ReportKind};
use crate::server::store::Store;

/// What verification established about one bundle volume.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub path: String,
    pub bundle_id: String,
    pub channel: String,
    pub sequence: u64,
    pub kind: BundleKind,
    pub created: Timestamp,
    pub volume: u32,
    pub volumes: u32,
    pub layout: Sha256,
    pub manifest_sha256: Sha256,
    pub signers: Vec<String>,
    /// The trust version a key rotation statement carried by this bundle creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation: Option<u32>,
    pub updates: usize,
    pub payloads_verified: usize,
    pub bytes_verified: u64,
    /// Each payload of this volume: digest and size as checked on the copy.
    pub payloads: Vec<PayloadCheck>,
    /// How the bundle's freshness was judged.
    pub time: TimeJudgement,
    /// Updates fetch selected but left out, their files not had (`fetch pack --skip-failed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<crate::formats::manifest::LeftOut>,
}

/// One payload as verified.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadCheck {
    pub entry: String,
    pub sha256: Sha256,
    pub size: u64,
    pub volume: u32,
    /// For a chunk: the file it is part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_of: Option<Sha256>,
    /// `copied` into the store's temporary area, or `held` already (checked, not copied).
    pub action: &'static str,
}

/// How an import or verification may deviate from the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Accept a bundle past its expiry (logged in the audit log and the receipt).
    pub allow_expired: bool,
    /// What else the administrator allowed: legacy signatures, the demo key by rotation.
    pub allowed: Allowed,
}

/// Time spent in each step of one import, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// Container, signatures, and copying every payload while hashing it.
    pub verify_ms: u64,
    /// Making the copies durable in the store.
    pub store_ms: u64,
    /// The registry transaction.
    pub register_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per bundle volume imported; never in a collection that size matters for"
)]
pub enum ImportOutcome {
    Accepted {
        verified: Verified,
        changes: ImportChanges,
        /// Volumes of this set that have not been imported yet: its updates whose files
        /// travel in them stay unavailable until they arrive.
        missing_volumes: Vec<u32>,
        timings: Timings,
        /// The audit log's head after this import: keep it to prove later that the log was
        /// not cut short (`ingest audit verify --head`).
        audit_head: Option<String>,
    },
    /// This volume of this bundle was accepted before; nothing changed.
    AlreadyImported { verified: Verified },
}

impl Verified {
    /// Where the volume belongs: "channel C sequence N volume V/T".
    pub fn position(&self) -> String {
        format!("channel {} sequence {} volume {}/{}", self.channel, self.sequence, self.volume, self.volumes)
    }
}

/// One import's result in a word (accepted, already-imported or refused) and a line of detail
/// (the volume's position, or the refusal), as change reports and `ingest watch` state it.
pub fn outcome_summary(result: &Result<ImportOutcome>) -> (&'static str, String) {
    match result {
        Ok(ImportOutcome::Accepted { verified, .. }) => ("accepted", verified.position()),
        Ok(ImportOutcome::AlreadyImported { verified }) => ("already-imported", verified.position()),
        Err(e) => ("refused", e.to_string()),
    }
}

/// What `ingest import --receipt` writes: every check made on every bundle of one run, for
/// the officer's files.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub format: u32,
    pub generator: String,
    pub data_dir: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub bundles: Vec<ReceiptEntry>,
    /// The audit log's head when the run ended (`ingest audit verify --head`).
    pub audit_head: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceiptEntry {
    pub path: String,
    #[serde(flatten)]
    pub result: ReceiptResult,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ReceiptResult {
    Done(Box<ImportOutcome>),
    Refused { outcome: &'static str, class: String, reason: String },
}

impl ReceiptResult {
    pub fn refused(e: &Error) -> ReceiptResult {
        ReceiptResult::Refused { outcome: "refused", class: e.class().as_str().to_string(), reason: e.to_string() }
    }
}

impl Receipt {
    pub fn new(data: &DataDir) -> Receipt {
        Receipt {
            format: 1,
            generator: concat!("ferry ingest ", env!("CARGO_PKG_VERSION")).to_string(),
            data_dir: data.root().display().to_string(),
            started: Timestamp::now(),
            finished: Timestamp::now(),
            bundles: Vec::new(),
            audit_head: None,
        }
    }

    /// Completes the receipt and writes it as `path`, whole or not at all.
    pub fn write(mut self, data: &DataDir, path: &Path) -> Result<()> {
        self.finished = Timestamp::now();
        self.audit_head = data.registry.audit_head()?;
        let mut bytes = serde_json::to_vec_pretty(&self).expect("a receipt serializes");
        bytes.push(b'\n');
        crate::base::output::write_bytes(path, Some(data.root()), &bytes)
    }
}

/// The rollback and replay rules: a bundle's identity is (channel, sequence, layout), and
/// the manifest digest tells two different bundles with the same layout apart.
pub fn judge_sequence(
    manifest: &Manifest,
    manifest_digest: &Sha256,
    state: &ChannelState,
    accepted: Option<&AcceptedBundle>,
    path: &Path,
) -> Result<()> {
    match accepted {
        Some(a) if a.manifest_digest == *manifest_digest => Ok(()),
        Some(a) => Err(Error::SequenceReused {
            path: path.to_path_buf(),
            channel: manifest.channel.to_string(),
            sequence: manifest.sequence,
            accepted_layout: Box::new(a.layout_digest),
            layout: Box::new(manifest.layout.digest()),
            next: state.highest_sequence.unwrap_or(manifest.sequence).max(manifest.sequence).saturating_add(1),
        }),
        None => match state.highest_sequence {
            Some(highest) if manifest.sequence <= highest => Err(Error::Rollback {
                path: path.to_path_buf(),
                channel: manifest.channel.to_string(),
                sequence: manifest.sequence,
                highest,
            }),
            _ => Ok(()),
        },
    }
}

/// Expiry, judged against the later of the system clock and the latest time seen in an
/// accepted bundle of the channel, since the offline server has no trusted clock.
fn judge_expiry(manifest: &Manifest, state: &ChannelState, path: &Path, opts: ImportOptions) -> Result<TimeJudgement> {
    let time = TimeJudgement::judge(manifest.expires, state.latest_time, Timestamp::now());
    if time.expiry_relaxed && !opts.allow_expired {
        return Err(Error::Expired {
            path: path.to_path_buf(),
            expires: manifest.expires.map(|e| e.to_string()).unwrap_or_default(),
            now: time.judged_against.to_string(),
        });
    }
    Ok(time)
}

/// A bundle that passed its signature and entry checks.
struct Checked {
    bundle: Bundle,
    volume: u32,
    signers: Vec<KeyId>,
    rotation: Option<crate::formats::rotation::Rotation>,
}

fn check_signatures_and_entries(data: &DataDir, path: &Path, opts: ImportOptions) -> Result<Checked> {
    let (bundle, sig) = SignedBundle::open(path)?.authenticate(&data.registry.trust_store()?, opts.allowed)?;
    bundle.check_entries(sig.volume)?;
    Ok(Checked { bundle, volume: sig.volume, signers: sig.signers, rotation: sig.rotation })
}

fn verified(c: &Checked, payloads: Vec<PayloadCheck>, time: TimeJudgement) -> Verified {
    let m = &c.bundle.manifest;
    let bytes: u64 = payloads.iter().map(|p| p.size).sum();
    Verified {
        path: c.bundle.path().display().to_string(),
        bundle_id: m.bundle_id.to_string(),
        channel: m.channel.to_string(),
        sequence: m.sequence,
        kind: m.kind,
        created: m.created,
        volume: c.volume,
        volumes: m.layout.volumes,
        layout: m.layout.digest(),
        manifest_sha256: c.bundle.manifest_digest,
        signers: c.signers.iter().map(|k| k.to_string()).collect(),
        rotation: c.rotation.as_ref().map(|r| r.statement.version),
        updates: m.updates.len(),
        payloads_verified: payloads.len(),
        bytes_verified: bytes,
        payloads,
        time,
        left_out: m.left_out.clone(),
    }
}

fn payload_check(p: &Payload, action: &'static str) -> PayloadCheck {
    PayloadCheck {
        entry: p.entry.clone(),
        sha256: p.sha256,
        size: p.size,
        volume: p.volume,
        chunk_of: p.chunk_of.as_ref().map(|c| c.file),
        action,
    }
}

/// Checks that every file a delta relies on is held here.
fn check_delta_base(data: &DataDir, manifest: &Manifest, path: &Path) -> Result<()> {
    if manifest.kind != BundleKind::Delta {
        return Ok(());
    }
    for digest in &manifest.relies_on {
        if !(data.registry.has_file(digest)? && data.store_holds(digest)) {
            return Err(Error::MissingBase { path: path.to_path_buf(), digest: *digest });
        }
    }
    Ok(())
}

fn rollback_checks(
    data: &DataDir,
    c: &Checked,
    opts: ImportOptions,
) -> Result<(Option<AcceptedBundle>, TimeJudgement)> {
    let m = &c.bundle.manifest;
    let path = c.bundle.path();
    let state = data.registry.channel_state(&m.channel)?;
    let accepted = data.registry.accepted_bundle(&m.channel, m.sequence)?;
    judge_sequence(m, &c.bundle.manifest_digest, &state, accepted.as_ref(), path)?;
    // A further volume of an accepted set was judged fresh when the set was admitted.
    let fresh = if accepted.is_none() { opts } else { ImportOptions { allow_expired: true, ..opts } };
    let mut time = judge_expiry(m, &state, path, fresh)?;
    time.expiry_relaxed &= accepted.is_none();
    check_delta_base(data, m, path)?;
    Ok((accepted, time))
}

/// Checks everything and changes nothing; tells `watch` how far the payloads' reading has come.
pub fn verify(data: &DataDir, path: &Path, opts: ImportOptions, watch: &dyn Watch) -> Result<Verified> {
    let c = check_signatures_and_entries(data, path, opts)?;
    let payloads: Vec<_> = c.bundle.manifest.payloads_in(c.volume).cloned().collect();
    let meter = payload_meter(watch, Task::Verify, path, &payloads);
    let checked = c.bundle.check_payloads(&payloads, &meter);
    meter.finish();
    checked?;
    let checks = payloads.iter().map(|p| payload_check(p, "verified")).collect();
    let (_, time) = rollback_checks(data, &c, opts)?;
    Ok(verified(&c, checks, time))
}

/// Counts the reading of `payloads` of the bundle at `path`.
fn payload_meter<'a>(watch: &'a dyn Watch, task: Task, path: &Path, payloads: &[Payload]) -> Meter<'a> {
    let bytes: u64 = payloads.iter().map(|p| p.size).sum();
    Meter::start(watch, task, path.display().to_string(), payloads.len() as u64, bytes)
}

/// Verifies, stores and registers one bundle volume; tells `watch` how far the payloads'
/// copy has come. Refusals are logged in the audit log.
pub fn import(data: &mut DataDir, path: &Path, opts: ImportOptions, watch: &dyn Watch) -> Result<ImportOutcome> {
    match import_checked(data, path, opts, watch) {
        Err(e) if is_refusal(&e) => {
            // The refusal is what the officer needs to see; a failure to log it is secondary.
            let _ = data.registry.log_refusal(path, &e.to_string());
            Err(e)
        }
        other => other,
    }
}

/// Refusals of the bundle itself, as opposed to local failures.
pub fn is_refusal(e: &Error) -> bool {
    matches!(e.class(), ErrorClass::Bundle | ErrorClass::Signature | ErrorClass::Integrity | ErrorClass::Rollback)
}

fn import_checked(data: &mut DataDir, path: &Path, opts: ImportOptions, watch: &dyn Watch) -> Result<ImportOutcome> {
    let Some(store) = data.store() else {
        return Err(Error::Internal("the data directory was opened read-only".into()));
    };
    let started = std::time::Instant::now();
    let c = check_signatures_and_entries(data, path, opts)?;

    // Digests: copy each payload into the store's temporary area, hashing on the way, on
    // every core. What the store holds already is hashed all the same (the media must be
    // sound), not copied.
    let payloads: Vec<Payload> = c.bundle.manifest.payloads_in(c.volume).cloned().collect();
    let meter = payload_meter(watch, Task::Import, path, &payloads);
    let copies = c.bundle.copy_payloads(&payloads, &meter, |p| {
        let already = match &p.chunk_of {
            None => store.contains(&p.sha256),
            Some(chunk) => store.contains(&chunk.file) || store.holds_chunk(&p.sha256),
        };
        if already { Ok(None) } else { store.incoming().map(Some) }
    });
    meter.finish();
    let copies = copies?;
    let mut incoming: Vec<(Sha256, TempPath)> = Vec::new();
    let mut incoming_chunks: Vec<(Sha256, TempPath)> = Vec::new();
    let mut held: std::collections::BTreeSet<Sha256> = std::collections::BTreeSet::new();
    let mut checks = Vec::with_capacity(payloads.len());
    for (p, copy) in payloads.iter().zip(copies) {
        match copy {
            None => {
                // A chunk of a file already whole in the store (joined by an import that did
                // not get to register it) still tells the registry that the file is present.
                let file = p.chunk_of.as_ref().map_or(p.sha256, |chunk| chunk.file);
                if store.contains(&file) {
                    held.insert(file);
                }
                checks.push(payload_check(p, "held"));
            }
            Some(temp) => {
                match p.chunk_of {
                    None => incoming.push((p.sha256, temp)),
                    Some(_) => incoming_chunks.push((p.sha256, temp)),
                }
                checks.push(payload_check(p, "copied"));
            }
        }
    }

    crate::failpoint!("ingest.copied");
    let (accepted, time) = rollback_checks(data, &c, opts)?;
    let verified = verified(&c, checks, time);
    let brings_files = !incoming.is_empty() || !incoming_chunks.is_empty();
    if accepted.as_ref().is_some_and(|a| a.volumes.contains(&c.volume)) && !brings_files {
        return Ok(ImportOutcome::AlreadyImported { verified });
    }
    // An accepted volume imported again that brings files the store lacks (lost, or moved to
    // quarantine by `ingest check --repair`) restores them: its signature and digests were
    // checked just now, like any other.

    // Store, then register in one transaction that re-checks the rollback rules.
    let verify_ms = started.elapsed().as_millis() as u64;
    let stored_at = std::time::Instant::now();
    let mut stored: Vec<Sha256> = held.into_iter().collect();
    // What this import puts in pending/ and chunks/ is taken back if it is refused before
    // the registry records it: a refusal leaves nothing behind.
    let mut undo = Undo { store: store.clone(), pending: Vec::new(), chunks: Vec::new() };
    for (digest, temp) in incoming {
        if !store.is_pending(&digest) && !store.contains(&digest) {
            undo.pending.push(digest);
        }
        store.commit(temp, &digest)?;
        stored.push(digest);
    }
    for (digest, temp) in incoming_chunks {
        if !store.holds_chunk(&digest) {
            undo.chunks.push(digest);
        }
        store.commit_chunk(temp, &digest)?;
    }
    let reassembled = reassemble(store, &c.bundle.manifest, &mut undo.pending)?;
    crate::failpoint!("ingest.before-register");
    stored.extend(reassembled.iter().map(|(file, _)| *file));
    let store_ms = stored_at.elapsed().as_millis() as u64;
    let registered_at = std::time::Instant::now();
    let manifest = c.bundle.manifest.clone();
    let digest = c.bundle.manifest_digest;
    let record = ImportRecord {
        time: &verified.time,
        rotation: c.rotation.as_ref(),
        manifest: &manifest,
        manifest_digest: digest,
        volume: c.volume,
        signers: &c.signers,
        stored: &stored,
        source: path,
    };
    let recorded = data
        .registry
        .record_import(&record, |state, accepted| judge_sequence(&manifest, &digest, state, accepted, path));
    let changes = match recorded {
        Ok(changes) => changes,
        Err(e) => {
            undo.run();
            return Err(e);
        }
    };
    undo.pending.clear();
    undo.chunks.clear();
    // Registered: now the files take their place in the store, and their chunks go.
    let store = data.store().expect("opened exclusively above");
    crate::failpoint!("ingest.before-publish");
    store.promote(&stored)?;
    crate::failpoint!("ingest.before-chunk-removal");
    let joined: Vec<Sha256> = reassembled.iter().flat_map(|(_, chunks)| chunks.iter().copied()).collect();
    for chunk in &joined {
        store.remove_chunk(chunk)?;
    }
    // A crash before this leaves rows whose file is whole: the next lock holder removes
    // those chunks and forgets them.
    data.registry.forget_chunks(&joined)?;
    let imported = data.registry.accepted_bundle(&manifest.channel, manifest.sequence)?.map(|a| a.volumes);
    let missing_volumes =
        (1..=manifest.layout.volumes).filter(|v| !imported.as_ref().is_some_and(|have| have.contains(v))).collect();
    let timings = Timings { verify_ms, store_ms, register_ms: registered_at.elapsed().as_millis() as u64 };
    let audit_head = data.registry.audit_head()?;
    Ok(ImportOutcome::Accepted { verified, changes, missing_volumes, timings, audit_head })
}

/// What an import has put in the store's waiting areas and takes back when it is refused:
/// pending files and chunks that were not there before it. Taken back when dropped unless
/// cleared (the registry recorded the import).
struct Undo {
    store: Store,
    pending: Vec<Sha256>,
    chunks: Vec<Sha256>,
}

impl Undo {
    fn run(&mut self) {
        // Best effort: what cannot be removed now is a stray the next start (pending) or
        // `ingest check` (chunks) finds.
        for digest in self.pending.drain(..) {
            let _ = self.store.discard_pending(&digest);
        }
        for digest in self.chunks.drain(..) {
            let _ = self.store.remove_chunk(&digest);
        }
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        self.run();
    }
}

/// Files of `manifest` that travel in chunks, are not yet whole in the store, and whose
/// chunks have all arrived: joined in order while hashed, checked against the file's
/// digest, and stored (each pending file is added to `committed`). Returns each file with
/// the chunks it was made of.
fn reassemble(store: &Store, manifest: &Manifest, committed: &mut Vec<Sha256>) -> Result<Vec<(Sha256, Vec<Sha256>)>> {
    let mut chunked: BTreeMap<Sha256, Vec<(u64, Sha256)>> = BTreeMap::new();
    for p in &manifest.layout.payloads {
        if let Some(chunk) = &p.chunk_of {
            chunked.entry(chunk.file).or_default().push((chunk.offset, p.sha256));
        }
    }
    let mut done = Vec::new();
    for (file, mut chunks) in chunked {
        if store.contains(&file) || !chunks.iter().all(|(_, c)| store.holds_chunk(c)) {
            continue;
        }
        chunks.sort_unstable();
        let expected = manifest.files.iter().find(|f| f.sha256 == file).map_or(0, |f| f.size);
        let mut hashing = HashingWriter::new(store.incoming()?);
        for (_, chunk) in &chunks {
            let path = store.chunk_path(chunk);
            let mut part = std::fs::File::open(&path).at(&path)?;
            io::copy(&mut part, &mut hashing).at(&path)?;
        }
        let written = hashing.written();
        let (actual, joined) = hashing.finish();
        let temp = joined.finish().at(store.root())?;
        let what = format!("file {file} joined from {} chunks", chunks.len());
        if written != expected {
            return Err(Error::SizeMismatch { what, expected, actual: written });
        }
        if actual != file {
            return Err(Error::DigestMismatch { what, expected: file, actual });
        }
        if !store.is_pending(&file) {
            committed.push(file);
        }
        store.commit(temp, &file)?;
        done.push((file, chunks.into_iter().map(|(_, c)| c).collect()));
    }
    Ok(done)
}

/// Records one bundle volume's import, accepted or not, in the run's change report.
fn record(report: &mut ReportBuilder, path: &Path, result: &Result<ImportOutcome>) {
    let (outcome, detail) = outcome_summary(result);
    report.source(&path.display().to_string(), outcome, detail);
    if let Ok(ImportOutcome::Accepted { verified: v, changes, missing_volumes, .. }) = result {
        report.import_changes(changes);
        for l in &v.left_out {
            report.change(
                l.id.as_str(),
                ChangeKind::LeftOut,
                format!("revision {} not carried: {}; a later bundle brings it", l.revision, l.reason),
            );
        }
        if v.volumes > 1 {
            report.waiting(&v.channel, v.sequence, missing_volumes.clone());
        }
    }
}

/// Imports each of `paths` in turn, telling `watch` how far each copy has come and handing
/// each outcome to `each`; a refused bundle does not stop the others. If any volume was
/// accepted, ends with a [`refresh`]. Stores one change report of the whole run, made by
/// `by`, when a volume was accepted or refused; a run that only met bundles imported before
/// stores none (it would say "nothing changed" each time), and each such bundle leaves an
/// entry in the audit log instead.
pub fn import_all<E: From<Error>>(
    data: &mut DataDir,
    paths: &[std::path::PathBuf],
    opts: ImportOptions,
    by: &str,
    watch: &dyn Watch,
    mut each: impl FnMut(&Path, Result<ImportOutcome>) -> std::result::Result<(), E>,
) -> std::result::Result<Imported, E> {
    let mut report = ReportBuilder::new(ReportKind::Import, by);
    let mut receipt = Receipt::new(data);
    let mut accepted = false;
    let mut refused = false;
    for path in paths {
        let result = import(data, path, opts, watch);
        accepted |= matches!(result, Ok(ImportOutcome::Accepted { .. }));
        refused |= result.is_err();
        if let Ok(ImportOutcome::AlreadyImported { verified }) = &result {
            data.registry.log_already_imported(path, &verified.position())?;
        }
        record(&mut report, path, &result);
        receipt.bundles.push(ReceiptEntry {
            path: path.display().to_string(),
            result: match &result {
                Ok(outcome) => ReceiptResult::Done(Box::new(outcome.clone())),
                Err(e) => ReceiptResult::refused(e),
            },
        });
        each(path, result)?;
    }
    let refresh = if accepted { Some(refresh(data)?) } else { None };
    if let Some(r) = &refresh {
        report.refresh(r);
    }
    let report = if accepted || refused { Some(report.store(&mut data.registry)?) } else { None };
    Ok(Imported { refresh, report, receipt })
}

/// What [`import_all`] did beyond each bundle: the refresh that followed, and the change
/// report it stored.
#[derive(Debug, Clone)]
pub struct Imported {
    pub refresh: Option<crate::server::registry::RefreshReport>,
    /// None when every bundle had been imported before: nothing to report.
    pub report: Option<ChangeReport>,
    /// Every check made, accepted or refused, for `--receipt` ([`Receipt::write`]).
    pub receipt: Receipt,
}

/// Re-marks supersedence and applies the approval rules as of today. Every import that
/// accepted something ends with one; `ingest refresh` runs one on its own (rules such as
/// "seven days after arrival" need one a day even when nothing arrives).
pub fn refresh(data: &mut DataDir) -> Result<crate::server::registry::RefreshReport> {
    let apply_rules = data.config.rules.apply;
    data.registry.refresh(Timestamp::now().date(), None, apply_rules, true)
}

/// `ingest refresh`: a refresh on its own, with its change report stored.
pub fn refresh_reported(
    data: &mut DataDir,
    by: &str,
) -> Result<(crate::server::registry::RefreshReport, ChangeReport)> {
    let refreshed = refresh(data)?;
    let mut report = ReportBuilder::new(ReportKind::Refresh, by);
    report.refresh(&refreshed);
    Ok((refreshed, report.store(&mut data.registry)?))
}

/// Expands directories into the zip files they hold (volumes can arrive as a folder from a
/// disc or stick) and orders everything by channel, sequence and volume, as the signatures'
/// trusted comments claim: older sets first, so that a newer one cannot make an older one
/// look like a rollback. The claim only orders; every file is verified when imported, and a
/// file that cannot be read sorts last, to be refused then with its reason.
pub fn order_for_import(inputs: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
                let entry = entry.map_err(|e| Error::io(input, e.into()))?;
                let is_zip = entry.path().extension().is_some_and(|x| x.eq_ignore_ascii_case("zip"));
                if entry.file_type().is_file() && is_zip {
                    files.push(entry.into_path());
                }
            }
        } else {
            files.push(input.clone());
        }
    }
    let mut keyed: Vec<(Option<Position>, std::path::PathBuf)> =
        files.into_iter().map(|f| (claimed_position(&f), f)).collect();
    keyed.sort_by(|(a, fa), (b, fb)| match (a, b) {
        (Some(a), Some(b)) => a.cmp(b).then(fa.cmp(fb)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => fa.cmp(fb),
    });
    Ok(keyed.into_iter().map(|(_, f)| f).collect())
}

/// (channel, sequence, volume) of a bundle.
type Position = (String, u64, u32);

/// Where a bundle's first signature claims it belongs, unverified.
fn claimed_position(path: &Path) -> Option<Position> {
    let bundle = SignedBundle::open(path).ok()?;
    let comment = bundle.claimed_trusted_comment()?;
    Some((comment.channel, comment.sequence, comment.volume))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::names::Channel;
    use crate::formats::manifest::Layout;

    fn manifest(sequence: u64, created: &str, expires: Option<&str>) -> Manifest {
        Manifest {
            format: 1,
            bundle_id: crate::base::random::bundle_id().unwrap(),
            channel: Channel::default_channel(),
            sequence,
            created: created.parse().unwrap(),
            expires: expires.map(|e| e.parse().unwrap()),
            kind: BundleKind::Full,
            relies_on: vec![],
            generator: String::new(),
            updates: vec![],
            files: vec![],
            layout: Layout { volumes: 1, payloads: vec![] },
            scan_catalog: None,
            left_out: Vec::new(),
        }
    }

    fn state(highest: Option<u64>, latest: Option<&str>) -> ChannelState {
        ChannelState { highest_sequence: highest, latest_time: latest.map(|t| t.parse().unwrap()) }
    }

    #[test]
    fn sequence_rules() {
        let path = Path::new("b.zip");
        let m = manifest(5, "2024-01-01T00:00:00Z", None);
        let digest = Sha256([1; 32]);
        let same = AcceptedBundle { layout_digest: m.layout.digest(), manifest_digest: digest, volumes: vec![1] };
        let other = AcceptedBundle { manifest_digest: Sha256([2; 32]), ..same.clone() };
        for (st, accepted, ok) in [
            (state(None, None), None, true),
            (state(Some(4), None), None, true),
            (state(Some(5), None), Some(&same), true),
            (state(Some(9), None), Some(&same), true),
            (state(Some(5), None), Some(&other), false),
            (state(Some(9), None), None, false),
        ] {
            let result = judge_sequence(&m, &digest, &st, accepted, path);
            assert_eq!(result.is_ok(), ok, "highest {:?}, accepted {}", st.highest_sequence, accepted.is_some());
        }
    }

    #[test]
    fn expiry_uses_the_later_of_clock_and_latest_time_seen() {
        let path = Path::new("b.zip");
        let strict = ImportOptions::default();
        let far = manifest(1, "2024-01-01T00:00:00Z", Some("2999-01-01T00:00:00Z"));
        let time = judge_expiry(&far, &state(None, None), path, strict).unwrap();
        assert!(!time.clock_behind && !time.expiry_relaxed);
        // A bundle dated in the future was accepted: later bundles are judged against it.
        let future = state(None, Some("2999-06-01T00:00:00Z"));
        let err = judge_expiry(&far, &future, path, strict).unwrap_err();
        assert!(matches!(err, Error::Expired { .. }), "{err}");
        let relaxed = judge_expiry(&far, &future, path, ImportOptions { allow_expired: true, ..strict }).unwrap();
        assert!(relaxed.clock_behind && relaxed.expiry_relaxed);
        assert_eq!(relaxed.judged_against.to_string(), "2999-06-01T00:00:00Z");
        let past = manifest(1, "2024-01-01T00:00:00Z", Some("2024-02-01T00:00:00Z"));
        assert!(matches!(judge_expiry(&past, &state(None, None), path, strict), Err(Error::Expired { .. })));
        judge_expiry(&manifest(1, "2024-01-01T00:00:00Z", None), &state(None, None), path, strict).unwrap();
    }
}
