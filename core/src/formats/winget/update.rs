//! A chosen winget package version as a ferry update (the table in `docs/feeds.md`).
//!
//! Pure: the version, its chosen installers and their sizes in, an [`Update`] out. What cannot
//! be installed without a person (an `exe` without a silent switch, a portable program, a
//! font) or named in the update model (an identifier outside the id grammar) is refused with
//! the reason, so that `fetch plan` and `fetch pack` can say why it is not carried.

use std::collections::BTreeSet;
use std::str::FromStr;

use crate::base::clock::Date;
use crate::base::names::{FileName, UpdateId};
use crate::formats::model::{
    Applicability, Classification, DigestSource, Eula, ExitCodes, Install, InstalledEntry, Severity, Update, UpdateFile,
};
use crate::formats::winget::{Installer, PackageVersion};

/// The update id of a package version: `PackageIdentifier@PackageVersion`. winget admits
/// characters the id grammar does not (letters beyond ASCII, spaces and commas in versions)
/// and longer identifiers; such a version is not mapped by some lossy rule that two
/// versions could share, but refused with the reason.
pub fn update_id(package: &str, version: &str) -> Result<UpdateId, String> {
    let text = format!("{package}@{version}");
    UpdateId::from_str(&text).map_err(|e| {
        format!("{text:?} cannot be an update id ({e}); ferry does not rename it, since two versions could then share a name")
    })
}

/// How a client installs `installer` unattended, or why it cannot. Winget's own defaults
/// per installer type; the manifest's `Silent` switch replaces the default silent
/// arguments and its `Custom` switch is added after them.
pub fn install_of(installer: &Installer) -> Result<Install, String> {
    let kind = installer.installer_type.as_deref().unwrap_or("").to_ascii_lowercase();
    let (kind, nested) = if kind == "zip" {
        let inner = installer.nested_installer_type.as_deref().unwrap_or("").to_ascii_lowercase();
        let [file] = &installer.nested_installer_files[..] else {
            return Err(format!(
                "the zip installer names {} nested installers; ferry runs exactly one",
                installer.nested_installer_files.len()
            ));
        };
        (inner, Some(file.relative_file_path.clone()))
    } else {
        (kind, None)
    };
    let words = |s: &str| split_switches(s);
    let silent = installer.switches.silent.as_deref().map(words);
    let (command, mut arguments, reboot): (&str, Vec<String>, &[i64]) = match kind.as_str() {
        "msi" | "wix" => {
            let mut a = vec!["/i".to_string(), "{file}".to_string()];
            a.extend(silent.unwrap_or_else(|| words("/quiet /norestart")));
            ("msiexec.exe", a, &[3010, 1641])
        }
        "burn" => ("{file}", silent.unwrap_or_else(|| words("/quiet /norestart")), &[3010, 1641]),
        "nullsoft" => ("{file}", silent.unwrap_or_else(|| words("/S")), &[]),
        "inno" => ("{file}", silent.unwrap_or_else(|| words("/SP- /VERYSILENT /SUPPRESSMSGBOXES /NORESTART")), &[]),
        "exe" => match silent {
            Some(s) => ("{file}", s, &[]),
            None => {
                return Err(format!(
                    "the {} exe installer gives no silent switch: it cannot be installed without a person",
                    installer.architecture
                ));
            }
        },
        "msix" | "appx" => {
            let a = words("/Online /Add-ProvisionedAppxPackage /PackagePath:{file} /SkipLicense");
            ("dism.exe", a, &[3010])
        }
        "portable" => return Err("a portable program is copied, not installed: ferry has nothing to run".into()),
        "" => return Err(format!("the {} installer names no InstallerType", installer.architecture)),
        other => return Err(format!("installer type {other:?} is not one ferry installs")),
    };
    if let Some(custom) = &installer.switches.custom {
        arguments.extend(words(custom));
    }
    let mut codes = ExitCodes { success: vec![0], reboot: reboot.to_vec(), failure: vec![] };
    codes.success.extend(installer.success_codes.iter().copied());
    for expected in &installer.expected_return_codes {
        let response = expected.return_response.as_str();
        let list = match response {
            "alreadyInstalled" => &mut codes.success,
            r if r.starts_with("rebootRequired") || r == "rebootInitiated" => &mut codes.reboot,
            _ => &mut codes.failure,
        };
        list.push(expected.installer_return_code);
    }
    for list in [&mut codes.success, &mut codes.reboot, &mut codes.failure] {
        let mut seen = BTreeSet::new();
        list.retain(|c| seen.insert(*c));
    }
    // A code the manifest calls a failure is one, whatever the type's defaults say.
    let failures: BTreeSet<i64> = codes.failure.iter().copied().collect();
    codes.success.retain(|c| !failures.contains(c));
    codes.reboot.retain(|c| !failures.contains(c) && !codes.success.contains(c));
    Ok(Install { command: command.to_string(), arguments, nested, exit_codes: codes })
}

