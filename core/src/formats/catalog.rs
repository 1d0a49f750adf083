//! The native catalog (JSON in the update model) and the selection of updates from it.
//!
//! Pure: bytes in, checked values out. A malformed catalog is refused with the JSON path of
//! the problem and, where the parser knows it, the line and column. Reading the bytes from a
//! path or URL is `source`'s job.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::base::clock::Date;
use crate::base::error::{Error, Result};
use crate::base::names::{Sha256, UpdateId};
use crate::formats::model::{Classification, Severity, Update};

/// The catalog format version this ferry reads and writes.
pub const CATALOG_FORMAT: u32 = 1;

/// Largest catalog read, in bytes.
pub const MAX_CATALOG_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub format: u32,
    pub updates: Vec<Update>,
}

fn refuse(origin: &str, location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Catalog { origin: origin.to_string(), location: location.into(), message: message.into() }
}

impl Catalog {
    /// Parses and checks a catalog. `origin` names it in messages (a path or URL).
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Catalog> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let catalog: Catalog = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = if path.is_empty() || path == "." { "top level".to_string() } else { path };
            let message = strip_position(&inner.to_string());
            refuse(origin, format!("{at} (line {}, column {})", inner.line(), inner.column()), message)
        })?;
        de.end().map_err(|e| {
            refuse(origin, format!("line {}, column {}", e.line(), e.column()), "trailing data after the catalog")
        })?;
        catalog.check(origin)?;
        Ok(catalog)
    }

    fn check(&self, origin: &str) -> Result<()> {
        if self.format != CATALOG_FORMAT {
            return Err(refuse(
                origin,
                "format",
                format!("format {} is not supported (this ferry reads {CATALOG_FORMAT})", self.format),
            ));
        }
        let mut ids = BTreeMap::new();
        let mut sizes: BTreeMap<Sha256, (u64, String)> = BTreeMap::new();
        for (i, update) in self.updates.iter().enumerate() {
            update
                .check_described()
                .map_err(|(field, reason)| refuse(origin, format!("updates[{i}].{field}"), reason))?;
            if let Some(first) = ids.insert(update.id.clone(), i) {
                return Err(refuse(
                    origin,
                    format!("updates[{i}].id"),
                    format!("{} is also the id of updates[{first}]", update.id),
                ));
            }
            for (j, file) in update.files.iter().enumerate() {
                let here = format!("updates[{i}].files[{j}]");
                match sizes.get(&file.sha256) {
                    Some((size, there)) if *size != file.size => {
                        return Err(refuse(
                            origin,
                            format!("{here}.size"),
                            format!("{} bytes, but {there} has the same SHA-256 with {size} bytes", file.size),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        sizes.insert(file.sha256, (file.size, here));
                    }
                }
            }
        }
        Ok(())
    }

    /// The updates that `selection` picks, in catalog order.
    pub fn select(&self, selection: &Selection) -> Vec<&Update> {
        self.updates.iter().filter(|u| selection.matches(u)).collect()
    }
}

/// serde_json appends " at line L column C" to its messages; the location is shown separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Which updates to take from a catalog. Every criterion that is set must match; within one
/// criterion, any listed value matches. Products compare without regard to letter case.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub ids: Vec<UpdateId>,
    pub products: Vec<String>,
    pub classifications: Vec<Classification>,
    pub severities: Vec<Severity>,
    pub released_since: Option<Date>,
    /// KB numbers as the list stores them (`KB5034122`).
    pub kbs: Vec<String>,
    /// CVE ids: updates that fix any of them.
    pub cves: Vec<String>,
}

impl Selection {
    pub fn matches(&self, update: &Update) -> bool {
        (self.ids.is_empty() || self.ids.contains(&update.id))
            && (self.products.is_empty() || self.products.iter().any(|p| p.eq_ignore_ascii_case(&update.product)))
            && (self.classifications.is_empty() || self.classifications.contains(&update.classification))
            && (self.severities.is_empty() || self.severities.contains(&update.severity))
            && self.released_since.is_none_or(|since| update.release_date.is_some_and(|d| d >= since))
            && self.matches_kb(update.kb.as_deref())
            && self.matches_cves(&update.cves)
    }

    /// Whether an update fixing `cves` passes the `--cve` criterion.
    pub fn matches_cves(&self, cves: &[String]) -> bool {
        self.cves.is_empty() || cves.iter().any(|c| self.cves.iter().any(|w| w.eq_ignore_ascii_case(c)))
    }

    /// Whether an update with `kb` passes the `--kb` criterion.
    pub fn matches_kb(&self, kb: Option<&str>) -> bool {
        self.kbs.is_empty() || kb.is_some_and(|kb| self.kbs.iter().any(|k| k.eq_ignore_ascii_case(kb)))
    }

    /// Ids asked for by name that the catalog does not have: a typo should not pass silently.
    pub fn unknown_ids<'a>(&'a self, catalog: &Catalog) -> Vec<&'a UpdateId> {
        let known: BTreeSet<_> = catalog.updates.iter().map(|u| &u.id).collect();
        self.ids.iter().filter(|id| !known.contains(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn update(id: &str, product: &str, digest: &str, size: u64) -> String {
        format!(
            r#"{{"id": "{id}", "revision": 1, "title": "t", "vendor": "v", "product": "{product}",
               "version": "1", "classification": "application", "release_date": "2024-01-09",
               "files": [{{"name": "f.exe", "url": "f.exe", "sha256": "{digest}", "size": {size}}}]}}"#
        )
    }

    fn catalog(updates: &[String]) -> String {
        format!(r#"{{"format": 1, "updates": [{}]}}"#, updates.join(","))
    }

    fn refusal(text: &str) -> (String, String) {
        match Catalog::parse(text.as_bytes(), "c.json").unwrap_err() {
            Error::Catalog { location, message, .. } => (location, message),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn parses_and_selects() {
        let c = Catalog::parse(
            catalog(&[update("a", "7-Zip", DIGEST, 3), update("b", "VLC", DIGEST, 3)]).as_bytes(),
            "c.json",
        )
        .unwrap();
        let sel = Selection { products: vec!["vlc".into()], ..Default::default() };
        let picked: Vec<_> = c.select(&sel).iter().map(|u| u.id.to_string()).collect();
        assert_eq!(picked, ["b"]);
    }

    #[test]
    fn refusals_name_path_and_position() {
        let bad_digest = catalog(&[update("a", "p", "xyz", 3)]);
        let (location, message) = refusal(&bad_digest);
        assert!(location.starts_with("updates[0].files[0].sha256 (line "), "{location}");
        assert!(message.contains("64 hexadecimal digits"), "{message}");

        let (location, _) = refusal(r#"{"format": 1, "updates": [}"#);
        assert!(location.contains("line 1, column 27"), "{location}");

        let (location, message) = refusal(&catalog(&[update("a", "p", DIGEST, 3), update("a", "q", DIGEST, 3)]));
        assert_eq!(location, "updates[1].id");
        assert!(message.contains("updates[0]"));

        let (location, _) = refusal(&catalog(&[update("a", "p", DIGEST, 3), update("b", "q", DIGEST, 4)]));
        assert_eq!(location, "updates[1].files[0].size");

        let (location, _) = refusal(r#"{"format": 2, "updates": []}"#);
        assert_eq!(location, "format");

        let (location, _) = refusal(&catalog(&[update("../x", "p", DIGEST, 3)]));
        assert!(location.starts_with("updates[0].id"), "{location}");
    }
}
