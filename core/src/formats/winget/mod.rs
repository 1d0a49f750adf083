//! winget manifests, as the winget-pkgs repository publishes them: one package version is a
//! directory of YAML files (a version manifest, an installer manifest, the default locale's
//! and other locales' manifests) or a single singleton file. This module reads the files of
//! one version into a [`PackageVersion`]: every installer with the defaults of the
//! installer manifest's top level applied, and the default locale's texts.
//!
//! Schema versions 1.0 to 1.12 are read (the newest winget-cli published when this was
//! written is 1.12.0; later 1.x versions add fields, which are ignored like every field ferry
//! does not use). Either line ending, a UTF-8 byte order mark, versions quoted or not and
//! digests in either case are accepted. A broken manifest is refused naming the file, the
//! field and the line. Files are read under [`MAX_MANIFEST_BYTES`]; the YAML parser limits
//! nesting and alias expansion, so a hostile file costs bounded memory and time.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::error::{Error, Result};
use crate::base::names::Sha256;

pub mod update;

/// The largest manifest file read (the largest in winget-pkgs are tens of KiB).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The newest manifest schema this reader knows the fields of.
pub const NEWEST_SCHEMA: &str = "1.12.0";

/// What every manifest file says of itself.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Header {
    package_identifier: Option<String>,
    package_version: Option<String>,
    manifest_type: Option<String>,
    manifest_version: Option<String>,
    package_locale: Option<String>,
    default_locale: Option<String>,
}

/// The texts of a locale manifest (or a singleton) ferry uses.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LocaleFields {
    publisher: Option<String>,
    package_name: Option<String>,
    license: Option<String>,
    license_url: Option<String>,
    short_description: Option<String>,
    #[serde(default)]
    agreements: Vec<Agreement>,
}

/// A licence or other agreement a person must accept before installing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Agreement {
    pub agreement_label: Option<String>,
    pub agreement: Option<String>,
    pub agreement_url: Option<String>,
}

/// The installer switches ferry uses to install without a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Switches {
    pub silent: Option<String>,
    pub silent_with_progress: Option<String>,
    pub custom: Option<String>,
}

/// An exit code the manifest explains.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExpectedReturnCode {
    pub installer_return_code: i64,
    pub return_response: String,
}

/// How the program shows in "Apps and Features" once installed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AppsAndFeaturesEntry {
    pub display_name: Option<String>,
    pub publisher: Option<String>,
    pub display_version: Option<String>,
    pub product_code: Option<String>,
    pub upgrade_code: Option<String>,
    pub installer_type: Option<String>,
}

/// A file inside a zip installer that is the real installer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NestedInstallerFile {
    pub relative_file_path: String,
    pub portable_command_alias: Option<String>,
}

/// An installer's fields, at the top level of an installer manifest (defaults) or per
/// installer (which override them). One list, so the two cannot drift apart.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstallerFields {
    architecture: Option<String>,
    installer_url: Option<String>,
    installer_sha256: Option<String>,
    installer_type: Option<String>,
    nested_installer_type: Option<String>,
    nested_installer_files: Option<Vec<NestedInstallerFile>>,
    scope: Option<String>,
    installer_locale: Option<String>,
    platform: Option<Vec<String>>,
    #[serde(rename = "MinimumOSVersion")]
    minimum_os_version: Option<String>,
    installer_switches: Option<Switches>,
    installer_success_codes: Option<Vec<i64>>,
    expected_return_codes: Option<Vec<ExpectedReturnCode>>,
    product_code: Option<String>,
    apps_and_features_entries: Option<Vec<AppsAndFeaturesEntry>>,
    release_date: Option<String>,
    download_command_prohibited: Option<bool>,
}

macro_rules! or_default {
    ($own:ident, $defaults:ident; $($field:ident),* $(,)?) => {
        InstallerFields { $($field: $own.$field.or_else(|| $defaults.$field.clone())),* }
    };
}

