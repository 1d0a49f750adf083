//! Inventories: what one computer has, as the computer (or a person at it) reported it.
//!
//! Three formats are read, each into one [`Inventory`] per computer:
//! - ferry's own computer report (`report`, JSON, `docs/computers.md`), which the client
//!   writes: the operating system, installed updates, installed programs, winget packages
//!   and the result of the Windows Update Agent's offline scan;
//! - `Get-HotFix | Export-Csv` as PowerShell writes it (`hotfix_csv`): installed updates,
//!   one computer or several per file;
//! - `winget export --include-versions` (`winget_export`): winget packages, naming no
//!   computer.
//!
//! Inventories are unauthenticated input: anyone on the LAN can write one. Every value is
//! checked here (lengths, counts, characters, dates), and a refusal names the file, the line
//! where known, and the field. An inventory carries only the facets its format knows; a
//! facet it does not carry leaves the computer's earlier one in place.

use std::path::Path;

use serde::Serialize;

use crate::base::clock::{Date, Timestamp};
use crate::base::error::{Error, Result};
use crate::base::names::{ComputerName, Sha256};
use crate::formats::model::kebab_names;

pub mod hotfix_csv;
pub mod report;
pub mod winget_export;

/// Largest inventory file read. A real report is tens of kilobytes; 16 MiB holds 50,000
/// entries of every kind with room to spare.
pub const MAX_INVENTORY_BYTES: u64 = 16 << 20;
/// Most entries of one kind (updates, programs, packages, missing updates) in one inventory.
pub const MAX_ENTRIES: usize = 20_000;
/// Longest text value kept (a program's name, a publisher, a title), in characters.
pub const MAX_TEXT: usize = 512;

/// The format an inventory came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InventoryFormat {
    FerryReport,
    HotfixCsv,
    WingetExport,
}

kebab_names!(InventoryFormat {
    FerryReport => "ferry-report",
    HotfixCsv => "hotfix-csv",
    WingetExport => "winget-export",
});

/// One kind of fact about a computer. Each is replaced whole by a newer inventory that
/// carries it, and kept when a newer inventory does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Facet {
    Os,
    Hotfixes,
    Programs,
    Packages,
    Scan,
}

kebab_names!(Facet {
    Os => "os",
    Hotfixes => "hotfixes",
    Programs => "programs",
    Packages => "packages",
    Scan => "scan",
});

/// The operating system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Os {
    /// As Windows names itself (`Windows Server 2019 Standard`, `Windows 10 Enterprise`).
    pub product: String,
    /// The full build, `10.0.19045.3930`: major, minor, build and revision.
    pub build: String,
    /// `x64`, `x86` or `arm64`, where known.
    pub architecture: Option<String>,
}

impl Os {
    /// The build number proper (`19045` of `10.0.19045.3930`).
    pub fn build_number(&self) -> Option<&str> {
        self.build.split('.').nth(2)
    }
}

/// An installed update as Windows lists it (Win32_QuickFixEngineering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hotfix {
    /// `KB5034122`.
    pub kb: String,
    pub description: Option<String>,
    pub installed_on: Option<Date>,
}

/// An installed program: one uninstall registry key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    pub name: String,
    pub version: Option<String>,
    pub publisher: Option<String>,
    /// The key's name when it is an MSI product code, `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`
    /// in upper case.
    pub product_code: Option<String>,
}

/// A package winget lists as installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// `7zip.7zip`.
    pub id: String,
    pub version: String,
    /// The winget source it came from (`winget`, `msstore`), where known.
    pub source: Option<String>,
}

/// The result of the Windows Update Agent's offline scan against Microsoft's scan catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scan {
    pub scanned: Timestamp,
    /// The SHA-256 of the scan catalog (wsusscn2.cab) scanned against.
    pub catalog_sha256: Option<Sha256>,
    /// The updates the scan found applicable and not installed.
    pub missing: Vec<ScanMissing>,
}

/// One update the offline scan found missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanMissing {
    /// Microsoft's UpdateID, a GUID in lower case.
    pub update_id: String,
    pub kb: Option<String>,
    pub title: Option<String>,
}

/// What one inventory says about one computer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub computer: ComputerName,
    pub format: InventoryFormat,
    /// When the computer made it, as the inventory says; none when its format does not say
    /// (then the file's time stands in, as the importer states).
    pub time: Option<Timestamp>,
    pub os: Option<Os>,
    pub hotfixes: Option<Vec<Hotfix>>,
    pub programs: Option<Vec<Program>>,
    pub packages: Option<Vec<Package>>,
    pub scan: Option<Scan>,
}

