//! Manual registration: a file downloaded by hand is checked against the update list,
//! attached to the update that lists it or made a new manual update, and counts as held in
//! the state file; a file that is not what it claims to be is refused and leaves nothing.

use crate::support::*;

fn urgent(s: &Scratch) -> std::path::PathBuf {
    let path = s.path("by-hand/windows10.0-kb5050000-x64.msu");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, payload("urgent", 30_000)).unwrap();
    path
}

/// Everything in the store, temporary areas included: a refusal must leave no trace.
fn store_files(s: &Scratch) -> Vec<String> {
    let mut files = walk(&s.data_dir().join("store"));
    files.sort();
    files
}

fn registered(s: &Scratch, args: &[&str]) -> serde_json::Value {
    data(s.ingest(&[&["register", "--json"], args].concat()).ok().trim())
}

#[test]
fn an_unknown_file_becomes_a_manual_update() {
    let s = update_list_server();
    let file = urgent(&s);
    let digest = sha256_hex(&std::fs::read(&file).unwrap());
    let out = s
        .ingest(&[
            "register",
            file.to_str().unwrap(),
            "--title",
            "Urgent fix",
            "--product",
            "Windows 10",
            "--classification",
            "security-update",
            "--severity",
            "critical",
            "--kb",
            "5050000",
            "--by",
            "alice",
        ])
        .ok();
    let id = format!("manual-{}", &digest[..16]);
    assert!(out.contains(&format!("new manual update {id}")), "{out}");
    let shown = update_json(&s, &id);
    assert_eq!(shown["origin"], "manual");
    assert_eq!(shown["title"], "Urgent fix");
    assert_eq!(shown["kb"], "KB5050000");
    assert_eq!(shown["available"], true);
    assert!(shown["origin_detail"].as_str().unwrap().contains("registered by hand by alice"), "{shown}");
    // Like any other update: approved, grouped, filtered.
    s.ingest(&["approve", &id, "--by", "alice"]).ok();
    s.ingest(&["group", "create", "urgent"]).ok();
    s.ingest(&["group", "add", "urgent", "--kb", "KB5050000"]).ok();
    assert_eq!(listed(&s, &["--group", "urgent", "--status", "approved"]), std::slice::from_ref(&id));
    s.ingest(&["check"]).ok();
    let audit = s.ingest(&["audit", "list"]).ok();
    assert!(audit.contains("manual-registration") && audit.contains(&digest), "{audit}");

    // The same file again: attached to the manual update, nothing new.
    let again = registered(&s, &[file.to_str().unwrap()]);
    assert_eq!(again["new_update"], serde_json::Value::Null);
    assert_eq!(again["files"][0]["updates"], serde_json::json!([id]));
    assert_eq!(again["files"][0]["newly_stored"], false);
}

#[test]
fn a_lost_file_registered_by_hand_makes_its_update_available_again() {
    let s = update_list_server();
    let original = s.path("feed/files/windows10.0-kb5034122-x64.msu");
    let digest = sha256_hex(&std::fs::read(&original).unwrap());
    let stored = s.data_dir().join(format!("store/sha256/{}/{digest}", &digest[..2]));
    std::fs::remove_file(&stored).unwrap();
    s.ingest(&["check", "--repair"]).ok();
    assert_eq!(update_json(&s, "KB5034122")["available"], false);

    let copy = s.path("by-hand/windows10.0-kb5034122-x64.msu");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(&original, &copy).unwrap();
    let done = registered(&s, &[copy.to_str().unwrap(), "--update", "KB5034122"]);
    assert_eq!(done["files"][0]["updates"], serde_json::json!(["KB5034122"]));
    assert_eq!(done["files"][0]["newly_stored"], true);
    assert_eq!(update_json(&s, "KB5034122")["available"], true);
    s.ingest(&["check"]).ok();
}

#[test]
fn file_with_a_known_name_and_another_digest() {
    let s = update_list_server();
    let impostor = s.path("by-hand/windows10.0-kb5034122-x64.msu");
    std::fs::create_dir_all(impostor.parent().unwrap()).unwrap();
    std::fs::write(&impostor, b"not the update").unwrap();
    let (before, files) = (s.state(), store_files(&s));
    let expected = sha256_hex(&std::fs::read(s.path("feed/files/windows10.0-kb5034122-x64.msu")).unwrap());
    s.ingest(&["register", impostor.to_str().unwrap()]).refused(
        exit::INTEGRITY,
        &[
            "claims to be file windows10.0-kb5034122-x64.msu of update KB5034122",
            &format!("expected {expected}"),
            &format!("got {}", sha256_hex(b"not the update")),
        ],
    );
    // Named with --update, the same refusal.
    s.ingest(&["register", impostor.to_str().unwrap(), "--update", "KB5034122"])
        .refused(exit::INTEGRITY, &["SHA-256 mismatch"]);
    assert_eq!((s.state(), store_files(&s)), (before, files));
}

