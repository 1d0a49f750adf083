//! A bundle's identity is (channel, sequence, layout): the same bundle again is a no-op, an
//! older sequence than the highest accepted is refused, and so is the same sequence with
//! other content (exit code 8).

use crate::support::*;

#[test]
fn replayed_older_bundle() {
    let a = Accepted::new();
    // Sequence 3 is accepted; the never-seen sequence 2 must not roll the channel back.
    let third = a.s.pack(a.catalog.to_str().unwrap(), &a.secret, &["--id", "VideoLAN.VLC@3.0.21"]);
    a.s.ingest(&["import", third.to_str().unwrap()]).ok();
    a.refuse(&a.next, exit::ROLLBACK, &["sequence 2 of channel \"default\" is older than the highest accepted, 3"]);
}

#[test]
fn equal_sequence_with_different_layout() {
    let a = Accepted::new();
    a.s.ingest(&["import", a.next.to_str().unwrap()]).ok();
    // Another fetch machine, unaware of the first, also writes sequence 2 with other content.
    let other = Scratch::new();
    let conflicting =
        other.pack(a.catalog.to_str().unwrap(), &a.secret, &["--min-sequence", "2", "--id", "7zip.7zip@24.09"]);
    assert!(conflicting.ends_with("ferry-default-000002.zip"));
    a.refuse(
        &conflicting,
        exit::ROLLBACK,
        &[
            "sequence 2 of channel \"default\" was already accepted with other content",
            "pack again with `fetch pack … --min-sequence 3`",
        ],
    );
}

#[test]
fn the_same_bundle_again_is_a_no_op() {
    let a = Accepted::new();
    a.s.ingest(&["import", a.next.to_str().unwrap()]).ok();
    let before = a.s.state();
    let out = a.s.ingest(&["import", a.next.to_str().unwrap()]).ok();
    assert!(out.contains("already imported"), "{out}");
    assert_eq!(a.s.state(), before);
}

#[test]
fn sequence_at_its_largest() {
    // The largest sequence a bundle carries is the registry's largest integer; past it fetch
    // refuses instead of wrapping to 1 (which ingest would take for a rollback, or worse,
    // a fresh start).
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, public) = s.key("signer");
    s.pack_run(catalog.to_str().unwrap(), &secret, &["--min-sequence", "18446744073709551615"], &[])
        .refused(exit::INPUT, &["no sequence is left"]);
    assert!(walk(&s.media()).is_empty());
    let last = s.pack(catalog.to_str().unwrap(), &secret, &["--min-sequence", "9223372036854775807"]);
    s.pack_run(catalog.to_str().unwrap(), &secret, &[], &[])
        .refused(exit::INPUT, &["no sequence is left after 9223372036854775807"]);
    s.trust(&public);
    s.ingest(&["import", last.to_str().unwrap()]).ok();
    let state: serde_json::Value = serde_json::from_str(&{
        s.ingest(&["state", "export", "--out", s.path("state.json").to_str().unwrap()]).ok();
        std::fs::read_to_string(s.path("state.json")).unwrap()
    })
    .unwrap();
    assert_eq!(state["channels"]["default"]["highest_sequence"], 9223372036854775807u64, "{state}");
}