impl InstallerFields {
    /// This installer's fields, each taken from the top level where the installer lacks it.
    fn over(self, defaults: &InstallerFields) -> InstallerFields {
        or_default!(self, defaults;
            architecture, installer_url, installer_sha256, installer_type, nested_installer_type,
            nested_installer_files, scope, installer_locale, platform, minimum_os_version,
            installer_switches, installer_success_codes, expected_return_codes, product_code,
            apps_and_features_entries, release_date, download_command_prohibited,
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InstallerList {
    #[serde(default)]
    installers: Vec<InstallerFields>,
}

/// One installer of a package version, with the manifest's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installer {
    pub architecture: String,
    pub url: String,
    /// `InstallerSha256`: the SHA-256 of the file at `url`.
    pub sha256: Sha256,
    pub installer_type: Option<String>,
    pub nested_installer_type: Option<String>,
    pub nested_installer_files: Vec<NestedInstallerFile>,
    pub scope: Option<String>,
    pub locale: Option<String>,
    pub platform: Vec<String>,
    pub minimum_os_version: Option<String>,
    pub switches: Switches,
    pub success_codes: Vec<i64>,
    pub expected_return_codes: Vec<ExpectedReturnCode>,
    pub product_code: Option<String>,
    pub apps_and_features: Vec<AppsAndFeaturesEntry>,
    pub release_date: Option<String>,
    /// The publisher forbids downloading it for redistribution: ferry does not carry it.
    pub download_command_prohibited: bool,
}

/// One version of one package, read from its manifest files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackageVersion {
    pub id: String,
    pub version: String,
    pub manifest_version: String,
    pub default_locale: Option<String>,
    pub publisher: Option<String>,
    pub name: Option<String>,
    pub license: Option<String>,
    pub license_url: Option<String>,
    pub short_description: Option<String>,
    pub agreements: Vec<Agreement>,
    pub installers: Vec<Installer>,
    /// The files it was read from.
    pub files: Vec<PathBuf>,
}

/// A manifest file's text, with the byte order mark removed.
fn text(path: &Path, bytes: &[u8]) -> Result<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| refused(path, None, "", format!("not UTF-8 ({e})")))
}

fn refused(path: &Path, line: Option<usize>, field: &str, reason: String) -> Error {
    Error::Feed { file: path.to_path_buf(), line, field: field.to_string(), reason }
}

/// Deserializes `text` as `T`, a refusal naming the field (its path) and the line.
fn parse<'de, T: Deserialize<'de>>(path: &Path, text: &'de str) -> Result<T> {
    serde_path_to_error::deserialize(yaml_serde::Deserializer::from_str(text)).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line());
        let mut reason = inner.to_string();
        // The parser's message ends with where it found the problem; the refusal says it once.
        if let Some(at) = reason.find(" at line ") {
            reason.truncate(at);
        }
        if let Some(rest) = reason.strip_prefix(&format!("{field}: ")) {
            reason = rest.to_string();
        }
        refused(path, line, if field == "." { "" } else { &field }, reason)
    })
}

/// A manifest file read: its header and its text.
struct File {
    path: PathBuf,
    text: String,
    header: Header,
    kind: String,
}

fn required<'a>(file: &Path, value: &'a Option<String>, field: &str) -> Result<&'a str> {
    value.as_deref().ok_or_else(|| refused(file, None, field, "missing".into()))
}

