//! A winget manifest tree on disk, laid out as winget-pkgs's `manifests/`
//! (`<letter>/<Publisher>/<Package>/<Version>/`) or any part of it (a publisher's folder, one
//! package, one version): every directory that holds manifest files is one package version.
//!
//! Links are not followed and only plain files are read, each under the manifest size cap: a
//! link or a FIFO named as a manifest is refused, not skipped (a version read without one of
//! its files would be another version).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::base::error::{Error, IoContext, Result};
use crate::base::names::Sha256;
use crate::base::shared_tree::{Links, open_regular};
use crate::fetch::cache::Cache;
use crate::fetch::download::{self, DownloadOptions, Job, Progress};
use crate::fetch::source::{Location, Sources};
use crate::formats::catalog::{CATALOG_FORMAT, Catalog};
use crate::formats::winget::compare_versions;
use crate::formats::winget::update::to_update;
use crate::formats::winget::{
    Chosen, Installer, MAX_MANIFEST_BYTES, PackageVersion, Selection, Skipped, read_version, select,
};

/// Every package version under `root`, by package id, then version from newest to oldest.
pub fn read_tree(root: &Path) -> Result<Vec<PackageVersion>> {
    let mut by_dir: BTreeMap<PathBuf, Vec<(PathBuf, Vec<u8>)>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            Error::io(path, e.into_io_error().unwrap_or_else(|| std::io::Error::other("a loop of links")))
        })?;
        let is_yaml =
            entry.path().extension().is_some_and(|x| x.eq_ignore_ascii_case("yaml") || x.eq_ignore_ascii_case("yml"));
        // Anything named as a manifest but not a plain file (a link, a FIFO, a device) is
        // refused by the open below without being followed or waited on.
        if entry.file_type().is_dir() || !is_yaml {
            continue;
        }
        let path = entry.path().to_path_buf();
        let opened = open_regular(&path, Links::Refuse)?;
        if opened.len > MAX_MANIFEST_BYTES {
            return Err(Error::TooLarge { path, limit: MAX_MANIFEST_BYTES });
        }
        let mut bytes = Vec::new();
        opened.file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes).at(&path)?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::TooLarge { path, limit: MAX_MANIFEST_BYTES });
        }
        let dir = path.parent().unwrap_or(root).to_path_buf();
        by_dir.entry(dir).or_default().push((path, bytes));
    }
    let mut versions = by_dir.values().map(|files| read_version(files)).collect::<Result<Vec<_>>>()?;
    versions.sort_by(|a, b| {
        a.id.to_ascii_lowercase().cmp(&b.id.to_ascii_lowercase()).then(compare_versions(&b.version, &a.version))
    });
    Ok(versions)
}

/// A file a planned update would carry, as `fetch plan` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedFile {
    pub url: String,
    pub architecture: String,
    pub installer_type: Option<String>,
    pub scope: Option<String>,
    pub sha256: Sha256,
    /// Where the digest comes from: `vendor-sha256` (the manifest's InstallerSha256).
    pub digest: &'static str,
    /// Unknown until downloaded: winget manifests give no sizes.
    pub size: Option<u64>,
}

/// A package version `fetch plan` would carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedVersion {
    /// `PackageIdentifier@PackageVersion`.
    pub id: String,
    pub package: String,
    pub version: String,
    pub name: Option<String>,
    pub publisher: Option<String>,
    pub files: Vec<PlannedFile>,
}

/// What `fetch plan --winget` shows: the versions selected with their installers, and
/// everything left out with its reason.
#[derive(Debug, Default)]
pub struct Plan {
    pub versions: Vec<PlannedVersion>,
    pub skipped: Vec<Skipped>,
}

