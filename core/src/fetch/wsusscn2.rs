//! Microsoft's offline scan catalog on disk: its Authenticode signature checked against
//! the pinned Microsoft roots before anything in it is read, then its cabinets read in one
//! pass each (formats::cabinet; MSZIP or LZX) as streams under caps, so that a hostile file
//! costs bounded memory, disk and time.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::base::error::{Error, IoContext, Result};
use crate::base::names::{Sha1, Sha256};
use crate::base::shared_tree::{Links, open_regular};
use crate::fetch::cache::Cache;
use crate::fetch::download::{self, DownloadOptions, Job, Progress, Vouched};
use crate::fetch::source::{Location, Sources};
use crate::formats::authenticode::{self, Signer};
use crate::formats::cabinet;
use crate::formats::catalog::{CATALOG_FORMAT, Catalog, Selection};
use crate::formats::manifest::ScanCatalog;
use crate::formats::wsusscn2::{self, Properties, RawUpdate, ScanSkipped, ScanUpdate};

/// The largest nested cabinet copied out (`package.cab` is tens of MiB).
pub const MAX_INNER_CABINET: u64 = 2 << 30;
/// The most bytes `package.xml` may decompress to.
pub const MAX_PACKAGE_XML: u64 = 8 << 30;
/// The largest small document read whole (`index.xml`, a revision's properties).
const MAX_SMALL: u64 = 16 << 20;

/// What `fetch plan --wsusscn2` shows.
#[derive(Debug)]
pub struct Scan {
    pub signer: Signer,
    pub package_version: Option<String>,
    pub created: Option<String>,
    pub updates: Vec<ScanUpdate>,
    pub skipped: Vec<ScanSkipped>,
}

