//! Key rotation and revocation: a statement carried inside a bundle, signed by a threshold of
//! the keys trusted now and by every key it adds, applied before the bundle's own signatures
//! are checked.

use std::path::{Path, PathBuf};

use crate::support::*;

/// A server trusting key "old" that accepted a first bundle.
struct Rotating {
    s: Scratch,
    catalog: String,
    old: PathBuf,
    old_pub: PathBuf,
    new: PathBuf,
    new_pub: PathBuf,
}

impl Rotating {
    fn new() -> Rotating {
        let s = Scratch::new();
        let catalog = local_catalog(&s.path("feed"), &three_updates()).to_str().unwrap().to_string();
        let (old, old_pub) = s.key("old");
        let (new, new_pub) = s.key("new");
        s.trust(&old_pub);
        let first = s.pack(&catalog, &old, &["--id", "KB5034122"]);
        s.ingest(&["import", first.to_str().unwrap()]).ok();
        Rotating { s, catalog, old, old_pub, new, new_pub }
    }

    /// `fetch key rotate` into a fresh directory named `name`.
    fn rotate(&self, name: &str, version: &str, trust: &[&Path], sign_with: &[&Path]) -> (PathBuf, Run) {
        let dir = self.s.path(name);
        let mut args = vec!["key".to_string(), "rotate".into(), "--version".into(), version.into()];
        for t in trust {
            args.extend(["--trust".into(), t.to_str().unwrap().into()]);
        }
        for k in sign_with {
            args.extend(["--sign-with".into(), k.to_str().unwrap().into()]);
        }
        args.extend(["--out".into(), dir.to_str().unwrap().into()]);
        let run = self.s.fetch(&args.iter().map(String::as_str).collect::<Vec<_>>());
        (dir, run)
    }

    /// A bundle signed by `key` carrying the rotation in `dir`.
    fn pack_with(&self, key: &Path, dir: &Path) -> PathBuf {
        self.s.pack(&self.catalog, key, &["--rotation", dir.to_str().unwrap()])
    }

    fn trusted_ids(&self) -> Vec<String> {
        let out = self.s.ingest(&["trust", "list", "--json"]).ok();
        out.lines().map(|l| data(l)["key_id"].as_str().unwrap().to_string()).collect()
    }
}

fn key_id(public: &Path) -> String {
    let text = std::fs::read_to_string(public).unwrap();
    text.lines().next().unwrap().rsplit(' ').next().unwrap().to_string()
}

#[test]
fn rotation_replaces_the_trusted_key() {
    let r = Rotating::new();
    let (dir, run) = r.rotate("rotation-v2", "2", &[&r.new_pub], &[&r.old, &r.new]);
    run.ok();
    // The new key signs the bundle that carries the statement.
    let bundle = r.pack_with(&r.new, &dir);
    let out = r.s.ingest(&["import", bundle.to_str().unwrap(), "--json"]).ok();
    let v: serde_json::Value = first_of(&out, "import");
    assert_eq!(v["verified"]["rotation"], 2, "{out}");
    assert_eq!(r.trusted_ids(), [key_id(&r.new_pub)]);
    let listed = r.s.ingest(&["trust", "list"]).ok();
    assert!(listed.contains("(trust version 2)"), "{listed}");

    // The old key is no longer trusted; the new one is.
    let by_old = r.s.pack(&r.catalog, &r.old, &[]);
    r.s.ingest(&["import", by_old.to_str().unwrap()]).refused(exit::SIGNATURE, &["not signed by enough trusted keys"]);
    let by_new = r.s.pack(&r.catalog, &r.new, &[]);
    r.s.ingest(&["import", by_new.to_str().unwrap()]).ok();

    let log = r.s.ingest(&["audit", "list", "--json"]).ok();
    let rotated: serde_json::Value = data(log.lines().find(|l| l.contains("\"trust-rotated\"")).expect("logged"));
    assert_eq!(rotated["detail"]["removed"][0], key_id(&r.old_pub).as_str());
    assert_eq!(rotated["detail"]["added"][0], key_id(&r.new_pub).as_str());

    // A later bundle carrying the same statement again changes nothing.
    let again = r.pack_with(&r.new, &dir);
    r.s.ingest(&["import", again.to_str().unwrap()]).ok();
    assert_eq!(r.trusted_ids(), [key_id(&r.new_pub)]);
}

