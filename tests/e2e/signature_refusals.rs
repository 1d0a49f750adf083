//! Bundles whose signatures do not prove what they claim are refused with exit code 6 and
//! change nothing.

use crate::support::*;

#[test]
fn manifest_edited_after_signing() {
    let a = Accepted::new();
    let bundle = a.tampered("manifest-edited-after-signing.zip", |entries| {
        let m = entry(entries, "manifest.json");
        let text =
            String::from_utf8(m.clone()).unwrap().replace("\"severity\": \"important\"", "\"severity\": \"low\"");
        assert_ne!(text.as_bytes(), m.as_slice());
        *m = text.into_bytes();
    });
    a.refuse(&bundle, exit::SIGNATURE, &["does not verify: the manifest was altered after signing"]);
}

#[test]
fn trusted_comment_disagrees_with_manifest() {
    let a = Accepted::new();
    // A genuine signature by the trusted key over a manifest that claims sequence 99, while
    // the trusted comment (kept from the original signature) says 2.
    let bundle = a.resigned("trusted-comment-disagrees.zip", |m| m["sequence"] = 99.into());
    a.refuse(&bundle, exit::SIGNATURE, &["trusted comment says sequence \"2\" but the manifest says \"99\""]);
}

#[test]
fn trusted_comment_edited_after_signing() {
    let a = Accepted::new();
    let bundle = a.tampered("trusted-comment-edited.zip", |entries| {
        let (_, sig) = signature_entry(entries);
        *sig = String::from_utf8(sig.clone()).unwrap().replace(" sequence=2 ", " sequence=3 ").into_bytes();
    });
    a.refuse(&bundle, exit::SIGNATURE, &["the trusted comment was altered after signing"]);
}

#[test]
fn signed_by_an_untrusted_key() {
    let a = Accepted::new();
    let (stranger, _) = a.s.key("stranger");
    let bundle = a.s.pack(a.catalog.to_str().unwrap(), &stranger, &[]);
    a.refuse(&bundle, exit::SIGNATURE, &["not signed by enough trusted keys", "0 valid of 1 required"]);
}

#[test]
fn signature_removed() {
    let a = Accepted::new();
    let bundle = a.tampered("no-signature.zip", |entries| entries.retain(|(n, _)| !n.starts_with("signatures/")));
    a.refuse(&bundle, exit::SIGNATURE, &["signed by: none"]);
}

#[test]
fn demo_key_is_refused_unless_allowed() {
    let s = Scratch::new();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/keys/demo.pub");
    s.ingest(&["trust", "add", demo]).refused(exit::INPUT, &["public demo key"]);
    s.ingest(&["trust", "list", "--json"]).refused(exit::NOT_FOUND, &["holds no registry yet"]);
    let out = s.ingest(&["trust", "add", demo, "--allow-demo-key"]);
    assert!(out.stderr.contains("warning"), "{}", out.stderr);
    assert!(out.ok().contains("now trusted"));
}

#[test]
fn trust_remove_stops_acceptance() {
    let a = Accepted::new();
    let key_id = a.s.ingest(&["trust", "list", "--json"]).ok();
    let key_id: serde_json::Value = data(key_id.trim());
    a.s.ingest(&["trust", "remove", key_id["key_id"].as_str().unwrap()]).ok();
    let stderr = a.s.ingest(&["import", a.next.to_str().unwrap()]).refused(exit::SIGNATURE, &["trusted: none"]);
    assert!(stderr.contains("not signed by enough trusted keys"));
    a.s.ingest(&["trust", "remove", "0000000000000000"])
        .refused(exit::NOT_FOUND, &["trusted key \"0000000000000000 in channel default\" not found"]);
}

#[test]
fn signature_entry_named_for_another_key() {
    let a = Accepted::new();
    let bundle = a.tampered("signature-misnamed.zip", |entries| {
        let (name, _) = signature_entry(entries);
        *name = "signatures/0000000000000001.minisig".into();
    });
    a.refuse(&bundle, exit::SIGNATURE, &["the entry is named for key 0000000000000001 but the signature is by key"]);
}

#[test]
fn signature_entry_that_is_not_a_signature() {
    let a = Accepted::new();
    let bundle = a.tampered("signature-garbage.zip", |entries| {
        let (_, sig) = signature_entry(entries);
        *sig = b"this is not a minisign signature\n".to_vec();
    });
    a.refuse(&bundle, exit::SIGNATURE, &["expected 4 lines, found 1"]);
}

#[test]
fn legacy_signature_without_consent() {
    // minisign -l signs the manifest itself ("Ed"), as minisign before 0.8 did: a genuine
    // signature by the trusted key, refused unless the administrator asks for it.
    let a = Accepted::new();
    let manifest = zip_entries(&a.next).into_iter().find(|(n, _)| n == "manifest.json").unwrap().1;
    let bundle = a.resigned_bytes_with("legacy-signature.zip", &manifest, &["-l"]);
    a.refuse(&bundle, exit::SIGNATURE, &["is in minisign's legacy form", "--allow-legacy-signature"]);
    let out = a.s.ingest(&["import", bundle.to_str().unwrap(), "--allow-legacy-signature"]).ok();
    assert!(out.contains("imported: "), "{out}");
}

#[test]
fn weak_key_offered_for_trust() {
    // The identity point (small order): every "signature" of the right shape verifies under
    // it, so whoever offers it can sign anything.
    let s = Scratch::new();
    let mut raw = b"Ed".to_vec();
    raw.extend_from_slice(&[7u8; 8]);
    let mut point = [0u8; 32];
    point[0] = 1;
    raw.extend_from_slice(&point);
    use base64::Engine;
    let text = format!("untrusted comment: weak key\n{}\n", base64::engine::general_purpose::STANDARD.encode(&raw));
    let weak = s.path("weak-small-order.pub");
    std::fs::write(&weak, text).unwrap();
    s.ingest(&["trust", "add", weak.to_str().unwrap()])
        .refused(exit::INPUT, &["a weak Ed25519 key (a point of small order)"]);
    assert!(!s.data_dir().join("registry.sqlite").exists() || s.ingest(&["trust", "list"]).ok().trim().is_empty());
}