/// Reads the scan catalog at `path`: checks its signature against `roots` (DER
/// certificates), then maps what it offers. Each cabinet is read in one pass
/// (formats::cabinet): the outer one copies `package.cab` and the property cabinets out
/// (each under [`MAX_INNER_CABINET`], under names of ferry's choosing), `package.xml` is
/// parsed as it is decompressed, and the property cabinets give the properties of the
/// revisions the mapping needs, read under [`MAX_SMALL`] each.
pub fn read(path: &Path, roots: &[Vec<u8>]) -> Result<Scan> {
    let opened = open_regular(path, Links::Follow)?;
    let (mut file, len) = (opened.file, opened.len);
    let signer = authenticode::verify_cabinet(&mut file, len, roots)
        .map_err(|reason| Error::FeedSignature { file: path.to_path_buf(), reason })?;
    let refuse = |field: &str, reason: String| Error::Feed {
        file: path.to_path_buf(),
        line: None,
        field: field.to_string(),
        reason,
    };
    let temp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;

    let mut index_bytes = None;
    let mut inner: HashMap<String, PathBuf> = HashMap::new();
    cabinet::for_each(&mut file, len, |entry, body| {
        let name = entry.name.to_ascii_lowercase();
        if name == "index.xml" {
            index_bytes = Some(read_small(body, &entry.name)?);
        } else if name.ends_with(".cab") && !name.contains('/') {
            // Named by position, never by the entry's own name.
            let target = temp.path().join(format!("inner-{}.cab", inner.len() + 1));
            let mut out = File::create(&target)?;
            if std::io::copy(&mut body.take(MAX_INNER_CABINET + 1), &mut out)? > MAX_INNER_CABINET {
                return Err(too_large(&entry.name, MAX_INNER_CABINET));
            }
            inner.insert(name, target);
        }
        Ok(())
    })
    .map_err(|e| refuse("wsusscn2.cab", e.to_string()))?;
    let index_bytes = index_bytes.ok_or_else(|| refuse("index.xml", "is missing from the catalog".into()))?;
    let index = wsusscn2::read_index(&index_bytes).map_err(|r| refuse("index.xml", r.reason))?;

    let open_inner = |name: &str| -> Result<(File, u64)> {
        let copied =
            inner.get(&name.to_ascii_lowercase()).ok_or_else(|| refuse(name, "is missing from the catalog".into()))?;
        let f = File::open(copied).at(copied)?;
        let len = f.metadata().at(copied)?.len();
        Ok((f, len))
    };
    let (mut package_cab, package_len) = open_inner("package.cab")?;
    let mut package = None;
    cabinet::for_each(&mut package_cab, package_len, |entry, body| {
        if entry.name.eq_ignore_ascii_case("package.xml") {
            let parsed = wsusscn2::read_package(BufReader::with_capacity(256 * 1024, body.take(MAX_PACKAGE_XML)))
                .map_err(|r| std::io::Error::other(format!("package.xml: {} (near byte {})", r.reason, r.at)))?;
            package = Some(parsed);
        }
        Ok(())
    })
    .map_err(|e| refuse("package.cab", e.to_string()))?;
    let package = package.ok_or_else(|| refuse("package.cab", "holds no package.xml".into()))?;

    // The properties the mapping asks for: those of the top-level software updates and of
    // the category entries, in their default language.
    let mut wanted: HashMap<u32, String> = package
        .updates
        .iter()
        .filter(|u| !u.is_software || u.bundled_by.is_empty())
        .map(|u| (u.revision_id, u.default_language.clone().unwrap_or_else(|| "en".into()).to_ascii_lowercase()))
        .collect();
    let mut properties: HashMap<u32, Properties> = HashMap::new();
    for (cab_name, start) in &index {
        if start.is_none() {
            continue;
        }
        let (mut cab_file, cab_len) = open_inner(cab_name)?;
        cabinet::for_each(&mut cab_file, cab_len, |entry, body| {
            let name = entry.name.to_ascii_lowercase();
            let (extended, rest) = match (name.strip_prefix("x/"), name.strip_prefix("l/")) {
                (Some(rev), _) => (true, rev.to_string()),
                (_, Some(rest)) => (false, rest.to_string()),
                _ => return Ok(()),
            };
            let (language, rev) = if extended {
                (None, rest.as_str())
            } else {
                rest.split_once('/').map_or((None, ""), |(l, r)| (Some(l), r))
            };
            let Ok(revision) = rev.parse::<u32>() else { return Ok(()) };
            let Some(default_language) = wanted.get(&revision) else { return Ok(()) };
            if language.is_some_and(|l| l != default_language) {
                return Ok(());
            }
            let bytes = read_small(body, &entry.name)?;
            let props = properties.entry(revision).or_default();
            let parsed =
                if extended { wsusscn2::read_extended(&bytes, props) } else { wsusscn2::read_localized(&bytes, props) };
            parsed.map_err(|r| std::io::Error::other(format!("{}: {}", entry.name, r.reason)))
        })
        .map_err(|e| refuse(cab_name, e.to_string()))?;
    }
    wanted.clear();
    let mut lookup = |u: &RawUpdate| Ok(properties.get(&u.revision_id).cloned().unwrap_or_default());
    let (updates, skipped) = wsusscn2::map(&package, &mut lookup).map_err(|r| refuse("", r.reason))?;
    Ok(Scan {
        signer,
        package_version: package.package_version.clone(),
        created: package.creation_date.clone(),
        updates,
        skipped,
    })
}

/// Reads a small document of the catalog whole, refusing more than [`MAX_SMALL`] bytes.
fn read_small(body: &mut dyn Read, name: &str) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    body.take(MAX_SMALL + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SMALL {
        return Err(too_large(name, MAX_SMALL));
    }
    Ok(bytes)
}

fn too_large(name: &str, cap: u64) -> std::io::Error {
    std::io::Error::other(format!("{name} is more than the {cap} bytes read"))
}

/// Reads the scan catalog at `path` (signature first), adds what the MSRC documents of
/// `security` say of the same KBs, and keeps what `selection` picks: the scan with its
/// chosen updates, and everything left out with its reason (including KBs MSRC names that
/// no update carries).
pub fn choose(
    path: &Path,
    roots: &[Vec<u8>],
    security: Option<&crate::fetch::msrc::Security>,
    selection: &Selection,
    include_superseded: bool,
) -> Result<Scan> {
    let mut scan = read(path, roots)?;
    let mut uncarried = Vec::new();
    if let Some(security) = security {
        uncarried = crate::fetch::msrc::enrich(&mut scan.updates, security);
    }
    let (chosen, mut skipped) = wsusscn2::select(std::mem::take(&mut scan.updates), selection, include_superseded);
    skipped.append(&mut scan.skipped);
    skipped.extend(uncarried);
    scan.updates = chosen;
    scan.skipped = skipped;
    Ok(scan)
}

