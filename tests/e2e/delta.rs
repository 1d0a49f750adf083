//! The offline side's state file carried out by the courier, and the delta bundles fetch
//! builds from it: only what is missing travels, and the result equals a full import.

use std::path::PathBuf;

use crate::support::*;

/// Server A has imported a full bundle of `v1` and exported its state and public key.
struct Exported {
    a: Scratch,
    secret: PathBuf,
    public: PathBuf,
    state: PathBuf,
    server_key: PathBuf,
}

fn v1() -> Vec<TestUpdate> {
    three_updates()
}

/// KB5034122 revised with the same file, and one new update.
fn v2() -> Vec<TestUpdate> {
    let mut updates = three_updates();
    updates[0].revision = 2;
    updates.push(TestUpdate::new("Notepad++.Notepad++@8.7", "Notepad++", "npp.8.7.Installer.x64.exe", 23_456));
    updates
}

fn exported() -> Exported {
    let a = Scratch::new();
    let catalog = local_catalog(&a.path("feed-v1"), &v1());
    let (secret, public) = a.key("signer");
    a.trust(&public);
    a.ingest(&["import", a.pack(catalog.to_str().unwrap(), &secret, &[]).to_str().unwrap()]).ok();
    let (state, server_key) = (a.path("courier/state.json"), a.path("courier/server.pub"));
    std::fs::create_dir_all(a.path("courier")).unwrap();
    a.ingest(&["server-key", "export", "--out", server_key.to_str().unwrap()]).ok();
    a.ingest(&["state", "export", "--out", state.to_str().unwrap()]).ok();
    Exported { a, secret, public, state, server_key }
}

impl Exported {
    fn state_args(&self) -> Vec<&str> {
        vec!["--state", self.state.to_str().unwrap(), "--server-key", self.server_key.to_str().unwrap()]
    }
}

fn json(text: &str) -> serde_json::Value {
    data(text.lines().last().unwrap())
}

