//! `winget export --include-versions` as winget writes it (packages.schema.2.0.json):
//! `CreationDate`, `Sources[].SourceDetails.Name`, `Sources[].Packages[]{PackageIdentifier,
//! Version}`, `WinGetVersion`. It names no computer: the importer says which. An export
//! without versions cannot tell an old package from a new one and is refused.

use std::path::Path;

use serde::Deserialize;

use super::{Inventory, InventoryFormat, MAX_ENTRIES, Package, refuse, version};
use crate::base::clock::Timestamp;
use crate::base::error::Result;
use crate::base::names::ComputerName;

#[derive(Deserialize)]
struct Export {
    #[serde(rename = "CreationDate")]
    creation_date: Option<String>,
    #[serde(rename = "Sources")]
    sources: Vec<Source>,
}

#[derive(Deserialize)]
struct Source {
    #[serde(rename = "Packages", default)]
    packages: Vec<ExportedPackage>,
    #[serde(rename = "SourceDetails")]
    details: Option<SourceDetails>,
}

#[derive(Deserialize)]
struct SourceDetails {
    #[serde(rename = "Name")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct ExportedPackage {
    #[serde(rename = "PackageIdentifier")]
    id: String,
    #[serde(rename = "Version")]
    version: Option<String>,
}

/// A winget package identifier: `Publisher.Package` parts, as the manifest schema allows
/// (no spaces or control characters, at most 128 characters).
pub(crate) fn package_id(value: &str) -> std::result::Result<String, String> {
    let v = value.trim();
    if v.is_empty()
        || v.len() > 128
        || v.chars().any(|c| c.is_whitespace() || c.is_control() || "\\/:*?\"<>|".contains(c))
    {
        return Err(format!("{value:?} is not a winget package identifier such as 7zip.7zip"));
    }
    Ok(v.to_string())
}

/// winget's `CreationDate` (`2023-08-01T10:45:28.791-00:00`): any RFC 3339 offset, to the
/// whole second.
fn creation_date(value: &str) -> std::result::Result<Timestamp, String> {
    let t: jiff::Timestamp = value
        .trim()
        .parse()
        .map_err(|e| format!("{value:?} is not a time such as 2023-08-01T10:45:28.791-00:00 ({e})"))?;
    Timestamp::from_unix_seconds(t.as_second()).ok_or_else(|| format!("{value:?} is out of range"))
}

/// Reads a winget export for `computer`, which it does not name itself.
pub fn read(file: &Path, body: &str, computer: Option<&ComputerName>) -> Result<Inventory> {
    let de = &mut serde_json::Deserializer::from_str(body);
    let export: Export = serde_path_to_error::deserialize(de)
        .map_err(|e| refuse(file, Some(e.inner().line()), e.path().to_string(), e.inner().to_string()))?;
    let Some(computer) = computer else {
        return Err(refuse(file, None, "", "a winget export names no computer: give its name with --computer"));
    };
    let mut inventory = Inventory::empty(computer.clone(), InventoryFormat::WingetExport);
    inventory.time = export
        .creation_date
        .as_deref()
        .map(creation_date)
        .transpose()
        .map_err(|reason| refuse(file, None, "CreationDate", reason))?;
    let mut packages: Vec<Package> = Vec::new();
    for (s, source) in export.sources.iter().enumerate() {
        let source_name = source.details.as_ref().and_then(|d| d.name.as_deref());
        let source_name = super::optional_text(source_name)
            .map_err(|reason| refuse(file, None, format!("Sources[{s}].SourceDetails.Name"), reason))?;
        for (p, package) in source.packages.iter().enumerate() {
            let at = |f: &str| format!("Sources[{s}].Packages[{p}].{f}");
            let id = package_id(&package.id).map_err(|reason| refuse(file, None, at("PackageIdentifier"), reason))?;
            let Some(v) = package.version.as_deref() else {
                return Err(refuse(
                    file,
                    None,
                    at("Version"),
                    format!(
                        "package {id} has no version: export with `winget export --include-versions`, or no \
                         judgment can tell an old version from a new one"
                    ),
                ));
            };
            let version = version(v).map_err(|reason| refuse(file, None, at("Version"), reason))?;
            if packages.len() == MAX_ENTRIES {
                return Err(refuse(file, None, "Sources", format!("more than {MAX_ENTRIES} packages")));
            }
            packages.push(Package { id, version, source: source_name.clone() });
        }
    }
    inventory.packages = Some(packages);
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT: &str = "{\r\n\t\"$schema\" : \"https://aka.ms/winget-packages.schema.2.0.json\",\r\n\
\t\"CreationDate\" : \"2023-08-01T10:45:28.791-00:00\",\r\n\t\"Sources\" : \r\n\t[\r\n\t\t{\r\n\
\t\t\t\"Packages\" : \r\n\t\t\t[\r\n\t\t\t\t{\r\n\t\t\t\t\t\"PackageIdentifier\" : \"7zip.7zip\",\r\n\
\t\t\t\t\t\"Version\" : \"23.01\"\r\n\t\t\t\t}\r\n\t\t\t],\r\n\t\t\t\"SourceDetails\" : \r\n\t\t\t{\r\n\
\t\t\t\t\"Argument\" : \"https://cdn.winget.microsoft.com/cache\",\r\n\
\t\t\t\t\"Identifier\" : \"Microsoft.Winget.Source_8wekyb3d8bbwe\",\r\n\t\t\t\t\"Name\" : \"winget\",\r\n\
\t\t\t\t\"Type\" : \"Microsoft.PreIndexed.Package\"\r\n\t\t\t}\r\n\t\t}\r\n\t],\r\n\
\t\"WinGetVersion\" : \"1.5.1881\"\r\n}";

    #[test]
    fn an_export_with_versions_is_read() {
        let pc: ComputerName = "PC-0042".parse().unwrap();
        let inv = read(Path::new("w.json"), EXPORT, Some(&pc)).unwrap();
        assert_eq!(inv.time.unwrap().to_string(), "2023-08-01T10:45:28Z");
        let p = &inv.packages.as_ref().unwrap()[0];
        assert_eq!((p.id.as_str(), p.version.as_str(), p.source.as_deref()), ("7zip.7zip", "23.01", Some("winget")));
    }

    #[test]
    fn an_export_without_versions_or_computer_is_refused() {
        let pc: ComputerName = "PC-0042".parse().unwrap();
        let bare = EXPORT.replace(",\r\n\t\t\t\t\t\"Version\" : \"23.01\"", "");
        let err = read(Path::new("w.json"), &bare, Some(&pc)).unwrap_err().to_string();
        assert!(err.contains("--include-versions") && err.contains("Packages[0].Version"), "{err}");
        let err = read(Path::new("w.json"), EXPORT, None).unwrap_err().to_string();
        assert!(err.contains("--computer"), "{err}");
    }
}