/// Selects from `versions` and keeps what maps to an update: a version whose installers
/// cannot be installed unattended or named in the model joins the skipped, with its reason.
fn choose<'a>(versions: &'a [PackageVersion], selection: &Selection) -> (Vec<Chosen<'a>>, Vec<Skipped>) {
    let (chosen, mut skipped) = select(versions, selection);
    let chosen = chosen
        .into_iter()
        .filter(|c| {
            let no_sizes: Vec<(&Installer, u64)> = c.installers.iter().map(|i| (*i, 0)).collect();
            match to_update(c.version, &no_sizes, &older(versions, c.version)) {
                Ok(_) => true,
                Err(reason) => {
                    skipped.push(Skipped { id: c.version.id.clone(), version: c.version.version.clone(), reason });
                    false
                }
            }
        })
        .collect();
    (chosen, skipped)
}

/// The versions of `version`'s package in `versions` older than it: what it supersedes.
fn older<'a>(versions: &'a [PackageVersion], version: &PackageVersion) -> Vec<&'a str> {
    versions
        .iter()
        .filter(|v| v.id.eq_ignore_ascii_case(&version.id) && compare_versions(&v.version, &version.version).is_lt())
        .map(|v| v.version.as_str())
        .collect()
}

/// Reads the tree at `root` and selects from it, downloading nothing.
pub fn plan(root: &Path, selection: &Selection) -> Result<Plan> {
    let versions = read_tree(root)?;
    let (chosen, skipped) = choose(&versions, selection);
    if chosen.is_empty() && skipped.is_empty() {
        return Err(Error::EmptySelection { origin: root.display().to_string() });
    }
    let versions = chosen
        .iter()
        .map(|c| PlannedVersion {
            id: format!("{}@{}", c.version.id, c.version.version),
            package: c.version.id.clone(),
            version: c.version.version.clone(),
            name: c.version.name.clone(),
            publisher: c.version.publisher.clone(),
            files: c
                .installers
                .iter()
                .map(|i| PlannedFile {
                    url: i.url.clone(),
                    architecture: i.architecture.clone(),
                    installer_type: i.installer_type.clone(),
                    scope: i.scope.clone(),
                    sha256: i.sha256,
                    digest: "vendor-sha256",
                    size: None,
                })
                .collect(),
        })
        .collect();
    Ok(Plan { versions, skipped })
}

/// The most bytes fetched of an installer whose size no manifest gives (the largest in
/// winget-pkgs are a few GiB).
pub const MAX_INSTALLER_BYTES: u64 = 16 << 30;

