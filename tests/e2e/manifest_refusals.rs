//! Manifests that are signed by a trusted key but break the format's rules are refused with
//! exit code 7 and change nothing. Each fixture is re-signed with the stock minisign tool, so
//! the signature is genuine and only the rule can refuse it.

use crate::support::*;

fn check(fixture: &str, edit: impl FnOnce(&mut serde_json::Value), message: &str) {
    let a = Accepted::new();
    let bundle = a.resigned(fixture, edit);
    a.refuse(&bundle, exit::BUNDLE, &[message]);
}

#[test]
fn unknown_format_version() {
    check(
        "format-2.zip",
        |m| m["format"] = 2.into(),
        "manifest: format 2 is not supported (this ferry reads format 1)",
    );
}

#[test]
fn update_listed_twice() {
    check(
        "update-listed-twice.zip",
        |m| {
            let first = m["updates"][0].clone();
            m["updates"].as_array_mut().unwrap().push(first);
        },
        "manifest: updates[3].id: KB5034122 is listed twice",
    );
}

#[test]
fn update_file_listed_under_two_digests() {
    check(
        "update-file-two-digests.zip",
        |m| {
            let mut twin = m["updates"][1]["files"][0].clone();
            twin["name"] = m["updates"][0]["files"][0]["name"].clone();
            m["updates"][0]["files"].as_array_mut().unwrap().push(twin);
        },
        "updates[0].files[1].name: \"windows10.0-kb5034122-x64.msu\" is listed twice",
    );
}

#[test]
fn path_like_update_id() {
    check(
        "path-like-update-id.zip",
        |m| m["updates"][0]["id"] = "../../etc/passwd".into(),
        "updates[0].id: update id \"../../etc/passwd\" is not valid",
    );
}

#[test]
fn payload_not_described() {
    check(
        "payload-not-described.zip",
        |m| {
            let carried = m["layout"]["payloads"][0]["sha256"].clone();
            m["files"].as_array_mut().unwrap().retain(|f| f["sha256"] != carried);
            m["updates"].as_array_mut().unwrap().retain(|u| u["files"][0]["sha256"] != carried);
        },
        "is not a described file",
    );
}

#[test]
fn manifest_over_the_size_cap() {
    let a = Accepted::new();
    let bundle = a.tampered("manifest-over-cap.zip", |entries| {
        let m = entry(entries, "manifest.json");
        m.resize(64 * 1024 * 1024 + 1, b' ');
    });
    a.refuse(&bundle, exit::BUNDLE, &["entry \"manifest.json\" is 67108865 bytes; at most 67108864 are read"]);
}

#[test]
fn update_in_the_manual_namespace() {
    check(
        "manual-namespace-update.zip",
        |m| m["updates"][0]["id"] = "Manual-0123456789ABCDEF".into(),
        "updates[0].id: Manual-0123456789ABCDEF is in the manual- namespace",
    );
}

#[test]
fn creation_time_with_an_offset() {
    check(
        "created-with-offset.zip",
        |m| m["created"] = "2026-01-01T09:00:00+09:00".into(),
        "not in UTC: times are written with Z",
    );
}

#[test]
fn expiry_on_a_leap_second() {
    // Stored as 23:59:59 it would be another value than the one signed.
    check("expires-on-a-leap-second.zip", |m| m["expires"] = "2099-12-31T23:59:60Z".into(), "leap second");
}

#[test]
fn sequence_beyond_the_largest() {
    check(
        "sequence-beyond-the-largest.zip",
        |m| m["sequence"] = u64::MAX.into(),
        "sequence 18446744073709551615 is outside",
    );
}

#[test]
fn file_name_with_a_bidi_override() {
    // patch-<RLO>fdp.msu shows as "patch-usm.pdf" wherever it is displayed or published.
    check(
        "file-name-with-bidi-override.zip",
        |m| m["updates"][0]["files"][0]["name"] = "patch-\u{202E}fdp.msu".into(),
        "character U+202E not allowed in a file name",
    );
}

#[test]
fn title_with_a_bidi_override_is_shown_escaped() {
    // Titles may hold format characters (real MSRC documents carry U+200B); they are shown,
    // never obeyed.
    let a = Accepted::new();
    let bundle = a.resigned("title-with-bidi.zip", |m| {
        for u in m["updates"].as_array_mut().unwrap() {
            u["revision"] = 2.into();
            u["title"] = "Security update \u{202E}exe.evil\u{202C} for Windows\u{200B}".into();
        }
    });
    a.s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    let listed = a.s.ingest(&["list"]).ok();
    assert!(listed.contains("<U+202E>exe.evil<U+202C>") && listed.contains("Windows<U+200B>"), "{listed}");
    assert!(!listed.contains('\u{202E}') && !listed.contains('\u{200B}'), "{listed:?}");
    let html = a.s.ingest(&["report", "--format", "html"]).ok();
    assert!(!html.contains('\u{202E}') && html.contains("&lt;U+202E&gt;"), "the HTML report escapes it too");
}

#[test]
fn scan_catalog_that_is_not_a_described_file() {
    check(
        "scan-catalog-not-described.zip",
        |m| {
            m["scan_catalog"] = serde_json::json!({
                "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "size": 3, "signer": "CN=Microsoft Corporation", "root": "CN=Microsoft Root Certificate Authority 2011"
            });
        },
        "manifest: scan_catalog.sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad is not in the described files",
    );
}

#[test]
fn update_both_carried_and_left_out() {
    check(
        "left-out-also-carried.zip",
        |m| m["left_out"] = serde_json::json!([{"id": m["updates"][0]["id"], "revision": 1, "reason": "HTTP 404"}]),
        "manifest: left_out[0].id: KB5034122 is both carried and left out",
    );
}

#[test]
fn left_out_reason_too_long() {
    check(
        "left-out-reason-too-long.zip",
        |m| m["left_out"] = serde_json::json!([{"id": "KB5099999", "revision": 1, "reason": "x".repeat(1025)}]),
        "manifest: left_out[0].reason: longer than 1024 bytes",
    );
}

#[test]
fn left_out_listed_twice() {
    check(
        "left-out-listed-twice.zip",
        |m| {
            let l = serde_json::json!({"id": "KB5099999", "revision": 1, "reason": "HTTP 404"});
            m["left_out"] = serde_json::json!([l.clone(), l]);
        },
        "manifest: left_out: an update is listed twice",
    );
}