/// Splits a switch string into arguments at spaces outside double quotes; the quotes stay,
/// since a Windows installer reads them itself (`INSTALLDIR="C:\Program Files\x"`).
fn split_switches(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The file name an installer keeps: the last segment of its URL, decoded; where that is
/// not a usable file name (a URL ending in a query) or is taken by another architecture's
/// installer, one made of the package, version and architecture.
fn file_name(version: &PackageVersion, installer: &Installer, taken: &BTreeSet<String>) -> Result<FileName, String> {
    let last = match url::Url::parse(&installer.url) {
        Ok(u) => u.path_segments().and_then(|mut s| s.next_back()).map(str::to_string),
        // A reference relative to the manifest (a local mirror's).
        Err(_) => installer.url.split(['?', '#']).next().and_then(|p| p.rsplit('/').next()).map(str::to_string),
    };
    let from_url = last.and_then(|l| percent_decode(&l)).and_then(|d| FileName::from_str(&d).ok());
    let free = |n: &FileName| !taken.contains(&n.as_str().to_ascii_lowercase());
    if let Some(name) = from_url.as_ref().filter(|n| free(n)) {
        return Ok(name.clone());
    }
    if let Some(name) = from_url {
        let prefixed = FileName::from_str(&format!("{}-{}", installer.architecture, name.as_str())).ok();
        if let Some(p) = prefixed.filter(|p| free(p)) {
            return Ok(p);
        }
    }
    let extension = match installer.installer_type.as_deref().unwrap_or("").to_ascii_lowercase().as_str() {
        "msi" | "wix" => "msi",
        "msix" => "msix",
        "appx" => "appx",
        "zip" => "zip",
        _ => "exe",
    };
    let made = format!("{}-{}-{}.{extension}", version.id, version.version, installer.architecture);
    FileName::from_str(&made)
        .ok()
        .filter(|n| free(n))
        .ok_or_else(|| format!("no file name can be made for the installer at {}", installer.url))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is_guid(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 38
        && b[0] == b'{'
        && b[37] == b'}'
        && b[1..37]
            .iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// The update for `version` carrying `installers` (each with its size in bytes, as learnt by
/// downloading it: manifests give none). `older` are the package's older versions that the
/// update supersedes.
pub fn to_update(version: &PackageVersion, installers: &[(&Installer, u64)], older: &[&str]) -> Result<Update, String> {
    let id = update_id(&version.id, &version.version)?;
    let Some((first, _)) = installers.first() else {
        return Err("no installer is carried".into());
    };
    let install = install_of(first)?;
    for (other, _) in &installers[1..] {
        if install_of(other)? != install {
            return Err(format!(
                "the {} and {} installers install with different commands; choose one kind with --installer-type or --architecture",
                first.architecture, other.architecture
            ));
        }
    }
    let mut release_date: Option<Date> = None;
    let mut taken = BTreeSet::new();
    let mut files = Vec::with_capacity(installers.len());
    let mut applicability = Applicability { packages: vec![version.id.clone()], ..Applicability::default() };
    for (installer, size) in installers {
        // http(s) as winget-pkgs has them; a file URL or a reference relative to the
        // manifest for a local mirror of installers (resolved by whoever reads the tree).
        match url::Url::parse(&installer.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https" | "file") => {}
            Err(url::ParseError::RelativeUrlWithoutBase) => {}
            _ => {
                return Err(format!(
                    "InstallerUrl {:?} is not an http, https or file URL, nor relative to the manifest",
                    installer.url
                ));
            }
        }
        if let Some(text) = &installer.release_date {
            let date = Date::from_str(text).map_err(|e| format!("ReleaseDate: {e}"))?;
            release_date = release_date.max(Some(date));
        }
        let name = file_name(version, installer, &taken)?;
        taken.insert(name.as_str().to_ascii_lowercase());
        files.push(UpdateFile {
            name,
            url: installer.url.clone(),
            sha256: installer.sha256,
            size: *size,
            sha1: None,
            sha256_from: DigestSource::Vendor,
            architecture: Some(installer.architecture.clone()),
            language: installer.locale.clone(),
        });
        for p in &installer.platform {
            if !applicability.platforms.contains(p) {
                applicability.platforms.push(p.clone());
            }
        }
        if applicability.minimum_os_version.is_none() {
            applicability.minimum_os_version.clone_from(&installer.minimum_os_version);
        }
        let codes = installer
            .product_code
            .iter()
            .chain(installer.apps_and_features.iter().filter_map(|e| e.product_code.as_ref()));
        for code in codes {
            if is_guid(code) && !applicability.msi_product_codes.iter().any(|c| c.eq_ignore_ascii_case(code)) {
                applicability.msi_product_codes.push(code.clone());
            }
        }
        for e in &installer.apps_and_features {
            let entry = InstalledEntry {
                display_name: e.display_name.clone(),
                publisher: e.publisher.clone(),
                display_version: e.display_version.clone(),
                product_code: e.product_code.clone(),
                upgrade_code: e.upgrade_code.clone(),
            };
            if !applicability.installed_entries.contains(&entry) {
                applicability.installed_entries.push(entry);
            }
        }
    }
    let name = version.name.clone().unwrap_or_else(|| version.id.clone());
    let eula = if version.agreements.is_empty() {
        let reference = version.license_url.clone().or_else(|| version.license.clone());
        reference.map(|r| Eula { acceptance_required: false, text: None, reference: Some(r) })
    } else {
        let text: Vec<String> = version
            .agreements
            .iter()
            .filter_map(|a| match (&a.agreement_label, &a.agreement) {
                (Some(l), Some(t)) => Some(format!("{l}: {t}")),
                (None, Some(t)) => Some(t.clone()),
                _ => None,
            })
            .collect();
        let reference = version
            .agreements
            .iter()
            .find_map(|a| a.agreement_url.clone())
            .or_else(|| version.license_url.clone())
            .or_else(|| version.agreements.iter().find_map(|a| a.agreement_label.clone()));
        Some(Eula { acceptance_required: true, text: (!text.is_empty()).then(|| text.join("\n\n")), reference })
    };
    let supersedes = older.iter().filter_map(|v| update_id(&version.id, v).ok()).collect();
    let update = Update {
        id,
        revision: 1,
        title: format!("{name} {}", version.version),
        vendor: version.publisher.clone().unwrap_or_else(|| version.id.split('.').next().unwrap_or("").to_string()),
        product: name,
        version: version.version.clone(),
        classification: Classification::Application,
        severity: Severity::Unspecified,
        kb: None,
        cves: vec![],
        release_date,
        supersedes,
        withdrawn: false,
        eula,
        applicability,
        install: Some(install),
        files,
    };
    update.check_described().map_err(|(field, reason)| format!("{field}: {reason}"))?;
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::winget::{ExpectedReturnCode, NestedInstallerFile, Switches};

    fn installer(kind: &str, url: &str) -> Installer {
        Installer {
            architecture: "x64".into(),
            url: url.into(),
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".parse().unwrap(),
            installer_type: Some(kind.into()),
            nested_installer_type: None,
            nested_installer_files: vec![],
            scope: None,
            locale: None,
            platform: vec![],
            minimum_os_version: None,
            switches: Switches::default(),
            success_codes: vec![],
            expected_return_codes: vec![],
            product_code: None,
            apps_and_features: vec![],
            release_date: None,
            download_command_prohibited: false,
        }
    }

    fn version(id: &str, v: &str) -> PackageVersion {
        PackageVersion {
            id: id.into(),
            version: v.into(),
            manifest_version: "1.6.0".into(),
            default_locale: Some("en-US".into()),
            publisher: Some("Example Ltd".into()),
            name: Some("Tool".into()),
            license: Some("MIT".into()),
            license_url: None,
            short_description: None,
            agreements: vec![],
            installers: vec![],
            files: vec![],
        }
    }

    #[test]
    fn install_commands_follow_the_installer_type() {
        let msi = install_of(&installer("wix", "https://e.com/a.msi")).unwrap();
        assert_eq!(
            (msi.command.as_str(), msi.arguments.join(" ")),
            ("msiexec.exe", "/i {file} /quiet /norestart".into())
        );
        assert_eq!(msi.exit_codes.reboot, [3010, 1641]);
        let mut exe = installer("exe", "https://e.com/a.exe");
        assert!(install_of(&exe).unwrap_err().contains("no silent switch"));
        exe.switches = Switches {
            silent: Some(r#"/S /D="C:\Program Files\Tool""#.into()),
            silent_with_progress: None,
            custom: Some("/NoDesktop".into()),
        };
        exe.success_codes = vec![1];
        exe.expected_return_codes = vec![
            ExpectedReturnCode { installer_return_code: 2, return_response: "rebootRequiredToFinish".into() },
            ExpectedReturnCode { installer_return_code: 1, return_response: "installInProgress".into() },
        ];
        let exe = install_of(&exe).unwrap();
        assert_eq!(exe.arguments, ["/S", r#"/D="C:\Program Files\Tool""#, "/NoDesktop"]);
        assert_eq!(
            (exe.exit_codes.success, exe.exit_codes.reboot, exe.exit_codes.failure),
            (vec![0], vec![2], vec![1])
        );
        assert!(install_of(&installer("portable", "https://e.com/a.exe")).is_err());
        let mut zip = installer("zip", "https://e.com/a.zip");
        zip.nested_installer_type = Some("nullsoft".into());
        zip.nested_installer_files =
            vec![NestedInstallerFile { relative_file_path: r"bin\setup.exe".into(), portable_command_alias: None }];
        let zip = install_of(&zip).unwrap();
        assert_eq!((zip.nested.as_deref(), zip.arguments.join(" ")), (Some(r"bin\setup.exe"), "/S".into()));
    }

    #[test]
    fn a_version_maps_to_an_update() {
        let mut v = version("Example.Tool", "2.10");
        let mut x64 = installer("nullsoft", "https://e.com/dl/Tool%20Setup.exe");
        x64.release_date = Some("2024-09-03".into());
        x64.product_code = Some("{9675011C-2395-4AD7-B1CC-92910F991F58}".into());
        x64.platform = vec!["Windows.Desktop".into()];
        let mut arm = x64.clone();
        arm.architecture = "arm64".into();
        let u = to_update(&v, &[(&x64, 10), (&arm, 20)], &["2.9", "1.0"]).unwrap();
        assert_eq!(u.id.as_str(), "Example.Tool@2.10");
        assert_eq!((u.title.as_str(), u.vendor.as_str(), u.product.as_str()), ("Tool 2.10", "Example Ltd", "Tool"));
        assert_eq!(u.release_date.map(|d| d.to_string()).as_deref(), Some("2024-09-03"));
        let names: Vec<&str> = u.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["Tool Setup.exe", "arm64-Tool Setup.exe"], "the second architecture's name is made unique");
        let older: Vec<&str> = u.supersedes.iter().map(|s| s.as_str()).collect();
        assert_eq!(older, ["Example.Tool@2.9", "Example.Tool@1.0"]);
        assert_eq!(u.applicability.packages, ["Example.Tool"]);
        assert_eq!(u.applicability.msi_product_codes.len(), 1);
        assert!(!u.eula.as_ref().unwrap().acceptance_required);

        v.agreements = vec![crate::formats::winget::Agreement {
            agreement_label: Some("End User License Agreement".into()),
            agreement: Some("You agree.".into()),
            agreement_url: Some("https://e.com/eula".into()),
        }];
        let u = to_update(&v, &[(&x64, 10)], &[]).unwrap();
        let eula = u.eula.unwrap();
        assert!(eula.acceptance_required);
        assert_eq!(eula.text.as_deref(), Some("End User License Agreement: You agree."));

        let mut msi = x64.clone();
        msi.installer_type = Some("msi".into());
        msi.architecture = "x86".into();
        assert!(to_update(&v, &[(&x64, 10), (&msi, 10)], &[]).unwrap_err().contains("different commands"));
        assert!(
            to_update(&version("Baidu.网盘", "1"), &[(&x64, 1)], &[]).unwrap_err().contains("cannot be an update id")
        );
        let mut late = x64.clone();
        late.release_date = Some("2024-13-01".into());
        assert!(to_update(&v, &[(&late, 1)], &[]).unwrap_err().starts_with("ReleaseDate"));
        let mut local = x64.clone();
        local.url = "ftp://e.com/a.exe".into();
        assert!(to_update(&v, &[(&local, 1)], &[]).unwrap_err().contains("not an http, https or file URL"));
    }
}
