//! Manual registration: a file the administrator downloaded by hand (an urgent fix that
//! cannot wait for the next bundle) enters the store and the update list.
//!
//! Each file is copied into the store's temporary area while it is hashed; what is decided
//! is decided on the copy, never on the original, which could change meanwhile. Then:
//! - a file whose digest the list knows is attached to the update(s) that list it;
//! - a file named like a known update file but with another digest is refused, and both
//!   digests are shown: it is not the file it claims to be;
//! - with `--update ID`, every file must be one of that update's files;
//! - the other files together become one new manual update, marked as such, with the
//!   metadata given; its id is derived from the smallest file digest (`manual-` and 16 hex
//!   digits), so two servers registering the same file give it the same id.
//!
//! Nothing is registered unless every file passes. Then the order of an import: store,
//! one registry transaction (audited), publish, refresh.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tempfile::TempPath;

use crate::base::clock::{Date, Timestamp};
use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{FileName, Sha256, UpdateId};
use crate::base::shared_tree::{Links, open_regular};
use crate::bundle::HashingWriter;
use crate::bundle::copy::BlockSink;
use crate::formats::approval::Actor;
use crate::formats::model::{Applicability, Classification, DigestSource, Severity, Update, UpdateFile};
use crate::server::datadir::DataDir;
use crate::server::registry::{KnownFile, ManualRecord, RefreshReport};
use crate::server::report::{ChangeKind, ReportBuilder, ReportKind};

/// What the administrator says about a new manual update.
#[derive(Debug, Clone, Default)]
pub struct Details {
    pub title: Option<String>,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub kb: Option<String>,
    pub classification: Option<Classification>,
    pub severity: Option<Severity>,
    pub release_date: Option<Date>,
}

/// One registered file and the updates it now belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredFile {
    pub path: String,
    /// Where the file really was, when `path` is a symbolic link followed on request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followed: Option<String>,
    pub name: String,
    pub sha256: Sha256,
    pub size: u64,
    pub updates: Vec<String>,
    /// False if the store held it already.
    pub newly_stored: bool,
}

/// What `ingest register` did.
#[derive(Debug, Clone, Serialize)]
pub struct Registration {
    pub files: Vec<RegisteredFile>,
    /// The manual update created for files the list did not know.
    pub new_update: Option<String>,
    pub refresh: RefreshReport,
    /// The number of the change report stored (`ingest report ID`).
    pub report: u64,
}

/// A file copied into the store's temporary area, hashed on the way.
struct Copied {
    path: PathBuf,
    followed: Option<PathBuf>,
    name: FileName,
    sha256: Sha256,
    size: u64,
    temp: Option<TempPath>,
}

pub fn register(
    data: &mut DataDir,
    paths: &[PathBuf],
    update: Option<&UpdateId>,
    details: &Details,
    links: Links,
    actor: &Actor,
) -> Result<Registration> {
    if data.store().is_none() {
        return Err(Error::Internal("the data directory was opened read-only".into()));
    }
    let mut copies: Vec<Copied> = Vec::new();
    for path in paths {
        let copied = copy_in(data, path, links)?;
        if let Some(twin) = copies.iter().find(|c| c.sha256 == copied.sha256) {
            return Err(Error::Invalid(format!(
                "{} and {} are the same file (SHA-256 {})",
                twin.path.display(),
                path.display(),
                copied.sha256
            )));
        }
        copies.push(copied);
    }

    // Decide on the copies: attach to known updates, or refuse, or keep for a new one.
    let mut attached: Vec<(usize, Vec<KnownFile>)> = Vec::new();
    let mut unknown: Vec<usize> = Vec::new();
    for (i, c) in copies.iter().enumerate() {
        let by_digest = data.registry.files_with_digest(&c.sha256)?;
        let by_name: Vec<KnownFile> =
            data.registry.files_named(&c.name)?.into_iter().filter(|k| k.sha256 != c.sha256).collect();
        if let Some(id) = update {
            let of_update: Vec<KnownFile> = by_digest.iter().filter(|k| k.update_id == id.as_str()).cloned().collect();
            if of_update.is_empty() {
                let files = data.registry.files_of(id)?;
                let claimed = files.iter().find(|k| k.name.eq_ignore_ascii_case(c.name.as_str()));
                return Err(match claimed {
                    Some(k) => mismatch(c, k),
                    None => Error::Invalid(format!(
                        "{} (SHA-256 {}) is not a file of update {id}, whose files are: {}",
                        c.path.display(),
                        c.sha256,
                        files.iter().map(|k| format!("{} ({})", k.name, k.sha256)).collect::<Vec<_>>().join(", ")
                    )),
                });
            }
            attached.push((i, of_update));
        } else if !by_digest.is_empty() {
            attached.push((i, by_digest));
        } else if let Some(k) = by_name.first() {
            return Err(mismatch(c, k));
        } else {
            unknown.push(i);
        }
    }

    let new_update = if unknown.is_empty() { None } else { Some(new_manual_update(&copies, &unknown, details)?) };
    if let Some(new) = &new_update
        && let Ok(holder) = data.registry.files_of(&new.id)
    {
        // The files are unknown by digest, so whatever holds the id is another update.
        let first = &copies[unknown[0]];
        return Err(Error::Invalid(format!(
            "{} would become manual update {}, but that id is taken by another update with other files ({}); \
             nothing was registered",
            first.path.display(),
            new.id,
            holder.iter().map(|k| format!("{} {}", k.name, k.sha256)).collect::<Vec<_>>().join(", ")
        )));
    }

    // Store, then one registry transaction, then publish: the order of an import.
    let store = data.store().expect("checked above");
    let mut stored = Vec::new();
    let mut newly = Vec::new();
    for c in &mut copies {
        if let Some(temp) = c.temp.take() {
            store.commit(temp, &c.sha256)?;
            newly.push(c.sha256);
        }
        stored.push(c.sha256);
    }
    let source = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let record = ManualRecord {
        files: copies.iter().map(|c| (c.sha256, c.size)).collect(),
        new_update: new_update.as_ref(),
        actor,
        source: &source,
    };
    data.registry.record_manual(&record)?;
    let store = data.store().expect("checked above");
    store.promote(&stored)?;
    let refresh = crate::ingest::import::refresh(data)?;

    let mut files = Vec::new();
    for (i, c) in copies.iter().enumerate() {
        let mut updates: Vec<String> = attached
            .iter()
            .filter(|(j, _)| *j == i)
            .flat_map(|(_, known)| known.iter().map(|k| k.update_id.clone()))
            .collect();
        if unknown.contains(&i) {
            updates.extend(new_update.as_ref().map(|u| u.id.to_string()));
        }
        updates.sort();
        updates.dedup();
        files.push(RegisteredFile {
            path: c.path.display().to_string(),
            followed: c.followed.as_ref().map(|p| p.display().to_string()),
            name: c.name.to_string(),
            sha256: c.sha256,
            size: c.size,
            updates,
            newly_stored: newly.contains(&c.sha256),
        });
    }
    let mut done = Registration { files, new_update: new_update.map(|u| u.id.to_string()), refresh, report: 0 };
    let mut report = ReportBuilder::new(ReportKind::Register, actor.as_str());
    done.record(&mut report);
    done.report = report.store(&mut data.registry)?.id;
    Ok(done)
}

