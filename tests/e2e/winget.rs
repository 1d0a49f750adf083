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

/// A copy of the real manifest tree whose installers are generated payloads served by a
/// loopback server: every `InstallerUrl` points at the server and every `InstallerSha256`
/// is that of the payload. The payload of a URL containing `tamper` is served with one byte
/// more than its digest says.
fn served_realdata(s: &Scratch, tamper: Option<&str>) -> (std::path::PathBuf, crate::support::http::Server) {
    let tree = s.path("manifests");
    let mut manifests: Vec<(std::path::PathBuf, String)> = Vec::new();
    for rel in walk(&realdata()) {
        let target = tree.join(&rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        manifests.push((target, std::fs::read_to_string(realdata().join(&rel)).unwrap()));
    }
    let key = |line: &str| line.trim_start().trim_start_matches("- ").to_string();
    let path_of = |url: &str| url.split_once("://").unwrap().1.replace(['/', '%'], "_");
    let payload_of = |url: &str| payload(url, 1000 + 10 * url.len());
    let mut served = std::collections::BTreeMap::new();
    for (_, text) in &manifests {
        for line in text.lines().map(key) {
            if let Some(url) = line.strip_prefix("InstallerUrl: ") {
                let mut bytes = payload_of(url);
                if tamper.is_some_and(|t| url.contains(t)) {
                    bytes.push(b'!');
                }
                served.insert(path_of(url), bytes);
            }
        }
    }
    let server = crate::support::http::Server::start(served);
    for (target, text) in manifests {
        // The k-th InstallerSha256 is the k-th installer's, wherever it stands in the item.
        let urls: Vec<String> =
            text.lines().map(key).filter_map(|l| l.strip_prefix("InstallerUrl: ").map(str::to_string)).collect();
        let (mut url_k, mut digest_k) = (0, 0);
        let rewritten: Vec<String> = text
            .lines()
            .map(|line| {
                let head = &line[..line.len() - key(line).len()];
                if key(line).starts_with("InstallerUrl: ") {
                    url_k += 1;
                    format!("{head}InstallerUrl: {}", server.url(&path_of(&urls[url_k - 1])))
                } else if key(line).starts_with("InstallerSha256: ") {
                    digest_k += 1;
                    format!("{head}InstallerSha256: {}", sha256_hex(&payload_of(&urls[digest_k - 1])).to_uppercase())
                } else {
                    line.to_string()
                }
            })
            .collect();
        assert_eq!(url_k, digest_k, "{}: one digest per installer URL", target.display());
        std::fs::write(&target, rewritten.join("\r\n") + "\r\n").unwrap();
    }
    (tree, server)
}

#[test]
fn winget_tree_over_a_loopback_server_to_update_list() {
    let s = Scratch::new();
    let (tree, server) = served_realdata(&s, None);
    let (secret, public) = s.key("signer");
    let out = s.pack_from(&["--winget", tree.to_str().unwrap()], &secret, &["--json"], &[]).ok();
    let lines: Vec<serde_json::Value> = out.lines().map(json_line).collect();
    let bundle = lines.last().unwrap();
    assert_eq!(bundle["type"], "bundle", "{out}");
    assert_eq!(bundle["data"]["updates"], 8, "{out}");
    assert_eq!(bundle["data"]["payloads"], 22, "one per chosen installer: {out}");
    let skipped = lines.iter().filter(|l| l["type"] == "plan-skipped").count();
    assert_eq!(skipped, 8, "the installers passed over are said, as by plan: {out}");
    for request in server.requests() {
        assert_eq!(
            server.stats(&request).requests,
            1,
            "{request} is fetched once: to learn its size, then packed from the cache"
        );
    }

    s.trust(&public);
    s.ingest(&["import", bundle["data"]["path"].as_str().unwrap()]).ok();
    let list = s.ingest(&["list", "--json"]).ok();
    let mut ids: Vec<String> = list.lines().map(|l| data(l)["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "7zip.7zip@16.0.4",
            "7zip.7zip@23.01",
            "7zip.7zip@24.08",
            "7zip.7zip@24.09",
            "Mozilla.Firefox.ESR@115.15.0",
            "Notepad++.Notepad++@8.7",
            "VideoLAN.VLC@3.0.20",
            "VideoLAN.VLC@3.0.21",
        ]
    );
    let show = data(&s.ingest(&["show", "7zip.7zip@24.08", "--json"]).ok());
    assert_eq!(show["superseded_by"], serde_json::json!(["7zip.7zip@24.09"]), "{show}");
    assert_eq!(show["classification"], "application");
    let firefox = data(&s.ingest(&["show", "Mozilla.Firefox.ESR@115.15.0", "--json"]).ok());
    let metadata = &firefox["metadata"];
    assert_eq!(metadata["applicability"]["packages"], serde_json::json!(["Mozilla.Firefox.ESR"]), "{metadata}");
    let names: std::collections::BTreeSet<&str> =
        metadata["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "three architectures' installers of one name stay apart: {names:?}");
    assert_eq!(
        metadata["install"]["arguments"],
        serde_json::json!(["/S", "/PreventRebootRequired=true"]),
        "{metadata}"
    );
    assert_eq!(firefox["release_date"], "2024-09-03", "the manifest's ReleaseDate");
    let vlc = data(&s.ingest(&["show", "VideoLAN.VLC@3.0.21", "--json"]).ok());
    assert_eq!(vlc["release_date"], serde_json::Value::Null, "no ReleaseDate in the manifest: unknown, not invented");
}

#[test]
fn winget_installer_whose_digest_differs() {
    let s = Scratch::new();
    let (tree, _server) = served_realdata(&s, Some("npp.8.7.Installer.x64.exe"));
    let (secret, _) = s.key("signer");
    let media = s.media();
    s.pack_from(&["--winget", tree.to_str().unwrap()], &secret, &["--package", "Notepad++.*"], &[])
        .refused(exit::INTEGRITY, &["npp.8.7.Installer.x64.exe", "SHA-256"]);
    assert!(walk(&media).is_empty(), "no bundle is left behind: {:?}", walk(&media));
}

#[test]
fn winget_installer_named_relative_to_its_manifest() {
    // The shipped sample: the real Firefox ESR manifests, the x64 installer pointed at a
    // payload beside the tree, as a local mirror of installers is written.
    let s = Scratch::new();
    let tree = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/winget/manifests");
    let (secret, _) = s.key("signer");
    let out =
        s.pack_from(&["--winget", tree.to_str().unwrap()], &secret, &["--architecture", "x64", "--json"], &[]).ok();
    let bundle = json_line(out.lines().last().unwrap());
    assert_eq!((bundle["data"]["updates"].as_u64(), bundle["data"]["payloads"].as_u64()), (Some(1), Some(1)), "{out}");
    let inspect = data(&s.fetch(&["inspect", bundle["data"]["path"].as_str().unwrap(), "--json"]).ok());
    let file = &inspect["manifest"]["updates"][0]["files"][0];
    assert_eq!(file["name"], "Firefox Setup 115.15.0esr.exe", "{file}");
    assert!(file["url"].as_str().unwrap().starts_with("file:///"), "resolved against the manifest: {file}");
    assert_eq!(file["size"], 4608);
}

#[test]
fn msrc_json_document_with_a_cve_that_is_not_text() {
    let s = Scratch::new();
    let doc = s.path("2024-Jan.json");
    std::fs::write(
        &doc,
        r#"{"DocumentTracking":{"Identification":{"ID":{"Value":"2024-Jan"}}},
"Vulnerability":[{"CVE":20674,"Remediations":[{"Type":2,"Description":{"Value":"5034122"}}]}]}"#,
    )
    .unwrap();
    s.fetch(&["plan", "--msrc", doc.to_str().unwrap()])
        .refused(exit::INPUT, &["2024-Jan.json", "line 2", "Vulnerability[0].CVE"]);
}

#[test]
fn winget_manifest_corrected_in_place() {
    // winget-pkgs corrects a version's installer in place (a vendor re-released it): the same
    // PackageIdentifier@PackageVersion with another InstallerSha256. fetch numbers a new
    // revision, so that the offline side takes the correction.
    let s = Scratch::new();
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let rel = "winget/manifests/m/Mozilla/Firefox/ESR/115.15.0";
    std::fs::create_dir_all(s.path(rel)).unwrap();
    for entry in std::fs::read_dir(samples.join(rel)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), s.path(rel).join(entry.file_name())).unwrap();
    }
    std::fs::create_dir_all(s.path("payloads")).unwrap();
    let payload = s.path("payloads/Firefox Setup 115.15.0esr.exe");
    std::fs::copy(samples.join("payloads/Firefox Setup 115.15.0esr.exe"), &payload).unwrap();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let tree = s.path("winget/manifests");
    let pack_and_import = || {
        let out =
            s.pack_from(&["--winget", tree.to_str().unwrap()], &secret, &["--architecture", "x64", "--json"], &[]).ok();
        let bundle = json_line(out.lines().last().unwrap());
        s.ingest(&["import", bundle["data"]["path"].as_str().unwrap()]).ok();
        data(&s.ingest(&["show", "Mozilla.Firefox.ESR@115.15.0", "--json"]).ok())
    };
    let first = pack_and_import();
    assert_eq!(first["revision"], 1);
    s.ingest(&["approve", "Mozilla.Firefox.ESR@115.15.0", "--by", "tester"]).ok();

    let mut bytes = std::fs::read(&payload).unwrap();
    bytes.extend_from_slice(b"re-released\n");
    std::fs::write(&payload, &bytes).unwrap();
    let installer = s.path(rel).join("Mozilla.Firefox.ESR.installer.yaml");
    let text = std::fs::read_to_string(&installer).unwrap();
    let old = first["metadata"]["files"][0]["sha256"].as_str().unwrap().to_uppercase();
    std::fs::write(&installer, text.replace(&old, &sha256_hex(&bytes).to_uppercase())).unwrap();
    let second = pack_and_import();
    assert_eq!(second["revision"], 2, "{second}");
    assert_eq!(second["metadata"]["files"][0]["sha256"], sha256_hex(&bytes));
    assert_eq!(second["status"], "undefined", "new files send the approval back: {second}");
}
