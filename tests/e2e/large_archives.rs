//! Honest archives at the edges of the zip format are accepted: more than 65,535 entries
//! (ZIP64 end records). Files over 4 GiB are exercised by tests/bench/zip64-large-file.sh,
//! which needs about 14 GiB of disk and two minutes (run there: fetch pack, unzip -l,
//! ingest verify, import and check of a 4.5 GiB file).

use std::process::Command;

use crate::support::*;

#[test]
fn zip64_with_more_than_65535_entries_is_accepted() {
    const FILES: usize = 65_600;
    let s = Scratch::new();
    let feed = s.path("feed");
    std::fs::create_dir_all(feed.join("files")).unwrap();
    let mut files = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let name = format!("part-{i:05}.cab");
        let body = format!("part {i}\n");
        std::fs::write(feed.join("files").join(&name), &body).unwrap();
        files.push(serde_json::json!({"name": name, "url": format!("files/{name}"),
                                      "sha256": sha256_hex(body.as_bytes()), "size": body.len()}));
    }
    let catalog = serde_json::json!({"format": 1, "updates": [{
        "id": "KB9999999", "revision": 1, "title": "An update in many parts", "vendor": "Test Vendor",
        "product": "Windows 11", "version": "1.0", "classification": "update-rollup", "release_date": "2024-01-09",
        "files": files}]});
    std::fs::write(feed.join("catalog.json"), serde_json::to_vec(&catalog).unwrap()).unwrap();
    let (secret, public) = s.key("signer");
    s.trust(&public);

    let bundle = s.pack(feed.join("catalog.json").to_str().unwrap(), &secret, &[]);
    let bytes = std::fs::read(&bundle).unwrap();
    let zip64_end = 0x0606_4b50u32.to_le_bytes();
    assert!(bytes[bytes.len() - 200..].windows(4).any(|w| w == zip64_end), "a ZIP64 end record is present");
    let listing = tool("unzip").arg("-l").arg(&bundle).output().unwrap();
    assert!(listing.status.success(), "unzip -l: {}", String::from_utf8_lossy(&listing.stderr));
    assert!(String::from_utf8_lossy(&listing.stdout).contains(&format!("{} files", FILES + 2)));

    let out = s.ingest(&["verify", bundle.to_str().unwrap(), "--json"]).ok();
    let v: serde_json::Value = first_of(&out, "verified");
    assert_eq!(v["payloads_verified"], FILES, "every entry was read and checked");
}

/// A bundle of more files than the process may hold open at once is imported: the copies
/// are closed once written and synced, and only the ones being written are open.
#[test]
fn more_files_than_open_file_handles_are_imported() {
    const FILES: usize = 300;
    const OPEN_FILES: u32 = 64;
    let s = Scratch::new();
    let feed = s.path("feed");
    std::fs::create_dir_all(feed.join("files")).unwrap();
    let mut updates = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let name = format!("update-{i:03}.cab");
        let body = payload(&name, 1000 + i * 37);
        std::fs::write(feed.join("files").join(&name), &body).unwrap();
        updates.push(serde_json::json!({
            "id": format!("KB{:07}", 5000000 + i), "revision": 1, "title": name, "vendor": "Test Vendor",
            "product": "Windows 11", "version": "1.0", "classification": "update-rollup",
            "release_date": "2024-01-09",
            "files": [{"name": name, "url": format!("files/{name}"), "sha256": sha256_hex(&body), "size": body.len()}]}));
    }
    let catalog = serde_json::json!({"format": 1, "updates": updates});
    std::fs::write(feed.join("catalog.json"), serde_json::to_vec(&catalog).unwrap()).unwrap();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let bundle = s.pack(feed.join("catalog.json").to_str().unwrap(), &secret, &[]);

    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {OPEN_FILES} && exec \"$0\" \"$@\""))
        .arg(&*INGEST)
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["import", bundle.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let out = Run::from(out).ok();
    assert!(out.contains("\"accepted\""), "{out}");
    let listed = s.ingest(&["list", "--json"]).ok();
    assert_eq!(listed.lines().count(), FILES, "every update is registered");
    s.ingest(&["check"]).ok();
}
