//! Microsoft's offline scan catalog (`wsusscn2.cab`), the file the Windows Update Agent
//! scans against offline. Its outer cabinet holds `package.cab` (→ `package.xml`: updates,
//! revisions, bundles, categories, prerequisites, supersedence, payload file ids and their
//! locations), `index.xml` (which further cabinet holds the properties of which revision
//! range) and those cabinets (`x/<revision>`: KB number, MSRC severity, CVEs;
//! `l/<language>/<revision>`: title and description).
//!
//! This module reads those XML documents as streams of events (quick-xml; no entity a
//! document defines is expanded, nesting is limited) and maps the catalog to the updates an
//! administrator chooses from: one per top-level software update (a bundle: the KB-level
//! update, with the files of the updates it bundles). Opening the cabinets and checking the
//! signature is `fetch::wsusscn2`'s job.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use quick_xml::events::Event;

use crate::base::names::{FileName, UpdateId};
use crate::formats::model::{Applicability, Classification, DigestSource, Severity, Update, UpdateFile};
use crate::formats::xml::{attr, entity};

/// Deeper nesting than the catalog's documents have.
const MAX_DEPTH: usize = 32;

/// A refusal: what is wrong, and the byte where the reader was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub at: u64,
    pub reason: String,
}

/// One `Update` element of `package.xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawUpdate {
    pub update_id: String,
    pub revision_id: u32,
    pub revision_number: u32,
    pub creation_date: Option<String>,
    pub default_language: Option<String>,
    pub is_bundle: bool,
    pub is_software: bool,
    /// (type, category update id): Product, UpdateClassification, Company, ProductFamily.
    pub categories: Vec<(String, String)>,
    /// Each inner list is one prerequisite: any of its update ids will do.
    pub prerequisites: Vec<Vec<String>>,
    pub superseded_by: Vec<u32>,
    pub bundled_by: Vec<u32>,
    /// File ids (base64 SHA-1).
    pub payload_files: Vec<String>,
}

/// `package.xml` read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub package_version: Option<String>,
    pub creation_date: Option<String>,
    pub updates: Vec<RawUpdate>,
    /// File id → URL.
    pub locations: HashMap<String, String>,
}

fn number(text: Option<String>, what: &str, at: u64) -> Result<u32, Refusal> {
    let text = text.ok_or_else(|| Refusal { at, reason: format!("{what} is missing") })?;
    text.trim().parse().map_err(|_| Refusal { at, reason: format!("{what} {text:?} is not a number") })
}

fn flag(text: Option<String>) -> bool {
    text.is_some_and(|t| t.eq_ignore_ascii_case("true") || t == "1")
}

