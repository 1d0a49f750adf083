//! A person waiting on long work sees it move: `progress` events with item and byte counts
//! under `--json` (docs/json.md), a plain line in a log, a bar on a terminal.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// The `progress` events of one command's standard output, as (task, data).
fn progress_events(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(json_line).filter(|l| l["type"] == "progress").map(|mut l| l["data"].take()).collect()
}

/// Checks that `stdout` reports `task` from its start to its end, counting `items` items of
/// `bytes` bytes (None: not known before the end), and that the command's own line follows.
#[track_caller]
fn reported(stdout: &str, task: &str, subject: &str, items: Option<u64>, bytes: Option<u64>, then: &str) {
    let events = progress_events(stdout);
    let first = events.first().unwrap_or_else(|| panic!("no progress event:\n{stdout}"));
    let last = events.last().unwrap();
    for e in [first, last] {
        assert_eq!(e["task"], task, "{e}");
        assert_eq!(e["subject"], subject, "{e}");
        assert_eq!(e["items_total"], serde_json::json!(items), "{e}");
        assert_eq!(e["bytes_total"], serde_json::json!(bytes), "{e}");
    }
    assert_eq!(
        (first["stage"].as_str(), first["items_done"].as_u64(), first["bytes_done"].as_u64()),
        (Some("started"), Some(0), Some(0))
    );
    assert_eq!(last["stage"], "finished", "{last}");
    if let Some(items) = items {
        assert_eq!(last["items_done"], items, "{last}");
    }
    if let Some(bytes) = bytes {
        assert_eq!(last["bytes_done"], bytes, "{last}");
    }
    let lines: Vec<serde_json::Value> = stdout.lines().map(json_line).collect();
    let after = lines.iter().rposition(|l| l["type"] == "progress").unwrap() + 1;
    assert_eq!(lines[after]["type"], then, "the command's own result comes after its progress:\n{stdout}");
}

/// The three standard updates packed into one bundle: (scratch, bundle, files, bytes).
fn packed() -> (Scratch, std::path::PathBuf, u64, u64) {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let out = s.pack_run(catalog.to_str().unwrap(), &secret, &["--json"], &[]).ok();
    let selected = out.lines().map(json_line).find(|l| l["type"] == "selected").unwrap()["data"].take();
    let (files, bytes) = (selected["files"].as_u64().unwrap(), selected["bytes"].as_u64().unwrap());
    // fetch reports the pack's bytes and files as they go, in the same shape.
    let events = progress_events(&out);
    let last = events.last().unwrap_or_else(|| panic!("fetch pack --json gave no progress event:\n{out}"));
    assert_eq!(events[0]["stage"], "started", "{out}");
    assert_eq!(events[0]["task"], "pack");
    assert_eq!((last["stage"].as_str(), last["items_done"].as_u64()), (Some("finished"), Some(files)), "{out}");
    assert_eq!((last["bytes_done"].as_u64(), last["bytes_total"].as_u64()), (Some(bytes), Some(bytes)), "{out}");
    let bundle = data(out.lines().last().unwrap())["path"].as_str().unwrap().into();
    (s, bundle, files, bytes)
}

#[test]
fn long_work_reports_items_and_bytes_under_json() {
    let (s, bundle, files, bytes) = packed();
    let b = bundle.to_str().unwrap();
    let verify = s.ingest(&["verify", b, "--json"]).ok();
    reported(&verify, "verify", b, Some(files), Some(bytes), "verified");
    let import = s.ingest(&["import", b, "--json"]).ok();
    reported(&import, "import", b, Some(files), Some(bytes), "import");

    s.ingest(&["approve", "--all", "--by", "alice"]).ok();
    let point = s.path("point");
    s.ingest(&["dp", "add", "hq", "--path", point.to_str().unwrap(), "--approved"]).ok();
    let publish = s.ingest(&["publish", "--json"]).ok();
    reported(&publish, "publish", "hq", Some(files), Some(bytes), "published");

    let check = s.ingest(&["check", "--json"]).ok();
    let store = s.data_dir().join("store");
    reported(&check, "check", store.to_str().unwrap(), Some(files), Some(bytes), "check");

    let list = s.path("list.csv");
    s.ingest(&["export-list", "--out", list.to_str().unwrap()]).ok();
    let size = std::fs::metadata(&list).unwrap().len();
    let other = Scratch::new();
    trust_peer(&other, &s);
    let imported = other.ingest(&["import-list", list.to_str().unwrap(), "--json"]).ok();
    reported(&imported, "import-list", list.to_str().unwrap(), None, Some(size), "list-imported");
    let rows = data(imported.lines().last().unwrap())["rows"].as_u64().unwrap();
    assert_eq!(progress_events(&imported).last().unwrap()["items_done"], rows);
}

#[test]
fn a_log_gets_plain_lines_where_no_terminal_is() {
    let (s, bundle, files, _) = packed();
    let run = s.ingest(&["import", bundle.to_str().unwrap()]);
    let err = run.stderr.clone();
    run.ok();
    let said = format!("ingest: importing {}: {files} files, ", bundle.display());
    assert!(err.contains(&said), "no {said:?} in:\n{err}");
    assert!(!err.contains('\u{1b}'), "no terminal codes in a log:\n{err}");
}

#[test]
fn a_terminal_gets_a_bar() {
    let (s, bundle, _, _) = packed();
    // `script` gives the command a terminal, as a person at a console has.
    let command = format!("{} --data-dir {} import {}", *INGEST, s.data_dir().display(), bundle.display());
    let typescript = s.path("typescript");
    let out = Command::new("script")
        .args(["-qec", &command])
        .arg(&typescript)
        .env("USER", "tester")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let screen = String::from_utf8_lossy(&std::fs::read(Path::new(&typescript)).unwrap()).to_string();
    let name = bundle.file_name().unwrap().to_str().unwrap();
    assert!(screen.contains("importing ") && screen.contains(name) && screen.contains("ETA"), "no bar:\n{screen}");
    assert!(screen.contains("imported:"), "the command's output follows the bar:\n{screen}");
    let log_line = format!("ingest: importing {}:", bundle.display());
    assert!(!screen.contains(&log_line), "a terminal gets the bar, not log lines:\n{screen}");
}
