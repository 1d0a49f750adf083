//! k-of-n signatures: a channel can require several distinct trusted keys on every bundle.

use crate::support::*;

/// Two keys trusted for the default channel, with threshold 2; returns (scratch, catalog,
/// secret a, secret b).
fn two_of_two() -> (Scratch, String, std::path::PathBuf, std::path::PathBuf) {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates()).to_str().unwrap().to_string();
    let (a, a_pub) = s.key("officer-a");
    let (b, b_pub) = s.key("officer-b");
    s.trust(&a_pub);
    s.trust(&b_pub);
    s.ingest(&["trust", "threshold", "2"]).ok();
    (s, catalog, a, b)
}

#[test]
fn too_few_valid_signatures() {
    let (s, catalog, a, b) = two_of_two();
    let listed = s.ingest(&["trust", "list"]).ok();
    assert!(listed.contains("channel default: 2 of 2 trusted keys must sign (trust version 1)"), "{listed}");

    let one = s.pack(&catalog, &a, &["--id", "KB5034122"]);
    let before = s.state();
    s.ingest(&["import", one.to_str().unwrap()]).refused(exit::SIGNATURE, &["1 valid of 2 required"]);
    assert_eq!(s.state(), before);

    // The same content signed by both is accepted, and both are recorded as signers.
    let both = s.pack(&catalog, &a, &["--id", "KB5034122", "--key", b.to_str().unwrap()]);
    let out = s.ingest(&["import", both.to_str().unwrap(), "--json"]).ok();
    let v: serde_json::Value = first_of(&out, "import");
    assert_eq!(v["verified"]["signers"].as_array().unwrap().len(), 2, "{out}");
}

#[test]
fn one_keys_signature_given_twice() {
    let (s, catalog, a, _) = two_of_two();
    // Signing twice with one key is refused at the source...
    s.pack_run(&catalog, &a, &["--key", a.to_str().unwrap()], &[]).refused(exit::INPUT, &["given twice"]);
    // ...and a bundle cannot carry a second copy: its entry would have the same name (named
    // by key id), which the container refuses before signatures are counted. That the count
    // itself takes one key once is tested past the container, in core (bundle::reader,
    // one_keys_signature_counted_twice_does_not_reach_the_threshold).
    let one = s.pack(&catalog, &a, &[]);
    let mut entries = zip_entries(&one);
    let copy = signature_entry(&mut entries).clone();
    let doubled = s.path("one-key-counted-twice.zip");
    std::fs::write(
        &doubled,
        rawzip::build(
            &entries.iter().chain([&copy]).map(|(n, d)| rawzip::RawEntry::file(n, d.clone())).collect::<Vec<_>>(),
        ),
    )
    .unwrap();
    s.ingest(&["import", doubled.to_str().unwrap()]).refused(exit::BUNDLE, &["appears twice"]);
}

#[test]
fn threshold_cannot_exceed_the_trusted_keys() {
    let (s, _, _, _) = two_of_two();
    s.ingest(&["trust", "threshold", "3"]).refused(exit::INPUT, &["threshold of 3 is impossible with 2 trusted keys"]);
    s.ingest(&["trust", "threshold", "0"]).refused(exit::INPUT, &["threshold of 0 is impossible"]);
    let keys = s.ingest(&["trust", "list", "--json"]).ok();
    let id = data(keys.lines().next().unwrap())["key_id"].as_str().unwrap().to_string();
    s.ingest(&["trust", "remove", &id]).refused(exit::INPUT, &["would leave 1 keys for a threshold of 2"]);
    s.ingest(&["trust", "threshold", "1"]).ok();
    s.ingest(&["trust", "remove", &id]).ok();
}

#[test]
fn another_key_with_a_trusted_key_id() {
    let s = Scratch::new();
    let (_, public) = s.key("genuine");
    s.trust(&public);
    // A key file claiming the trusted key's id with other key bytes.
    let (_, other) = s.key("impostor");
    let genuine = std::fs::read_to_string(&public).unwrap();
    let impostor = std::fs::read_to_string(&other).unwrap();
    let id_of = |text: &str| {
        use base64::Engine;
        let b64 = text.lines().nth(1).unwrap();
        base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
    };
    let mut forged = id_of(&impostor);
    forged[2..10].copy_from_slice(&id_of(&genuine)[2..10]);
    let forged_path = s.path("same-id-other-key.pub");
    use base64::Engine;
    std::fs::write(
        &forged_path,
        format!("untrusted comment: forged\n{}\n", base64::engine::general_purpose::STANDARD.encode(forged)),
    )
    .unwrap();
    s.ingest(&["trust", "add", forged_path.to_str().unwrap()])
        .refused(exit::INPUT, &["another key with id", "is trusted already"]);
}