/// Reads `package.xml` from `input`, as a stream.
pub fn read_package(input: impl BufRead) -> Result<Package, Refusal> {
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut package = Package::default();
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<RawUpdate> = None;
    let mut or_group: Option<Vec<String>> = None;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| Refusal { at, reason: format!("package.xml is not well-formed XML: {e}") })?;
        let (element, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                match name.as_str() {
                    "Update" => package.updates.extend(current.take()),
                    "Or" => {
                        if let (Some(group), Some(u)) = (or_group.take(), current.as_mut()) {
                            u.prerequisites.push(group);
                        }
                    }
                    _ => {}
                }
                buf.clear();
                continue;
            }
            Event::Eof => break,
            _ => {
                buf.clear();
                continue;
            }
        };
        let e = element.expect("an element");
        let name = e.local_name().as_ref().to_string();
        if stack.is_empty() && name != "OfflineSyncPackage" {
            return Err(Refusal { at, reason: format!("the root element is {name}, not OfflineSyncPackage") });
        }
        if stack.len() >= MAX_DEPTH {
            return Err(Refusal { at, reason: format!("elements nested deeper than {MAX_DEPTH}") });
        }
        let parent = stack.last().map(String::as_str).unwrap_or("");
        match (parent, name.as_str()) {
            ("", "OfflineSyncPackage") => {
                package.package_version = attr(&e, "PackageVersion");
                package.creation_date = attr(&e, "CreationDate");
            }
            ("Updates", "Update") => {
                let update_id = attr(&e, "UpdateId")
                    .ok_or_else(|| Refusal { at, reason: "an Update has no UpdateId".into() })?
                    .to_ascii_lowercase();
                current = Some(RawUpdate {
                    update_id,
                    revision_id: number(attr(&e, "RevisionId"), "RevisionId", at)?,
                    revision_number: number(attr(&e, "RevisionNumber"), "RevisionNumber", at)?,
                    creation_date: attr(&e, "CreationDate"),
                    default_language: attr(&e, "DefaultLanguage"),
                    is_bundle: flag(attr(&e, "IsBundle")),
                    // Absent means software: only category and detectoid entries say false.
                    is_software: attr(&e, "IsSoftware").is_none_or(|v| !v.eq_ignore_ascii_case("false")),
                    ..RawUpdate::default()
                });
                if empty {
                    package.updates.extend(current.take());
                }
            }
            ("Categories", "Category") => {
                if let (Some(u), Some(kind), Some(id)) = (current.as_mut(), attr(&e, "Type"), attr(&e, "Id")) {
                    u.categories.push((kind, id.to_ascii_lowercase()));
                }
            }
            ("Prerequisites", "Or") => or_group = Some(Vec::new()),
            ("Prerequisites", "UpdateId") => {
                if let (Some(u), Some(id)) = (current.as_mut(), attr(&e, "Id")) {
                    u.prerequisites.push(vec![id.to_ascii_lowercase()]);
                }
            }
            ("Or", "UpdateId") => {
                if let (Some(group), Some(id)) = (or_group.as_mut(), attr(&e, "Id")) {
                    group.push(id.to_ascii_lowercase());
                }
            }
            ("SupersededBy", "Revision") => {
                let id = number(attr(&e, "Id"), "SupersededBy Revision Id", at)?;
                current.iter_mut().for_each(|u| u.superseded_by.push(id));
            }
            ("BundledBy", "Revision") => {
                let id = number(attr(&e, "Id"), "BundledBy Revision Id", at)?;
                current.iter_mut().for_each(|u| u.bundled_by.push(id));
            }
            ("PayloadFiles", "File") => {
                if let (Some(u), Some(id)) = (current.as_mut(), attr(&e, "Id")) {
                    u.payload_files.push(id);
                }
            }
            ("FileLocations", "FileLocation") => {
                if let (Some(id), Some(url)) = (attr(&e, "Id"), attr(&e, "Url")) {
                    package.locations.insert(id, url);
                }
            }
            _ => {}
        }
        if !empty {
            stack.push(name);
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(Refusal {
            at: reader.buffer_position(),
            reason: "package.xml ends inside an element: cut short".into(),
        });
    }
    if package.updates.is_empty() && package.package_version.is_none() {
        return Err(Refusal { at: 0, reason: "package.xml holds no OfflineSyncPackage".into() });
    }
    Ok(package)
}

/// The text of each element (by local name) of a small document, and the root's attributes;
/// for `index.xml` and the per-revision property files.
#[derive(Debug, Default)]
struct Small {
    root_attrs: BTreeMap<String, String>,
    texts: Vec<(String, String)>,
    /// (element, attributes) of every element, in order.
    elements: Vec<(String, BTreeMap<String, String>)>,
}

fn read_small(bytes: &[u8]) -> Result<Small, Refusal> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Text is trimmed once whole: trimming each piece around an entity would eat the
    // spaces beside it ("A &amp; B" would read "A&B").
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut small = Small::default();
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| Refusal { at, reason: format!("not well-formed XML: {e}") })?;
        match event {
            Event::Start(e) | Event::Empty(e) if stack.len() >= MAX_DEPTH => {
                let _ = e;
                return Err(Refusal { at, reason: format!("elements nested deeper than {MAX_DEPTH}") });
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.local_name().as_ref().to_string();
                let attrs: BTreeMap<String, String> = e
                    .attributes()
                    .flatten()
                    .map(|a| {
                        let key = a.key.local_name().as_ref().to_string();
                        (key.clone(), attr(e, &key).unwrap_or_default())
                    })
                    .collect();
                if stack.is_empty() && small.elements.is_empty() {
                    small.root_attrs = attrs.clone();
                }
                small.elements.push((name.clone(), attrs));
                if matches!(event, Event::Start(_)) {
                    stack.push(name);
                    text.clear();
                }
            }
            Event::Text(t) => text.push_str(&t.into_inner()),
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                let name = r.into_inner().to_string();
                text.push(
                    entity(&name)
                        .ok_or_else(|| Refusal { at, reason: format!("the entity &{name}; is not one XML defines") })?,
                );
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                let value = std::mem::take(&mut text).trim().to_string();
                if !value.is_empty() {
                    small.texts.push((name, value));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(Refusal {
            at: reader.buffer_position(),
            reason: "the document ends inside an element: cut short".into(),
        });
    }
    Ok(small)
}

