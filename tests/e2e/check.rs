//! `ingest check`: the registry and the content store must agree byte for byte; what does
//! not is named, and `--repair` puts right what can be, leaving evidence in quarantine/.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::support::*;

/// A server that accepted the KB5034122 bundle; returns it with the stored file's path.
fn stored() -> (Accepted, PathBuf) {
    let a = Accepted::new();
    let digest = sha256_hex(&three_updates()[0].body);
    let path = a.s.data_dir().join("store/sha256").join(&digest[..2]).join(&digest);
    assert!(path.is_file());
    let clean = a.s.ingest(&["check"]).ok();
    assert!(clean.contains("clean: the registry and the store agree"), "{clean}");
    (a, path)
}

fn set_mode(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn available(a: &Accepted, id: &str) -> bool {
    let out = a.s.ingest(&["list", "--json"]).ok();
    out.lines().map(data).find(|u| u["id"] == id).unwrap_or_else(|| panic!("{id} not listed: {out}"))["available"]
        .as_bool()
        .unwrap()
}

fn quarantined(a: &Accepted) -> Vec<String> {
    walk(&a.s.data_dir().join("quarantine"))
}

#[test]
fn stored_file_edited_in_place() {
    let (a, path) = stored();
    set_mode(&path, 0o644);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    set_mode(&path, 0o444); // put back read-only: the digest, not the mode, shows the edit
    let digest = path.file_name().unwrap().to_str().unwrap().to_string();

    a.s.ingest(&["check"]).refused_on_stdout(exit::INTEGRITY, &[&format!("found: file {digest} is damaged")]);
    let out = a.s.ingest(&["check", "--repair"]).ok();
    assert!(out.contains(&format!("repaired: file {digest} is damaged")), "{out}");
    assert!(!path.exists());
    assert_eq!(quarantined(&a).len(), 1, "the damaged copy is kept as evidence");
    assert!(!available(&a, "KB5034122"), "an update whose file is gone is not available");
    a.s.ingest(&["check"]).ok();

    // Importing the bundle again restores the file, checked like any other.
    let first = std::fs::read_dir(a.s.media()).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    a.s.ingest(&["import", first.to_str().unwrap()]).ok();
    assert!(available(&a, "KB5034122"));
    assert_eq!(std::fs::read(&path).unwrap(), three_updates()[0].body);
    a.s.ingest(&["check"]).ok();
}

#[test]
fn stored_file_made_writable() {
    let (a, path) = stored();
    set_mode(&path, 0o644);
    a.s.ingest(&["check"]).refused_on_stdout(exit::INTEGRITY, &["is writable (stored files are read-only)"]);
    a.s.ingest(&["check", "--repair"]).ok();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o222, 0);
    assert!(available(&a, "KB5034122"), "the bytes were right: nothing else changes");
    a.s.ingest(&["check"]).ok();
}

#[test]
fn stored_file_missing() {
    let (a, path) = stored();
    std::fs::remove_file(&path).unwrap();
    a.s.ingest(&["check"]).refused_on_stdout(exit::INTEGRITY, &["is registered but missing from the store"]);
    a.s.ingest(&["check", "--repair"]).ok();
    assert!(!available(&a, "KB5034122"));
    a.s.ingest(&["check"]).ok();
}

#[test]
fn unknown_file_in_store() {
    let (a, path) = stored();
    let stray = path.parent().unwrap().join("left-here-by-hand.msu");
    std::fs::write(&stray, b"not from any bundle").unwrap();
    let named_like_a_digest = a.s.data_dir().join("store/sha256/00").join("00".repeat(32));
    std::fs::create_dir_all(named_like_a_digest.parent().unwrap()).unwrap();
    std::fs::write(&named_like_a_digest, b"unregistered").unwrap();
    let out =
        a.s.ingest(&["check"])
            .refused_on_stdout(exit::INTEGRITY, &["left-here-by-hand.msu is not a file the registry knows"]);
    assert!(out.contains(&format!("{} is not a file the registry knows", named_like_a_digest.display())), "{out}");
    a.s.ingest(&["check", "--repair"]).ok();
    assert!(!stray.exists() && !named_like_a_digest.exists());
    assert_eq!(quarantined(&a).len(), 2);
    assert!(available(&a, "KB5034122"));
    a.s.ingest(&["check"]).ok();
}

