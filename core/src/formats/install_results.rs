//! Installation results: what a computer's client (or JP1's package distribution) reports
//! after running an update's installer, and how each return code is judged.
//!
//! The file is ferry's own JSON (`ferry-install-results`, version 1, documented in
//! `docs/computers.md`). It is unauthenticated input from the LAN, read as strictly as an
//! inventory: unknown fields, bad values and more than [`MAX_RESULTS`] results are refused
//! with the field that is wrong, and the file is taken whole or not at all.
//!
//! A return code is judged by the convention the result names:
//! - `installer`: the update's own exit codes first (its `install.exit_codes`), then
//!   Windows' conventions (0 success, 3010 and 1641 reboot, 0x00240006 already installed);
//!   anything else is a failure, named where Windows gives it a name;
//! - `jp1`: JP1/IT Desktop Management's return values 0 to 5.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::base::clock::Timestamp;
use crate::base::error::Result;
use crate::base::names::{ComputerName, Sha256, UpdateId};
use crate::formats::inventory::{computer_field, decode, expect_version, optional_text, parse_document, refuse, text};
use crate::formats::model::{ExitCodes, kebab_names};

/// The value of the file's `format` field.
pub const FORMAT_NAME: &str = "ferry-install-results";
/// The version this ferry reads and writes.
pub const RESULTS_VERSION: u32 = 1;
/// Most results one file may carry: a computer installs a few hundred updates at most.
pub const MAX_RESULTS: usize = 5_000;

/// What an installation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Success,
    /// Installed; the computer must restart to finish.
    Reboot,
    /// The installer found the update in place already.
    AlreadyInstalled,
    Failure,
}

kebab_names!(Outcome {
    Success => "success",
    Reboot => "reboot",
    AlreadyInstalled => "already-installed",
    Failure => "failure",
});

impl Outcome {
    /// Whether the update is in place after it.
    pub fn installed(self) -> bool {
        self != Outcome::Failure
    }
}

/// Whose convention a return code follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Convention {
    /// The installer's own exit code (wusa, msiexec, the vendor's setup).
    #[default]
    Installer,
    /// JP1/IT Desktop Management's return value of a distributed package.
    Jp1,
}

kebab_names!(Convention {
    Installer => "installer",
    Jp1 => "jp1",
});

/// The file as it is written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub version: u32,
    pub computer: String,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub results: Vec<DocResult>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocResult {
    pub update: String,
    /// The SHA-256 of the file the installer ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// When the installer finished.
    pub at: String,
    pub return_code: i64,
    #[serde(default)]
    pub convention: Convention,
    /// The installer's own words, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One installation, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallResult {
    pub update: UpdateId,
    pub sha256: Option<Sha256>,
    pub at: Timestamp,
    /// As Windows gives it: a 32-bit value, read signed (an HRESULT is negative).
    pub return_code: i32,
    pub convention: Convention,
    pub message: Option<String>,
}

/// One computer's results, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsFile {
    pub computer: ComputerName,
    pub created: Timestamp,
    pub results: Vec<InstallResult>,
}

/// Reads a results file (UTF-8 with or without BOM, or UTF-16 with BOM, as inventories).
pub fn read(file: &Path, bytes: &[u8]) -> Result<ResultsFile> {
    let body = decode(bytes).map_err(|reason| refuse(file, None, "", reason))?;
    let doc: Document = parse_document(file, body.trim_start())?;
    let field = |name: String| move |reason: String| refuse(file, None, name.clone(), reason);
    if doc.format != FORMAT_NAME {
        return Err(refuse(file, None, "format", format!("{:?} is not {FORMAT_NAME:?}", doc.format)));
    }
    expect_version(file, doc.version, RESULTS_VERSION)?;
    let computer = computer_field(file, &doc.computer)?;
    let created = doc.created.parse::<Timestamp>().map_err(|e| refuse(file, None, "created", e.to_string()))?;
    if let Some(client) = &doc.client {
        text(client).map_err(field("client".into()))?;
    }
    if doc.results.len() > MAX_RESULTS {
        return Err(refuse(
            file,
            None,
            "results",
            format!("{} results; a file carries at most {MAX_RESULTS}", doc.results.len()),
        ));
    }
    let mut results = Vec::with_capacity(doc.results.len());
    for (i, r) in doc.results.iter().enumerate() {
        let at = |f: &str| format!("results[{i}].{f}");
        let update: UpdateId =
            r.update.parse().map_err(|e: crate::base::error::Error| refuse(file, None, at("update"), e.to_string()))?;
        let sha256 = r
            .sha256
            .as_deref()
            .map(|d| d.parse::<Sha256>().map_err(|e| e.to_string()))
            .transpose()
            .map_err(field(at("sha256")))?;
        let when = r.at.parse::<Timestamp>().map_err(|e| refuse(file, None, at("at"), e.to_string()))?;
        if when > created {
            return Err(refuse(file, None, at("at"), format!("{when} is after the file was written ({created})")));
        }
        let return_code = windows_code(r.return_code).map_err(field(at("return_code")))?;
        let message = optional_text(r.message.as_deref()).map_err(field(at("message")))?;
        let result = InstallResult { update, sha256, at: when, return_code, convention: r.convention, message };
        if results.iter().any(|x: &InstallResult| x.update == result.update && x.at == result.at) {
            return Err(refuse(file, None, at("at"), format!("{} at {when} is reported twice", result.update)));
        }
        results.push(result);
    }
    Ok(ResultsFile { computer, created, results })
}

