//! The update model: what one installable update is, shared by catalogs, manifests and the
//! update list. Documented field by field in `docs/data-model.md`.
//!
//! Pure values and their checks; no I/O. Formats that must grow (catalog, manifest) read
//! these types without `deny_unknown_fields` and are versioned by a `format` field instead.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::base::clock::Date;
use crate::base::names::{FileName, Sha1, Sha256, UpdateId};

/// What kind of update this is, with the names Windows Update and third-party catalogs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    SecurityUpdate,
    CriticalUpdate,
    UpdateRollup,
    FeaturePack,
    ServicePack,
    DefinitionUpdate,
    Application,
}

/// The vendor's severity rating (MSRC's scale; third-party vendors map onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Critical,
    Important,
    Moderate,
    Low,
    Unspecified,
}

/// `ALL`, `as_str`, `Display` and `FromStr` for an enum named in kebab case, from one list of
/// its variants and their names.
macro_rules! kebab_names {
    ($ty:ty { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $text),* }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$ty>::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<_> = <$ty>::ALL.iter().map(|v| v.as_str()).collect();
                    format!("{s:?} is not one of {}", names.join(", "))
                })
            }
        }
    };
}
pub(crate) use kebab_names;

kebab_names!(Classification {
    SecurityUpdate => "security-update",
    CriticalUpdate => "critical-update",
    UpdateRollup => "update-rollup",
    FeaturePack => "feature-pack",
    ServicePack => "service-pack",
    DefinitionUpdate => "definition-update",
    Application => "application",
});

kebab_names!(Severity {
    Critical => "critical",
    Important => "important",
    Moderate => "moderate",
    Low => "low",
    Unspecified => "unspecified",
});

/// The licence an administrator may have to accept before the update can be approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eula {
    /// Whether the update may be approved only after the licence was accepted.
    pub acceptance_required: bool,
    /// The licence text itself, when the vendor ships it with the metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Where the licence can be read (a URL or a document name), when the text is not included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// What the update applies to. Empty lists mean "not restricted by this criterion".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicability {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os_builds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub msi_product_codes: Vec<String>,
    /// The package identifiers the update installs, as its source names them (winget's
    /// `7zip.7zip`): a computer whose inventory lists the package is a candidate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// The Windows platforms it runs on (`Windows.Desktop`, `Windows.Universal`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// The oldest Windows version it installs on (`10.0.17763.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_os_version: Option<String>,
    /// How the installed program shows in "Apps and Features" (the uninstall registry
    /// keys), so that an inventory of installed programs can be matched against it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installed_entries: Vec<InstalledEntry>,
    /// What must be installed or detected first, as the vendor's own update ids (Microsoft's
    /// UpdateIDs, often of detection rules or products rather than updates): every inner list
    /// must be met, by any one of its ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Vec<String>>,
}

/// One entry of "Apps and Features" an installed update leaves (an uninstall registry key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_version: Option<String>,
    /// The uninstall key's name: the MSI product code for an MSI install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_code: Option<String>,
}

/// How an installer's exit code is judged. A code in none of the lists is a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitCodes {
    #[serde(default = "ExitCodes::default_success")]
    pub success: Vec<i64>,
    #[serde(default)]
    pub reboot: Vec<i64>,
    #[serde(default)]
    pub failure: Vec<i64>,
}

impl ExitCodes {
    fn default_success() -> Vec<i64> {
        vec![0]
    }
}

impl Default for ExitCodes {
    fn default() -> Self {
        ExitCodes { success: ExitCodes::default_success(), reboot: vec![], failure: vec![] }
    }
}

/// How a client installs the update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Install {
    /// The program to run; `{file}` stands for the update's file for the computer: the
    /// first whose architecture is the computer's, or that names none.
    pub command: String,
    /// Passed to the program as they are written, one argument each; `{file}` as above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The file is an archive (zip) to unpack first; this is the installer inside it, a
    /// relative path, and `{file}` stands for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<String>,
    #[serde(default)]
    pub exit_codes: ExitCodes,
}

/// Where a file's SHA-256 comes from: the digest every list, bundle and store names it by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DigestSource {
    /// The vendor's metadata gives the SHA-256 (winget's InstallerSha256, ferry's catalog).
    #[default]
    Vendor,
    /// The vendor's metadata names the file by SHA-1 only (Microsoft's scan catalog): fetch
    /// checked the SHA-1 and computed the SHA-256. As strong as SHA-1 against a vendor's
    /// mirror, which a rule may decline to trust.
    Fetch,
    /// Registered by hand: ingest computed it from the file the administrator gave.
    Registered,
}

impl DigestSource {
    fn is_vendor(&self) -> bool {
        *self == DigestSource::Vendor
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DigestSource::Vendor => "vendor",
            DigestSource::Fetch => "fetch",
            DigestSource::Registered => "registered",
        }
    }
}