/// `index.xml`: the cabinets of per-revision properties, each with the first revision id it
/// holds (`package.cab` itself has none).
pub fn read_index(bytes: &[u8]) -> Result<Vec<(String, Option<u32>)>, Refusal> {
    let small = read_small(bytes)?;
    let mut cabs = Vec::new();
    for (name, attrs) in small.elements.iter().filter(|(n, _)| n == "CAB") {
        let _ = name;
        let cab =
            attrs.get("NAME").cloned().ok_or_else(|| Refusal { at: 0, reason: "a CAB entry has no NAME".into() })?;
        let start = match attrs.get("RANGESTART") {
            Some(s) => Some(
                s.trim()
                    .parse()
                    .map_err(|_| Refusal { at: 0, reason: format!("RANGESTART {s:?} of {cab} is not a number") })?,
            ),
            None => None,
        };
        cabs.push((cab, start));
    }
    Ok(cabs)
}

/// What the extended properties (`x/<revision>`) and the localised ones
/// (`l/<language>/<revision>`) say of a revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub kb: Option<String>,
    pub severity: Option<Severity>,
    pub cves: Vec<String>,
    pub bulletin: Option<String>,
    pub support_url: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
}

/// Reads the extended properties of a revision into `props`.
pub fn read_extended(bytes: &[u8], props: &mut Properties) -> Result<(), Refusal> {
    let small = read_small(bytes)?;
    props.severity = small.root_attrs.get("MsrcSeverity").and_then(|s| match s.as_str() {
        "Critical" => Some(Severity::Critical),
        "Important" => Some(Severity::Important),
        "Moderate" => Some(Severity::Moderate),
        "Low" => Some(Severity::Low),
        _ => None,
    });
    for (name, value) in small.texts {
        match name.as_str() {
            "KBArticleID" => props.kb = Some(crate::formats::model::normalise_kb(&value)),
            "CveID" => props.cves.push(value),
            "SecurityBulletinID" => props.bulletin = Some(value),
            "SupportUrl" => props.support_url = Some(value),
            _ => {}
        }
    }
    Ok(())
}

/// Reads the localised properties of a revision into `props`.
pub fn read_localized(bytes: &[u8], props: &mut Properties) -> Result<(), Refusal> {
    for (name, value) in read_small(bytes)?.texts {
        match name.as_str() {
            "Title" => props.title = Some(value),
            "Description" => props.description = Some(value),
            _ => {}
        }
    }
    Ok(())
}

/// The ferry classification of a Microsoft update classification, by its title.
pub fn classification(title: &str) -> Option<Classification> {
    Some(match title {
        "Security Updates" => Classification::SecurityUpdate,
        "Critical Updates" => Classification::CriticalUpdate,
        "Update Rollups" => Classification::UpdateRollup,
        "Service Packs" => Classification::ServicePack,
        "Feature Packs" => Classification::FeaturePack,
        "Definition Updates" => Classification::DefinitionUpdate,
        _ => return None,
    })
}

/// A file of a Microsoft update, as the catalog names it: by SHA-1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanFile {
    pub name: String,
    pub url: String,
    /// The SHA-1 the catalog gives (its file id), in hex.
    pub sha1: String,
    /// Where the digest comes from: `vendor-sha1` (SHA-256 is computed by fetch when it
    /// downloads the file).
    pub digest: &'static str,
}

/// A Microsoft update as an administrator chooses it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanUpdate {
    /// Microsoft's UpdateID.
    pub id: UpdateId,
    /// Microsoft's revision number.
    pub revision: u32,
    pub title: String,
    pub kb: Option<String>,
    pub products: Vec<String>,
    pub classification: Classification,
    pub severity: Severity,
    pub cves: Vec<String>,
    /// The revision's CreationDate (YYYY-MM-DD).
    pub created: Option<String>,
    pub supersedes: Vec<UpdateId>,
    pub superseded_by: Vec<UpdateId>,
    pub support_url: Option<String>,
    /// Every inner list must be met, by any one of its UpdateIDs (detection rules, products
    /// or other updates).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Vec<String>>,
    pub files: Vec<ScanFile>,
}

/// An update of the catalog not offered, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanSkipped {
    pub id: String,
    pub title: Option<String>,
    pub reason: String,
}