/// A return code as Windows has it: 32 bits, written signed (-2145124329) or unsigned
/// (2149842967) by different tools; read signed.
fn windows_code(value: i64) -> std::result::Result<i32, String> {
    if let Ok(signed) = i32::try_from(value) {
        return Ok(signed);
    }
    u32::try_from(value).map(|u| u as i32).map_err(|_| format!("{value} is not a 32-bit return code"))
}

/// 1619, ERROR_INSTALL_PACKAGE_OPEN_FAILED: what a client reports when it did not run the
/// installer (its file missing, or not the file the signed index lists).
pub const NOT_RUN: i32 = 1619;

/// 0x00240006, WU_S_ALREADY_INSTALLED: wusa found the update installed.
pub const ALREADY_INSTALLED: i32 = 0x0024_0006;

/// What Windows calls a return code, where it has a well-known name.
fn windows_name(code: i32) -> Option<&'static str> {
    Some(match code as u32 {
        0 => "success",
        1602 => "ERROR_INSTALL_USEREXIT: the installation was cancelled",
        1603 => "ERROR_INSTALL_FAILURE: a fatal error during installation",
        1618 => "ERROR_INSTALL_ALREADY_RUNNING: another installation was in progress",
        1619 => "ERROR_INSTALL_PACKAGE_OPEN_FAILED: the package could not be opened",
        1460 => "ERROR_TIMEOUT: the installer was stopped after the time allowed",
        1638 => "ERROR_PRODUCT_VERSION: another version of the product is installed",
        1641 => "ERROR_SUCCESS_REBOOT_INITIATED: installed; the installer started a restart",
        3010 => "ERROR_SUCCESS_REBOOT_REQUIRED: installed; a restart is needed to finish",
        0x0024_0006 => "WU_S_ALREADY_INSTALLED: the update was installed already",
        0x8024_0017 => "WU_E_NOT_APPLICABLE: the update does not apply to this computer",
        0x8024_200B => "WU_E_UH_INSTALLERFAILURE: the installer failed",
        0x8007_0005 => "E_ACCESSDENIED: access denied",
        0x8007_0643 => "ERROR_INSTALL_FAILURE (as an HRESULT): a fatal error during installation",
        0x8009_2004 => "CRYPT_E_NOT_FOUND: the package's signature could not be checked",
        _ => return None,
    })
}

/// JP1/IT Desktop Management's return values of a distributed package.
fn jp1_meaning(code: i32) -> (Outcome, &'static str) {
    match code {
        0 => (Outcome::Success, "JP1: success"),
        1 => (Outcome::Failure, "JP1: failure"),
        2 => (Outcome::Failure, "JP1: environment invalid"),
        3 => (Outcome::Failure, "JP1: internal error"),
        4 => (Outcome::Failure, "JP1: WSH invalid"),
        5 => (Outcome::Failure, "JP1: internal error"),
        _ => (Outcome::Failure, "JP1: not a return value JP1 defines (0 to 5)"),
    }
}

/// What `code` means for an update whose installer declares `exit_codes` (none when the
/// update names no installer).
pub fn judge(code: i32, convention: Convention, exit_codes: Option<&ExitCodes>) -> (Outcome, String) {
    if convention == Convention::Jp1 {
        let (outcome, meaning) = jp1_meaning(code);
        return (outcome, format!("{meaning} (return value {code})"));
    }
    let named = |what: &str| match windows_name(code) {
        Some(name) if code != 0 => format!("{what}: {name} ({})", shown(code)),
        _ => format!("{what} ({})", shown(code)),
    };
    let wide = i64::from(code);
    let unsigned = i64::from(code as u32);
    let lists = |list: &[i64]| list.contains(&wide) || list.contains(&unsigned);
    if let Some(codes) = exit_codes {
        if lists(&codes.failure) {
            return (Outcome::Failure, named("a failure code of the update's installer"));
        }
        if lists(&codes.reboot) {
            return (Outcome::Reboot, named("the installer's code for installed, restart needed"));
        }
        if lists(&codes.success) && code != ALREADY_INSTALLED {
            return (Outcome::Success, named("a success code of the update's installer"));
        }
    }
    match code as u32 {
        0 => (Outcome::Success, "success (0)".into()),
        3010 | 1641 => (Outcome::Reboot, named("installed, restart needed")),
        0x0024_0006 => (Outcome::AlreadyInstalled, named("already installed")),
        _ => (Outcome::Failure, named("failure")),
    }
}