/// Reads one package version from the files of its directory (`(path, bytes)` each).
pub fn read_version(files: &[(PathBuf, Vec<u8>)]) -> Result<PackageVersion> {
    let mut read = Vec::new();
    for (path, bytes) in files {
        let text = text(path, bytes)?;
        let header: Header = parse(path, &text)?;
        let kind = required(path, &header.manifest_type, "ManifestType")?.to_string();
        let version = required(path, &header.manifest_version, "ManifestVersion")?;
        if !version.starts_with("1.") {
            return Err(refused(
                path,
                None,
                "ManifestVersion",
                format!("{version}: only schema 1.x is read (newest known {NEWEST_SCHEMA})"),
            ));
        }
        required(path, &header.package_identifier, "PackageIdentifier")?;
        required(path, &header.package_version, "PackageVersion")?;
        read.push(File { path: path.clone(), text, header, kind });
    }
    let Some(first) = read.first() else {
        return Err(Error::Invalid("a package version with no manifest file".into()));
    };
    let (id, version) = (first.header.package_identifier.clone(), first.header.package_version.clone());
    for f in &read {
        if f.header.package_identifier != id || f.header.package_version != version {
            return Err(refused(
                &f.path,
                None,
                "PackageIdentifier",
                format!(
                    "{} {} beside {} {} in the same version directory",
                    f.header.package_identifier.as_deref().unwrap_or_default(),
                    f.header.package_version.as_deref().unwrap_or_default(),
                    id.as_deref().unwrap_or_default(),
                    version.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    let one = |kind: &str| -> Result<Option<&File>> {
        let mut of_kind = read.iter().filter(|f| f.kind == kind);
        let found = of_kind.next();
        match of_kind.next() {
            Some(twice) => Err(refused(&twice.path, None, "ManifestType", format!("a second {kind} manifest"))),
            None => Ok(found),
        }
    };
    for f in &read {
        if !["singleton", "version", "installer", "defaultLocale", "locale", "merged"].contains(&f.kind.as_str()) {
            return Err(refused(&f.path, None, "ManifestType", format!("{:?} is not a manifest type", f.kind)));
        }
    }
    let (version_file, installer_file, locale_file) = match one("singleton")?.or(one("merged")?) {
        Some(single) => (single, single, Some(single)),
        None => {
            let version_file = one("version")?
                .ok_or_else(|| refused(&first.path, None, "ManifestType", "no version manifest beside it".into()))?;
            let installer_file = one("installer")?.ok_or_else(|| {
                refused(&version_file.path, None, "ManifestType", "no installer manifest beside it".into())
            })?;
            (version_file, installer_file, one("defaultLocale")?)
        }
    };
    let default_locale = version_file.header.default_locale.clone().or(version_file.header.package_locale.clone());
    let locale: LocaleFields = match locale_file {
        Some(f) => parse(&f.path, &f.text)?,
        None => LocaleFields::default(),
    };
    let defaults: InstallerFields = parse(&installer_file.path, &installer_file.text)?;
    let list: InstallerList = parse(&installer_file.path, &installer_file.text)?;
    if list.installers.is_empty() {
        return Err(refused(&installer_file.path, None, "Installers", "no installer".into()));
    }
    let mut installers = Vec::new();
    for (i, own) in list.installers.into_iter().enumerate() {
        let f = own.over(&defaults);
        let field = |name: &str| format!("Installers[{i}].{name}");
        let path = &installer_file.path;
        let need = |v: Option<String>, name: &str| v.ok_or_else(|| refused(path, None, &field(name), "missing".into()));
        let sha = need(f.installer_sha256, "InstallerSha256")?;
        let sha256: Sha256 = sha.to_ascii_lowercase().parse().map_err(|e: Error| {
            refused(
                path,
                None,
                &field("InstallerSha256"),
                format!("{sha:?}: {}", e.to_string().rsplit(": ").next().unwrap_or("")),
            )
        })?;
        installers.push(Installer {
            architecture: need(f.architecture, "Architecture")?,
            url: need(f.installer_url, "InstallerUrl")?,
            sha256,
            installer_type: f.installer_type,
            nested_installer_type: f.nested_installer_type,
            nested_installer_files: f.nested_installer_files.unwrap_or_default(),
            scope: f.scope,
            locale: f.installer_locale,
            platform: f.platform.unwrap_or_default(),
            minimum_os_version: f.minimum_os_version,
            switches: f.installer_switches.unwrap_or_default(),
            success_codes: f.installer_success_codes.unwrap_or_default(),
            expected_return_codes: f.expected_return_codes.unwrap_or_default(),
            product_code: f.product_code,
            apps_and_features: f.apps_and_features_entries.unwrap_or_default(),
            release_date: f.release_date,
            download_command_prohibited: f.download_command_prohibited.unwrap_or(false),
        });
    }
    Ok(PackageVersion {
        id: id.unwrap_or_default(),
        version: version.unwrap_or_default(),
        manifest_version: version_file.header.manifest_version.clone().unwrap_or_default(),
        default_locale,
        publisher: locale.publisher,
        name: locale.package_name,
        license: locale.license,
        license_url: locale.license_url,
        short_description: locale.short_description,
        agreements: locale.agreements,
        installers,
        files: read.into_iter().map(|f| f.path).collect(),
    })
}

/// Which package versions and installers to carry, as `fetch` is asked.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Package identifiers, `*` and `?` as wildcards, letter case ignored; all if empty.
    pub packages: Vec<String>,
    /// The newest N versions of each package; all if none.
    pub latest: Option<usize>,
    /// Only these architectures (x64, x86, arm64, arm, neutral); all if empty.
    pub architectures: Vec<String>,
    /// Only these installer types (msi, wix, exe, nullsoft, inno, burn, msix, zip, …).
    pub installer_types: Vec<String>,
    /// `machine` or `user`: installers of that scope, and those that declare none.
    pub scope: Option<String>,
    /// A locale (en-US): installers for it first, then those that declare none.
    pub locale: Option<String>,
}

/// A package version selected, with the installer chosen for each architecture.
#[derive(Debug)]
pub struct Chosen<'a> {
    pub version: &'a PackageVersion,
    pub installers: Vec<&'a Installer>,
}

/// A package version or installer left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub id: String,
    pub version: String,
    pub reason: String,
}

/// Whether `id` matches `pattern` (`*` any run, `?` one character, case ignored).
pub fn matches_glob(pattern: &str, id: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) => a == b && go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let lower = |t: &str| -> Vec<char> { t.to_lowercase().chars().collect() };
    go(&lower(pattern), &lower(id))
}

/// Selects from `versions` (ordered by package, newest first, as `fetch::winget::read_tree`
/// gives them). Within a version, one installer per architecture is chosen, as winget
/// chooses among several that match: the requested locale's before one that declares no
/// locale before any other; then the requested scope (machine when none is asked, since
/// ferry installs for the computer); then the manifest's own order. An installer whose
/// publisher forbids downloading it (`DownloadCommandProhibited`) is never carried and is
/// reported; so is a version left without any installer.
pub fn select<'a>(versions: &'a [PackageVersion], sel: &Selection) -> (Vec<Chosen<'a>>, Vec<Skipped>) {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut chosen = Vec::new();
    let mut skipped = Vec::new();
    let mut taken_of: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for v in versions {
        if !sel.packages.is_empty() && !sel.packages.iter().any(|p| matches_glob(p, &v.id)) {
            continue;
        }
        let taken = taken_of.entry(v.id.to_lowercase()).or_default();
        if sel.latest.is_some_and(|n| *taken >= n) {
            continue;
        }
        let skip = |reason: String| Skipped { id: v.id.clone(), version: v.version.clone(), reason };
        let mut candidates: Vec<&Installer> = Vec::new();
        for i in &v.installers {
            if !sel.architectures.is_empty() && !sel.architectures.iter().any(|a| eq(a, &i.architecture)) {
                continue;
            }
            let kind = i.installer_type.as_deref().unwrap_or("");
            if !sel.installer_types.is_empty() && !sel.installer_types.iter().any(|t| eq(t, kind)) {
                continue;
            }
            if let (Some(want), Some(scope)) = (&sel.scope, &i.scope)
                && !eq(want, scope)
            {
                continue;
            }
            if i.download_command_prohibited {
                skipped.push(skip(format!(
                    "the {} installer may not be downloaded for redistribution (DownloadCommandProhibited)",
                    i.architecture
                )));
                continue;
            }
            candidates.push(i);
        }
        let rank = |i: &Installer| -> (u8, u8) {
            let locale = match (&sel.locale, &i.locale) {
                (Some(want), Some(have)) if eq(want, have) => 0,
                (_, None) => 1,
                _ => 2,
            };
            let want_scope = sel.scope.as_deref().unwrap_or("machine");
            let scope = match &i.scope {
                Some(s) if eq(s, want_scope) => 0,
                None => 1,
                _ => 2,
            };
            (locale, scope)
        };
        let mut by_architecture: Vec<&Installer> = Vec::new();
        let mut passed_over: Vec<&Installer> = Vec::new();
        for i in candidates {
            match by_architecture.iter_mut().find(|c| eq(&c.architecture, &i.architecture)) {
                Some(current) if rank(i) < rank(current) => passed_over.push(std::mem::replace(current, i)),
                Some(_) => passed_over.push(i),
                None => by_architecture.push(i),
            }
        }
        for i in passed_over {
            let kind = |i: &Installer| i.installer_type.clone().unwrap_or_else(|| "untyped".into());
            let preferred = by_architecture
                .iter()
                .find(|c| eq(&c.architecture, &i.architecture))
                .map_or(String::new(), |c| kind(c));
            skipped.push(skip(format!(
                "the {} {} installer ({}) gives way to the {preferred} one for the same architecture",
                i.architecture,
                kind(i),
                i.url
            )));
        }
        if by_architecture.is_empty() {
            skipped.push(skip("no installer matches the selection".into()));
            continue;
        }
        *taken += 1;
        chosen.push(Chosen { version: v, installers: by_architecture });
    }
    (chosen, skipped)
}

