//! The zip is transport only: entries must be exactly the manifest, its signatures and the
//! payloads it lists, with safe names. Each fixture is named after the property it breaks;
//! each refusal exits with code 7 and changes nothing.

use crate::support::rawzip::{self, RawEntry};
use crate::support::*;

/// The next bundle's entries rebuilt byte by byte, with `extra` appended.
fn with_entry(a: &Accepted, fixture: &str, extra: RawEntry) -> std::path::PathBuf {
    let mut raw: Vec<RawEntry> = zip_entries(&a.next).into_iter().map(|(n, d)| RawEntry::file(n, d)).collect();
    raw.push(extra);
    let path = a.s.path(fixture);
    std::fs::write(&path, rawzip::build(&raw)).unwrap();
    path
}

fn check(fixture: &str, extra: RawEntry, message: &str) {
    let a = Accepted::new();
    let bundle = with_entry(&a, fixture, extra);
    a.refuse(&bundle, exit::BUNDLE, &[message]);
}

#[test]
fn entry_name_climbs_out_with_dotdot() {
    check("dotdot.zip", RawEntry::file("../x", "x"), "entry \"../x\": unsafe name (contains a \"..\" component)");
    check("nested-dotdot.zip", RawEntry::file("a/../../x", "x"), "unsafe name (contains a \"..\" component)");
}

#[test]
fn entry_name_has_a_backslash() {
    check("backslash.zip", RawEntry::file("..\\x", "x"), "unsafe name (contains a backslash)");
}

#[test]
fn entry_name_is_absolute() {
    check("absolute.zip", RawEntry::file("/x", "x"), "unsafe name (absolute path)");
    check("drive-letter.zip", RawEntry::file("C:/x", "x"), "unsafe name (absolute path with a drive letter)");
}

#[test]
fn entry_name_has_a_nul() {
    check("nul-in-name.zip", RawEntry::file(b"files/a\0b", "x"), "unsafe name (contains NUL)");
}

#[test]
fn entry_is_a_symlink() {
    check("symlink.zip", RawEntry::symlink("files/link", "/etc/passwd"), "entry \"files/link\" is a symbolic link");
}

#[test]
fn entry_name_appears_twice() {
    let a = Accepted::new();
    let entries = zip_entries(&a.next);
    let (name, bytes) = entries.iter().find(|(n, _)| n.starts_with("files/")).unwrap().clone();
    let bundle = with_entry(&a, "duplicate-name.zip", RawEntry::file(&name, bytes));
    a.refuse(&bundle, exit::BUNDLE, &[&format!("entry {name:?} appears twice")]);
}

#[test]
fn entry_names_differ_only_in_case() {
    check("case-twins.zip", RawEntry::file("MANIFEST.json", "{}"), "differ only in letter case");
}

#[test]
fn entry_not_listed_in_manifest() {
    let name = format!("files/sha256/{}", sha256_hex(b"smuggled"));
    check(
        "extra-entry.zip",
        RawEntry::file(&name, "smuggled"),
        &format!("entry {name:?} is not listed in the manifest"),
    );
}

#[test]
fn manifest_payload_missing() {
    let a = Accepted::new();
    let mut removed = String::new();
    let bundle = a.tampered("missing-payload.zip", |entries| {
        let i = entries.iter().position(|(n, _)| n.starts_with("files/")).unwrap();
        removed = entries.remove(i).0;
    });
    a.refuse(&bundle, exit::BUNDLE, &[&format!("payload {removed} of volume 1 is missing")]);
}

#[test]
fn manifest_missing() {
    let a = Accepted::new();
    let bundle = a.tampered("missing-manifest.zip", |entries| entries.retain(|(n, _)| n != "manifest.json"));
    a.refuse(&bundle, exit::BUNDLE, &["manifest.json is missing"]);
}

#[test]
fn not_a_zip_at_all() {
    let a = Accepted::new();
    let path = a.s.path("not-a-zip.zip");
    std::fs::write(&path, b"this is a text file, not a bundle\n").unwrap();
    a.refuse(&path, exit::BUNDLE, &["no end-of-central-directory record"]);
}

#[test]
fn inspect_strips_terminal_control_sequences() {
    let s = Scratch::new();
    let dir = s.path("feed");
    let catalog = local_catalog(&dir, &three_updates());
    let text = std::fs::read_to_string(&catalog)
        .unwrap()
        .replace("Windows 10 update", "Windows \\u001b[2J\\u001b]0;owned\\u0007update");
    std::fs::write(&catalog, text).unwrap();
    let (secret, _) = s.key("signer");
    let bundle = s.pack(catalog.to_str().unwrap(), &secret, &[]);
    let out = s.fetch(&["inspect", bundle.to_str().unwrap()]).ok();
    assert!(out.starts_with("UNVERIFIED"), "{out}");
    assert!(out.contains("Windows update"), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "control characters reached the terminal: {out:?}");
}