/// One execution file of an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateFile {
    pub name: FileName,
    /// Where `fetch` downloads it: absolute `http(s)://` or `file://`, or relative to the
    /// catalog's own location. Informational once the file is in a bundle.
    pub url: String,
    pub sha256: Sha256,
    pub size: u64,
    /// The SHA-1 the vendor names the file by, where its metadata gives one (Microsoft's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<Sha1>,
    /// Where `sha256` comes from.
    #[serde(default, skip_serializing_if = "DigestSource::is_vendor")]
    pub sha256_from: DigestSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The id of an update registered by hand: `manual-` and the first 16 hex digits of the
/// smallest SHA-256 of its files, so two servers registering the same file agree on it.
/// The namespace belongs to registration: an update from a catalog, a bundle or a CSV row of
/// another origin may not take such an id, or registering the real file would attach it to
/// nothing and approving the id would publish the other update's files.
pub fn manual_id(digests: &[Sha256]) -> UpdateId {
    let smallest = digests.iter().min().expect("a manual update has files");
    format!("{MANUAL_ID_PREFIX}{}", &smallest.hex()[..16]).parse().expect("the grammar admits it")
}

pub const MANUAL_ID_PREFIX: &str = "manual-";

/// Whether `id` is in the namespace of updates registered by hand (letter case ignored).
pub fn is_manual_id(id: &UpdateId) -> bool {
    id.as_str().get(..MANUAL_ID_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(MANUAL_ID_PREFIX))
}

/// One installable version of a piece of software.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub id: UpdateId,
    /// Grows when the vendor corrects the metadata; never goes backwards on the offline side.
    pub revision: u32,
    pub title: String,
    pub vendor: String,
    pub product: String,
    pub version: String,
    pub classification: Classification,
    #[serde(default = "Update::default_severity")]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kb: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// The vendor's release date; none when the source does not say (a winget manifest
    /// without ReleaseDate): never invented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supersedes: Vec<UpdateId>,
    /// The vendor withdrew the update; it is carried as metadata so the offline side learns it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eula: Option<Eula>,
    #[serde(default)]
    pub applicability: Applicability,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Install>,
    #[serde(default)]
    pub files: Vec<UpdateFile>,
}

/// What identifies and describes an update wherever ferry lists it: `ingest list`, the
/// exchange CSV, a distribution point's index and a change report. One type, so that every
/// list reads and writes the same validated values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRow {
    pub id: UpdateId,
    pub revision: u32,
    pub title: String,
    pub vendor: String,
    pub product: String,
    pub version: String,
    pub classification: Classification,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kb: Option<String>,
    /// The vendor's release date; none when the source does not say (a winget manifest
    /// without ReleaseDate): never invented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_date: Option<Date>,
}

/// Longest title, vendor, product or version accepted, in bytes.
const MAX_SHORT_TEXT: usize = 1024;
/// Longest EULA text accepted, in bytes.
const MAX_EULA_TEXT: usize = 1 << 20;

impl Update {
    /// The update as every list shows it.
    pub fn row(&self) -> UpdateRow {
        UpdateRow {
            id: self.id.clone(),
            revision: self.revision,
            title: self.title.clone(),
            vendor: self.vendor.clone(),
            product: self.product.clone(),
            version: self.version.clone(),
            classification: self.classification,
            severity: self.severity,
            kb: self.kb.clone(),
            release_date: self.release_date,
        }
    }

    /// The update as the registry stores and the exchange CSV carries it: compact JSON.
    pub fn stored_json(&self) -> String {
        serde_json::to_string(self).expect("an update always serialises")
    }

    fn default_severity() -> Severity {
        Severity::Unspecified
    }

    /// The digests of this update's files, for comparing revisions.
    pub fn file_digests(&self) -> BTreeSet<Sha256> {
        self.files.iter().map(|f| f.sha256).collect()
    }

    /// Checks what the types alone cannot. Returns the field (relative to the update) and the
    /// reason of the first problem.
    /// [`Update::check`] for an update that a catalog or a bundle describes: its id may not
    /// be in the namespace of registration ([`manual_id`]).
    pub fn check_described(&self) -> Result<(), (String, String)> {
        self.check()?;
        if is_manual_id(&self.id) {
            return Err((
                "id".to_string(),
                format!(
                    "{} is in the {MANUAL_ID_PREFIX} namespace, which belongs to files registered by hand",
                    self.id
                ),
            ));
        }
        Ok(())
    }

