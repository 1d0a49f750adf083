//! MSRC documents as `fetch` reads them: from a path or a URL (through the same sources as
//! catalogs), each under the document cap, merged into one view per KB.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::base::error::Result;
use crate::fetch::source::{Location, Sources};
use crate::formats::msrc::{Document, Kb, MAX_DOCUMENT_BYTES, read_cvrf_any, stronger_restart};
use crate::formats::wsusscn2::{ScanSkipped, ScanUpdate};

/// Every KB the documents name, merged (CVEs, severities and supersedence of all months),
/// with the documents read and the vendor fixes they name without a KB.
#[derive(Debug, Default, serde::Serialize)]
pub struct Security {
    pub documents: Vec<String>,
    pub kbs: BTreeMap<String, Kb>,
    pub skipped: BTreeMap<String, usize>,
}

/// Reads each document at `locations` (CVRF v3.0, XML or JSON).
pub fn read(sources: &Sources, locations: &[Location]) -> Result<Security> {
    let mut all = Security::default();
    for location in locations {
        let bytes = sources.read_capped(location, MAX_DOCUMENT_BYTES)?;
        let doc: Document = read_cvrf_any(&PathBuf::from(location.to_string()), &bytes)?;
        all.documents.push(doc.id.clone());
        for (number, kb) in doc.kbs {
            let merged = all.kbs.entry(number).or_default();
            merged.cves.extend(kb.cves);
            for (product, s) in kb.severity {
                let e = merged.severity.entry(product).or_insert(s);
                *e = (*e).min(s);
            }
            merged.supersedes.extend(kb.supersedes);
            merged.fixed_builds.extend(kb.fixed_builds);
            merged.urls.extend(kb.urls);
            if let Some(restart) = &kb.restart_required {
                merged.restart_required = stronger_restart(merged.restart_required.take(), restart);
            }
        }
        for (kind, n) in doc.skipped {
            *all.skipped.entry(kind).or_default() += n;
        }
    }
    Ok(all)
}

/// Adds what MSRC's documents say to the scan catalog's updates of the same KB: the CVEs
/// the KB fixes, and its severity where MSRC rates it higher than the catalog (MSRC rates
/// per product; the highest rating of the KB is taken, as the catalog's own is). Returns
/// the KBs the documents name that no update carries, so that they are reported, never
/// dropped silently. Supersedence stays the catalog's: MSRC gives it per KB, and one KB is
/// several updates (one per product and architecture).
pub fn enrich(updates: &mut [ScanUpdate], security: &Security) -> Vec<ScanSkipped> {
    let mut carried = std::collections::BTreeSet::new();
    for u in updates.iter_mut() {
        let Some(number) = u.kb.as_deref().and_then(|k| k.strip_prefix("KB")) else { continue };
        let Some(kb) = security.kbs.get(number) else { continue };
        carried.insert(number.to_string());
        for cve in &kb.cves {
            if !u.cves.contains(cve) {
                u.cves.push(cve.clone());
            }
        }
        if let Some(highest) = kb.severity.values().min() {
            u.severity = u.severity.min(*highest);
        }
    }
    security
        .kbs
        .iter()
        .filter(|(number, _)| !carried.contains(*number))
        .map(|(number, kb)| ScanSkipped {
            id: format!("KB{number}"),
            title: None,
            reason: format!(
                "named by MSRC ({} CVEs, {}) but no update of the scan catalog carries it",
                kb.cves.len(),
                kb.severity.values().min().map_or("unrated", |s| s.as_str())
            ),
        })
        .collect()
}