impl Inventory {
    fn empty(computer: ComputerName, format: InventoryFormat) -> Inventory {
        Inventory { computer, format, time: None, os: None, hotfixes: None, programs: None, packages: None, scan: None }
    }

    /// The facets this inventory carries.
    pub fn facets(&self) -> Vec<Facet> {
        let mut facets = Vec::new();
        let mut add = |present: bool, f: Facet| {
            if present {
                facets.push(f)
            }
        };
        add(self.os.is_some(), Facet::Os);
        add(self.hotfixes.is_some(), Facet::Hotfixes);
        add(self.programs.is_some(), Facet::Programs);
        add(self.packages.is_some(), Facet::Packages);
        add(self.scan.is_some(), Facet::Scan);
        facets
    }
}

/// A refusal of `file`: the line where known, the field and why.
pub(crate) fn refuse(file: &Path, line: Option<usize>, field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Feed { file: file.to_path_buf(), line, field: field.into(), reason: reason.into() }
}

/// A JSON document of ferry's own LAN formats, read whole; a refusal names the line and the
/// field's path (`programs[3].version`).
pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(file: &Path, body: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let line = e.inner().line();
        refuse(file, Some(line), e.path().to_string(), e.inner().to_string())
    })
}

/// Refuses a document of a `version` other than the one this ferry reads.
pub(crate) fn expect_version(file: &Path, version: u32, reads: u32) -> Result<()> {
    if version == reads {
        return Ok(());
    }
    Err(refuse(
        file,
        None,
        "version",
        format!("version {version} is not read by this ferry (it reads version {reads})"),
    ))
}

/// The document's `computer` field as a computer name.
pub(crate) fn computer_field(file: &Path, value: &str) -> Result<ComputerName> {
    value.parse().map_err(|e: Error| refuse(file, None, "computer", e.to_string()))
}

/// Reads the inventories in one file, whatever its format. `computer` names the computer
/// for a format that names none (winget export), and must agree with a format that does.
pub fn read(file: &Path, bytes: &[u8], computer: Option<&ComputerName>) -> Result<Vec<Inventory>> {
    let text = decode(bytes).map_err(|reason| refuse(file, None, "", reason))?;
    let body = text.trim_start();
    if body.starts_with('{') {
        let probe: serde_json::Value = serde_json::from_str(body).map_err(|e| {
            refuse(
                file,
                Some(e.line()),
                "",
                format!("not JSON: {e}; ferry reads its own computer report, winget export"),
            )
        })?;
        if probe.get("format").and_then(|f| f.as_str()) == Some(report::FORMAT_NAME) {
            return Ok(vec![report::read(file, body, computer)?]);
        }
        if probe.get("Sources").is_some() || probe.get("WinGetVersion").is_some() {
            return Ok(vec![winget_export::read(file, body, computer)?]);
        }
        return Err(refuse(
            file,
            None,
            "",
            format!(
                "a JSON document that is neither a ferry computer report (\"format\": \"{}\") nor a winget export",
                report::FORMAT_NAME
            ),
        ));
    }
    if hotfix_csv::looks_like(body) {
        return hotfix_csv::read(file, body, computer);
    }
    Err(refuse(
        file,
        Some(1),
        "",
        "not an inventory ferry reads: a ferry computer report (JSON), `Get-HotFix | Export-Csv` or \
         `winget export --include-versions`",
    ))
}

/// The text of an inventory: UTF-8 (with or without a byte order mark, as PowerShell 7
/// and winget write), or UTF-16 with one (Windows PowerShell's `Out-File` and `>`, and
/// `Export-Csv -Encoding Unicode`). Anything else is refused rather than guessed.
pub fn decode(bytes: &[u8]) -> std::result::Result<String, String> {
    let (encoding, bom) = match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (encoding, bom),
        None => (encoding_rs::UTF_8, 0),
    };
    let body = &bytes[bom..];
    if encoding == encoding_rs::UTF_8 {
        return match std::str::from_utf8(body) {
            Ok(text) => Ok(text.to_string()),
            Err(e) => Err(format!(
                "not UTF-8 (byte {} is not valid there): save the file as UTF-8, or as UTF-16 with a byte order mark",
                bom + e.valid_up_to()
            )),
        };
    }
    let (text, malformed) = encoding.decode_without_bom_handling(body);
    if malformed {
        return Err(format!("not valid {} after its byte order mark", encoding.name()));
    }
    Ok(text.into_owned())
}

