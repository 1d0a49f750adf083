//! `fetch plan --winget`: the real winget manifests kept beside the project
//! (../shared/realdata/winget) are read whole, and a broken manifest is refused naming the
//! file, the line and the field.

use crate::support::*;

fn realdata() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata/winget/manifests");
    assert!(dir.is_dir(), "{} is missing: the tests read the real manifests there", dir.display());
    dir
}

#[test]
fn every_real_installer_is_planned_or_said_why_not() {
    let s = Scratch::new();
    let out = s.fetch(&["plan", "--winget", realdata().to_str().unwrap(), "--json"]).ok();
    let lines: Vec<serde_json::Value> = out.lines().map(json_line).collect();
    let planned: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "plan-update").map(|l| &l["data"]).collect();
    let skipped: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "plan-skipped").map(|l| &l["data"]).collect();
    let ids: Vec<&str> = planned.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "7zip.7zip@24.09",
            "7zip.7zip@24.08",
            "7zip.7zip@23.01",
            "7zip.7zip@16.0.4",
            "Mozilla.Firefox.ESR@115.15.0",
            "Notepad++.Notepad++@8.7",
            "VideoLAN.VLC@3.0.21",
            "VideoLAN.VLC@3.0.20",
        ]
    );
    let files: Vec<&serde_json::Value> = planned.iter().flat_map(|p| p["files"].as_array().unwrap()).collect();
    for f in &files {
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64, "{f}");
        assert_eq!(f["digest"], "vendor-sha256");
        assert!(f["size"].is_null(), "winget manifests give no sizes");
    }
    // The 30 installers of the 8 versions: one per architecture planned, the others named
    // with the installer they gave way to.
    assert_eq!(files.len() + skipped.len(), 30, "{out}");
    assert!(skipped.iter().all(|s| s["reason"].as_str().unwrap().contains("gives way to")), "{skipped:?}");
}

#[test]
fn manifest_with_a_bad_success_code() {
    let s = Scratch::new();
    let tree = s.path("manifests");
    let source = realdata().join("v/VideoLAN/VLC/3.0.21");
    let target = tree.join("v/VideoLAN/VLC/3.0.21");
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
    }
    let installer = target.join("VideoLAN.VLC.installer.yaml");
    let text = std::fs::read_to_string(&installer).unwrap();
    let broken = text.replacen("Installers:", "InstallerSuccessCodes: [zero]\nInstallers:", 1);
    std::fs::write(&installer, broken).unwrap();
    let line = text.lines().position(|l| l.starts_with("Installers:")).unwrap() + 1;
    s.fetch(&["plan", "--winget", tree.to_str().unwrap()]).refused(
        exit::INPUT,
        &["VideoLAN.VLC.installer.yaml", &format!("line {line}"), "InstallerSuccessCodes[0]", "invalid type"],
    );
}
