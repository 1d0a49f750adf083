//! `fetch pack`: catalog → selection → download → signed bundle.
//!
//! Each selected file is streamed from its source straight into the bundle, its size and
//! SHA-256 checked on the way; a file shared by several updates is fetched once. The manifest
//! is written and signed only after every payload matched, and the bundle appears under its
//! final name only when complete.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::bundle::writer::BundleWriter;
use crate::cache::Cache;
use crate::catalog::{Catalog, MAX_CATALOG_BYTES, Selection};
use crate::clock::Timestamp;
use crate::download::{self, DownloadOptions, Job, Progress};
use crate::error::{Error, Result};
use crate::manifest::{BUNDLE_FORMAT, BundleKind, DescribedFile, Layout, Manifest, Payload, file_entry_name};
use crate::minisign::SecretKey;
use crate::model::Update;
use crate::names::{BundleId, Channel, Sha256};
use crate::source::{Location, Sources};
use crate::workdir::WorkDir;

pub struct PackOptions<'a> {
    pub catalog: &'a Location,
    pub selection: &'a Selection,
    pub channel: &'a Channel,
    pub keys: &'a [SecretKey],
    pub out_dir: PathBuf,
    pub min_sequence: Option<u64>,
    /// How long the bundle stays valid after its creation; ingest refuses it afterwards.
    pub valid_for: Option<std::time::Duration>,
    /// Carry the metadata only, no files (for review before a large download).
    pub metadata_only: bool,
    pub download: DownloadOptions,
}

/// What `pack` reports as it goes, for the binary to show.
#[derive(Debug, Clone)]
pub enum PackEvent<'a> {
    Selected {
        updates: usize,
        files: usize,
        bytes: u64,
    },
    ClockBehind {
        kept: Timestamp,
    },
    Download(Progress<'a>),
    /// A file was written into the bundle; `done` of `total` are in.
    Packed {
        done: usize,
        total: usize,
        job: &'a Job,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct PackResult {
    pub path: PathBuf,
    pub bundle_id: String,
    pub channel: String,
    pub sequence: u64,
    pub created: Timestamp,
    pub updates: usize,
    pub payloads: usize,
    pub payload_bytes: u64,
    pub layout: Sha256,
    pub signers: Vec<String>,
}

/// Reads and checks the catalog at `location`.
pub fn load_catalog(sources: &Sources, location: &Location) -> Result<Catalog> {
    let bytes = sources.read_capped(location, MAX_CATALOG_BYTES)?;
    Catalog::parse(&bytes, &location.to_string())
}

/// The bundle file name for a channel and sequence: people read it, ingest never does.
pub fn bundle_file_name(channel: &Channel, sequence: u64) -> String {
    format!("ferry-{channel}-{sequence:06}.zip")
}

pub fn pack(
    work: &mut WorkDir,
    sources: &Sources,
    opts: &PackOptions<'_>,
    progress: &(dyn Fn(PackEvent<'_>) + Sync),
) -> Result<PackResult> {
    if opts.keys.is_empty() {
        return Err(Error::Invalid("at least one signing key is needed".into()));
    }
    let catalog = load_catalog(sources, opts.catalog)?;
    let unknown = opts.selection.unknown_ids(&catalog);
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|i| i.to_string()).collect();
        return Err(Error::Invalid(format!("catalog {} has no update with id {}", opts.catalog, names.join(", "))));
    }
    let updates: Vec<Update> = catalog.select(opts.selection).into_iter().cloned().collect();
    if updates.is_empty() {
        return Err(Error::EmptySelection { origin: opts.catalog.to_string() });
    }

    // Described files, and the ones to carry (each digest once, from its first URL).
    let mut described: BTreeMap<Sha256, u64> = BTreeMap::new();
    let mut carry: BTreeMap<Sha256, (u64, String)> = BTreeMap::new();
    for u in &updates {
        for f in &u.files {
            described.insert(f.sha256, f.size);
            if !u.withdrawn && !opts.metadata_only {
                carry.entry(f.sha256).or_insert_with(|| (f.size, f.url.clone()));
            }
        }
    }
    let total_bytes = carry.values().map(|(s, _)| s).sum();
    progress(PackEvent::Selected { updates: updates.len(), files: carry.len(), bytes: total_bytes });

    // Resolve every URL before reserving a sequence, so a bad reference costs nothing.
    let mut jobs = Vec::with_capacity(carry.len());
    for (digest, (size, url)) in &carry {
        jobs.push(Job { digest: *digest, size: *size, location: opts.catalog.join(url)? });
    }
    let cache = Cache::open(&work.root().join("cache"))?;

    let reservation = work.reserve(opts.channel, opts.min_sequence)?;
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
    let final_path = opts.out_dir.join(bundle_file_name(opts.channel, reservation.sequence));
    let mut writer = BundleWriter::create(&final_path)?;
    let total = jobs.len();
    let mut done = 0;
    download::run(&jobs, sources, &cache, &opts.download, &|p| progress(PackEvent::Download(p)), |job, path| {
        writer.add_file(&job.digest, job.size, path)?;
        done += 1;
        progress(PackEvent::Packed { done, total, job });
        Ok(())
    })?;

    let manifest = Manifest {
        format: BUNDLE_FORMAT,
        bundle_id: BundleId::random()?,
        channel: opts.channel.clone(),
        sequence: reservation.sequence,
        created: reservation.created,
        expires,
        kind: BundleKind::Full,
        relies_on: Vec::new(),
        generator: concat!("ferry fetch ", env!("CARGO_PKG_VERSION")).to_string(),
        updates,
        files: described.iter().map(|(sha256, size)| DescribedFile { sha256: *sha256, size: *size }).collect(),
        layout: Layout {
            volumes: 1,
            payloads: carry
                .iter()
                .map(|(sha256, (size, _))| Payload {
                    entry: file_entry_name(sha256),
                    sha256: *sha256,
                    size: *size,
                    volume: 1,
                })
                .collect(),
        },
    };
    manifest
        .check()
        .map_err(|reason| Error::Invalid(format!("internal: the manifest written would be refused: {reason}")))?;
    let bytes = manifest.to_json();
    let comment = manifest.trusted_comment(1).to_string();
    let mut signatures = Vec::new();
    for key in opts.keys {
        let untrusted = format!("ferry bundle signature by key {}", key.key_id);
        signatures.push(key.sign(&bytes, &comment, &untrusted).map_err(Error::Invalid)?);
    }
    let path = writer.finish(&bytes, &signatures)?;
    Ok(PackResult {
        path,
        bundle_id: manifest.bundle_id.to_string(),
        channel: manifest.channel.to_string(),
        sequence: manifest.sequence,
        created: manifest.created,
        updates: manifest.updates.len(),
        payloads: manifest.layout.payloads.len(),
        payload_bytes: total_bytes,
        layout: manifest.layout.digest(),
        signers: opts.keys.iter().map(|k| k.key_id.to_string()).collect(),
    })
}