/// The roots a scan catalog's signature must chain to: Microsoft's, pinned, and any the
/// administrator adds (`--wsusscn2-root`: a test root, or Microsoft's next one).
pub fn roots(extra: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    let mut roots = vec![authenticode::MICROSOFT_ROOT_2011.to_vec(), authenticode::MICROSOFT_ROOT_2010.to_vec()];
    for path in extra {
        let opened = open_regular(path, Links::Follow)?;
        let mut bytes = Vec::new();
        opened.file.take(1 << 20).read_to_end(&mut bytes).at(path)?;
        let der = if bytes.starts_with(b"-----BEGIN") {
            pem_to_der(&bytes).ok_or_else(|| Error::Invalid(format!("{}: not a PEM certificate", path.display())))?
        } else {
            bytes
        };
        <x509_cert::Certificate as der::Decode>::from_der(&der)
            .map_err(|e| Error::Invalid(format!("{}: not an X.509 certificate: {e}", path.display())))?;
        roots.push(der);
    }
    Ok(roots)
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()
}

/// The largest update file fetched whose size the catalog does not give (Microsoft's
/// largest cumulative updates are a few GiB).
pub const MAX_UPDATE_FILE: u64 = 16 << 30;

/// The updates the scan catalog at `path` offers under `selection`, and what it left out:
/// each chosen file is fetched into the cache first, checked against the SHA-1 the catalog
/// names it by, and carried by the SHA-256 computed (and its size), which the pack that
/// follows finds there.
#[allow(clippy::too_many_arguments)]
pub fn offer(
    path: &Path,
    roots: &[Vec<u8>],
    security: Option<&crate::fetch::msrc::Security>,
    selection: &Selection,
    include_superseded: bool,
    carry: bool,
    sources: &Sources,
    cache: &Cache,
    options: &DownloadOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<(Catalog, Vec<ScanSkipped>, Option<ScanCatalog>)> {
    let Scan { updates: chosen, mut skipped, signer, package_version, created } =
        choose(path, roots, security, selection, include_superseded)?;
    // The catalog as a bundle carries it: verified above, hashed here.
    let carried = if carry {
        let (sha256, size) = crate::bundle::hash_range(path, 0, u64::MAX).at(path)?;
        Some(ScanCatalog { sha256, size, signer: signer.subject, root: signer.root, package_version, created })
    } else {
        None
    };
    let mut jobs: Vec<Job> = Vec::new();
    let mut queued: std::collections::HashSet<Sha1> = std::collections::HashSet::new();
    for u in &chosen {
        for f in &u.files {
            let sha1: Sha1 = f.sha1.parse()?;
            if queued.insert(sha1) {
                let location = Location::parse(&f.url)?;
                if !matches!(location, Location::Http(_)) {
                    return Err(Error::Feed {
                        file: path.to_path_buf(),
                        line: None,
                        field: "FileLocation".into(),
                        reason: format!("{} is not an http or https URL", f.url),
                    });
                }
                jobs.push(Job::by_sha1(sha1, MAX_UPDATE_FILE, location));
            }
        }
    }
    let mut found: HashMap<Sha1, (Sha256, u64)> = HashMap::new();
    download::run(&jobs, sources, cache, options, progress, |job, ready| {
        let size = std::fs::metadata(&ready.path).at(&ready.path)?.len();
        if let Vouched::Sha1(sha1) = job.vouched {
            found.insert(sha1, (ready.sha256, size));
        }
        Ok(())
    })?;
    let mut updates = Vec::with_capacity(chosen.len());
    for u in &chosen {
        let files: Vec<(Sha256, u64)> =
            u.files.iter().filter_map(|f| f.sha1.parse().ok().and_then(|s| found.get(&s).copied())).collect();
        match wsusscn2::to_update(u, &files) {
            Ok(update) if files.len() == u.files.len() => updates.push(update),
            Ok(_) => skipped.push(ScanSkipped {
                id: u.id.to_string(),
                title: Some(u.title.clone()),
                reason: "a file was not fetched".into(),
            }),
            Err(reason) => skipped.push(ScanSkipped { id: u.id.to_string(), title: Some(u.title.clone()), reason }),
        }
    }
    Ok((Catalog { format: CATALOG_FORMAT, updates }, skipped, carried))
}

/// The largest scan catalog downloaded (Microsoft's is under 1 GiB).
pub const MAX_SCAN_CATALOG: u64 = 4 << 30;

/// Brings the scan catalog at `url` into `dir` and returns its path. A copy held from an
/// earlier run is revalidated (If-None-Match, If-Modified-Since) and used when current, so
/// the monthly file crosses the network once a month; an interrupted download resumes
/// where it stopped (Range with If-Range) in this run's retries and in the next run. The
/// copy is trusted no more than a path: its signature is checked before it is read.
pub fn obtain(
    url: &url::Url,
    dir: &Path,
    sources: &Sources,
    options: &DownloadOptions,
    note: &dyn Fn(String),
) -> Result<PathBuf> {
    use crate::fetch::transfer::{Body, Fetched, Validators};
    std::fs::create_dir_all(dir).at(dir)?;
    let key = Sha256::of(url.as_str().as_bytes()).hex()[..16].to_string();
    let (cab, meta) = (dir.join(format!("{key}.cab")), dir.join(format!("{key}.json")));
    let (partial, partial_meta) = (dir.join(format!("{key}.partial")), dir.join(format!("{key}.partial.json")));
    let read_meta = |p: &Path| -> Option<Validators> { serde_json::from_slice(&std::fs::read(p).ok()?).ok() };
    let write_meta = |p: &Path, v: &Validators| -> Result<()> {
        std::fs::write(p, serde_json::to_vec(v).expect("validators serialise")).at(p)
    };
    let mut attempt = 0u32;
    loop {
        let held = if cab.is_file() { read_meta(&meta) } else { None };
        let resumable = read_meta(&partial_meta);
        let from = resumable.as_ref().and(std::fs::metadata(&partial).ok()).map_or(0, |m| m.len());
        let failure = match sources.revalidate(url, held.as_ref(), from, resumable.as_ref()) {
            Ok(Fetched::NotModified) => {
                note(format!("{url}: the copy held is current"));
                return Ok(cab);
            }
            Ok(Fetched::Body { body, validators }) => {
                let (reader, mut file, start) = match body {
                    Body::FromOffset(r) => {
                        (r, std::fs::OpenOptions::new().append(true).open(&partial).at(&partial)?, from)
                    }
                    Body::FromStart(r) => {
                        write_meta(&partial_meta, &validators)?;
                        (r, File::create(&partial).at(&partial)?, 0)
                    }
                };
                note(if start > 0 {
                    format!("{url}: resuming at byte {start}")
                } else {
                    format!("{url}: downloading")
                });
                match std::io::copy(&mut reader.take(MAX_SCAN_CATALOG + 1 - start), &mut file) {
                    Ok(n) if start + n > MAX_SCAN_CATALOG => {
                        drop(file);
                        let _ = std::fs::remove_file(&partial);
                        return Err(Error::Download {
                            url: url.to_string(),
                            cause: format!("more than {MAX_SCAN_CATALOG} bytes"),
                        });
                    }
                    Ok(_) => {
                        file.sync_all().at(&partial)?;
                        drop(file);
                        std::fs::rename(&partial, &cab).at(&cab)?;
                        std::fs::rename(&partial_meta, &meta).at(&meta)?;
                        return Ok(cab);
                    }
                    Err(e) => crate::fetch::transfer::Failure::retry(format!("the transfer broke off: {e}")),
                }
            }
            Err(f) => f,
        };
        if failure.restart {
            let _ = std::fs::remove_file(&partial_meta);
        }
        if !failure.retryable || attempt >= options.retries {
            return Err(Error::Download { url: url.to_string(), cause: failure.cause });
        }
        attempt += 1;
        note(format!("{url}: {}; retry {attempt} of {}", failure.cause, options.retries));
        std::thread::sleep(
            options.retry_delay.saturating_mul(1 << attempt.min(5)).min(std::time::Duration::from_secs(30)),
        );
    }
}

/// Forgets the copy of the scan catalog at `url` held in `dir` (its signature was refused:
/// the next run fetches it whole).
pub fn forget(url: &url::Url, dir: &Path) {
    let key = Sha256::of(url.as_str().as_bytes()).hex()[..16].to_string();
    for name in [format!("{key}.cab"), format!("{key}.json")] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}