/// Checks a text value: trimmed, not empty, at most [`MAX_TEXT`] characters, no control or
/// invisible formatting characters.
pub(crate) fn text(value: &str) -> std::result::Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("empty".into());
    }
    if value.chars().count() > MAX_TEXT {
        return Err(format!("longer than {MAX_TEXT} characters"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control() || crate::base::text::is_invisible_format(*c)) {
        return Err(format!("character U+{:04X} is not allowed", c as u32));
    }
    Ok(value.to_string())
}

/// A text value that may be absent or empty.
pub(crate) fn optional_text(value: Option<&str>) -> std::result::Result<Option<String>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(v).map(Some),
    }
}

/// `KB5034122` from what Windows writes (`KB5034122`, `kb5034122`); numbers only after the
/// letters, at most 10 digits.
pub(crate) fn kb(value: &str) -> std::result::Result<String, String> {
    let v = value.trim();
    let digits = v.get(..2).filter(|p| p.eq_ignore_ascii_case("KB")).map(|_| &v[2..]).unwrap_or(v);
    if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{value:?} is not a KB number such as KB5034122"));
    }
    Ok(format!("KB{digits}"))
}

/// A GUID (`{…}` optional) in the form kept: `{…}` in upper case for MSI product codes.
pub(crate) fn product_code(value: &str) -> std::result::Result<String, String> {
    let inner = value.trim().trim_start_matches('{').trim_end_matches('}');
    if !is_guid(inner) {
        return Err(format!("{value:?} is not a product code such as {{23170F69-40C1-2702-2409-000001000000}}"));
    }
    Ok(format!("{{{}}}", inner.to_ascii_uppercase()))
}

/// Microsoft's UpdateID, a bare GUID, kept in lower case as the scan catalog writes it.
pub(crate) fn update_guid(value: &str) -> std::result::Result<String, String> {
    let v = value.trim();
    if !is_guid(v) {
        return Err(format!("{value:?} is not an update id (a GUID such as 8e7dd2ee-5f2b-4bd4-a6a4-4e2bb1a0f1d7)"));
    }
    Ok(v.to_ascii_lowercase())
}

/// Whether `s` is a GUID without braces, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// A version as installers and winget give it (`24.09`, `10.0.19041.1`, `1.2.3-beta`):
/// printable, no spaces, at most 128 characters.
pub(crate) fn version(value: &str) -> std::result::Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{value:?} is not a version (printable ASCII without spaces, at most 128)"));
    }
    Ok(v.to_string())
}

/// Refuses more than [`MAX_ENTRIES`] entries of one kind.
pub(crate) fn at_most(count: usize, what: &str) -> std::result::Result<(), String> {
    if count > MAX_ENTRIES {
        return Err(format!("{count} {what}; at most {MAX_ENTRIES} are read"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kb_numbers_are_normalised_and_checked() {
        assert_eq!(kb("kb5034122").unwrap(), "KB5034122");
        assert_eq!(kb(" KB5034122 ").unwrap(), "KB5034122");
        assert_eq!(kb("5034122").unwrap(), "KB5034122");
        assert!(kb("KB").is_err());
        assert!(kb("KB50341x2").is_err());
        assert!(kb("KB12345678901").is_err());
    }

    #[test]
    fn product_codes_take_one_form() {
        assert_eq!(
            product_code("{23170f69-40c1-2702-2409-000001000000}").unwrap(),
            "{23170F69-40C1-2702-2409-000001000000}"
        );
        assert!(product_code("7-Zip").is_err());
    }

    #[test]
    fn text_refuses_controls_and_invisible_characters() {
        assert!(text("a\u{1b}[2Jb").is_err());
        assert!(text("a\u{202e}b").is_err());
        assert!(text(&"x".repeat(MAX_TEXT + 1)).is_err());
        assert_eq!(text("  7-Zip 24.09 (x64) ").unwrap(), "7-Zip 24.09 (x64)");
    }

    #[test]
    fn utf16_with_a_mark_is_read_and_other_bytes_are_refused() {
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "{\"a\":1}".encode_utf16() {
            utf16.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(decode(&utf16).unwrap(), "{\"a\":1}");
        assert_eq!(decode(b"\xEF\xBB\xBFabc").unwrap(), "abc");
        let err = decode(b"ab\xE9c").unwrap_err();
        assert!(err.contains("byte 2"), "{err}");
    }
}