#[test]
fn rotation_signed_only_by_the_new_key() {
    let r = Rotating::new();
    let (dir, run) = r.rotate("rotation-new-only", "2", &[&r.new_pub], &[&r.new]);
    run.ok();
    let bundle = r.pack_with(&r.new, &dir);
    let before = r.s.state();
    r.s.ingest(&["import", bundle.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["key rotation statement refused", "signed by 0 of the 1 keys"]);
    assert_eq!(r.s.state(), before);
}

#[test]
fn rotation_without_the_new_keys_signature() {
    let r = Rotating::new();
    let (dir, run) = r.rotate("rotation-unproven-key", "2", &[&r.new_pub], &[&r.old]);
    run.ok();
    let bundle = r.pack_with(&r.old, &dir);
    r.s.ingest(&["import", bundle.to_str().unwrap()])
        .refused(exit::SIGNATURE, &[&format!("new key {} did not sign the statement", key_id(&r.new_pub))]);
    assert_eq!(r.trusted_ids(), [key_id(&r.old_pub)]);
}

#[test]
fn skipped_rotation_version() {
    let r = Rotating::new();
    let (dir, run) = r.rotate("rotation-skips-a-version", "3", &[&r.new_pub], &[&r.old, &r.new]);
    run.ok();
    let bundle = r.pack_with(&r.new, &dir);
    r.s.ingest(&["import", bundle.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["this statement makes version 3, so version 2 was skipped"]);
    assert_eq!(r.trusted_ids(), [key_id(&r.old_pub)]);
}

#[test]
fn rotation_statement_edited_after_signing() {
    let r = Rotating::new();
    let (dir, run) = r.rotate("rotation-v2", "2", &[&r.new_pub], &[&r.old, &r.new]);
    run.ok();
    let bundle = r.pack_with(&r.new, &dir);
    let mut entries = zip_entries(&bundle);
    let statement = entry(&mut entries, "rotation.json");
    *statement =
        String::from_utf8(statement.clone()).unwrap().replace("\"threshold\": 1", "\"threshold\":  1").into_bytes();
    let edited = r.s.path("rotation-statement-edited.zip");
    write_zip(&edited, &entries);
    r.s.ingest(&["import", edited.to_str().unwrap()]).refused(exit::SIGNATURE, &["the statement was altered"]);
}

#[test]
fn revocation_by_leaving_a_key_out() {
    let r = Rotating::new();
    r.s.trust(&r.new_pub);
    // Revoke "new": the statement keeps only "old", signed by it (threshold 1 of 2).
    let (dir, run) = r.rotate("revoke-new", "2", &[&r.old_pub], &[&r.old]);
    run.ok();
    let bundle = r.pack_with(&r.old, &dir);
    r.s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    assert_eq!(r.trusted_ids(), [key_id(&r.old_pub)]);
    let by_revoked = r.s.pack(&r.catalog, &r.new, &[]);
    r.s.ingest(&["import", by_revoked.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["not signed by enough trusted keys"]);
}

#[test]
fn stock_minisign_verifies_a_rotation_statement() {
    let r = Rotating::new();
    let (dir, run) = r.rotate("rotation-v2", "2", &[&r.new_pub], &[&r.old, &r.new]);
    run.ok();
    let sig = dir.join(format!("rotation-signatures/{}.minisig", key_id(&r.old_pub)));
    let out = tool("minisign")
        .arg("-V")
        .arg("-p")
        .arg(&r.old_pub)
        .arg("-m")
        .arg(dir.join("rotation.json"))
        .arg("-x")
        .arg(&sig)
        .output()
        .unwrap();
    assert!(out.status.success(), "minisign -V: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ferry-rotation v1 channel=default version=2"));
}

#[test]
fn officers_sign_in_turn_into_one_rotation_directory() {
    let r = Rotating::new();
    // The old key's holder signs first, the new key's holder later, into the same directory.
    let (dir, run) = r.rotate("rotation-in-turn", "2", &[&r.new_pub], &[&r.old]);
    run.ok();
    let (_, run) = r.rotate("rotation-in-turn", "2", &[&r.new_pub], &[&r.new]);
    run.ok();
    let bundle = r.pack_with(&r.new, &dir);
    r.s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    assert_eq!(r.trusted_ids(), [key_id(&r.new_pub)]);
}

#[test]
fn rotation_directory_holds_another_statement() {
    let r = Rotating::new();
    r.rotate("rotation-dir-taken", "2", &[&r.new_pub], &[&r.old]).1.ok();
    let (_, run) = r.rotate("rotation-dir-taken", "2", &[&r.old_pub], &[&r.old]);
    run.refused(exit::INPUT, &["a different rotation statement in"]);
}

#[test]
fn rotation_for_another_channel() {
    let r = Rotating::new();
    let dir = r.s.path("rotation-other-channel");
    r.s.fetch(&[
        "key",
        "rotate",
        "--channel",
        "servers",
        "--version",
        "2",
        "--trust",
        r.new_pub.to_str().unwrap(),
        "--sign-with",
        r.old.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ])
    .ok();
    r.s.pack_run(&r.catalog, &r.new, &["--rotation", dir.to_str().unwrap()], &[])
        .refused(exit::INPUT, &["the rotation statement is for channel servers, the bundle for channel default"]);
}

/// A later volume of an older set carries the rotation statement its set was made with. Once
/// the channel has rotated again, that statement is old news: recognised byte for byte as the
/// one applied before, it changes nothing, and the volume is judged by the keys trusted now.
#[test]
fn a_late_volume_carrying_an_earlier_rotation_is_accepted() {
    let r = Rotating::new();
    let (third, third_pub) = r.s.key("third");
    // Version 2 adds the new key and keeps the old one; a set of three volumes carries it.
    let (v2, run) = r.rotate("rotation-v2", "2", &[&r.old_pub, &r.new_pub], &[&r.old, &r.new]);
    run.ok();
    let out =
        r.s.pack_run(&r.catalog, &r.old, &["--json", "--media", "120000", "--rotation", v2.to_str().unwrap()], &[])
            .ok();
    let result: serde_json::Value = data(out.lines().last().unwrap());
    let volumes: Vec<String> =
        result["volumes"].as_array().unwrap().iter().map(|v| v["path"].as_str().unwrap().to_string()).collect();
    assert!(volumes.len() >= 2, "{out}");
    r.s.ingest(&["import", &volumes[0]]).ok();
    assert!(r.s.ingest(&["trust", "list"]).ok().contains("(trust version 2)"));

    // Version 3 adds a third key, carried by a newer bundle, imported before the late volume.
    let (v3, run) = r.rotate("rotation-v3", "3", &[&r.old_pub, &r.new_pub, &third_pub], &[&r.old, &third]);
    run.ok();
    let newer = r.s.pack(&r.catalog, &r.old, &["--rotation", v3.to_str().unwrap()]);
    r.s.ingest(&["import", newer.to_str().unwrap()]).ok();
    assert!(r.s.ingest(&["trust", "list"]).ok().contains("(trust version 3)"));

    let out = r.s.ingest(&["import", &volumes[1], "--json"]).ok();
    let v: serde_json::Value = first_of(&out, "import");
    assert_eq!(v["outcome"], "accepted", "{out}");
    assert_eq!(v["verified"]["rotation"], serde_json::Value::Null, "nothing was rotated: {out}");
    assert!(r.s.ingest(&["trust", "list"]).ok().contains("(trust version 3)"), "the trust version stays");
    assert_eq!(r.trusted_ids().len(), 3);

    // A statement for an earlier version that was never applied is still refused.
    let (other_v2, run) = r.rotate("other-v2", "2", &[&r.old_pub], &[&r.old]);
    run.ok();
    let stale = r.s.pack(&r.catalog, &r.old, &["--rotation", other_v2.to_str().unwrap()]);
    r.s.ingest(&["import", stale.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["is at trust version 3; a statement for version 2 cannot change it"]);
}

#[test]
fn rotation_to_the_demo_key() {
    // Signed by the trusted key and by the demo key, as a rotation must be: the statement is
    // sound, but it would make a key whose secret ships with ferry the channel's only key.
    let r = Rotating::new();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/keys");
    let (demo, demo_pub) = (samples.join("demo.key"), samples.join("demo.pub"));
    let (dir, run) = r.rotate("rotation-to-demo", "2", &[&demo_pub], &[&r.old, &demo]);
    run.ok();
    // The bundle's own signature is by the key the statement makes trusted.
    let bundle = r.pack_with(&demo, &dir);
    let before = r.s.state();
    r.s.ingest(&["import", bundle.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["public demo key shipped with ferry", "--allow-demo-key"]);
    assert_eq!(r.s.state(), before);
    assert_eq!(r.trusted_ids(), [key_id(&r.old_pub)]);
    // Asked for explicitly (a demonstration), it is applied.
    r.s.ingest(&["import", bundle.to_str().unwrap(), "--allow-demo-key"]).ok();
    assert_eq!(r.trusted_ids(), ["D4ACB353394EA7A8"], "the demo key, as its file names it");
}
