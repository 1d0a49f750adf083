//! The client on a managed computer: it reads its distribution point, checks the index and
//! the assignment with the server key, installs what its group is assigned (each file
//! checked in a copy of its own), writes results that ingest reads, and refuses a point
//! rolled back to an older generation. The installers are scripts: for `sh` here, for
//! `cmd` when the Windows programs run under wine.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// Whether the programs under test are the Windows ones (under wine).
fn windows() -> bool {
    std::env::var_os("FERRY_E2E_BIN_DIR").is_some()
}

/// What each tool's installer exits with: success, the vendor's "restart needed", failure.
/// Windows' own codes on Windows; a Unix exit code has 8 bits.
fn codes() -> [(&'static str, i32); 3] {
    if windows() { [("alpha", 0), ("beta", 3010), ("gamma", 1603)] } else { [("alpha", 0), ("beta", 3), ("gamma", 5)] }
}

/// An installer script that appends `name` to the file in $FERRY_TEST_MARKER and exits
/// with `code`: its file name, its bytes, and the command and arguments that run it.
fn script(name: &str, code: i32) -> (String, String, &'static str, Vec<&'static str>) {
    if windows() {
        let body = format!("@echo {name}>> \"%FERRY_TEST_MARKER%\"\r\n@exit /b {code}\r\n");
        (format!("install-{name}.cmd"), body, "cmd", vec!["/c", "{file}"])
    } else {
        let body = format!("#!/bin/sh\necho {name} >> \"$FERRY_TEST_MARKER\"\nexit {code}\n");
        (format!("install-{name}.sh"), body, "sh", vec!["{file}"])
    }
}

/// Three tools whose installers are scripts exiting as [`codes`] says; each appends its
/// name to the marker file.
fn catalog(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("payloads")).unwrap();
    let mut updates = Vec::new();
    let reboot = codes()[1].1;
    for (name, code) in codes() {
        let (file, body, command, arguments) = script(name, code);
        std::fs::write(dir.join("payloads").join(&file), &body).unwrap();
        updates.push(serde_json::json!({
            "id": format!("Tools.{name}@1.0"), "revision": 1, "title": format!("{name} 1.0"),
            "vendor": "Tools", "product": name, "version": "1.0", "classification": "application",
            "severity": "important", "release_date": "2026-11-01",
            "install": {"command": command, "arguments": arguments, "exit_codes": {"success": [0], "reboot": [reboot]}},
            "files": [{"name": file, "url": format!("payloads/{file}"), "sha256": sha256_hex(body.as_bytes()),
                       "size": body.len()}],
        }));
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::to_vec(&serde_json::json!({"format": 1, "updates": updates})).unwrap()).unwrap();
    path
}

struct Site {
    s: Scratch,
    dp: PathBuf,
    key: PathBuf,
    marker: PathBuf,
}

/// A server with the three tools approved and published to point hq, and PC-0001 known.
fn site() -> Site {
    let s = Scratch::new();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let bundle = s.pack(catalog(&s.path("feed")).to_str().unwrap(), &secret, &[]);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    s.ingest(&["approve", "--classification", "application", "--by", "alice"]).ok();
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/computers/reports/PC-0001.json");
    s.ingest(&["computers", "import", reports.to_str().unwrap()]).ok();
    let dp = s.path("dp-hq");
    s.ingest(&["dp", "add", "hq", "--path", dp.to_str().unwrap(), "--approved"]).ok();
    s.ingest(&["publish"]).ok();
    let key = s.path("server.pub");
    s.ingest(&["server-key", "export", "--out", key.to_str().unwrap()]).ok();
    let marker = s.path("installed.log");
    Site { s, dp, key, marker }
}

impl Site {
    fn client(&self, extra: &[&str]) -> Run {
        let out = Command::new(&*CLIENT)
            .args(["install", "--point"])
            .arg(&self.dp)
            .arg("--server-key")
            .arg(&self.key)
            .arg("--state")
            .arg(self.s.path("client-state"))
            .args(["--computer", "PC-0001"])
            .args(extra)
            .env("FERRY_TEST_MARKER", marker_for_the_program(&self.marker))
            .output()
            .unwrap();
        Run::from(out)
    }

    fn ran(&self) -> Vec<String> {
        std::fs::read_to_string(&self.marker).unwrap_or_default().lines().map(|l| l.trim().to_string()).collect()
    }
}

/// The marker's path as the installer sees it: under wine, the Unix root is drive Z:.
fn marker_for_the_program(marker: &Path) -> String {
    let path = marker.display().to_string();
    if windows() { format!("Z:{}", path.replace('/', "\\")) } else { path }
}

