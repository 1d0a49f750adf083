//! `fetch plan` and `fetch pack`: catalog → selection (→ delta against the offline state) →
//! download → signed bundle.
//!
//! [`plan`] decides what a bundle carries without downloading anything: which updates'
//! metadata, which files as payloads, and, for a delta, which files the offline side already
//! holds. [`pack`] carries the plan out: files stream into fetch's cache with their size and
//! SHA-256 checked, each is copied into the bundle as soon as it is complete, and the manifest
//! is written and signed last. The bundle appears under its final name only when complete.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::base::clock::Timestamp;
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{Channel, Sha256, UpdateId};
use crate::bundle::writer::BundleWriter;
use crate::fetch::cache::Cache;
use crate::fetch::download::{self, DownloadOptions, Job, Progress};
use crate::fetch::feed::{Feed, Skip};
use crate::fetch::source::{Location, Sources};
use crate::fetch::volumes::{self, ENTRY_OVERHEAD, Piece};
use crate::fetch::workdir::WorkDir;
use crate::formats::catalog::{Catalog, Selection};
use crate::formats::manifest::{
    BUNDLE_FORMAT, BundleKind, ChunkOf, DescribedFile, Layout, LeftOut, MAX_LEFT_OUT_REASON, Manifest, Payload,
    chunk_entry_name, file_entry_name,
};
use crate::formats::minisign::SecretKey;
use crate::formats::model::Update;
use crate::formats::rotation::{ROTATION_ENTRY, SignedStatement, signature_entry};
use crate::formats::state::{ComputerNeed, ServerState};

/// How to plan a bundle from the updates a feed offers.
pub struct PlanOptions<'a> {
    pub selection: &'a Selection,
    pub channel: &'a Channel,
    /// The offline server's verified state: plan a delta against it.
    pub state: Option<&'a ServerState>,
    /// Carry the metadata only, no files (for review before a large download).
    pub metadata_only: bool,
    /// A selection that matches nothing is not an error (the bundle carries something else:
    /// a scan catalog).
    pub allow_empty: bool,
    /// Of the selection, only what the state file says computers need.
    pub needed_only: bool,
}

pub struct PackOptions<'a> {
    pub feed: Feed<'a>,
    pub plan: PlanOptions<'a>,
    pub keys: &'a [SecretKey],
    pub out_dir: PathBuf,
    pub min_sequence: Option<u64>,
    /// How long the bundle stays valid after its creation; ingest refuses it afterwards.
    pub valid_for: Option<std::time::Duration>,
    /// The most bytes one volume may have (the medium's capacity, and no more than the
    /// largest file the target file system holds); `None` writes a single zip.
    pub volume_capacity: Option<u64>,
    pub download: DownloadOptions,
    /// A signed key rotation statement to carry in every volume.
    pub rotation: Option<&'a SignedStatement>,
    /// Leave out the updates whose files could not be had (a download that failed after its
    /// retries, bytes that are not the ones named) instead of failing the pack; the manifest
    /// names them and why.
    pub skip_failed: bool,
}

/// Why an update is in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// No state was given: a full bundle carries everything selected.
    Selected,
    /// The offline side does not know the update.
    New,
    /// The offline side holds an older revision.
    Revised,
    /// The offline side knows the update but lacks some of its files.
    Needed,
}

/// One update in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedUpdate {
    pub id: UpdateId,
    pub revision: u32,
    pub reason: Reason,
    /// How many computers on the offline side need it, by the state file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed_by_computers: Option<u64>,
    /// Bytes of this update's files that the bundle carries.
    pub carried_bytes: u64,
}

