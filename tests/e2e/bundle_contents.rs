//! The zip is transport only: entries must be exactly the manifest, its signatures and the
//! payloads it lists, with safe names. Each fixture is named after the property it breaks;
//! each refusal exits with code 7 and changes nothing.

use crate::support::rawzip::{self, RawEntry};
use crate::support::*;

/// The next bundle's entries rebuilt byte by byte, changed by `edit`, then written by `build`.
fn rebuilt(
    a: &Accepted,
    fixture: &str,
    edit: impl FnOnce(&mut Vec<RawEntry>),
    build: impl FnOnce(&[RawEntry]) -> Vec<u8>,
) -> std::path::PathBuf {
    let mut raw: Vec<RawEntry> = zip_entries(&a.next).into_iter().map(|(n, d)| RawEntry::file(n, d)).collect();
    edit(&mut raw);
    let path = a.s.path(fixture);
    std::fs::write(&path, build(&raw)).unwrap();
    path
}

/// The next bundle's entries rebuilt byte by byte, with `extra` appended.
fn with_entry(a: &Accepted, fixture: &str, extra: RawEntry) -> std::path::PathBuf {
    rebuilt(a, fixture, |raw| raw.push(extra), rawzip::build)
}

/// Refuses the next bundle rebuilt with its first payload entry changed by `edit`.
fn check_payload_entry(fixture: &str, edit: impl FnOnce(&mut RawEntry), message: &str) {
    let a = Accepted::new();
    let bundle = rebuilt(
        &a,
        fixture,
        |raw| edit(raw.iter_mut().find(|e| e.name.starts_with(b"files/")).unwrap()),
        rawzip::build,
    );
    a.refuse(&bundle, exit::BUNDLE, &[message]);
}

/// Refuses the next bundle rebuilt byte by byte and then changed by `edit`.
fn check_bytes(fixture: &str, edit: impl FnOnce(&mut Vec<u8>), message: &str) {
    let a = Accepted::new();
    let bundle = rebuilt(
        &a,
        fixture,
        |_| {},
        |raw| {
            let mut bytes = rawzip::build(raw);
            edit(&mut bytes);
            bytes
        },
    );
    a.refuse(&bundle, exit::BUNDLE, &[message]);
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
    check("drive-letter-backslash.zip", RawEntry::file("C:\\x", "x"), "unsafe name (contains a backslash)");
}

#[test]
fn entry_name_has_a_nul() {
    check("nul-in-name.zip", RawEntry::file(b"files/a\0b", "x"), "unsafe name (contains NUL)");
}

#[test]
fn entry_name_is_not_utf8() {
    check("name-not-utf8.zip", RawEntry::file([b'f', 0xff, 0xfe], "x"), "name is not UTF-8");
}

