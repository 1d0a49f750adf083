//! Microsoft's offline scan catalog on disk: its Authenticode signature checked against
//! the pinned Microsoft roots before anything in it is read, then its cabinets opened
//! (MSZIP or LZX, by the `cab` crate) and read as streams under caps, so that a hostile
//! file costs bounded memory, disk and time.
//!
//! Nested cabinets are copied out of the outer one into a temporary directory (each under
//! [`MAX_INNER_CABINET`]), since a cabinet is read with seeks; `package.xml` is parsed as it
//! is decompressed, never held whole.

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
use crate::formats::catalog::{CATALOG_FORMAT, Catalog, Selection};
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

/// A cabinet's entries: normalised name → (name as stored, decompressed size).
type Entries = HashMap<String, (String, u64)>;

/// Entry names of a cabinet, by their normalised form (`/` for `\`, lower case).
fn names<R: Read + std::io::Seek>(cabinet: &cab::Cabinet<R>) -> Entries {
    cabinet
        .folder_entries()
        .flat_map(|f| f.file_entries())
        .map(|e| {
            (e.name().replace('\\', "/").to_ascii_lowercase(), (e.name().to_string(), u64::from(e.uncompressed_size())))
        })
        .collect()
}

struct Reader<'a> {
    path: &'a Path,
    temp: tempfile::TempDir,
    /// Cabinets copied out so far, to name the next.
    copied: std::cell::Cell<usize>,
}

impl Reader<'_> {
    fn refuse(&self, field: &str, reason: impl Into<String>) -> Error {
        Error::Feed { file: self.path.to_path_buf(), line: None, field: field.to_string(), reason: reason.into() }
    }

    fn open<R: Read + std::io::Seek>(&self, reader: R, what: &str) -> Result<cab::Cabinet<R>> {
        cab::Cabinet::new(reader).map_err(|e| self.refuse(what, format!("not a readable cabinet: {e}")))
    }

    /// Reads entry `name` of `cabinet` whole, refusing more than `cap` bytes.
    fn read_entry<R: Read + std::io::Seek>(
        &self,
        cabinet: &mut cab::Cabinet<R>,
        entries: &Entries,
        name: &str,
        cap: u64,
    ) -> Result<Option<Vec<u8>>> {
        let Some((real, size)) = entries.get(&name.to_ascii_lowercase()) else { return Ok(None) };
        if *size > cap {
            return Err(self.refuse(name, format!("{size} bytes once decompressed, more than the {cap} read")));
        }
        let mut bytes = Vec::new();
        let reader = cabinet.read_file(real).map_err(|e| self.refuse(name, e.to_string()))?;
        reader
            .take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.refuse(name, format!("cannot be decompressed: {e}")))?;
        if bytes.len() as u64 > cap {
            return Err(self.refuse(name, format!("more than {cap} bytes once decompressed")));
        }
        Ok(Some(bytes))
    }

    /// Copies nested cabinet `name` out of `cabinet` into the temporary directory.
    fn copy_out<R: Read + std::io::Seek>(
        &self,
        cabinet: &mut cab::Cabinet<R>,
        entries: &Entries,
        name: &str,
    ) -> Result<PathBuf> {
        let (real, size) =
            entries.get(&name.to_ascii_lowercase()).ok_or_else(|| self.refuse(name, "is missing from the catalog"))?;
        if *size > MAX_INNER_CABINET {
            return Err(self.refuse(name, format!("{size} bytes, more than the {MAX_INNER_CABINET} read")));
        }
        // Named by position, never by the entry's own name: an entry cannot climb out.
        self.copied.set(self.copied.get() + 1);
        let target = self.temp.path().join(format!("inner-{}.cab", self.copied.get()));
        let mut out = File::create(&target).at(&target)?;
        let reader = cabinet.read_file(real).map_err(|e| self.refuse(name, e.to_string()))?;
        let copied = std::io::copy(&mut reader.take(MAX_INNER_CABINET + 1), &mut out)
            .map_err(|e| self.refuse(name, format!("cannot be decompressed: {e}")))?;
        if copied > MAX_INNER_CABINET {
            return Err(self.refuse(name, format!("more than {MAX_INNER_CABINET} bytes once decompressed")));
        }
        Ok(target)
    }
}