#[test]
fn file_not_of_the_update_named() {
    let s = update_list_server();
    let file = urgent(&s);
    let (before, files) = (s.state(), store_files(&s));
    s.ingest(&["register", file.to_str().unwrap(), "--update", "7zip.7zip@24.09"])
        .refused(exit::INPUT, &["is not a file of update 7zip.7zip@24.09, whose files are: 7z2409-x64.exe"]);
    s.ingest(&["register", file.to_str().unwrap(), "--update", "KB0000000"])
        .refused(exit::NOT_FOUND, &["update \"KB0000000\" not found"]);
    assert_eq!((s.state(), store_files(&s)), (before, files));
}

#[test]
fn manual_update_without_product() {
    let s = update_list_server();
    let file = urgent(&s);
    let (before, files) = (s.state(), store_files(&s));
    s.ingest(&["register", file.to_str().unwrap(), "--title", "Urgent"])
        .refused(exit::INPUT, &["is not a file the update list knows", "--product and --classification"]);
    assert_eq!((s.state(), store_files(&s)), (before, files));
}

#[test]
fn registered_file_missing() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["register", s.path("by-hand/nothing.msu").to_str().unwrap(), "--product", "X"])
        .refused(exit::LOCAL, &["nothing.msu: No such file or directory"]);
    assert_eq!(s.state(), before);
}

#[test]
fn fetch_does_not_ship_a_file_registered_by_hand() {
    let s = update_list_server();
    let file = urgent(&s);
    let digest = sha256_hex(&std::fs::read(&file).unwrap());
    registered(&s, &[file.to_str().unwrap(), "--product", "Windows 10", "--classification", "security-update"]);
    let (state, server_key) = (s.path("courier/state.json"), s.path("courier/server.pub"));
    std::fs::create_dir_all(s.path("courier")).unwrap();
    s.ingest(&["server-key", "export", "--out", server_key.to_str().unwrap()]).ok();
    s.ingest(&["state", "export", "--out", state.to_str().unwrap()]).ok();
    let held: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(held["files"].as_array().unwrap().iter().any(|f| f == &serde_json::json!(digest)), "{held}");

    // The vendor's catalog later lists the same file: the delta carries its metadata only.
    let dir = s.path("feed3");
    let mut update = TestUpdate::new("KB5050000", "Windows 10", "windows10.0-kb5050000-x64.msu", 1);
    update.body = std::fs::read(&file).unwrap();
    let catalog = local_catalog(&dir, &[update]);
    let bundle = s.pack(
        catalog.to_str().unwrap(),
        &s.path("signer.key"),
        &["--state", state.to_str().unwrap(), "--server-key", server_key.to_str().unwrap()],
    );
    let names: Vec<String> = zip_entries(&bundle).into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.contains(&digest)), "{names:?}");
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    assert_eq!(update_json(&s, "KB5050000")["available"], true);
}

#[test]
fn same_file_given_twice() {
    let s = update_list_server();
    let file = urgent(&s);
    let twin = s.path("by-hand/copy-of-kb5050000.msu");
    std::fs::copy(&file, &twin).unwrap();
    let (before, files) = (s.state(), store_files(&s));
    s.ingest(&[
        "register",
        file.to_str().unwrap(),
        twin.to_str().unwrap(),
        "--product",
        "X",
        "--classification",
        "application",
    ])
    .refused(exit::INPUT, &["are the same file (SHA-256"]);
    assert_eq!((s.state(), store_files(&s)), (before, files));
}

#[test]
fn registered_path_is_a_directory() {
    let s = update_list_server();
    let dir = s.path("by-hand/folder.msu");
    std::fs::create_dir_all(&dir).unwrap();
    let (before, files) = (s.state(), store_files(&s));
    s.ingest(&["register", dir.to_str().unwrap(), "--product", "X", "--classification", "application"])
        .refused(exit::INPUT, &["folder.msu: is a directory, not a plain file"]);
    assert_eq!((s.state(), store_files(&s)), (before, files));
}
