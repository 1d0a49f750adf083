//! The whole journey: a catalog on a loopback HTTP server → fetch pack → stock minisign and
//! unzip accept the bundle → ingest trust, verify, import → the update list → re-import is
//! a no-op.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::http::Server;
use crate::support::*;

fn serve_catalog(updates: &[TestUpdate]) -> Server {
    let (text, files) = catalog(updates, "payloads/");
    let mut served: BTreeMap<String, Vec<u8>> = files.into_iter().map(|(k, v)| (format!("payloads/{k}"), v)).collect();
    served.insert("feed/catalog.json".into(), text.replace("\"payloads/", "\"../payloads/").into_bytes());
    Server::start(served)
}

/// Extracts the manifest and each signature next to each other for the stock tool.
fn verify_with_minisign(bundle: &Path, public: &Path, dir: &Path) -> Vec<String> {
    let entries = zip_entries(bundle);
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, &entries.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
    let mut comments = Vec::new();
    for (name, bytes) in entries.iter().filter(|(n, _)| n.starts_with("signatures/")) {
        let sig = dir.join(name.replace('/', "_"));
        std::fs::write(&sig, bytes).unwrap();
        let out =
            tool("minisign").arg("-Vm").arg(&manifest).arg("-x").arg(&sig).arg("-p").arg(public).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "minisign -V refused {name}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let comment = stdout
            .lines()
            .find_map(|l| l.strip_prefix("Trusted comment: "))
            .expect("minisign prints the trusted comment");
        comments.push(comment.to_string());
    }
    comments
}

#[test]
fn catalog_over_http_to_update_list() {
    let s = Scratch::new();
    let updates = three_updates();
    let server = serve_catalog(&updates);
    let (secret, public) = s.key("signer");

    let bundle = s.pack(&server.url("feed/catalog.json"), &secret, &[]);
    let mut requested = server.requests();
    requested.sort();
    let mut expected: Vec<String> = updates.iter().map(|u| format!("payloads/{}", u.file)).collect();
    expected.push("feed/catalog.json".into());
    expected.sort();
    assert_eq!(requested, expected, "each file is downloaded exactly once");

    let comments = verify_with_minisign(&bundle, &public, s.dir.path());
    assert_eq!(comments.len(), 1);
    assert!(comments[0].starts_with("ferry-bundle v1 id="), "{}", comments[0]);
    assert!(comments[0].contains(" channel=default sequence=1 volume=1/1 layout="), "{}", comments[0]);

    let unzip = tool("unzip").arg("-t").arg(&bundle).output().unwrap();
    assert!(unzip.status.success(), "unzip -t: {}", String::from_utf8_lossy(&unzip.stdout));
    assert!(String::from_utf8_lossy(&unzip.stdout).contains("No errors detected"));

    s.trust(&public);
    let verified = s.ingest(&["verify", bundle.to_str().unwrap()]).ok();
    assert!(verified.contains("3 updates; 3 payloads"), "{verified}");

    let imported: serde_json::Value =
        first_of(&s.ingest(&["import", "--json", bundle.to_str().unwrap()]).ok(), "import");
    assert_eq!(imported["outcome"], "accepted");
    assert_eq!(imported["changes"]["new"].as_array().unwrap().len(), 3);
    assert_eq!(imported["changes"]["files_stored"], 3);

    let list = s.ingest(&["list", "--json"]).ok();
    let rows: Vec<serde_json::Value> = list.lines().map(data).collect();
    assert_eq!(rows.len(), 3);
    for u in &updates {
        let row = rows.iter().find(|r| r["id"] == u.id).unwrap_or_else(|| panic!("{} missing from the list", u.id));
        assert_eq!(row["product"], u.product);
        assert_eq!(row["revision"], 1);
        assert_eq!(row["status"], "undefined");
        assert_eq!(row["available"], true);
        assert_eq!(row["classification"], "security-update");
        assert_eq!(row["severity"], "important");
        assert_eq!(row["origin"], "bundle");
        // The store holds the file under its digest, with the served bytes.
        let digest = sha256_hex(&u.body);
        let stored = s.data_dir().join("store/sha256").join(&digest[..2]).join(&digest);
        assert_eq!(std::fs::read(&stored).unwrap(), u.body);
        assert!(std::fs::metadata(&stored).unwrap().permissions().readonly(), "stored files are read-only");
    }
    let filtered = s.ingest(&["list", "--json", "--product", "7-zip"]).ok();
    assert_eq!(filtered.lines().count(), 1);
    assert!(filtered.contains("7zip.7zip@24.09"));

    let before = s.state();
    let again: serde_json::Value = first_of(&s.ingest(&["import", "--json", bundle.to_str().unwrap()]).ok(), "import");
    assert_eq!(again["outcome"], "already-imported");
    assert_eq!(s.state(), before, "re-importing the same bundle changes nothing");
}

