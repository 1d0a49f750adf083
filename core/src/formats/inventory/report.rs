//! ferry's own computer report (JSON, format version 1), written by the client on each
//! computer; `docs/computers.md` documents it field by field.
//!
//! Unknown fields are refused: the format grows by its `version`, so a report this server
//! cannot read whole is not half-read.

use std::path::Path;

use serde::Deserialize;

use super::{
    Hotfix, Inventory, InventoryFormat, Os, Package, Program, Scan, ScanMissing, at_most, computer_field,
    expect_version, kb, optional_text, parse_document, product_code, refuse, text, update_guid, version,
};
use crate::base::clock::{Date, Timestamp};
use crate::base::error::Result;
use crate::base::names::{ComputerName, Sha256};

/// The value of the report's `format` field.
pub const FORMAT_NAME: &str = "ferry-computer-report";
/// The version of the report this ferry reads and writes.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub version: u32,
    pub computer: String,
    pub created: String,
    /// The program that wrote it (`ferry-client 0.9.0`), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub os: DocOs,
    pub hotfixes: Vec<DocHotfix>,
    pub programs: Vec<DocProgram>,
    /// None where winget is not installed; an empty list where it lists nothing.
    pub packages: Option<Vec<DocPackage>>,
    /// None where no scan catalog was offered to the computer.
    pub scan: Option<DocScan>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocOs {
    pub product: String,
    pub build: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocHotfix {
    pub kb: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_on: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocProgram {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocPackage {
    pub id: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocScan {
    pub scanned: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_sha256: Option<String>,
    pub missing: Vec<DocMissing>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DocMissing {
    pub update_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kb: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A time in a report: RFC 3339 in UTC with whole seconds, as ferry writes everywhere.
fn time(value: &str) -> std::result::Result<Timestamp, String> {
    value.parse::<Timestamp>().map_err(|e| e.to_string())
}

/// An operating system build: `10.0.19045` or `10.0.19045.3930`.
fn build(value: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = value.trim().split('.').collect();
    if !(3..=4).contains(&parts.len())
        || parts.iter().any(|p| p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{value:?} is not a Windows build such as 10.0.19045.3930"));
    }
    Ok(value.trim().to_string())
}

fn architecture(value: Option<&str>) -> std::result::Result<Option<String>, String> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(a) if ["x64", "x86", "arm64"].contains(&a.as_str()) => Ok(Some(a)),
        Some(a) => Err(format!("{a:?} is not x64, x86 or arm64")),
    }
}

/// Reads a ferry computer report.
pub fn read(file: &Path, body: &str, computer: Option<&ComputerName>) -> Result<Inventory> {
    let doc: Document = parse_document(file, body)?;
    let field = |name: String| move |reason: String| refuse(file, None, name.clone(), reason);
    expect_version(file, doc.version, REPORT_VERSION)?;
    let name = computer_field(file, &doc.computer)?;
    if let Some(given) = computer
        && !given.as_str().eq_ignore_ascii_case(name.as_str())
    {
        return Err(refuse(
            file,
            None,
            "computer",
            format!("the report is of {name}, not of {given} as --computer says"),
        ));
    }
    let mut inventory = Inventory::empty(name, InventoryFormat::FerryReport);
    inventory.time = Some(time(&doc.created).map_err(field("created".into()))?);
    if let Some(client) = &doc.client {
        text(client).map_err(field("client".into()))?;
    }
    inventory.os = Some(Os {
        product: text(&doc.os.product).map_err(field("os.product".into()))?,
        build: build(&doc.os.build).map_err(field("os.build".into()))?,
        architecture: architecture(doc.os.architecture.as_deref()).map_err(field("os.architecture".into()))?,
    });

    at_most(doc.hotfixes.len(), "hotfixes").map_err(field("hotfixes".into()))?;
    let mut hotfixes: Vec<Hotfix> = Vec::with_capacity(doc.hotfixes.len());
    for (i, h) in doc.hotfixes.iter().enumerate() {
        let at = |f: &str| format!("hotfixes[{i}].{f}");
        let kb = kb(&h.kb).map_err(field(at("kb")))?;
        let installed_on = match h.installed_on.as_deref() {
            None => None,
            Some(d) => Some(d.parse::<Date>().map_err(|e| refuse(file, None, at("installed_on"), e.to_string()))?),
        };
        let description = optional_text(h.description.as_deref()).map_err(field(at("description")))?;
        // Windows lists an update again when it was installed twice; one is kept.
        if !hotfixes.iter().any(|x| x.kb == kb) {
            hotfixes.push(Hotfix { kb, description, installed_on });
        }
    }
    inventory.hotfixes = Some(hotfixes);

    at_most(doc.programs.len(), "programs").map_err(field("programs".into()))?;
    let mut programs = Vec::with_capacity(doc.programs.len());
    for (i, p) in doc.programs.iter().enumerate() {
        let at = |f: &str| format!("programs[{i}].{f}");
        programs.push(Program {
            name: text(&p.name).map_err(field(at("name")))?,
            version: p.version.as_deref().map(version).transpose().map_err(field(at("version")))?,
            publisher: optional_text(p.publisher.as_deref()).map_err(field(at("publisher")))?,
            product_code: p.product_code.as_deref().map(product_code).transpose().map_err(field(at("product_code")))?,
        });
    }
    inventory.programs = Some(programs);

    if let Some(packages) = &doc.packages {
        at_most(packages.len(), "packages").map_err(field("packages".into()))?;
        let mut out = Vec::with_capacity(packages.len());
        for (i, p) in packages.iter().enumerate() {
            let at = |f: &str| format!("packages[{i}].{f}");
            out.push(Package {
                id: super::winget_export::package_id(&p.id).map_err(field(at("id")))?,
                version: version(&p.version).map_err(field(at("version")))?,
                source: optional_text(p.source.as_deref()).map_err(field(at("source")))?,
            });
        }
        inventory.packages = Some(out);
    }

    if let Some(scan) = &doc.scan {
        at_most(scan.missing.len(), "missing updates").map_err(field("scan.missing".into()))?;
        let mut missing = Vec::with_capacity(scan.missing.len());
        for (i, m) in scan.missing.iter().enumerate() {
            let at = |f: &str| format!("scan.missing[{i}].{f}");
            missing.push(ScanMissing {
                update_id: update_guid(&m.update_id).map_err(field(at("update_id")))?,
                kb: m.kb.as_deref().map(kb).transpose().map_err(field(at("kb")))?,
                title: optional_text(m.title.as_deref()).map_err(field(at("title")))?,
            });
        }
        inventory.scan = Some(Scan {
            scanned: time(&scan.scanned).map_err(field("scan.scanned".into()))?,
            catalog_sha256: scan
                .catalog_sha256
                .as_deref()
                .map(|d| d.parse::<Sha256>().map_err(|e| e.to_string()))
                .transpose()
                .map_err(field("scan.catalog_sha256".into()))?,
            missing,
        });
    }
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"{
  "format": "ferry-computer-report", "version": 1, "computer": "PC-0042",
  "created": "2026-11-20T08:00:00Z", "client": "ferry-client 0.1.0",
  "os": {"product": "Windows 10 Enterprise", "build": "10.0.19045.3930", "architecture": "x64"},
  "hotfixes": [{"kb": "KB5034122", "description": "Security Update", "installed_on": "2024-01-10"},
               {"kb": "kb5034122"}],
  "programs": [{"name": "7-Zip 24.08 (x64 edition)", "version": "24.08.00.0", "publisher": "Igor Pavlov",
                "product_code": "{23170f69-40c1-2702-2408-000001000000}"}],
  "packages": [{"id": "7zip.7zip", "version": "24.08", "source": "winget"}],
  "scan": {"scanned": "2026-11-20T07:55:00Z", "missing": [{"update_id": "AAAAAAAA-0000-4000-8000-000000000001", "kb": "KB5034441"}]}
}"#;

    #[test]
    fn a_report_is_read_whole() {
        let inv = read(Path::new("r.json"), SAMPLE, None).unwrap();
        assert_eq!(inv.computer.as_str(), "PC-0042");
        assert_eq!(inv.hotfixes.as_ref().unwrap().len(), 1, "a repeated KB is kept once");
        assert_eq!(
            inv.programs.as_ref().unwrap()[0].product_code.as_deref(),
            Some("{23170F69-40C1-2702-2408-000001000000}")
        );
        assert_eq!(inv.scan.as_ref().unwrap().missing[0].update_id, "aaaaaaaa-0000-4000-8000-000000000001");
        assert_eq!(inv.os.as_ref().unwrap().build_number(), Some("19045"));
        assert_eq!(inv.facets().len(), 5);
    }

    #[test]
    fn refusals_name_the_field() {
        let bad = SAMPLE.replace("\"24.08.00.0\"", "\"24 08\"");
        let err = read(Path::new("r.json"), &bad, None).unwrap_err().to_string();
        assert!(err.contains("programs[0].version"), "{err}");
        let unknown = SAMPLE.replace("\"client\"", "\"clients\"");
        let err = read(Path::new("r.json"), &unknown, None).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("clients"), "{err}");
        let other = read(Path::new("r.json"), SAMPLE, Some(&"PC-0043".parse().unwrap())).unwrap_err().to_string();
        assert!(other.contains("not of PC-0043"), "{other}");
        let offset = SAMPLE.replace("2026-11-20T08:00:00Z", "2026-11-20T08:00:00+09:00");
        let err = read(Path::new("r.json"), &offset, None).unwrap_err().to_string();
        assert!(err.contains("created"), "{err}");
    }
}
