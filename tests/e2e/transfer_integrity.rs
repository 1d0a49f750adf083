//! Bytes that changed on the way are caught by SHA-256, by fetch while downloading and by
//! ingest while copying off the media (exit code 5); nothing half-written stays behind.

use std::collections::BTreeMap;

use crate::support::http::Server;
use crate::support::*;

#[test]
fn payload_altered_with_recomputed_crc() {
    let a = Accepted::new();
    let mut altered = None;
    let bundle = a.tampered("payload-altered-crc-recomputed.zip", |entries| {
        let (name, bytes) = entries.iter_mut().find(|(n, _)| n.starts_with("files/sha256/")).unwrap();
        bytes[100] ^= 0x01;
        altered = Some((name.clone(), sha256_hex(bytes)));
    });
    let (name, actual) = altered.unwrap();
    let expected = name.trim_start_matches("files/sha256/").to_string();
    // The zip CRC-32 is honest (unzip -t agrees), so only the SHA-256 check can catch it.
    assert!(tool("unzip").arg("-tq").arg(&bundle).status().unwrap().success());
    a.refuse(
        &bundle,
        exit::INTEGRITY,
        &[&format!("entry {name}: SHA-256 mismatch"), &format!("expected {expected}"), &format!("got {actual}")],
    );
    let leftovers = walk(&a.s.data_dir().join("store").join("tmp"));
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

fn serve(updates: &[TestUpdate], edit: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) -> Server {
    let (text, mut files) = catalog(updates, "");
    edit(&mut files);
    files.insert("catalog.json".into(), text.into_bytes());
    Server::start(files)
}

fn assert_no_bundle(s: &Scratch) {
    let left = walk(&s.media());
    assert!(left.is_empty(), "a failed pack left files behind: {left:?}");
}

#[test]
fn download_with_wrong_bytes() {
    let s = Scratch::new();
    let updates = three_updates();
    let victim = updates[1].file;
    let good = sha256_hex(&updates[1].body);
    let mut bad = updates[1].body.clone();
    bad[7] ^= 0x20;
    let bad_digest = sha256_hex(&bad);
    let server = serve(&updates, |files| *files.get_mut(victim).unwrap() = bad);
    let (secret, _) = s.key("signer");
    let url = server.url(victim);
    s.pack_run(&server.url("catalog.json"), &secret, &[], &[])
        .refused(exit::INTEGRITY, &[&format!("{url}: SHA-256 mismatch: expected {good}, got {bad_digest}")]);
    assert_no_bundle(&s);
}

#[test]
fn download_longer_than_declared() {
    let s = Scratch::new();
    let updates = three_updates();
    let victim = updates[0].file;
    let declared = updates[0].body.len();
    let server = serve(&updates, |files| files.get_mut(victim).unwrap().extend_from_slice(b"appended"));
    let (secret, _) = s.key("signer");
    s.pack_run(&server.url("catalog.json"), &secret, &[], &[])
        .refused(exit::INTEGRITY, &[&server.url(victim), &format!("size mismatch: expected {declared} bytes")]);
    assert_no_bundle(&s);
}

#[test]
fn download_not_found() {
    let s = Scratch::new();
    let updates = three_updates();
    let victim = updates[2].file;
    let server = serve(&updates, |files| {
        files.remove(victim);
    });
    let (secret, _) = s.key("signer");
    s.pack_run(&server.url("catalog.json"), &secret, &[], &[])
        .refused(4, &[&format!("download {}: HTTP 404 Not Found", server.url(victim))]);
    assert_no_bundle(&s);
}

#[test]
fn a_local_file_shorter_than_the_catalog_says() {
    let s = Scratch::new();
    let updates = three_updates();
    let catalog = local_catalog(&s.path("feed"), &updates);
    std::fs::write(s.path("feed/files").join(updates[0].file), &updates[0].body[..100]).unwrap();
    let (secret, _) = s.key("signer");
    let started = std::time::Instant::now();
    s.pack_run(catalog.to_str().unwrap(), &secret, &[], &[]).refused(
        exit::INTEGRITY,
        &[updates[0].file, &format!("size mismatch: expected {} bytes, got 100", updates[0].body.len())],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "a local file is not retried");
    assert_no_bundle(&s);
}

#[test]
fn a_local_file_with_other_bytes_or_longer_than_declared() {
    let s = Scratch::new();
    let updates = three_updates();
    let catalog = local_catalog(&s.path("feed"), &updates);
    let (secret, _) = s.key("signer");
    let victim = s.path("feed/files").join(updates[1].file);
    let mut bytes = updates[1].body.clone();
    bytes[9] ^= 1;
    std::fs::write(&victim, &bytes).unwrap();
    s.pack_run(catalog.to_str().unwrap(), &secret, &[], &[]).refused(
        exit::INTEGRITY,
        &[&format!(
            "{}: SHA-256 mismatch: expected {}, got {}",
            victim.display(),
            sha256_hex(&updates[1].body),
            sha256_hex(&bytes)
        )],
    );
    assert_no_bundle(&s);
    let mut longer = updates[1].body.clone();
    longer.push(b'!');
    std::fs::write(&victim, &longer).unwrap();
    s.pack_run(catalog.to_str().unwrap(), &secret, &[], &[]).refused(
        exit::INTEGRITY,
        &[&format!("{}: size mismatch: expected {} bytes, got {}", victim.display(), longer.len() - 1, longer.len())],
    );
    assert_no_bundle(&s);
}

#[test]
fn a_second_ingest_is_told_the_data_directory_is_busy() {
    let a = Accepted::new();
    let lock = std::fs::File::options().write(true).open(a.s.data_dir().join("ingest.lock")).unwrap();
    lock.try_lock().unwrap();
    a.s.ingest(&["import", a.next.to_str().unwrap()]).refused(exit::BUSY, &["is in use by another ingest"]);
    // Reading the list does not need the lock.
    a.s.ingest(&["list"]).ok();
    drop(lock);
    a.s.ingest(&["import", a.next.to_str().unwrap()]).ok();
}