/// What a bundle would carry.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: BundleKind,
    pub updates: Vec<Update>,
    pub entries: Vec<PlannedUpdate>,
    /// Every file the carried updates describe, with its size.
    pub described: BTreeMap<Sha256, u64>,
    /// The files to carry, each once.
    pub jobs: Vec<Job>,
    /// For a delta: described files the offline side holds already.
    pub relies_on: Vec<Sha256>,
    /// Selected updates left out because the offline side is up to date with them.
    pub up_to_date: usize,
    /// The lowest sequence the bundle may use (above the offline side's highest).
    pub min_sequence: Option<u64>,
    /// What the state file says computers need that this catalog does not offer.
    pub needs_not_offered: Vec<ComputerNeed>,
}

impl Plan {
    pub fn payload_bytes(&self) -> u64 {
        self.jobs.iter().map(|j| j.size).sum()
    }

    /// Takes the updates `ids` out of the plan, with every file no other carried update
    /// needs.
    fn without(&mut self, ids: &BTreeSet<UpdateId>) {
        self.updates.retain(|u| !ids.contains(&u.id));
        self.entries.retain(|e| !ids.contains(&e.id));
        let kept: BTreeSet<Sha256> = self.updates.iter().flat_map(|u| u.files.iter().map(|f| f.sha256)).collect();
        self.described.retain(|digest, _| kept.contains(digest));
        self.jobs.retain(|job| job.sha256().is_some_and(|d| kept.contains(&d)));
        self.relies_on.retain(|digest| kept.contains(digest));
    }
}