/// Decodes a file id (base64 of the 20-byte SHA-1) to hex.
pub fn file_sha1(id: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(id.trim()).ok()?;
    (bytes.len() == 20).then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Maps the catalog to the updates it offers. `properties` gives a revision's properties
/// (read from the per-revision cabinets). Category entries and updates bundled into
/// another are not offered themselves; a top-level update whose classification ferry does
/// not carry, or whose files cannot be named, is skipped with the reason.
pub fn map(
    package: &Package,
    properties: &mut dyn FnMut(&RawUpdate) -> Result<Properties, Refusal>,
) -> Result<(Vec<ScanUpdate>, Vec<ScanSkipped>), Refusal> {
    let by_revision: HashMap<u32, &RawUpdate> = package.updates.iter().map(|u| (u.revision_id, u)).collect();
    let by_id: HashMap<&str, &RawUpdate> = package.updates.iter().map(|u| (u.update_id.as_str(), u)).collect();
    let mut bundled: HashMap<u32, Vec<&RawUpdate>> = HashMap::new();
    for u in &package.updates {
        for b in &u.bundled_by {
            bundled.entry(*b).or_default().push(u);
        }
    }
    let mut titles: HashMap<String, Option<String>> = HashMap::new();
    let mut category_title = |id: &str, props: &mut dyn FnMut(&RawUpdate) -> Result<Properties, Refusal>| {
        if let Some(t) = titles.get(id) {
            return Ok::<_, Refusal>(t.clone());
        }
        let title = match by_id.get(id) {
            Some(u) => props(u)?.title,
            None => None,
        };
        titles.insert(id.to_string(), title.clone());
        Ok(title)
    };
    let mut offered = Vec::new();
    let mut skipped = Vec::new();
    for u in package.updates.iter().filter(|u| u.is_software && u.bundled_by.is_empty()) {
        let props = properties(u)?;
        let skip = |reason: String| ScanSkipped { id: u.update_id.clone(), title: props.title.clone(), reason };
        let Ok(id) = u.update_id.parse::<UpdateId>() else {
            skipped.push(skip(format!("UpdateId {:?} cannot be an update id", u.update_id)));
            continue;
        };
        let mut products = Vec::new();
        let mut class_title = None;
        for (kind, cat) in &u.categories {
            match kind.as_str() {
                "Product" => products.extend(category_title(cat, properties)?),
                "UpdateClassification" => class_title = category_title(cat, properties)?,
                _ => {}
            }
        }
        let Some(classification) = class_title.as_deref().and_then(classification) else {
            let named = class_title.unwrap_or_else(|| "none".into());
            skipped.push(skip(format!("classification {named} is not one ferry carries")));
            continue;
        };
        // Its own files and those of what it bundles (bundles of bundles, a few levels).
        let mut file_ids: Vec<&str> = u.payload_files.iter().map(String::as_str).collect();
        let mut frontier = vec![u.revision_id];
        for _ in 0..4 {
            let mut next = Vec::new();
            for r in frontier {
                for child in bundled.get(&r).into_iter().flatten() {
                    file_ids.extend(child.payload_files.iter().map(String::as_str));
                    next.push(child.revision_id);
                }
            }
            frontier = next;
        }
        let mut files = Vec::new();
        let mut problem = None;
        for fid in file_ids {
            let Some(sha1) = file_sha1(fid) else {
                problem = Some(format!("file id {fid:?} is not a base64 SHA-1"));
                break;
            };
            let Some(url) = package.locations.get(fid) else {
                problem = Some(format!("file {sha1} has no location"));
                break;
            };
            let name = url.rsplit('/').next().unwrap_or("").to_string();
            // Microsoft's file names end in the file's SHA-1: the two must agree.
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            if let Some(named) =
                stem.rsplit(['_', '-']).next().filter(|t| t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit()))
                && !named.eq_ignore_ascii_case(&sha1)
            {
                problem = Some(format!("{name} names SHA-1 {named}, but its file id is {sha1}"));
                break;
            }
            if !files.iter().any(|f: &ScanFile| f.sha1 == sha1) {
                files.push(ScanFile { name, url: url.clone(), sha1, digest: "vendor-sha1" });
            }
        }
        if let Some(reason) = problem {
            skipped.push(skip(reason));
            continue;
        }
        if files.is_empty() {
            skipped.push(skip("no file to install".into()));
            continue;
        }
        let superseded_by = u
            .superseded_by
            .iter()
            .filter_map(|r| by_revision.get(r))
            .filter_map(|n| n.update_id.parse().ok())
            .collect();
        offered.push(ScanUpdate {
            id,
            revision: u.revision_number,
            title: props.title.clone().unwrap_or_else(|| props.kb.clone().unwrap_or_else(|| u.update_id.clone())),
            kb: props.kb.clone(),
            products,
            classification,
            severity: props.severity.unwrap_or(Severity::Unspecified),
            cves: props.cves.clone(),
            created: u.creation_date.as_ref().and_then(|d| d.get(..10)).map(str::to_string),
            supersedes: Vec::new(),
            superseded_by,
            support_url: props.support_url.clone(),
            prerequisites: u.prerequisites.clone(),
            files,
        });
    }
    // Supersedence is given on the superseded side; the model keeps it on the newer one.
    let position: HashMap<UpdateId, usize> = offered.iter().enumerate().map(|(i, u)| (u.id.clone(), i)).collect();
    let pairs: Vec<(usize, UpdateId)> = offered
        .iter()
        .flat_map(|old| old.superseded_by.iter().filter_map(|new| Some((*position.get(new)?, old.id.clone()))))
        .collect();
    for (new, old) in pairs {
        offered[new].supersedes.push(old);
    }
    Ok((offered, skipped))
}