    pub fn check(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, reason: String| Err((field.to_string(), reason));
        if self.revision == 0 {
            return fail("revision", "revisions start at 1".into());
        }
        for (field, text) in
            [("title", &self.title), ("vendor", &self.vendor), ("product", &self.product), ("version", &self.version)]
        {
            if text.trim().is_empty() {
                return fail(field, "must not be empty".into());
            }
            if text.len() > MAX_SHORT_TEXT {
                return fail(field, format!("longer than {MAX_SHORT_TEXT} bytes"));
            }
        }
        if let Some(kb) = &self.kb {
            let digits = kb.strip_prefix("KB").unwrap_or("");
            if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return fail("kb", format!("{kb:?} is not a KB number such as KB5034122"));
            }
        }
        for (i, cve) in self.cves.iter().enumerate() {
            if !is_cve_id(cve) {
                return fail(&format!("cves[{i}]"), format!("{cve:?} is not a CVE id such as CVE-2024-20674"));
            }
        }
        for (i, s) in self.supersedes.iter().enumerate() {
            if s == &self.id {
                return fail(&format!("supersedes[{i}]"), "an update cannot supersede itself".into());
            }
        }
        if let Some(eula) = &self.eula {
            if eula.text.as_ref().is_some_and(|t| t.len() > MAX_EULA_TEXT) {
                return fail("eula.text", format!("longer than {MAX_EULA_TEXT} bytes"));
            }
            if eula.acceptance_required && eula.text.is_none() && eula.reference.is_none() {
                return fail("eula", "acceptance is required but neither text nor reference is given".into());
            }
        }
        if let Some(nested) = self.install.as_ref().and_then(|i| i.nested.as_deref())
            && let Err(reason) = check_nested_path(nested)
        {
            return fail("install.nested", reason);
        }
        if self.files.is_empty() && !self.withdrawn {
            return fail("files", "an update that is not withdrawn needs at least one file".into());
        }
        let mut names = BTreeSet::new();
        for (i, file) in self.files.iter().enumerate() {
            if !names.insert(file.name.as_str().to_ascii_lowercase()) {
                return fail(&format!("files[{i}].name"), format!("{:?} is listed twice", file.name.as_str()));
            }
            if file.sha256_from == DigestSource::Fetch && file.sha1.is_none() {
                return fail(
                    &format!("files[{i}].sha256_from"),
                    "a SHA-256 computed by fetch needs the vendor's SHA-1 it was checked against".into(),
                );
            }
            if file.url.trim().is_empty() {
                return fail(&format!("files[{i}].url"), "must not be empty".into());
            }
        }
        Ok(())
    }
}

/// A path inside an archive, as a client will unpack it: relative, without `..`, drive or
/// stream names, or control characters (either slash separates).
fn check_nested_path(path: &str) -> Result<(), String> {
    let bad = if path.is_empty() || path.len() > 260 {
        "must be 1 to 260 bytes"
    } else if path.starts_with(['/', '\\']) {
        "must be relative"
    } else if path.contains(':') || path.chars().any(char::is_control) {
        "must not hold a colon or control characters"
    } else if path.split(['/', '\\']).any(|c| c.is_empty() || c == "." || c == "..") {
        "must not hold empty, . or .. components"
    } else {
        return Ok(());
    };
    Err(format!("{path:?} {bad}"))
}

/// A KB number as the list stores it, `KB5034122`, from what a person types (`5034122`,
/// `kb5034122`, `KB5034122`).
pub fn normalise_kb(typed: &str) -> String {
    format!("KB{}", typed.trim_start_matches(['K', 'k']).trim_start_matches(['B', 'b']))
}

fn is_cve_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("CVE-") else { return false };
    let Some((year, number)) = rest.split_once('-') else { return false };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&number.len())
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Update {
        serde_json::from_str(
            r#"{
              "id": "KB5034122", "revision": 1, "title": "2024-01 Cumulative Update",
              "vendor": "Microsoft", "product": "Windows 10", "version": "22H2",
              "classification": "security-update", "severity": "critical", "kb": "KB5034122",
              "cves": ["CVE-2024-20674"], "release_date": "2024-01-09",
              "files": [{"name": "a.msu", "url": "a.msu", "size": 3,
                         "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]
            }"#,
        )
        .unwrap()
    }

    fn check_field(edit: impl FnOnce(&mut Update), field: &str) {
        let mut u = sample();
        edit(&mut u);
        assert_eq!(u.check().unwrap_err().0, field);
    }

    #[test]
    fn sample_is_valid() {
        sample().check().unwrap();
    }

    #[test]
    fn checks_name_the_field() {
        check_field(|u| u.revision = 0, "revision");
        check_field(|u| u.title = " ".into(), "title");
        check_field(|u| u.kb = Some("5034122".into()), "kb");
        check_field(|u| u.cves.push("CVE-24-1".into()), "cves[1]");
        check_field(|u| u.supersedes.push(u.id.clone()), "supersedes[0]");
        check_field(|u| u.files.clear(), "files");
        check_field(|u| u.files.push(u.files[0].clone()), "files[1].name");
        for climbing in ["../setup.exe", "a\\..\\b.exe", "/setup.exe", "C:setup.exe", "a//b.exe"] {
            check_field(
                |u| {
                    u.install = Some(Install {
                        command: "{file}".into(),
                        arguments: vec![],
                        nested: Some(climbing.into()),
                        exit_codes: ExitCodes::default(),
                    })
                },
                "install.nested",
            );
        }
    }

    #[test]
    fn withdrawn_updates_may_have_no_files() {
        let mut u = sample();
        u.files.clear();
        u.withdrawn = true;
        u.check().unwrap();
    }
}