/// Fetches every file of the plan, and takes out the updates with a file whose source
/// failed; returns them, each with the first failure among its files. Fails as the pack
/// would when no update is left, or on a failure of this machine.
fn leave_out_failed(
    plan: &mut Plan,
    sources: &Sources,
    cache: &Cache,
    download: &DownloadOptions,
    progress: &(dyn Fn(PackEvent<'_>) + Sync),
) -> Result<Vec<LeftOut>> {
    let failed = download::fetch_all(&plan.jobs, sources, cache, download, &|p| progress(PackEvent::Download(p)))?;
    if failed.is_empty() {
        return Ok(Vec::new());
    }
    let mut why: BTreeMap<Sha256, &Error> = BTreeMap::new();
    for (i, e) in &failed {
        if let Some(digest) = plan.jobs[*i].sha256() {
            why.entry(digest).or_insert(e);
        }
    }
    let left_out: Vec<LeftOut> = plan
        .updates
        .iter()
        .filter_map(|u| {
            let e = u.files.iter().find_map(|f| why.get(&f.sha256))?;
            Some(LeftOut { id: u.id.clone(), revision: u.revision, reason: one_line(&e.to_string()) })
        })
        .collect();
    if left_out.len() == plan.updates.len() {
        // Nothing would be carried: the pack fails as it would without --skip-failed.
        let (_, first) = failed.into_iter().next().expect("a failure");
        return Err(first);
    }
    let ids: BTreeSet<UpdateId> = left_out.iter().map(|l| l.id.clone()).collect();
    plan.without(&ids);
    for l in &left_out {
        progress(PackEvent::LeftOut(l));
    }
    Ok(left_out)
}

/// A message on one line, cut to what a manifest keeps.
fn one_line(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() <= MAX_LEFT_OUT_REASON {
        return line;
    }
    let mut end = MAX_LEFT_OUT_REASON - 3;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
}

/// What `pack` reports as it goes, for the binary to show.
#[derive(Debug, Clone)]
pub enum PackEvent<'a> {
    /// The feed had this but does not offer it.
    Skipped(&'a Skip),
    Selected {
        updates: usize,
        files: usize,
        bytes: u64,
    },
    ClockBehind {
        kept: Timestamp,
    },
    /// The target file system holds no file larger than `limit`; volumes are kept under it.
    FileSystemLimit {
        file_system: &'static str,
        limit: u64,
    },
    Download(Progress<'a>),
    /// A file was written into the bundle; `done` of `total` are in.
    Packed {
        done: usize,
        total: usize,
        job: &'a Job,
    },
    /// An update left out because one of its files could not be had (`skip_failed`).
    LeftOut(&'a LeftOut),
    /// Volume `volume` of `volumes` gets its manifest and signatures and is synced to disk.
    Sealing {
        volume: u32,
        volumes: u32,
    },
}

/// One volume file written.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeFile {
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackResult {
    /// The first (or only) volume.
    pub path: PathBuf,
    pub volumes: Vec<VolumeFile>,
    pub bundle_id: String,
    pub channel: String,
    pub sequence: u64,
    pub kind: BundleKind,
    pub created: Timestamp,
    pub updates: usize,
    pub payloads: usize,
    pub payload_bytes: u64,
    pub relies_on: usize,
    /// Carried updates the state file says computers on the offline side need.
    pub needed_by_computers: usize,
    pub layout: Sha256,
    pub signers: Vec<String>,
    /// Selected updates the bundle does not carry because a file could not be had.
    pub left_out: Vec<LeftOut>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PackOutcome {
    Written(Box<PackResult>),
    /// The offline side already holds everything selected; no bundle was written and no
    /// sequence number was used.
    NothingNew {
        up_to_date: usize,
    },
}

/// The file name of volume `volume` of `volumes`: people read it, ingest never does.
pub fn bundle_file_name(channel: &Channel, sequence: u64, volume: u32, volumes: u32) -> String {
    if volumes == 1 {
        format!("ferry-{channel}-{sequence:06}.zip")
    } else {
        format!("ferry-{channel}-{sequence:06}-vol{volume}of{volumes}.zip")
    }
}

/// Bytes every volume keeps for its manifest, signatures and the zip's own records, so that
/// the rest can hold payloads: the manifest as it would be with `pieces` payloads (each at
/// most 400 bytes of JSON), one signature entry per key, and 64 KiB to spare.
fn volume_reserve(manifest_without_payloads: u64, pieces: usize, keys: usize) -> u64 {
    manifest_without_payloads + 400 * pieces as u64 + 1024 * keys as u64 + 2 * ENTRY_OVERHEAD + 64 * 1024
}

/// Spreads the plan's files over volumes of `capacity` bytes.
fn layout_pieces(plan: &Plan, capacity: Option<u64>, manifest_len: u64, keys: usize) -> Result<Vec<Piece>> {
    // A plan's jobs are the files its updates describe, each by its SHA-256.
    let files: Vec<(Sha256, u64)> = plan.jobs.iter().filter_map(|j| Some((j.sha256()?, j.size))).collect();
    let Some(capacity) = capacity else {
        return Ok(files
            .iter()
            .map(|(file, size)| Piece { file: *file, offset: 0, size: *size, whole: true, volume: 1 })
            .collect());
    };
    let budget = |pieces: usize| {
        let reserve = volume_reserve(manifest_len, pieces, keys);
        capacity.checked_sub(reserve).filter(|b| *b > ENTRY_OVERHEAD).ok_or_else(|| {
            Error::Invalid(format!(
                "a volume of {capacity} bytes cannot hold its part of the bundle: every volume keeps {reserve} bytes \
                 for the manifest ({manifest_len} bytes, and 400 more for each of the {pieces} payloads it will \
                 list), {keys} signature{} of 1 KiB, the zip's records and 64 KiB to spare; give a larger --media",
                if keys == 1 { "" } else { "s" }
            ))
        })
    };
    // The reserve depends on the number of pieces, which depends on the reserve: a first
    // layout counts the pieces, the second reserves room for them (with 64 KiB to spare).
    let first = volumes::assign(&files, budget(files.len())?)?;
    volumes::assign(&files, budget(first.len())?)
}

/// How `plan`'s files would spread over volumes of `capacity` bytes (none: one zip) signed
/// by `keys` keys: the payload bytes of each volume, in order. What `fetch plan --media`
/// shows before anything is downloaded.
pub fn volume_sizes(plan: &Plan, channel: &Channel, capacity: Option<u64>, keys: usize) -> Result<Vec<u64>> {
    let draft = Manifest {
        format: BUNDLE_FORMAT,
        bundle_id: crate::base::random::bundle_id()?,
        channel: channel.clone(),
        sequence: u64::MAX,
        created: Timestamp::now(),
        expires: None,
        kind: plan.kind,
        relies_on: plan.relies_on.clone(),
        generator: concat!("ferry fetch ", env!("CARGO_PKG_VERSION")).to_string(),
        updates: plan.updates.clone(),
        files: plan.described.iter().map(|(sha256, size)| DescribedFile { sha256: *sha256, size: *size }).collect(),
        scan_catalog: None,
        left_out: Vec::new(),
        layout: Layout { volumes: 1, payloads: Vec::new() },
    };
    let pieces = layout_pieces(plan, capacity, draft.to_json().len() as u64, keys.max(1))?;
    let mut sizes = vec![0u64; volumes::volume_count(&pieces) as usize];
    for p in &pieces {
        sizes[p.volume as usize - 1] += p.size;
    }
    Ok(sizes)
}

/// Decides what a bundle carries of the updates in `catalog`, downloading nothing. File
/// references relative to the feed resolve against `base`.
pub fn plan(catalog: &Catalog, base: &Location, opts: &PlanOptions<'_>) -> Result<Plan> {
    let unknown = opts.selection.unknown_ids(catalog);
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|i| i.to_string()).collect();
        return Err(Error::Invalid(format!("{base} has no update with id {}", names.join(", "))));
    }
    let needed_by = |u: &Update| opts.state.and_then(|s| s.needed_by(&u.id, u.kb.as_deref()));
    let mut selected = catalog.select(opts.selection);
    if opts.needed_only {
        let Some(state) = opts.state else {
            return Err(Error::Invalid("only what computers need: that takes the state file".into()));
        };
        if state.computers_need.is_empty() {
            return Err(Error::Invalid(format!(
                "the state file of {} says no computer needs an update the server lacks",
                state.created
            )));
        }
        selected.retain(|u| needed_by(u).is_some());
        if selected.is_empty() && !opts.allow_empty {
            let needs: Vec<String> =
                state.computers_need.iter().map(|n| n.kb.clone().unwrap_or_else(|| n.id.to_string())).collect();
            return Err(Error::Invalid(format!(
                "{base} offers none of what the computers need and the server lacks ({}), within the selection",
                needs.join(", ")
            )));
        }
    }
    if selected.is_empty() && !opts.allow_empty {
        return Err(Error::EmptySelection { origin: base.to_string() });
    }
    let held: BTreeSet<Sha256> = opts.state.map(ServerState::held_files).unwrap_or_default();

    let mut plan = Plan {
        kind: if opts.state.is_some() { BundleKind::Delta } else { BundleKind::Full },
        updates: Vec::new(),
        entries: Vec::new(),
        described: BTreeMap::new(),
        jobs: Vec::new(),
        relies_on: Vec::new(),
        up_to_date: 0,
        needs_not_offered: opts
            .state
            .map(|s| {
                s.computers_need
                    .iter()
                    .filter(|n| !catalog.updates.iter().any(|u| n.names(&u.id, u.kb.as_deref())))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default(),
        min_sequence: opts
            .state
            .and_then(|s| s.channels.get(opts.channel))
            .and_then(|p| p.highest_sequence)
            // u64::MAX has no successor: the reservation refuses what is past the largest.
            .map(|h| h.saturating_add(1)),
    };
    let mut carried: BTreeSet<Sha256> = BTreeSet::new();
    let mut relied: BTreeSet<Sha256> = BTreeSet::new();
    for u in selected {
        let needed_by_computers = needed_by(u);
        let reason = match opts.state {
            None => Reason::Selected,
            Some(state) => match state.revision_of(&u.id) {
                None => Reason::New,
                Some(r) if u.revision > r => Reason::Revised,
                Some(_) if needed_by_computers.is_some() || state.needs.contains(&u.id) => Reason::Needed,
                Some(_) => {
                    plan.up_to_date += 1;
                    continue;
                }
            },
        };
        let mut carried_bytes = 0;
        for f in &u.files {
            plan.described.insert(f.sha256, f.size);
            if held.contains(&f.sha256) {
                relied.insert(f.sha256);
            } else if !u.withdrawn && !opts.metadata_only {
                carried_bytes += f.size;
                if carried.insert(f.sha256) {
                    plan.jobs.push(Job::sized(f.sha256, f.size, base.join(&f.url)?));
                }
            }
        }
        plan.entries.push(PlannedUpdate {
            id: u.id.clone(),
            revision: u.revision,
            reason,
            needed_by_computers,
            carried_bytes,
        });
        plan.updates.push(u.clone());
    }
    plan.relies_on = relied.into_iter().collect();
    Ok(plan)
}

pub fn pack(
    work: &mut WorkDir,
    sources: &Sources,
    opts: &PackOptions<'_>,
    progress: &(dyn Fn(PackEvent<'_>) + Sync),
) -> Result<PackOutcome> {
    if opts.keys.is_empty() {
        return Err(Error::Invalid("at least one signing key is needed".into()));
    }
    for (i, key) in opts.keys.iter().enumerate() {
        if opts.keys[..i].iter().any(|k| k.key_id == key.key_id) {
            // Ingest counts each key once; a second signature would only mislead a reader.
            return Err(Error::Invalid(format!("signing key {} given twice", key.key_id)));
        }
    }
    let cache = Cache::open(&work.root().join("cache"))?;
    // A feed without sizes (winget) fetches its files into the cache here, before the plan.
    let mut offered = opts.feed.offer(sources, &cache, &opts.download, &|p| progress(PackEvent::Download(p)))?;
    for skipped in &offered.skipped {
        progress(PackEvent::Skipped(skipped));
    }
    if let Feed::Winget { .. } = opts.feed {
        work.number_revisions(&mut offered.catalog.updates)?;
    }
    let mut plan = plan(&offered.catalog, &offered.base, &opts.plan)?;
    // With skip_failed, every file is fetched first (a person sees the same progress), the
    // updates with a file that could not be had are taken out, and the pack goes on with
    // what is in the cache.
    let left_out = if opts.skip_failed && !plan.jobs.is_empty() {
        progress(PackEvent::Selected {
            updates: plan.updates.len(),
            files: plan.jobs.len(),
            bytes: plan.payload_bytes(),
        });
        leave_out_failed(&mut plan, sources, &cache, &opts.download, progress)?
    } else {
        Vec::new()
    };
    let scan_catalog = offered.scan_catalog.map(|(path, carried)| {
        if plan.described.insert(carried.sha256, carried.size).is_none() {
            plan.jobs.push(Job::sized(carried.sha256, carried.size, Location::File(path)));
        }
        carried
    });
    if plan.updates.is_empty() && scan_catalog.is_none() {
        return Ok(PackOutcome::NothingNew { up_to_date: plan.up_to_date });
    }
    if !opts.skip_failed || plan.jobs.is_empty() || !left_out.is_empty() || scan_catalog.is_some() {
        progress(PackEvent::Selected {
            updates: plan.updates.len(),
            files: plan.jobs.len(),
            bytes: plan.payload_bytes(),
        });
    }

    // Lay the volumes out before a sequence is used, so that media too small for the bundle
    // cost nothing. The draft's sequence and times are placeholders of the widest form; only
    // its length matters here.
    let draft = Manifest {
        format: BUNDLE_FORMAT,
        bundle_id: crate::base::random::bundle_id()?,
        channel: opts.plan.channel.clone(),
        sequence: u64::MAX,
        created: Timestamp::now(),
        expires: opts.valid_for.map(|_| Timestamp::now()),
        kind: plan.kind,
        relies_on: plan.relies_on.clone(),
        generator: concat!("ferry fetch ", env!("CARGO_PKG_VERSION")).to_string(),
        updates: plan.updates.clone(),
        files: plan.described.iter().map(|(sha256, size)| DescribedFile { sha256: *sha256, size: *size }).collect(),
        scan_catalog,
        layout: Layout { volumes: 1, payloads: Vec::new() },
        left_out,
    };
    let fs_limit = volumes::file_system_limit(&opts.out_dir);
    let (capacity, lowered) =
        volumes::effective_capacity(opts.volume_capacity, fs_limit.map(|(_, l)| l), plan.payload_bytes());
    if let (true, Some((file_system, limit))) = (lowered, fs_limit) {
        progress(PackEvent::FileSystemLimit { file_system, limit });
    }
    if let Some(r) = opts.rotation {
        let statement = crate::formats::rotation::Statement::parse(&r.bytes).map_err(Error::Invalid)?;
        if statement.channel != *opts.plan.channel {
            return Err(Error::Invalid(format!(
                "the rotation statement is for channel {}, the bundle for channel {}",
                statement.channel, opts.plan.channel
            )));
        }
    }
    let rotation_entries: Vec<(String, Vec<u8>)> = opts
        .rotation
        .map(|r| {
            let mut entries = vec![(ROTATION_ENTRY.to_string(), r.bytes.clone())];
            entries.extend(r.signatures.iter().map(|s| (signature_entry(&s.key_id), s.to_file_string().into_bytes())));
            entries
        })
        .unwrap_or_default();
    let rotation_bytes: u64 =
        rotation_entries.iter().map(|(n, b)| (n.len() + b.len()) as u64 + 2 * ENTRY_OVERHEAD).sum();
    let pieces = layout_pieces(&plan, capacity, draft.to_json().len() as u64 + rotation_bytes, opts.keys.len())?;

    let min_sequence = match (opts.min_sequence, plan.min_sequence) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let channel = opts.plan.channel;
    let reservation = work.reserve(channel, min_sequence)?;
    if reservation.clock_behind {
        progress(PackEvent::ClockBehind { kept: reservation.created });
    }
    let expires = match opts.valid_for {
        None => None,
        Some(d) => Some(
            i64::try_from(d.as_secs())
                .ok()
                .and_then(|s| reservation.created.unix_seconds().checked_add(s))
                .and_then(Timestamp::from_unix_seconds)
                .ok_or_else(|| Error::Invalid(format!("a validity of {} seconds is too long", d.as_secs())))?,
        ),
    };
    let draft = Manifest { sequence: reservation.sequence, created: reservation.created, expires, ..draft };
    let volumes = volumes::volume_count(&pieces);
    let mut writers = Vec::with_capacity(volumes as usize);
    for k in 1..=volumes {
        writers.push(BundleWriter::create(&opts.out_dir.join(bundle_file_name(
            channel,
            reservation.sequence,
            k,
            volumes,
        )))?);
    }

    // Each file goes into its volume (or, cut into chunks, into several) as soon as it is
    // complete; a chunk is hashed first, since its entry is named by its digest.
    let total = plan.jobs.len();
    let mut done = 0;
    let mut pieces_of: BTreeMap<Sha256, Vec<&Piece>> = BTreeMap::new();
    for piece in &pieces {
        pieces_of.entry(piece.file).or_default().push(piece);
    }
    let mut payloads: Vec<Payload> = Vec::with_capacity(pieces.len());
    // Chunk entries written, by volume: two chunks of one file with the same bytes (a file
    // with identical regions) are one entry of a volume, listed at both offsets.
    let mut written_chunks: BTreeSet<(u32, Sha256)> = BTreeSet::new();
    download::run(&plan.jobs, sources, &cache, &opts.download, &|p| progress(PackEvent::Download(p)), |job, ready| {
        let path = ready.path.as_path();
        // The SHA-256 the plan named (checked by the download, or by the writer below).
        let digest = ready.sha256;
        let mine = pieces_of.get(&digest).map_or(&[][..], Vec::as_slice);
        let chunked = mine.iter().any(|p| !p.whole);
        if chunked && !ready.verified {
            // Chunk entries are named by the chunk's digest, so the file is read before it
            // is copied: check it whole first.
            let (actual, size) = crate::bundle::hash_range(path, 0, u64::MAX).at(path)?;
            if size != job.size {
                return Err(Error::SizeMismatch { what: path.display().to_string(), expected: job.size, actual: size });
            }
            if actual != digest {
                return Err(Error::DigestMismatch { what: path.display().to_string(), expected: digest, actual });
            }
        }
        for piece in mine {
            let writer = &mut writers[piece.volume as usize - 1];
            if piece.whole {
                let check = (!ready.verified).then_some(&digest);
                writer.add_entry(&file_entry_name(&digest), path, 0, job.size, check)?;
                payloads.push(Payload {
                    entry: file_entry_name(&digest),
                    sha256: digest,
                    size: job.size,
                    volume: piece.volume,
                    chunk_of: None,
                });
            } else {
                let (chunk, _) = crate::bundle::hash_range(path, piece.offset, piece.size).at(path)?;
                if written_chunks.insert((piece.volume, chunk)) {
                    writer.add_entry(&chunk_entry_name(&chunk), path, piece.offset, piece.size, None)?;
                }
                payloads.push(Payload {
                    entry: chunk_entry_name(&chunk),
                    sha256: chunk,
                    size: piece.size,
                    volume: piece.volume,
                    chunk_of: Some(ChunkOf { file: digest, offset: piece.offset }),
                });
            }
        }
        done += 1;
        progress(PackEvent::Packed { done, total, job });
        Ok(())
    })?;

    payloads.sort_by(|a, b| (a.volume, &a.entry).cmp(&(b.volume, &b.entry)));
    let manifest = Manifest { layout: Layout { volumes, payloads }, ..draft };
    manifest.check().map_err(|reason| Error::Internal(format!("the manifest written would be refused: {reason}")))?;
    let bytes = manifest.to_json();
    let mut sealed = Vec::with_capacity(writers.len());
    for (k, writer) in (1..=volumes).zip(writers) {
        progress(PackEvent::Sealing { volume: k, volumes });
        let comment = manifest.trusted_comment(k).to_string();
        let mut signatures = Vec::new();
        for key in opts.keys {
            let untrusted = format!("ferry bundle signature by key {}", key.key_id);
            signatures.push(key.sign(&bytes, &comment, &untrusted).map_err(Error::Invalid)?);
        }
        let mut writer = writer;
        for (name, entry) in &rotation_entries {
            writer.add_bytes(name, entry)?;
        }
        sealed.push(writer.seal(&bytes, &signatures, capacity)?);
    }
    // Only now does any volume get its name: a failure above leaves none behind.
    let mut files = Vec::with_capacity(sealed.len());
    for s in sealed {
        let (path, size) = s.persist()?;
        files.push(VolumeFile { path, size });
    }
    Ok(PackOutcome::Written(Box::new(PackResult {
        path: files[0].path.clone(),
        volumes: files,
        bundle_id: manifest.bundle_id.to_string(),
        channel: manifest.channel.to_string(),
        sequence: manifest.sequence,
        kind: manifest.kind,
        created: manifest.created,
        updates: manifest.updates.len(),
        payloads: manifest.layout.payloads.len(),
        payload_bytes: plan.payload_bytes(),
        relies_on: manifest.relies_on.len(),
        needed_by_computers: plan
            .entries
            .iter()
            .filter(|e| e.needed_by_computers.is_some() && manifest.updates.iter().any(|u| u.id == e.id))
            .count(),
        layout: manifest.layout.digest(),
        signers: opts.keys.iter().map(|k| k.key_id.to_string()).collect(),
        left_out: manifest.left_out.clone(),
    })))
}