/// The updates the tree at `root` offers under `selection` and what it passed over, with
/// their files' sizes: each
/// chosen installer is fetched into the cache first (its SHA-256 checked), since manifests
/// give no sizes and a bundle's layout needs them. The pack that follows finds them there.
pub fn offer(
    root: &Path,
    selection: &Selection,
    sources: &Sources,
    cache: &Cache,
    download: &DownloadOptions,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<(Catalog, Vec<Skipped>)> {
    let versions = read_tree(root)?;
    let (chosen, mut skipped) = choose(&versions, selection);
    let mut jobs: Vec<Job> = Vec::new();
    let mut queued: std::collections::HashSet<Sha256> = std::collections::HashSet::new();
    for c in &chosen {
        // A relative InstallerUrl (a local mirror's) is relative to the manifest.
        let manifest = Location::File(c.version.files.first().cloned().unwrap_or_else(|| root.to_path_buf()));
        for i in &c.installers {
            if queued.insert(i.sha256) {
                jobs.push(Job::size_unknown(i.sha256, MAX_INSTALLER_BYTES, manifest.join(&i.url)?));
            }
        }
    }
    let mut sizes: BTreeMap<Sha256, u64> = BTreeMap::new();
    download::run(&jobs, sources, cache, download, progress, |_, ready| {
        let size = std::fs::metadata(&ready.path).at(&ready.path)?.len();
        sizes.insert(ready.sha256, size);
        Ok(())
    })?;
    let mut updates = Vec::with_capacity(chosen.len());
    for c in &chosen {
        let sized: Vec<(&Installer, u64)> = c.installers.iter().map(|i| (*i, sizes[&i.sha256])).collect();
        match to_update(c.version, &sized, &older(&versions, c.version)) {
            Ok(mut update) => {
                for file in &mut update.files {
                    if let Some(job) = jobs.iter().find(|j| j.sha256() == Some(file.sha256)) {
                        file.url = job.location.as_url()?.to_string();
                    }
                }
                updates.push(update)
            }
            Err(reason) => {
                skipped.push(Skipped { id: c.version.id.clone(), version: c.version.version.clone(), reason })
            }
        }
    }
    Ok((Catalog { format: CATALOG_FORMAT, updates }, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real manifests of winget-pkgs kept beside the project (../shared/realdata).
    fn realdata() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata/winget/manifests");
        dir.is_dir().then_some(dir)
    }

    #[test]
    fn every_real_manifest_is_read() {
        let Some(dir) = realdata() else {
            panic!("../shared/realdata/winget is missing: the tests read the real manifests there");
        };
        let versions = read_tree(&dir).unwrap();
        let counts: Vec<(String, String, usize)> =
            versions.iter().map(|v| (v.id.clone(), v.version.clone(), v.installers.len())).collect();
        let expected = [
            ("7zip.7zip", "24.09", 6),
            ("7zip.7zip", "24.08", 6),
            ("7zip.7zip", "23.01", 5),
            ("7zip.7zip", "16.0.4", 1),
            ("Mozilla.Firefox.ESR", "115.15.0", 3),
            ("Notepad++.Notepad++", "8.7", 3),
            ("VideoLAN.VLC", "3.0.21", 2),
            ("VideoLAN.VLC", "3.0.20", 4),
        ];
        let expected: Vec<(String, String, usize)> =
            expected.iter().map(|(i, v, n)| (i.to_string(), v.to_string(), *n)).collect();
        assert_eq!(counts, expected);
        for v in &versions {
            assert!(v.name.is_some() && v.publisher.is_some(), "{} {}: no default locale texts", v.id, v.version);
            for i in &v.installers {
                assert!(i.url.starts_with("https://"), "{}: {}", v.id, i.url);
            }
        }
        let singleton = versions.iter().find(|v| v.version == "16.0.4").unwrap();
        assert_eq!(singleton.manifest_version, "1.0.0");
        assert_eq!(singleton.installers[0].installer_type.as_deref(), Some("msi"), "a top-level default");
        let vlc = versions.iter().find(|v| v.version == "3.0.20").unwrap();
        assert_eq!(vlc.installers[0].product_code.as_deref(), Some("{9675011C-2395-4AD7-B1CC-92910F991F58}"));
        assert_eq!(vlc.installers[0].platform, ["Windows.Desktop"], "a top-level default");
    }

    #[test]
    fn real_versions_are_selected_as_asked() {
        let Some(dir) = realdata() else { panic!("../shared/realdata/winget is missing") };
        let versions = read_tree(&dir).unwrap();
        let latest = Selection { latest: Some(1), ..Selection::default() };
        let (chosen, skipped) = select(&versions, &latest);
        let picked: Vec<String> = chosen.iter().map(|c| format!("{}@{}", c.version.id, c.version.version)).collect();
        assert_eq!(
            picked,
            ["7zip.7zip@24.09", "Mozilla.Firefox.ESR@115.15.0", "Notepad++.Notepad++@8.7", "VideoLAN.VLC@3.0.21"]
        );
        assert!(skipped.iter().all(|s| s.reason.contains("gives way to")), "{skipped:?}");
        let x64 = Selection {
            packages: vec!["7ZIP.*".into()],
            latest: Some(2),
            architectures: vec!["x64".into()],
            ..Selection::default()
        };
        let (chosen, _) = select(&versions, &x64);
        let picked: Vec<(&str, usize, &str)> = chosen
            .iter()
            .map(|c| (c.version.version.as_str(), c.installers.len(), c.installers[0].architecture.as_str()))
            .collect();
        assert_eq!(picked, [("24.09", 1, "x64"), ("24.08", 1, "x64")]);
    }
}