#[test]
fn stored_file_not_registered() {
    // As an import interrupted after the store and before the registry transaction leaves it.
    let (a, path) = stored();
    let digest = path.file_name().unwrap().to_str().unwrap();
    let db = rusqlite::Connection::open(a.s.data_dir().join("registry.sqlite")).unwrap();
    db.execute("UPDATE files SET present = 0 WHERE sha256 = ?1", [digest]).unwrap();
    drop(db);
    assert!(!available(&a, "KB5034122"));
    a.s.ingest(&["check"]).refused_on_stdout(exit::INTEGRITY, &["is in the store but not registered"]);
    a.s.ingest(&["check", "--repair"]).ok();
    assert!(available(&a, "KB5034122"));
    let log = a.s.ingest(&["audit", "list", "--json"]).ok();
    assert!(log.lines().last().unwrap().contains("\"check-repair\""), "{log}");
}

#[test]
fn audit_log_broken_is_not_repairable() {
    let (a, _) = stored();
    let db = rusqlite::Connection::open(a.s.data_dir().join("registry.sqlite")).unwrap();
    db.execute("UPDATE audit_log SET subject = 'edited' WHERE seq = 1", []).unwrap();
    drop(db);
    a.s.ingest(&["check", "--repair"]).refused_on_stdout(exit::INTEGRITY, &["NOT REPAIRABLE: audit log broken"]);
}

#[test]
fn registry_row_damaged_behind_ingest() {
    // Metadata ingest never writes (edited in the file, or a bug) is a local failure (exit
    // 9), not bad input (exit 3): nobody typed it.
    let s = update_list_server();
    let db = rusqlite::Connection::open(s.data_dir().join("registry.sqlite")).unwrap();
    db.execute("UPDATE update_metadata SET metadata = '{not json' WHERE update_id = 'KB5034122'", []).unwrap();
    drop(db);
    s.ingest(&["show", "KB5034122"]).refused(exit::DAMAGED, &["registry ", "metadata of KB5034122 is damaged"]);
}

#[test]
fn repair_dry_run_says_each_repair_and_changes_nothing() {
    let (a, path) = stored();
    set_mode(&path, 0o644);
    let digest = path.file_name().unwrap().to_str().unwrap().to_string();
    let stray = a.s.data_dir().join("store/sha256/00/not-a-digest");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, "left here").unwrap();
    let state = a.s.state();
    let audit = a.s.ingest(&["audit", "list", "--json"]).ok();

    let out = a.s.ingest(&["check", "--repair", "--dry-run"]).refused_on_stdout(exit::INTEGRITY, &[]);
    for part in [
        format!("would repair: file {digest} is writable (stored files are read-only): make it read-only again"),
        format!("would repair: {} is not a file the registry knows: move it to quarantine", stray.display()),
        "dry run: nothing was changed".to_string(),
    ] {
        assert!(out.contains(&part), "no {part:?} in:\n{out}");
    }
    let json = a.s.ingest(&["check", "--repair", "--dry-run", "--json"]);
    let line = first_of(&json.stdout, "check");
    assert_eq!(line["repaired"], false);
    assert_eq!(line["would_repair"].as_array().unwrap().len(), 2, "{line}");
    assert!(stray.exists() && !std::fs::metadata(&path).unwrap().permissions().readonly(), "nothing moved or changed");
    assert!(!a.s.data_dir().join("quarantine").exists());
    assert_eq!(a.s.state(), state);
    assert_eq!(a.s.ingest(&["audit", "list", "--json"]).ok(), audit, "no repair entry in the audit log");

    // --dry-run alone would read as a plain check: it asks for --repair.
    a.s.ingest(&["check", "--dry-run"]).refused(2, &["--repair"]);
}
