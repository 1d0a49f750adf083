//! No input makes `ingest verify` panic or fail in an undocumented way: the real binary is
//! fed bundles damaged at random (bytes changed, cut short, a stretch copied over another)
//! and bundles whose manifest was changed at random and then signed by the trusted key, so
//! that the parser and every rule after the signature check see hostile input too. Each run
//! must end with success or a documented refusal code and a message, and change nothing.
//! (The reader's own property tests, in core, run many more cases in-process.)

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::*;

/// The exit codes a refusal of `ingest verify` may carry (README.md): input, integrity,
/// signature, bundle, rollback, not found. Success is 0.
const REFUSALS: [i32; 6] =
    [exit::INPUT, exit::INTEGRITY, exit::SIGNATURE, exit::BUNDLE, exit::ROLLBACK, exit::NOT_FOUND];

/// Every entry's name and bytes as the zip crate reads them, sorted; `None` if it cannot.
fn entries_of(path: &Path) -> Option<Vec<(String, Vec<u8>)>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).ok()?).ok()?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).ok()?;
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).ok()?;
        out.push((entry.name().ok()?.to_string(), data));
    }
    out.sort();
    Some(out)
}

/// Runs `ingest verify` on `bundle`; returns whether it accepted it.
fn verify_ends_cleanly(a: &Accepted, bundle: &Path) -> std::result::Result<bool, TestCaseError> {
    let run = a.s.ingest(&["verify", bundle.to_str().unwrap()]);
    prop_assert!(!run.stderr.contains("panicked"), "ingest panicked:\n{}", run.stderr);
    prop_assert!(
        run.code == 0 || REFUSALS.contains(&run.code),
        "undocumented exit code {} (1 is an internal error, -1 a signal):\n{}",
        run.code,
        run.stderr
    );
    if run.code != 0 {
        prop_assert!(run.stderr.contains("ingest: "), "a refusal without a message:\n{}", run.stderr);
    }
    Ok(run.code == 0)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

#[test]
fn damaged_bundles_end_in_a_documented_refusal() {
    let a = Accepted::new();
    let original = std::fs::read(&a.next).unwrap();
    let before = a.s.state();
    // Mostly changed bytes (each run changes at least one), sometimes a stretch copied over
    // another, now and then a cut (a cut zip is mostly refused at its end record).
    let damage = (
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        proptest::option::weighted(0.15, any::<prop::sample::Index>()),
        proptest::option::weighted(0.3, (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1usize..200)),
    );
    runner(48)
        .run(&damage, |(edits, cut, copied)| {
            let mut bytes = original.clone();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Some((from, to, len)) = copied {
                let (from, to) = (from.index(bytes.len()), to.index(bytes.len()));
                let len = len.min(bytes.len() - from).min(bytes.len() - to);
                let stretch = bytes[from..from + len].to_vec();
                bytes[to..to + len].copy_from_slice(&stretch);
            }
            if let Some(at) = cut {
                bytes.truncate(at.index(bytes.len()));
            }
            let path = a.s.path("damaged.zip");
            std::fs::write(&path, &bytes).unwrap();
            // Refused, unless the damage missed every byte that is signed or hashed (a
            // header's timestamp): then every entry reads as the original's.
            if verify_ends_cleanly(&a, &path)? {
                prop_assert_eq!(entries_of(&path), entries_of(&a.next), "accepted with other content");
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(a.s.state(), before, "verify changed the update list, trust or store");
}

/// A value that a careless parser or rule would mishandle.
fn hostile_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!("")),
        Just(json!("../../x")),
        Just(json!("C:\\Windows\\x")),
        Just(json!("a\u{0}b")),
        Just(json!("x".repeat(70_000))),
        Just(json!([])),
        Just(json!({})),
        "[a-z0-9/._-]{0,40}".prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
    ]
}

/// Every place in `value`, as a JSON pointer.
fn pointers(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        _ => {}
    }
}

/// Replaces, removes, or copies over one place of `manifest`, as `how` (0, 1, 2) says.
fn mutate(manifest: &mut serde_json::Value, place: prop::sample::Index, how: u8, value: serde_json::Value) {
    let mut places = Vec::new();
    pointers(manifest, String::new(), &mut places);
    let target = places[place.index(places.len())].clone();
    match how {
        0 => *manifest.pointer_mut(&target).unwrap() = value,
        1 => {
            let (parent, last) = target.rsplit_once('/').unwrap();
            match manifest.pointer_mut(parent).unwrap() {
                serde_json::Value::Object(map) => {
                    map.remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                serde_json::Value::Array(items) => {
                    items.remove(last.parse::<usize>().unwrap());
                }
                _ => unreachable!("a pointer's parent is an object or an array"),
            }
        }
        _ => {
            // Another place's value copied here: well-formed pieces in the wrong place.
            let source = places[(place.index(places.len()) + 1) % places.len()].clone();
            let copied = manifest.pointer(&source).unwrap().clone();
            *manifest.pointer_mut(&target).unwrap() = copied;
        }
    }
}

#[test]
fn signed_hostile_manifests_end_in_a_documented_refusal() {
    let a = Accepted::new();
    let entries = zip_entries(&a.next);
    let original: serde_json::Value =
        serde_json::from_slice(&entries.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
    let before = a.s.state();
    let change = prop_oneof![
        4 => (proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, hostile_value()), 1..4))
            .prop_map(Some),
        1 => Just(None),
    ];
    let raw = proptest::collection::vec(any::<u8>(), 0..300);
    runner(32)
        .run(&(change, raw), |(change, raw)| {
            // Mostly structured changes; now and then bytes that are not JSON at all.
            let bytes = match change {
                Some(edits) => {
                    let mut manifest = original.clone();
                    for (place, how, value) in edits {
                        mutate(&mut manifest, place, how, value);
                    }
                    serde_json::to_vec(&manifest).unwrap()
                }
                None => raw,
            };
            let bundle = a.resigned_bytes("hostile-manifest", &bytes);
            let accepted = verify_ends_cleanly(&a, &bundle);
            // The change was signed by the trusted key, so acceptance can be right; but only
            // of a manifest whose every payload is in the bundle with the digest and size it
            // claims.
            if accepted? {
                let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let held = entries_of(&bundle).unwrap();
                for p in manifest["layout"]["payloads"].as_array().unwrap() {
                    if p["volume"] != 1 {
                        continue;
                    }
                    let entry = held.iter().find(|(n, _)| p["entry"] == n.as_str());
                    prop_assert!(entry.is_some(), "accepted without payload {p}");
                    let data = &entry.unwrap().1;
                    let digest = sha256_hex(data);
                    prop_assert_eq!(p["sha256"].as_str(), Some(digest.as_str()), "payload {}", p);
                    prop_assert_eq!(p["size"].as_u64(), Some(data.len() as u64), "payload {}", p);
                }
            }
            std::fs::remove_file(&bundle).unwrap();
            Ok(())
        })
        .unwrap();
    assert_eq!(a.s.state(), before, "verify changed the update list, trust or store");
}