/// Keeps the updates `selection` picks. Unless `include_superseded`, an update that another
/// picked update supersedes is left out too, and said so: carrying both would only spend
/// the medium on what the newer one replaces.
pub fn select(
    updates: Vec<ScanUpdate>,
    selection: &crate::formats::catalog::Selection,
    include_superseded: bool,
) -> (Vec<ScanUpdate>, Vec<ScanSkipped>) {
    let picked: Vec<ScanUpdate> = updates
        .into_iter()
        .filter(|u| {
            (selection.ids.is_empty() || selection.ids.contains(&u.id))
                && (selection.products.is_empty()
                    || u.products.iter().any(|p| selection.products.iter().any(|s| s.eq_ignore_ascii_case(p))))
                && (selection.classifications.is_empty() || selection.classifications.contains(&u.classification))
                && (selection.severities.is_empty() || selection.severities.contains(&u.severity))
                && selection.released_since.is_none_or(|since| {
                    u.created
                        .as_deref()
                        .and_then(|d| d.parse::<crate::base::clock::Date>().ok())
                        .is_some_and(|d| d >= since)
                })
                && selection.matches_kb(u.kb.as_deref())
                && selection.matches_cves(&u.cves)
        })
        .collect();
    if include_superseded {
        return (picked, Vec::new());
    }
    let ids: std::collections::HashSet<&UpdateId> = picked.iter().map(|u| &u.id).collect();
    let (superseded, kept): (Vec<&ScanUpdate>, Vec<&ScanUpdate>) =
        picked.iter().partition(|u| u.superseded_by.iter().any(|n| ids.contains(n)));
    let skipped = superseded
        .iter()
        .map(|u| {
            let by = u.superseded_by.iter().find(|n| ids.contains(n)).expect("partitioned on it");
            ScanSkipped {
                id: u.id.to_string(),
                title: Some(u.title.clone()),
                reason: format!("superseded by {by}, also selected (--superseded include carries both)"),
            }
        })
        .collect();
    let kept = kept.into_iter().cloned().collect();
    (kept, skipped)
}