fn mismatch(c: &Copied, k: &KnownFile) -> Error {
    Error::DigestMismatch {
        what: format!("{} claims to be file {} of update {}", c.path.display(), k.name, k.update_id),
        expected: k.sha256,
        actual: c.sha256,
    }
}

/// Copies `path` into the store's temporary area while hashing it; a file the store holds
/// already is hashed and not kept. Only a regular file is read: a FIFO or device is refused
/// without being waited on, and a symbolic link unless `links` says to follow it.
fn copy_in(data: &DataDir, path: &Path, links: Links) -> Result<Copied> {
    let store = data.store().expect("opened exclusively");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid(format!("{}: not a file name in UTF-8", path.display())))?;
    let name: FileName = name.parse()?;
    let opened = open_regular(path, links)?;
    let mut file = opened.file;
    let mut hashing = HashingWriter::new(store.incoming()?);
    std::io::copy(&mut file, &mut hashing).at(path)?;
    let size = hashing.written();
    let (sha256, incoming) = hashing.finish();
    let temp = incoming.finish().at(store.root())?;
    let temp = if store.contains(&sha256) { None } else { Some(temp) };
    Ok(Copied { path: path.to_path_buf(), followed: opened.followed, name, sha256, size, temp })
}

fn new_manual_update(copies: &[Copied], unknown: &[usize], d: &Details) -> Result<Update> {
    let first = &copies[unknown[0]];
    let (Some(product), Some(classification)) = (&d.product, d.classification) else {
        return Err(Error::Invalid(format!(
            "{} is not a file the update list knows (by digest or name): to register it as a new manual \
             update, give at least --product and --classification (and --title, --kb, --severity as known), \
             or --update ID to attach it to a known update",
            first.path.display()
        )));
    };
    let digests: Vec<Sha256> = unknown.iter().map(|&i| copies[i].sha256).collect();
    let update = Update {
        id: crate::formats::model::manual_id(&digests),
        revision: 1,
        title: d.title.clone().unwrap_or_else(|| first.name.to_string()),
        vendor: d.vendor.clone().unwrap_or_else(|| "unspecified".into()),
        product: product.clone(),
        version: d.version.clone().unwrap_or_else(|| "unspecified".into()),
        classification,
        severity: d.severity.unwrap_or(Severity::Unspecified),
        kb: d.kb.as_deref().map(crate::formats::model::normalise_kb),
        cves: vec![],
        release_date: Some(d.release_date.unwrap_or_else(|| Timestamp::now().date())),
        supersedes: vec![],
        withdrawn: false,
        eula: None,
        applicability: Applicability::default(),
        install: None,
        files: unknown
            .iter()
            .map(|&i| {
                let c = &copies[i];
                UpdateFile {
                    name: c.name.clone(),
                    url: format!("manual:{}", c.name),
                    sha256: c.sha256,
                    size: c.size,
                    sha1: None,
                    sha256_from: DigestSource::Registered,
                    architecture: None,
                    language: None,
                }
            })
            .collect(),
    };
    update.check().map_err(|(field, reason)| {
        Error::Invalid(format!("manual update of {}: {field}: {reason}", first.path.display()))
    })?;
    Ok(update)
}

impl Registration {
    /// Records the registered files, the update made for them and the refresh in a report.
    fn record(&self, report: &mut ReportBuilder) {
        for f in &self.files {
            let detail = format!("{} of {}", f.name, f.updates.join(", "));
            report.source(&f.path, "registered", detail);
        }
        if let Some(id) = &self.new_update {
            report.change(id, ChangeKind::New, "registered by hand".into());
        }
        report.arrived(self.files.iter().filter(|f| f.newly_stored).map(|f| f.sha256));
        report.refresh(&self.refresh);
    }
}