#[test]
fn a_file_shared_by_two_updates_is_fetched_once() {
    let s = Scratch::new();
    let mut updates = three_updates();
    updates[1].body = updates[0].body.clone();
    let server = serve_catalog(&updates);
    let (secret, public) = s.key("signer");
    let bundle = s.pack(&server.url("feed/catalog.json"), &secret, &[]);
    let payload_requests = server.requests().iter().filter(|r| r.starts_with("payloads/")).count();
    assert_eq!(payload_requests, 2, "two distinct digests, two downloads: {:?}", server.requests());
    s.trust(&public);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    let list = s.ingest(&["list", "--json", "--available"]).ok();
    assert_eq!(list.lines().count(), 3, "all three updates are available: {list}");
}

#[test]
fn sequences_grow_and_show_and_filters_work() {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let first = s.pack(catalog.to_str().unwrap(), &secret, &["--id", "KB5034122"]);
    let second = s.pack(catalog.to_str().unwrap(), &secret, &["--product", "VLC media player", "--product", "7-Zip"]);
    assert!(first.ends_with("ferry-default-000001.zip"), "{}", first.display());
    assert!(second.ends_with("ferry-default-000002.zip"), "{}", second.display());
    s.ingest(&["import", first.to_str().unwrap(), second.to_str().unwrap()]).ok();
    assert_eq!(s.ingest(&["list", "--json"]).ok().lines().count(), 3);

    let shown: serde_json::Value = data(s.ingest(&["show", "--json", "KB5034122"]).ok().trim());
    assert_eq!(shown["metadata"]["files"][0]["name"], "windows10.0-kb5034122-x64.msu");
    assert!(shown["origin_detail"].as_str().unwrap().contains("sequence 1 of channel default"), "{shown}");
    s.ingest(&["show", "KB0000000"]).refused(exit::NOT_FOUND, &["update \"KB0000000\" not found"]);

    let third = s.pack(catalog.to_str().unwrap(), &secret, &["--min-sequence", "40", "--id", "KB5034122"]);
    assert!(third.ends_with("ferry-default-000040.zip"), "{}", third.display());
}

#[test]
fn update_without_a_release_date() {
    // A source that gives no release date (a winget manifest without ReleaseDate): the date
    // stays unknown from catalog to list; nothing invents one.
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&catalog).unwrap()).unwrap();
    doc["updates"][1].as_object_mut().unwrap().remove("release_date");
    let undated = doc["updates"][1]["id"].as_str().unwrap().to_string();
    std::fs::write(&catalog, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let bundle = s.pack(catalog.to_str().unwrap(), &secret, &[]);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();

    let shown = update_json(&s, &undated);
    assert!(shown.get("release_date").is_none(), "{shown}");
    assert!(s.ingest(&["show", &undated]).ok().contains("released       unknown"));
    // A filter by release date, and a rule counting days since release, pass it by.
    assert!(!listed(&s, &["--released-before", "2099-01-01"]).contains(&undated));
    assert!(listed(&s, &[]).contains(&undated));
    s.ingest(&["rules", "add", "old-enough", "--approve", "--days-since-release", "1", "--by", "alice"]).ok();
    s.ingest(&["refresh"]).ok();
    assert_eq!(update_json(&s, &undated)["status"], "undefined");
    let dated = doc["updates"][0]["id"].as_str().unwrap();
    assert_eq!(update_json(&s, dated)["status"], "approved", "the rule applies to dated updates");
    // The CSV export leaves the cell empty.
    let csv = s.path("list.csv");
    s.ingest(&["export-list", "--out", csv.to_str().unwrap()]).ok();
    let mut rows = csv::Reader::from_path(&csv).unwrap();
    let column = rows.headers().unwrap().iter().position(|h| h == "release_date").unwrap();
    let cells: BTreeMap<String, String> =
        rows.records().map(|r| r.unwrap()).map(|r| (r[0].to_string(), r[column].to_string())).collect();
    assert_eq!(cells[&undated], "");
    assert_eq!(cells[dated], "2024-01-09");
}