/// Orders package versions as winget does: part by part at the dots, numbers as numbers
/// (so 24.10 is newer than 24.9), a part with letters after a plain number of the same value.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<(u64, String)> {
        v.split('.')
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                (digits.parse().unwrap_or(0), p[digits.len()..].to_ascii_lowercase())
            })
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let zero = (0, String::new());
        let (x, y) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        let order = x.0.cmp(&y.0).then_with(|| match (x.1.is_empty(), y.1.is_empty()) {
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => x.1.cmp(&y.1),
        });
        if order.is_ne() {
            return order;
        }
    }
    std::cmp::Ordering::Equal
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare_part_by_part() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_versions("24.10", "24.9"), Greater);
        assert_eq!(compare_versions("3.0.21", "3.0.20"), Greater);
        assert_eq!(compare_versions("16.0.4", "23.01"), Less);
        assert_eq!(compare_versions("1.0", "1.0.0"), Equal);
        assert_eq!(compare_versions("2.0", "2.0-beta"), Greater);
    }

    use super::*;

    fn version(files: &[(&str, &str)]) -> Result<PackageVersion> {
        let files: Vec<(PathBuf, Vec<u8>)> =
            files.iter().map(|(n, t)| (PathBuf::from(n), t.as_bytes().to_vec())).collect();
        read_version(&files)
    }

    const VERSION: &str = "PackageIdentifier: Example.Tool\nPackageVersion: 2.10\nDefaultLocale: en-US\nManifestType: version\nManifestVersion: 1.6.0\n";
    const LOCALE: &str = "PackageIdentifier: Example.Tool\nPackageVersion: 2.10\nPackageLocale: en-US\nPublisher: Example Ltd\nPackageName: Tool\nLicense: MIT\nShortDescription: A tool.\nManifestType: defaultLocale\nManifestVersion: 1.6.0\n";
    const INSTALLER: &str = "\u{feff}PackageIdentifier: Example.Tool\r\nPackageVersion: '2.10'\r\nInstallerType: exe\r\nScope: machine\r\nInstallerSwitches:\r\n  Silent: /S\r\nInstallers:\r\n- Architecture: x64\r\n  InstallerUrl: https://example.com/tool-x64.exe\r\n  InstallerSha256: BDD1A33DE78618D16EE4CE148B849932C05D0015491C34887846D431D29F308E\r\n- Architecture: x86\r\n  InstallerType: msi\r\n  Scope: user\r\n  InstallerUrl: https://example.com/tool-x86.msi\r\n  InstallerSha256: bdd1a33de78618d16ee4ce148b849932c05d0015491c34887846d431d29f308e\r\n  InstallerSuccessCodes: [3010]\r\nManifestType: installer\r\nManifestVersion: 1.6.0\r\n";

    #[test]
    fn a_multi_file_version_with_defaults_overridden_per_installer() {
        let v = version(&[("v.yaml", VERSION), ("l.yaml", LOCALE), ("i.yaml", INSTALLER)]).unwrap();
        assert_eq!((v.id.as_str(), v.version.as_str()), ("Example.Tool", "2.10"), "2.10 is not the number 2.1");
        assert_eq!(v.publisher.as_deref(), Some("Example Ltd"));
        let [x64, x86] = &v.installers[..] else { panic!("{:?}", v.installers) };
        assert_eq!((x64.installer_type.as_deref(), x64.scope.as_deref()), (Some("exe"), Some("machine")));
        assert_eq!(x64.switches.silent.as_deref(), Some("/S"), "a top-level default");
        assert_eq!((x86.installer_type.as_deref(), x86.scope.as_deref()), (Some("msi"), Some("user")));
        assert_eq!(x86.success_codes, [3010]);
        assert_eq!(x64.sha256, x86.sha256, "digests in either case");
    }

    #[test]
    fn a_broken_manifest_is_refused_naming_file_field_and_line() {
        let broken = INSTALLER.replace("InstallerSuccessCodes: [3010]", "InstallerSuccessCodes: [three]");
        let e = version(&[("v.yaml", VERSION), ("l.yaml", LOCALE), ("i.yaml", &broken)]).unwrap_err().to_string();
        assert!(
            e.contains("i.yaml")
                && e.contains("line 16")
                && e.contains("Installers[1].InstallerSuccessCodes[0]: invalid type"),
            "{e}"
        );
        let bad_digest = INSTALLER.replace("BDD1A33DE", "XYZ1A33DE");
        let e = version(&[("v.yaml", VERSION), ("i.yaml", &bad_digest)]).unwrap_err().to_string();
        assert!(e.contains("Installers[0].InstallerSha256"), "{e}");
        let e = version(&[("i.yaml", INSTALLER)]).unwrap_err().to_string();
        assert!(e.contains("no version manifest"), "{e}");
        let other = LOCALE.replace("Example.Tool", "Other.Tool");
        let e = version(&[("v.yaml", VERSION), ("l.yaml", &other), ("i.yaml", INSTALLER)]).unwrap_err().to_string();
        assert!(e.contains("l.yaml") && e.contains("Other.Tool"), "{e}");
        let e =
            version(&[("v.yaml", &VERSION.replace("1.6.0", "2.0.0")), ("i.yaml", INSTALLER)]).unwrap_err().to_string();
        assert!(e.contains("only schema 1.x"), "{e}");
    }

    #[test]
    fn one_installer_per_architecture_as_winget_prefers() {
        let two_scopes = INSTALLER.replace("- Architecture: x86\r\n", "- Architecture: x64\r\n  Scope: user\r\n  InstallerUrl: https://example.com/user.exe\r\n  InstallerSha256: BDD1A33DE78618D16EE4CE148B849932C05D0015491C34887846D431D29F308E\r\n- Architecture: x86\r\n");
        let v = vec![version(&[("v.yaml", VERSION), ("i.yaml", &two_scopes)]).unwrap()];
        let (chosen, skipped) = select(&v, &Selection::default());
        assert_eq!(skipped.len(), 1, "the user-scope x64 installer is passed over, and said so: {skipped:?}");
        assert!(skipped[0].reason.contains("https://example.com/user.exe"), "{skipped:?}");
        let urls: Vec<&str> = chosen[0].installers.iter().map(|i| i.url.as_str()).collect();
        assert_eq!(
            urls,
            ["https://example.com/tool-x64.exe", "https://example.com/tool-x86.msi"],
            "machine scope first"
        );
        let user = Selection { scope: Some("user".into()), ..Selection::default() };
        let urls: Vec<String> = select(&v, &user).0[0].installers.iter().map(|i| i.url.clone()).collect();
        assert_eq!(urls, ["https://example.com/user.exe", "https://example.com/tool-x86.msi"]);
        let msi = Selection { installer_types: vec!["MSI".into()], ..Selection::default() };
        assert_eq!(select(&v, &msi).0[0].installers.len(), 1);
        let none = Selection { architectures: vec!["arm64".into()], ..Selection::default() };
        let (chosen, skipped) = select(&v, &none);
        assert!(chosen.is_empty());
        assert_eq!(skipped.last().unwrap().reason, "no installer matches the selection");
    }

    #[test]
    fn a_prohibited_download_is_reported_not_carried() {
        let prohibited = INSTALLER
            .replace("- Architecture: x86\r\n", "- Architecture: x86\r\n  DownloadCommandProhibited: true\r\n");
        let v = vec![version(&[("v.yaml", VERSION), ("i.yaml", &prohibited)]).unwrap()];
        let (chosen, skipped) = select(&v, &Selection::default());
        assert_eq!(chosen[0].installers.len(), 1);
        assert!(skipped[0].reason.contains("DownloadCommandProhibited"), "{skipped:?}");
    }

    #[test]
    fn package_globs_ignore_case() {
        assert!(matches_glob("7zip.*", "7zip.7zip"));
        assert!(matches_glob("videolan.vlc", "VideoLAN.VLC"));
        assert!(matches_glob("Mozilla.Firefox*", "Mozilla.Firefox.ESR"));
        assert!(!matches_glob("Mozilla.Firefox", "Mozilla.Firefox.ESR"));
        assert!(matches_glob("?zip.7zip", "7zip.7zip"));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            bomb.push_str(&format!(
                "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                p = if i == 0 { "a".to_string() } else { format!("b{}", i - 1) }
            ));
        }
        bomb.push_str("PackageIdentifier: X\nPackageVersion: 1\nManifestType: singleton\nManifestVersion: 1.0.0\nInstallers: *b11\n");
        assert!(version(&[("bomb.yaml", &bomb)]).is_err());
    }
}