#[test]
fn a_delta_carries_only_what_is_missing_and_equals_a_full_import() {
    let e = exported();
    // A second online machine with an empty work directory: the sequence must still
    // continue above the offline side's.
    let online = Scratch::new();
    let catalog = local_catalog(&online.path("feed-v2"), &v2());

    let plan =
        online.fetch(&[&["plan", "--json", "--catalog", catalog.to_str().unwrap()][..], &e.state_args()].concat()).ok();
    let plan = json(&plan);
    assert_eq!(plan["kind"], "delta");
    let reasons: Vec<(String, String)> = plan["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap().to_string(), u["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(reasons, [("KB5034122".into(), "revised".into()), ("Notepad++.Notepad++@8.7".into(), "new".into())]);
    assert_eq!(plan["files"], 1);
    assert_eq!(plan["payload_bytes"], 23_456);
    assert_eq!(plan["up_to_date"], 2);
    assert_eq!(plan["min_sequence"], 2);

    let delta = online.pack(catalog.to_str().unwrap(), &e.secret, &e.state_args());
    assert!(delta.ends_with("ferry-default-000002.zip"), "{}", delta.display());
    let inspected = json(&online.fetch(&["inspect", "--json", delta.to_str().unwrap()]).ok());
    assert_eq!(inspected["manifest"]["kind"], "delta");
    assert_eq!(inspected["manifest"]["layout"]["payloads"].as_array().unwrap().len(), 1);
    assert_eq!(inspected["manifest"]["relies_on"], serde_json::json!([sha256_hex(&v2()[0].body)]));
    e.a.ingest(&["import", delta.to_str().unwrap()]).ok();

    // Server B receives the combined content as one full bundle.
    let b = Scratch::new();
    let (b_secret, b_public) = b.key("signer");
    b.trust(&b_public);
    b.ingest(&["import", b.pack(catalog.to_str().unwrap(), &b_secret, &[]).to_str().unwrap()]).ok();
    let (list_a, list_b) = (e.a.ingest(&["list", "--json"]).ok(), b.ingest(&["list", "--json"]).ok());
    assert_eq!(list_a.lines().count(), 4);
    assert_eq!(list_a, list_b, "full-then-delta and full-at-once disagree");
}

#[test]
fn a_delta_is_refused_where_its_base_is_missing() {
    let e = exported();
    let catalog = local_catalog(&e.a.path("feed-v2"), &v2());
    let delta = e.a.pack(catalog.to_str().unwrap(), &e.secret, &e.state_args());
    let c = Scratch::new();
    c.trust(&e.public);
    let base = sha256_hex(&v2()[0].body);
    let before = c.state();
    c.ingest(&["import", delta.to_str().unwrap()])
        .refused(exit::ROLLBACK, &[&format!("delta relies on file {base} which this server does not hold")]);
    assert_eq!(c.ingest(&["list", "--json"]).ok(), "", "nothing was registered");
    assert_eq!(c.state(), before, "no channel state, volume, file or chunk stayed behind");
}

/// What a refused pack must leave as it was: the media and fetch's work directory (its
/// sequence reservations and cache).
fn fetch_side(e: &Exported) -> (Vec<String>, Vec<String>, Vec<u8>) {
    let mut media = walk(&e.a.media());
    media.sort();
    let mut work = walk(&e.a.work_dir());
    work.sort();
    (media, work, std::fs::read(e.a.work_dir().join("state.json")).unwrap_or_default())
}

#[test]
fn nothing_new_writes_no_bundle() {
    let e = exported();
    let catalog = local_catalog(&e.a.path("feed-v1-again"), &v1());
    let before = walk(&e.a.media());
    let state_before = std::fs::read(e.a.work_dir().join("state.json")).unwrap();
    let out = e.a.pack_run(catalog.to_str().unwrap(), &e.secret, &e.state_args(), &[]).ok();
    assert!(out.contains("nothing new for the offline side: 3 selected updates are up to date"), "{out}");
    assert_eq!(walk(&e.a.media()), before);
    assert_eq!(std::fs::read(e.a.work_dir().join("state.json")).unwrap(), state_before, "no sequence was used");
}

#[test]
fn the_state_file_verifies_with_stock_minisign() {
    let e = exported();
    let out = tool("minisign").arg("-V").arg("-p").arg(&e.server_key).arg("-m").arg(&e.state).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Trusted comment: ferry-state v1 server="));
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&e.state).unwrap()).unwrap();
    assert_eq!(state["channels"]["default"]["highest_sequence"], 1);
    assert_eq!(state["files"].as_array().unwrap().len(), 3);
    assert_eq!(state["bundle_formats"], serde_json::json!([1]));
}

#[test]
fn a_state_file_edited_on_the_way() {
    let e = exported();
    let catalog = local_catalog(&e.a.path("feed-v2"), &v2());
    let text =
        std::fs::read_to_string(&e.state).unwrap().replace("\"highest_sequence\": 1", "\"highest_sequence\": 1000");
    std::fs::write(&e.state, text).unwrap();
    let before = fetch_side(&e);
    e.a.pack_run(catalog.to_str().unwrap(), &e.secret, &e.state_args(), &[])
        .refused(exit::SIGNATURE, &["state.json: the file was altered after signing"]);
    assert_eq!(fetch_side(&e), before, "no bundle, no sequence used");
}

#[test]
fn a_state_file_checked_against_another_key() {
    let e = exported();
    let catalog = local_catalog(&e.a.path("feed-v2"), &v2());
    let args = ["--state", e.state.to_str().unwrap(), "--server-key", e.public.to_str().unwrap()];
    let before = fetch_side(&e);
    e.a.pack_run(catalog.to_str().unwrap(), &e.secret, &args, &[]).refused(exit::SIGNATURE, &["not by the server key"]);
    assert_eq!(fetch_side(&e), before, "no bundle, no sequence used");
}
