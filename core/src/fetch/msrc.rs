//! MSRC documents as `fetch` reads them: from a path or a URL (through the same sources as
//! catalogs), each under the document cap, merged into one view per KB.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::base::error::Result;
use crate::fetch::source::{Location, Sources};
use crate::formats::msrc::{Document, Kb, MAX_DOCUMENT_BYTES, read_cvrf, stronger_restart};

/// Every KB the documents name, merged (CVEs, severities and supersedence of all months),
/// with the documents read and the vendor fixes they name without a KB.
#[derive(Debug, Default, serde::Serialize)]
pub struct Security {
    pub documents: Vec<String>,
    pub kbs: BTreeMap<String, Kb>,
    pub skipped: BTreeMap<String, usize>,
}

/// Reads each document at `locations` (CVRF v3.0 XML).
pub fn read(sources: &Sources, locations: &[Location]) -> Result<Security> {
    let mut all = Security::default();
    for location in locations {
        let bytes = sources.read_capped(location, MAX_DOCUMENT_BYTES)?;
        let doc: Document = read_cvrf(&PathBuf::from(location.to_string()), &bytes)?;
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