#[test]
fn the_client_installs_its_assignment_and_ingest_reads_its_results() {
    let site = site();
    let results = site.s.path("share/results");
    std::fs::create_dir_all(&results).unwrap();

    let planned = site.client(&["--dry-run"]).ok();
    assert!(planned.contains("planned Tools.alpha@1.0: ") && planned.contains("{file}"), "{planned}");
    assert!(site.ran().is_empty(), "a dry run installs nothing");

    let run = site.client(&["--results", results.to_str().unwrap()]);
    let out = run.ok();
    let [_, (_, reboot), (_, failure)] = codes();
    assert!(out.contains("installed Tools.alpha@1.0: a success code of the update's installer (0)"), "{out}");
    assert!(out.contains("installed Tools.beta@1.0: the installer's code for installed, restart needed"), "{out}");
    assert!(out.contains("failed Tools.gamma@1.0: failure") && out.contains(&format!("({failure})")), "{out}");
    assert!(out.contains(&format!("({reboot})")), "{out}");
    assert_eq!(site.ran(), ["alpha", "beta", "gamma"]);

    // What succeeded is not installed again; what failed is tried again.
    site.client(&["--results", results.to_str().unwrap()]).ok();
    assert_eq!(site.ran(), ["alpha", "beta", "gamma", "gamma"]);

    let imported = site.s.ingest(&["results", "import", results.to_str().unwrap()]).ok();
    // gamma's two results: two when the runs fell in different seconds, else one (the same
    // computer, update and time is recorded once).
    assert!(imported.contains("2 results files read"), "{imported}");
    assert!(["3 new results recorded", "4 new results recorded"].iter().any(|n| imported.contains(n)), "{imported}");
    let listed = site.s.ingest(&["results", "list", "--latest", "--json"]).ok();
    let outcomes: Vec<(String, String)> = listed
        .lines()
        .map(data)
        .map(|r| (r["update"].as_str().unwrap().to_string(), r["outcome"].as_str().unwrap().to_string()))
        .collect();
    assert!(outcomes.contains(&("Tools.beta@1.0".into(), "reboot".into())), "{outcomes:?}");
    assert!(outcomes.contains(&("Tools.gamma@1.0".into(), "failure".into())), "{outcomes:?}");
}

#[test]
fn a_file_that_is_not_the_indexed_one_is_never_run() {
    let site = site();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.dp.join("generations/1/index.json")).unwrap()).unwrap();
    let gamma = index["updates"].as_array().unwrap().iter().find(|u| u["id"] == "Tools.gamma@1.0").unwrap();
    let path = site.dp.join(gamma["files"][0]["path"].as_str().unwrap());
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, script("evil", 0).1).unwrap();
    let out = site.client(&[]).ok();
    assert!(out.contains("failed Tools.gamma@1.0") && out.contains("mismatch"), "{out}");
    assert_eq!(site.ran(), ["alpha", "beta"], "the altered installer did not run");
    assert!(out.contains("\"return_code\": 1619"), "reported as not run: {out}");
}

#[test]
fn a_point_rolled_back_to_an_older_generation_is_refused() {
    let site = site();
    site.client(&["--dry-run"]).ok();
    // A new generation: a second computer group changes the assignment.
    site.s.ingest(&["computers", "group", "add", "pilot", "--by", "alice"]).ok();
    site.s.ingest(&["computers", "assign", "pilot", "--computer", "PC-0001", "--by", "alice"]).ok();
    site.s.ingest(&["publish"]).ok();
    assert_eq!(std::fs::read_to_string(site.dp.join("current")).unwrap(), "2\n");
    let out = site.client(&["--dry-run"]).ok();
    assert!(out.contains("group pilot"), "{out}");
    // Someone with write access to the share puts the older generation back.
    std::fs::write(site.dp.join("current"), "1\n").unwrap();
    site.client(&["--dry-run"])
        .refused(exit::ROLLBACK, &["generation 1 of hq is older than generation 2", "replay or rollback"]);
}

#[test]
fn an_assignment_not_signed_by_the_server_key_is_refused() {
    let site = site();
    let file = site.dp.join("generations/1/assignment.json");
    let text = std::fs::read_to_string(&file).unwrap().replace("\"computers\": []", "\"computers\": [\"PC-0001\"]");
    std::fs::write(&file, text).unwrap();
    site.client(&[]).refused(exit::SIGNATURE, &["assignment.json was altered after signing"]);
    assert!(site.ran().is_empty());
}

#[test]
fn a_second_run_while_one_installs_is_refused() {
    let site = site();
    let state = site.s.path("client-state");
    std::fs::create_dir_all(&state).unwrap();
    let held =
        std::fs::File::options().create(true).truncate(false).write(true).open(state.join("client.lock")).unwrap();
    held.try_lock().unwrap();
    site.client(&[]).refused(exit::BUSY, &["client.lock"]);
    assert!(site.ran().is_empty());
}
