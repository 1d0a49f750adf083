//! A new revision may correct metadata; one that changes a file digest sends the approval
//! back to undefined and is logged. Revisions never go backwards.

use crate::support::*;

fn import_json(s: &Scratch, bundle: &std::path::Path) -> serde_json::Value {
    first_of(&s.ingest(&["import", "--json", bundle.to_str().unwrap()]).ok(), "import")
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn a_revision_that_changes_files_resets_approval() {
    let s = Scratch::new();
    let feed = s.path("feed");
    let mut updates = three_updates();
    let catalog = local_catalog(&feed, &updates);
    let (secret, public) = s.key("signer");
    s.trust(&public);
    import_json(&s, &s.pack(catalog.to_str().unwrap(), &secret, &[]));

    // An administrator approved two of them (the approval commands come later; the
    // registry is a real SQLite file).
    let db = rusqlite::Connection::open(s.data_dir().join("registry.sqlite")).unwrap();
    db.execute(
        "UPDATE updates SET status = 'approved', status_set_by = 'person' WHERE id IN ('KB5034122', '7zip.7zip@24.09')",
        [],
    )
    .unwrap();

    // The vendor re-releases KB5034122 with a new file, and corrects 7-Zip's title only.
    updates[0].revision = 2;
    updates[0].body = payload("KB5034122 re-release", 41_000);
    updates[1].revision = 2;
    let catalog = local_catalog(&feed, &updates);
    let text = std::fs::read_to_string(&catalog).unwrap().replace("\"7-Zip update\"", "\"7-Zip 24.09 update\"");
    std::fs::write(&catalog, text).unwrap();
    let second = import_json(&s, &s.pack(catalog.to_str().unwrap(), &secret, &[]));
    assert_eq!(ids(&second["changes"]["revised"]), ["7zip.7zip@24.09", "KB5034122"]);
    assert_eq!(ids(&second["changes"]["status_reset"]), ["KB5034122"]);
    assert_eq!(ids(&second["changes"]["unchanged"]), ["VideoLAN.VLC@3.0.21"]);

    let shown: serde_json::Value = data(s.ingest(&["show", "--json", "KB5034122"]).ok().trim());
    assert_eq!(shown["revision"], 2);
    assert_eq!(shown["status"], "undefined");
    assert_eq!(shown["status_set_by"], "system");
    assert_eq!(shown["status_actor"], "revision 2 changed the update's files");
    assert_eq!(shown["available"], true);
    let zip: serde_json::Value = data(s.ingest(&["show", "--json", "7zip.7zip@24.09"]).ok().trim());
    assert_eq!(zip["status"], "approved", "a metadata-only correction keeps the approval");
    assert_eq!(zip["title"], "7-Zip 24.09 update");

    let logged: i64 = db
        .query_row("SELECT COUNT(*) FROM audit_log WHERE event = 'status-reset' AND subject = 'KB5034122'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(logged, 1, "the reset is in the audit log");

    // A later bundle built from the old catalog must not take the list back to revision 1.
    updates[0].revision = 1;
    updates[0].body = payload("KB5034122", 40_000);
    let old = local_catalog(&s.path("old-feed"), &updates[..1]);
    let third = import_json(&s, &s.pack(old.to_str().unwrap(), &secret, &[]));
    assert_eq!(ids(&third["changes"]["ignored"]), ["KB5034122"]);
    let shown: serde_json::Value = data(s.ingest(&["show", "--json", "KB5034122"]).ok().trim());
    assert_eq!(shown["revision"], 2);
}
