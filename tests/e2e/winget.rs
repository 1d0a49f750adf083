//! `fetch plan --winget` and `--msrc`: the real winget manifests and MSRC documents kept beside the project
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
    let target = copy_version(&tree, "v/VideoLAN/VLC/3.0.21");
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

fn cvrf(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata/msrc-cvrf").join(name);
    assert!(path.is_file(), "{} is missing: the tests read the real documents there", path.display());
    path.to_str().unwrap().to_string()
}

#[test]
fn every_real_msrc_document_is_read() {
    let s = Scratch::new();
    let docs = ["cvrfDocument-2024-Jan.xml", "cvrfDocument-2024-Feb.xml", "cvrfDocument-2018-Jan.xml"].map(cvrf);
    let out = s.fetch(&["plan", "--msrc", &docs[0], "--msrc", &docs[1], "--msrc", &docs[2], "--json"]).ok();
    let lines: Vec<serde_json::Value> = out.lines().map(json_line).collect();
    let kbs: Vec<&serde_json::Value> = lines.iter().filter(|l| l["type"] == "msrc-kb").map(|l| &l["data"]).collect();
    assert_eq!(kbs.len(), 37 + 46 + 118, "each month's KBs, none shared");
    assert!(kbs.iter().all(|k| !k["security"]["cves"].as_array().unwrap().is_empty()));
    let summary = &lines.last().unwrap()["data"];
    assert_eq!(summary["documents"], serde_json::json!(["2024-Jan", "2024-Feb", "2018-Jan"]));
    let skipped: u64 = summary["without_kb"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(skipped, 81 + 71 + 68, "vendor fixes without a KB are counted, not dropped");
}

#[test]
fn msrc_document_cut_short() {
    let s = Scratch::new();
    let text = std::fs::read(cvrf("cvrfDocument-2024-Jan.xml")).unwrap();
    let cut = s.path("cut.xml");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    s.fetch(&["plan", "--msrc", cut.to_str().unwrap()]).refused(exit::INPUT, &["cut.xml: line"]);
}

/// A copy of one real version directory under `tree`, for fixtures that break it.
fn copy_version(tree: &std::path::Path, rel: &str) -> std::path::PathBuf {
    let target = tree.join(rel);
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(realdata().join(rel)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
    }
    target
}

#[cfg(unix)]
#[test]
fn manifest_that_is_a_symbolic_link() {
    let s = Scratch::new();
    let tree = s.path("manifests");
    let version = copy_version(&tree, "v/VideoLAN/VLC/3.0.21");
    let locale = version.join("VideoLAN.VLC.locale.en-US.yaml");
    std::fs::rename(&locale, s.path("elsewhere.yaml")).unwrap();
    std::os::unix::fs::symlink(s.path("elsewhere.yaml"), &locale).unwrap();
    s.fetch(&["plan", "--winget", tree.to_str().unwrap()])
        .refused(exit::INPUT, &["VideoLAN.VLC.locale.en-US.yaml", "symbolic link"]);
}

#[cfg(unix)]
#[test]
fn manifest_that_is_a_fifo() {
    let s = Scratch::new();
    let tree = s.path("manifests");
    let version = copy_version(&tree, "v/VideoLAN/VLC/3.0.21");
    let fifo = version.join("VideoLAN.VLC.locale.de-DE.yaml");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let started = std::time::Instant::now();
    s.fetch(&["plan", "--winget", tree.to_str().unwrap()])
        .refused(exit::INPUT, &["VideoLAN.VLC.locale.de-DE.yaml", "not a plain file"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "refused without waiting on the FIFO");
}