/// Reads the scan catalog at `path`: checks its signature against `roots` (DER
/// certificates), then maps what it offers.
pub fn read(path: &Path, roots: &[Vec<u8>]) -> Result<Scan> {
    let opened = open_regular(path, Links::Follow)?;
    let mut file = opened.file;
    let signer = authenticode::verify_cabinet(&mut file, opened.len, roots)
        .map_err(|reason| Error::FeedSignature { file: path.to_path_buf(), reason })?;
    let temp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let reader = Reader { path, temp, copied: std::cell::Cell::new(0) };
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).at(path)?;
    let mut outer = reader.open(file, "wsusscn2.cab")?;
    let outer_names = names(&outer);
    let index_bytes = reader
        .read_entry(&mut outer, &outer_names, "index.xml", MAX_SMALL)?
        .ok_or_else(|| reader.refuse("index.xml", "is missing from the catalog"))?;
    let index = wsusscn2::read_index(&index_bytes).map_err(|r| reader.refuse("index.xml", r.reason))?;

    let package_cab = reader.copy_out(&mut outer, &outer_names, "package.cab")?;
    let mut package_cabinet = reader.open(File::open(&package_cab).at(&package_cab)?, "package.cab")?;
    let package_names = names(&package_cabinet);
    let (xml_name, xml_size) = package_names
        .get("package.xml")
        .cloned()
        .ok_or_else(|| reader.refuse("package.cab", "holds no package.xml"))?;
    if xml_size > MAX_PACKAGE_XML {
        return Err(reader.refuse("package.xml", format!("{xml_size} bytes, more than the {MAX_PACKAGE_XML} read")));
    }
    let stream = package_cabinet.read_file(&xml_name).map_err(|e| reader.refuse("package.xml", e.to_string()))?;
    let package = wsusscn2::read_package(BufReader::with_capacity(256 * 1024, stream.take(MAX_PACKAGE_XML)))
        .map_err(|r| reader.refuse("package.xml", format!("{} (near byte {})", r.reason, r.at)))?;

    // The per-revision cabinets, opened as revisions ask for them.
    let mut opened: HashMap<String, (cab::Cabinet<File>, Entries)> = HashMap::new();
    let mut properties = |u: &RawUpdate| -> std::result::Result<Properties, wsusscn2::Refusal> {
        let mut props = Properties::default();
        let Some(cab_name) = wsusscn2::cabinet_of(&index, u.revision_id) else { return Ok(props) };
        let fail = |e: Error| wsusscn2::Refusal { at: 0, reason: e.to_string() };
        if !opened.contains_key(cab_name) {
            let copied = reader.copy_out(&mut outer, &outer_names, cab_name).map_err(fail)?;
            let cabinet =
                reader.open(File::open(&copied).map_err(|e| fail(Error::io(&copied, e)))?, cab_name).map_err(fail)?;
            let entries = names(&cabinet);
            opened.insert(cab_name.to_string(), (cabinet, entries));
        }
        let (cabinet, entries) = opened.get_mut(cab_name).expect("opened above");
        let language = u.default_language.as_deref().unwrap_or("en");
        let extended = format!("x/{}", u.revision_id);
        if let Some(bytes) = reader.read_entry(cabinet, entries, &extended, MAX_SMALL).map_err(fail)? {
            wsusscn2::read_extended(&bytes, &mut props)
                .map_err(|r| wsusscn2::Refusal { at: 0, reason: format!("{cab_name} {extended}: {}", r.reason) })?;
        }
        let localized = format!("l/{language}/{}", u.revision_id);
        if let Some(bytes) = reader.read_entry(cabinet, entries, &localized, MAX_SMALL).map_err(fail)? {
            wsusscn2::read_localized(&bytes, &mut props)
                .map_err(|r| wsusscn2::Refusal { at: 0, reason: format!("{cab_name} {localized}: {}", r.reason) })?;
        }
        Ok(props)
    };
    let (updates, skipped) = wsusscn2::map(&package, &mut properties).map_err(|r| reader.refuse("", r.reason))?;
    Ok(Scan {
        signer,
        package_version: package.package_version.clone(),
        created: package.creation_date.clone(),
        updates,
        skipped,
    })
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
    sources: &Sources,
    cache: &Cache,
    options: &DownloadOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<(Catalog, Vec<ScanSkipped>)> {
    let Scan { updates: chosen, mut skipped, .. } = choose(path, roots, security, selection, include_superseded)?;
    let mut jobs: Vec<Job> = Vec::new();
    for u in &chosen {
        for f in &u.files {
            let sha1: Sha1 = f.sha1.parse()?;
            if !jobs.iter().any(|j| j.vouched == Vouched::Sha1(sha1)) {
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
    Ok((Catalog { format: CATALOG_FORMAT, updates }, skipped))
}