/// The update `u` is once its files were downloaded: `files` gives, for each of `u.files`
/// in order, the SHA-256 computed once its SHA-1 matched, and its size.
pub fn to_update(u: &ScanUpdate, files: &[(crate::base::names::Sha256, u64)]) -> Result<Update, String> {
    use std::str::FromStr;
    let mut update_files = Vec::with_capacity(u.files.len());
    for (f, (sha256, size)) in u.files.iter().zip(files) {
        let sha1 = crate::base::names::Sha1::from_str(&f.sha1).map_err(|e| e.to_string())?;
        update_files.push(UpdateFile {
            name: FileName::from_str(&f.name).map_err(|e| format!("file {}: {e}", f.url))?,
            url: f.url.clone(),
            sha256: *sha256,
            size: *size,
            sha1: Some(sha1),
            sha256_from: DigestSource::Fetch,
            architecture: None,
            language: None,
        });
    }
    let update = Update {
        id: u.id.clone(),
        revision: u.revision.max(1),
        title: u.title.clone(),
        vendor: "Microsoft".into(),
        product: u.products.first().cloned().unwrap_or_else(|| "Microsoft".into()),
        version: u.kb.clone().unwrap_or_else(|| format!("revision {}", u.revision)),
        classification: u.classification,
        severity: u.severity,
        kb: u.kb.clone(),
        cves: u.cves.clone(),
        release_date: u.created.as_deref().and_then(|d| d.parse().ok()),
        supersedes: u.supersedes.clone(),
        withdrawn: false,
        eula: None,
        applicability: Applicability {
            products: u.products.clone(),
            prerequisites: u.prerequisites.clone(),
            ..Applicability::default()
        },
        // The usual command for the file's kind: wusa for .msu, DISM for .cab.
        install: None,
        files: update_files,
    };
    update.check_described().map_err(|(field, reason)| format!("{field}: {reason}"))?;
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACKAGE: &str = r#"<OfflineSyncPackage xmlns="http://schemas.microsoft.com/msus/2004/02/OfflineSync" PackageVersion="3.1">
<Updates>
<Update UpdateId="AAAAAAAA-0000-4000-8000-000000000001" RevisionId="5" RevisionNumber="201" IsBundle="true">
<Categories><Category Type="Product" Id="P"/></Categories>
<Prerequisites><UpdateId Id="X"/><Or><UpdateId Id="Y"/><UpdateId Id="Z"/></Or></Prerequisites>
<SupersededBy><Revision Id="9"/></SupersededBy>
</Update>
<Update UpdateId="b" RevisionId="6" RevisionNumber="1"><BundledBy><Revision Id="5"/></BundledBy><PayloadFiles><File Id="qZk+NkcGgWq6PiVxeFDCbJzQ2J0="/></PayloadFiles></Update>
</Updates>
<FileLocations><FileLocation Id="qZk+NkcGgWq6PiVxeFDCbJzQ2J0=" Url="http://e/a_a9993e364706816aba3e25717850c26c9cd0d89d.msu"/></FileLocations>
</OfflineSyncPackage>"#;

    #[test]
    fn package_xml_is_read_as_a_stream() {
        let p = read_package(PACKAGE.as_bytes()).unwrap();
        assert_eq!(p.package_version.as_deref(), Some("3.1"));
        let [bundle, leaf] = &p.updates[..] else { panic!("{:?}", p.updates) };
        assert_eq!(bundle.update_id, "aaaaaaaa-0000-4000-8000-000000000001", "ids compare in lower case");
        assert_eq!((bundle.revision_id, bundle.revision_number, bundle.is_bundle), (5, 201, true));
        assert_eq!(bundle.prerequisites, [vec!["x".to_string()], vec!["y".to_string(), "z".to_string()]]);
        assert_eq!(bundle.superseded_by, [9]);
        assert_eq!(leaf.bundled_by, [5]);
        assert_eq!(file_sha1(&leaf.payload_files[0]).as_deref(), Some("a9993e364706816aba3e25717850c26c9cd0d89d"));
    }

    #[test]
    fn hostile_documents_are_refused() {
        let cut = PACKAGE.find("</Updates>").unwrap();
        assert!(read_package(&PACKAGE.as_bytes()[..cut]).unwrap_err().reason.contains("cut short"));
        assert!(read_package(&PACKAGE.as_bytes()[..PACKAGE.len() / 2]).is_err(), "cut inside a tag");
        assert!(read_package("<Other/>".as_bytes()).unwrap_err().reason.contains("not OfflineSyncPackage"));
        let deep = format!("<OfflineSyncPackage>{}", "<a>".repeat(40));
        assert!(read_package(deep.as_bytes()).unwrap_err().reason.contains("nested deeper"));
        let bad = PACKAGE.replace("RevisionId=\"5\"", "RevisionId=\"five\"");
        assert!(read_package(bad.as_bytes()).unwrap_err().reason.contains("RevisionId"));
        let entity = "<!DOCTYPE x [<!ENTITY e \"boom\">]><X><Title>&e;</Title></X>";
        let mut props = Properties::default();
        assert!(read_localized(entity.as_bytes(), &mut props).unwrap_err().reason.contains("&e;"));
    }

    #[test]
    fn the_index_names_each_property_cabinet_with_its_range() {
        let index = read_index(br#"<CABLIST><CAB NAME="package.cab"/><CAB NAME="package2.cab" RANGESTART="1"/><CAB NAME="package3.cab" RANGESTART="500"/></CABLIST>"#).unwrap();
        assert_eq!(
            index,
            [
                ("package.cab".to_string(), None),
                ("package2.cab".to_string(), Some(1)),
                ("package3.cab".to_string(), Some(500))
            ]
        );
        assert!(read_index(br#"<CABLIST><CAB NAME="x.cab" RANGESTART="many"/></CABLIST>"#).is_err());
    }
}