/// A return code as people look it up: decimal, and hexadecimal where it reads as an
/// HRESULT or a Windows Update status.
fn shown(code: i32) -> String {
    if !(0..=0xFFFF).contains(&code) { format!("{code}, 0x{:08X}", code as u32) } else { code.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"{"format": "ferry-install-results", "version": 1, "computer": "PC-0001",
      "created": "2026-11-22T10:05:00Z", "client": "ferry-client 0.1.0",
      "results": [
        {"update": "KB5034122", "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
         "at": "2026-11-22T10:01:00Z", "return_code": 3010},
        {"update": "7zip.7zip@24.09", "at": "2026-11-22T10:02:00Z", "return_code": 2, "convention": "jp1"},
        {"update": "KB5034441", "at": "2026-11-22T10:03:00Z", "return_code": 2149842967}
      ]}"#;

    #[test]
    fn a_results_file_is_read_whole() {
        let file = read(Path::new("r.json"), SAMPLE.as_bytes()).unwrap();
        assert_eq!(file.computer.as_str(), "PC-0001");
        assert_eq!(file.results.len(), 3);
        assert_eq!(file.results[2].return_code, 0x8024_0017_u32 as i32, "unsigned codes are read signed");
        assert_eq!(file.results[1].convention, Convention::Jp1);
    }

    #[test]
    fn refusals_name_the_field() {
        let err = |text: &str| read(Path::new("r.json"), text.as_bytes()).unwrap_err().to_string();
        assert!(err(&SAMPLE.replace("3010", "4294967296")).contains("results[0].return_code"));
        assert!(err(&SAMPLE.replace("\"jp1\"", "\"sccm\"")).contains("results[1].convention"));
        assert!(err(&SAMPLE.replace("10:02:00Z", "10:09:00Z")).contains("after the file was written"));
        assert!(err(&SAMPLE.replace("\"client\"", "\"agent\"")).contains("agent"));
        assert!(
            err(&SAMPLE
                .replace("10:03:00Z\", \"return_code\": 2149842967", "10:01:00Z\", \"return_code\": 0")
                .replace("KB5034441", "KB5034122"))
            .contains("twice")
        );
    }

    #[test]
    fn return_codes_are_judged_by_their_convention() {
        let none = None;
        assert_eq!(judge(0, Convention::Installer, none).0, Outcome::Success);
        assert_eq!(judge(3010, Convention::Installer, none).0, Outcome::Reboot);
        assert_eq!(judge(1641, Convention::Installer, none).0, Outcome::Reboot);
        assert_eq!(judge(ALREADY_INSTALLED, Convention::Installer, none).0, Outcome::AlreadyInstalled);
        let (outcome, meaning) = judge(0x8024_0017_u32 as i32, Convention::Installer, none);
        assert_eq!(outcome, Outcome::Failure);
        assert!(meaning.contains("WU_E_NOT_APPLICABLE") && meaning.contains("0x80240017"), "{meaning}");
        assert!(judge(1603, Convention::Installer, none).1.contains("ERROR_INSTALL_FAILURE"));

        // The update's own codes come first: this vendor's setup says 1 for "restart".
        let codes = ExitCodes { success: vec![0, 2], reboot: vec![1], failure: vec![3010] };
        assert_eq!(judge(1, Convention::Installer, Some(&codes)).0, Outcome::Reboot);
        assert_eq!(judge(2, Convention::Installer, Some(&codes)).0, Outcome::Success);
        assert_eq!(judge(3010, Convention::Installer, Some(&codes)).0, Outcome::Failure);
        let hresult = ExitCodes { success: vec![0], reboot: vec![], failure: vec![2149842967] };
        assert_eq!(judge(0x8024_0017_u32 as i32, Convention::Installer, Some(&hresult)).0, Outcome::Failure);

        let jp1: Vec<Outcome> = (0..=6).map(|c| judge(c, Convention::Jp1, none).0).collect();
        assert_eq!(jp1[0], Outcome::Success);
        assert!(jp1[1..].iter().all(|o| *o == Outcome::Failure));
        assert!(judge(4, Convention::Jp1, none).1.contains("WSH invalid"));
        assert!(judge(3010, Convention::Jp1, none).1.contains("not a return value JP1 defines"));
    }
}
