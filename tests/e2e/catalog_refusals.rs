//! Malformed catalogs are refused with the JSON path or line and column of the problem
//! (exit code 3), before anything is downloaded or a sequence is used; so is a damaged work
//! directory (exit code 12), which fetch never repairs by guessing.

use crate::support::*;

fn refuse(s: &Scratch, fixture: &str, text: &str, parts: &[&str]) {
    let path = s.path(fixture);
    std::fs::write(&path, text).unwrap();
    let (secret, _) = s.key("signer");
    s.pack_run(path.to_str().unwrap(), &secret, &[], &[]).refused(exit::INPUT, parts);
    assert!(walk(&s.media()).is_empty());
}

fn valid() -> String {
    catalog(&three_updates(), "files/").0
}

#[test]
fn catalog_with_a_bad_digest() {
    let s = Scratch::new();
    let text = valid();
    let digest = sha256_hex(&three_updates()[1].body);
    let text = text.replace(&digest, "not-a-digest");
    refuse(&s, "bad-digest-catalog.json", &text, &["updates[1].files[0].sha256 (line ", "64 hexadecimal digits"]);
}

#[test]
fn catalog_that_is_not_json() {
    let s = Scratch::new();
    refuse(&s, "truncated-catalog.json", "{\"format\": 1, \"updates\": [", &["line 1, column 26", "EOF"]);
}

#[test]
fn catalog_with_a_path_like_update_id() {
    let s = Scratch::new();
    let text = valid().replace("\"KB5034122\"", "\"../../etc/passwd\"");
    refuse(&s, "path-like-id-catalog.json", &text, &["updates[0].id", "update id \"../../etc/passwd\" is not valid"]);
}

#[test]
fn catalog_of_an_unknown_format() {
    let s = Scratch::new();
    let text = valid().replace("\"format\": 1", "\"format\": 7");
    refuse(&s, "future-format-catalog.json", &text, &["format 7 is not supported"]);
}

#[test]
fn selection_that_names_an_unknown_update() {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, _) = s.key("signer");
    s.pack_run(catalog.to_str().unwrap(), &secret, &["--id", "KB9999999"], &[])
        .refused(exit::INPUT, &["has no update with id KB9999999"]);
    let work = walk(&s.work_dir());
    assert!(!work.contains(&"state.json".to_string()), "no sequence was used: {work:?}");
}

#[test]
fn selection_that_matches_nothing() {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, _) = s.key("signer");
    s.pack_run(catalog.to_str().unwrap(), &secret, &["--product", "Lotus Notes"], &[])
        .refused(exit::INPUT, &["selection matches no update in catalog"]);
    assert!(!s.work_dir().join("state.json").exists(), "no sequence was used");
}

#[test]
fn catalog_update_in_the_manual_namespace() {
    // The id a file registered by hand gets: a catalog taking it would capture the real
    // hotfix's registration.
    let s = Scratch::new();
    let text = valid().replace("\"KB5034122\"", "\"manual-0123456789abcdef\"");
    refuse(
        &s,
        "manual-namespace-catalog.json",
        &text,
        &[
            "updates[0].id",
            "manual-0123456789abcdef is in the manual- namespace, which belongs to files registered by hand",
        ],
    );
}

#[test]
fn remote_catalog_naming_local_files() {
    // Whoever serves a catalog must not make fetch read files of its own machine into a
    // signed bundle, however the URL is spelt.
    let local = std::fs::read("/etc/os-release").unwrap_or_else(|_| b"ID=debian\n".to_vec());
    let digest = sha256_hex(&local);
    for (fixture, url) in [
        ("file-url", "file:///etc/os-release".to_string()),
        ("upper-case-scheme", "FILE:/etc/os-release".to_string()),
        ("scheme-without-slashes", "file:etc/os-release".to_string()),
    ] {
        let s = Scratch::new();
        let (text, mut files) = catalog(&three_updates(), "");
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let file = &mut doc["updates"][0]["files"][0];
        file["url"] = url.clone().into();
        file["sha256"] = digest.clone().into();
        file["size"] = local.len().into();
        files.insert("catalog.json".into(), serde_json::to_vec(&doc).unwrap());
        let server = crate::support::http::Server::start(files);
        let (secret, _) = s.key("signer");
        s.pack_run(&server.url("catalog.json"), &secret, &[], &[])
            .refused(exit::INPUT, &["may name only http and https locations"]);
        assert!(walk(&s.media()).is_empty(), "{fixture}: nothing packed");
    }
}

#[test]
fn local_catalog_naming_a_device() {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&catalog).unwrap()).unwrap();
    doc["updates"][0]["files"][0]["url"] = "/dev/zero".into();
    doc["updates"][0]["files"][0]["size"] = (300u64 << 20).into();
    std::fs::write(&catalog, serde_json::to_vec(&doc).unwrap()).unwrap();
    let (secret, _) = s.key("signer");
    let started = std::time::Instant::now();
    let run = s.pack_run(catalog.to_str().unwrap(), &secret, &[], &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("/dev/zero: is a FIFO, socket or device, not a plain file"), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "refused before reading it");
    assert!(walk(&s.media()).is_empty());
}

#[test]
fn work_directory_state_damaged() {
    let s = Scratch::new();
    let path = s.path("catalog.json");
    std::fs::write(&path, valid()).unwrap();
    std::fs::create_dir_all(s.work_dir()).unwrap();
    std::fs::write(s.work_dir().join("state.json"), b"{\"channels\": [truncated").unwrap();
    let (secret, _) = s.key("signer");
    s.pack_run(path.to_str().unwrap(), &secret, &[], &[])
        .refused(exit::DAMAGED, &["work-directory state", "state.json", "is damaged"]);
    assert!(walk(&s.media()).is_empty());
    assert_eq!(std::fs::read(s.work_dir().join("state.json")).unwrap(), b"{\"channels\": [truncated", "left as found");
}

#[test]
fn catalog_that_is_a_directory() {
    // The user's input, said once: not "download DIR: DIR: …" with a network exit code.
    let s = Scratch::new();
    let dir = s.path("feed");
    std::fs::create_dir_all(&dir).unwrap();
    let stderr = s.fetch(&["plan", "--catalog", dir.to_str().unwrap()]).refused(exit::INPUT, &["is a directory"]);
    assert_eq!(stderr.matches(dir.to_str().unwrap()).count(), 1, "{stderr}");
    assert!(!stderr.contains("download"), "{stderr}");
}