#[test]
fn archive_claims_several_disks() {
    check_bytes(
        "multi-disk.zip",
        |bytes| {
            let eocd = bytes.len() - 22;
            bytes[eocd + 4] = 1; // number of this disk
        },
        "multi-disk archives are not supported",
    );
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
fn entry_is_encrypted() {
    check_payload_entry("encrypted.zip", |e| e.flags |= 1, "is encrypted");
}

#[test]
fn entry_uses_a_data_descriptor() {
    check_payload_entry("data-descriptor.zip", |e| e.flags |= 8, "uses a data descriptor");
}

#[test]
fn entry_is_compressed() {
    check_payload_entry("deflated.zip", |e| e.method = 8, "is compressed (method 8)");
}

#[test]
fn entry_is_a_directory() {
    check_payload_entry("directory.zip", |e| e.external = 0o040755 << 16, "is a directory");
}

#[test]
fn local_header_disagrees_with_central_directory() {
    check_payload_entry(
        "local-header-name-differs.zip",
        |e| e.local_name = Some(b"files/something-else".to_vec()),
        "local header disagrees with the central directory (name)",
    );
}

#[test]
fn payload_altered_with_stale_crc() {
    let a = Accepted::new();
    let entries = zip_entries(&a.next);
    let (name, data) = entries.iter().find(|(n, _)| n.starts_with("files/")).unwrap().clone();
    check_bytes(
        "payload-altered-crc-stale.zip",
        |bytes| {
            let at = bytes.windows(data.len()).position(|w| w == data.as_slice()).unwrap();
            bytes[at + 100] ^= 1;
        },
        &format!("entry {name:?}: CRC-32 does not match its data"),
    );
}

#[test]
fn junk_before_the_first_entry() {
    let a = Accepted::new();
    let bundle =
        rebuilt(&a, "junk-before-offsets-adjusted.zip", |_| {}, |raw| rawzip::build_with_prefix(b"MZ junk", raw));
    a.refuse(&bundle, exit::BUNDLE, &["7 bytes of unexpected data before the first entry"]);
    check_bytes(
        "junk-before-offsets-stale.zip",
        |bytes| bytes.splice(0..0, b"#!/bin/sh\n".iter().copied()).for_each(drop),
        "10 bytes of unexpected data before the first entry",
    );
}

#[test]
fn junk_after_the_end_record() {
    check_bytes(
        "junk-after.zip",
        |bytes| bytes.extend_from_slice(b"trailing"),
        "after the end-of-central-directory record",
    );
}

#[test]
fn two_zips_concatenated() {
    let first = rawzip::build(&[RawEntry::file("innocent.txt", "nothing to see")]);
    let len = first.len();
    check_bytes(
        "two-zips-concatenated.zip",
        |bytes| bytes.splice(0..0, first).for_each(drop),
        &format!("{len} bytes of unexpected data before the first entry"),
    );
}

#[test]
fn end_record_miscounts_entries() {
    let a = Accepted::new();
    let count = zip_entries(&a.next).len() as u16;
    check_bytes(
        "entry-count-wrong.zip",
        |bytes| rawzip::set_entry_count(bytes, count + 1),
        &format!("the end record counts {} entries but the central directory holds {count}", count + 1),
    );
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

/// Entries whose bytes lie inside another entry's data: `outer` carries, as its data, a
/// complete local entry for each of `inner`, and each inner central record points at its copy
/// inside `outer` (the shape of the non-recursive "quoted overlap" zip bomb).
fn quoted_overlap(outer: &str, inner: &[(&str, &[u8])]) -> Vec<u8> {
    let mut nested = Vec::new();
    let mut inner_offsets = Vec::new();
    for (name, data) in inner {
        inner_offsets.push(nested.len());
        let alone = rawzip::build(&[RawEntry::file(*name, data.to_vec())]);
        let cd = rawzip::central_records(&alone)[0];
        nested.extend_from_slice(&alone[..cd]);
    }
    let mut entries = vec![RawEntry::file(outer, nested)];
    entries.extend(inner.iter().map(|(name, data)| RawEntry::file(*name, data.to_vec())));
    let mut bytes = rawzip::build(&entries);
    let records = rawzip::central_records(&bytes);
    let outer_data = 30 + outer.len();
    for (record, offset) in records[1..].iter().zip(inner_offsets) {
        bytes[record + 42..record + 46].copy_from_slice(&((outer_data + offset) as u32).to_le_bytes());
    }
    bytes
}

#[test]
fn entries_overlap() {
    let a = Accepted::new();
    let path = a.s.path("overlapping-entries.zip");
    std::fs::write(&path, quoted_overlap("files/outer", &[("files/inner", b"hidden inside")])).unwrap();
    a.refuse(&path, exit::BUNDLE, &["overlaps another entry or the central directory"]);
}

#[test]
fn declared_size_smaller_than_the_data() {
    // Both headers agree on a size 100 bytes short of the data that follows.
    let a = Accepted::new();
    let entries = zip_entries(&a.next);
    let (name, data) = entries.iter().find(|(n, _)| n.starts_with("files/")).unwrap().clone();
    check_bytes(
        "declared-size-smaller-than-data.zip",
        |bytes| {
            let short = ((data.len() - 100) as u32).to_le_bytes();
            let records = rawzip::central_records(bytes);
            let record = *records
                .iter()
                .find(|&&r| {
                    let len = u16::from_le_bytes(bytes[r + 28..r + 30].try_into().unwrap()) as usize;
                    &bytes[r + 46..r + 46 + len] == name.as_bytes()
                })
                .unwrap();
            let local = u32::from_le_bytes(bytes[record + 42..record + 46].try_into().unwrap()) as usize;
            for (at, fields) in [(record + 20, 2), (local + 18, 2)] {
                for i in 0..fields {
                    bytes[at + 4 * i..at + 4 * i + 4].copy_from_slice(&short);
                }
            }
        },
        "100 bytes of unexpected data before entry",
    );
}

/// A raw deflate stream (one fixed-Huffman block) that inflates to `len` zero bytes: a zero
/// literal, then matches of 258 bytes at distance 1; 13 bits per 258 bytes.
fn deflated_zeros(len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    let mut put = |value: u64, count: u32, out: &mut Vec<u8>| {
        acc |= value << bits;
        bits += count;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    };
    // Huffman codes are sent most significant bit first: reverse them into the stream.
    let code = |c: u64, n: u32| (0..n).fold(0u64, |r, i| r | (((c >> i) & 1) << (n - 1 - i)));
    put(0b011, 3, &mut out); // final block, fixed Huffman
    put(code(0b0011_0000, 8), 8, &mut out); // literal 0
    let mut written = 1;
    while written + 258 <= len {
        put(code(0b1100_0101, 8), 8, &mut out); // length 258 (code 285)
        put(0, 5, &mut out); // distance 1 (code 0)
        written += 258;
    }
    while written < len {
        put(code(0b0011_0000, 8), 8, &mut out);
        written += 1;
    }
    put(0, 7, &mut out); // end of block (code 256)
    put(0, 7, &mut out); // flush
    out
}

#[test]
fn zip_bomb_compressed() {
    // A deflated entry that inflates to 256 MiB of zeros from under 2 MiB: refused before
    // anything is inflated, because bundles hold stored entries only.
    let a = Accepted::new();
    let expanded = 256 << 20;
    let mut bomb = RawEntry::file("files/bomb", deflated_zeros(expanded));
    bomb.method = 8;
    let mut bytes = rawzip::build(&[bomb]);
    let crc = crc32fast::hash(&vec![0u8; expanded]).to_le_bytes();
    let size = (expanded as u32).to_le_bytes();
    let record = rawzip::central_records(&bytes)[0];
    bytes[14..18].copy_from_slice(&crc);
    bytes[22..26].copy_from_slice(&size);
    bytes[record + 16..record + 20].copy_from_slice(&crc);
    bytes[record + 24..record + 28].copy_from_slice(&size);
    assert!(bytes.len() < 2 << 20, "the bomb is small on the media: {} bytes", bytes.len());
    let path = a.s.path("zip-bomb-deflated.zip");
    std::fs::write(&path, &bytes).unwrap();
    a.refuse(&path, exit::BUNDLE, &["is compressed (method 8)"]);
}

#[test]
fn zip_bomb_overlapping() {
    // Many names for the same bytes: each inner entry lies inside the outer one.
    let a = Accepted::new();
    let kernel = vec![0u8; 64 << 10];
    let names: Vec<String> = (0..50).map(|i| format!("files/copy-{i}")).collect();
    let inner: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), kernel.as_slice())).collect();
    let path = a.s.path("zip-bomb-overlapping.zip");
    std::fs::write(&path, quoted_overlap("files/outer", &inner)).unwrap();
    a.refuse(&path, exit::BUNDLE, &["overlaps another entry"]);
}

#[test]
fn entry_renamed_by_a_unicode_path_field() {
    // ferry reads the header's name; unzip and others show (and extract to) the name in the
    // Info-ZIP Unicode Path field.
    let a = Accepted::new();
    let evil = "../../Windows/System32/evil.exe";
    let bundle = rebuilt(
        &a,
        "unicode-path-field-disagrees.zip",
        |raw| {
            let e = raw.iter_mut().find(|e| e.name.starts_with(b"files/")).unwrap();
            e.extra = rawzip::unicode_path_field(&e.name.clone(), evil);
        },
        rawzip::build,
    );
    let listed = tool("unzip").arg("-l").arg(&bundle).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains(evil), "unzip -l shows the field's name");
    a.refuse(&bundle, exit::BUNDLE, &[&format!("a Unicode path field names it {evil:?}")]);
}

#[test]
fn archive_comment() {
    check_bytes(
        "archive-comment.zip",
        |bytes| rawzip::set_archive_comment(bytes, b"Open me: https://evil.example/"),
        "the archive carries a comment; bundles have none",
    );
}

#[test]
fn entry_comment() {
    check_payload_entry(
        "entry-comment.zip",
        |e| e.comment = b"run me".to_vec(),
        "carries a comment; bundles have none",
    );
}
