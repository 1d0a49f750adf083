//! The audit log: every accepted and refused bundle and every trust change, hash-chained so
//! that `ingest audit verify` shows an edited, removed or cut-off entry.

use crate::support::*;

/// A data directory with trust, an accepted bundle and a refused one in its log; returns it
/// with the log's head hash.
fn logged() -> (Accepted, String) {
    let a = Accepted::new();
    let (stranger, _) = a.s.key("stranger");
    let foreign = a.s.pack(a.catalog.to_str().unwrap(), &stranger, &[]);
    a.s.ingest(&["import", foreign.to_str().unwrap()]).refused(exit::SIGNATURE, &["not signed by enough"]);
    let out = a.s.ingest(&["audit", "verify", "--json"]).ok();
    let report: serde_json::Value = data(out.trim());
    assert_eq!(report["entries"], 3, "{out}");
    (a, report["head"].as_str().unwrap().to_string())
}

fn sql(a: &Accepted, statement: &str) {
    let db = rusqlite::Connection::open(a.s.data_dir().join("registry.sqlite")).unwrap();
    assert_eq!(db.execute(statement, []).unwrap(), 1, "{statement}");
}

#[test]
fn the_log_records_acceptances_refusals_and_trust() {
    let (a, head) = logged();
    let out = a.s.ingest(&["audit", "list", "--json"]).ok();
    let events: Vec<serde_json::Value> = out.lines().map(data).collect();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["trust-added", "bundle-accepted", "bundle-refused"]);
    assert!(events[1]["detail"]["signers"][0].is_string(), "{out}");
    assert!(events[2]["detail"]["reason"].as_str().unwrap().contains("not signed by enough trusted keys"));
    assert_eq!(events[2]["hash"], head.as_str());
    let text = a.s.ingest(&["audit", "verify", "--head", &head]).ok();
    assert!(text.contains("audit log intact: 3 entries"), "{text}");
}

#[test]
fn audit_entry_edited() {
    let (a, _) = logged();
    sql(&a, "UPDATE audit_log SET detail = replace(detail, 'not signed', 'signed') WHERE seq = 3");
    a.s.ingest(&["audit", "verify"]).refused(exit::INTEGRITY, &["entry 3", "does not match its hash"]);
}

#[test]
fn audit_entry_removed() {
    let (a, _) = logged();
    sql(&a, "DELETE FROM audit_log WHERE seq = 2");
    a.s.ingest(&["audit", "verify"]).refused(exit::INTEGRITY, &["entry 3", "entries 2 to 2 are missing"]);
}

/// An entry's hash as ingest computes it: SHA-256 over the length-prefixed fields.
fn entry_hash(fields: [&str; 5]) -> String {
    let mut bytes = Vec::new();
    for field in fields {
        bytes.extend_from_slice(&(field.len() as u64).to_le_bytes());
        bytes.extend_from_slice(field.as_bytes());
    }
    sha256_hex(&bytes)
}

#[test]
fn audit_entry_rehashed_after_an_edit() {
    // Someone who edits an entry and recomputes its own hash makes it consistent with
    // itself, but the next entry still names the old hash: the chain shows the edit there.
    let (a, _) = logged();
    let db = rusqlite::Connection::open(a.s.data_dir().join("registry.sqlite")).unwrap();
    let (at, event, subject, detail, prev): (String, String, String, String, String) = db
        .query_row("SELECT at, event, subject, detail, prev_hash FROM audit_log WHERE seq = 2", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    let edited = detail.replacen("\"signers\":[\"", "\"signers\":[\"00", 1);
    assert_ne!(edited, detail, "the edit changes the entry: {detail}");
    let hash = entry_hash([&prev, &at, &event, &subject, &edited]);
    db.execute("UPDATE audit_log SET detail = ?1, hash = ?2 WHERE seq = 2", [&edited, &hash]).unwrap();
    drop(db);
    a.s.ingest(&["audit", "verify"]).refused(exit::INTEGRITY, &["entry 3: it does not follow the entry before it"]);
}

#[test]
fn audit_tail_cut_off() {
    let (a, head) = logged();
    sql(&a, "DELETE FROM audit_log WHERE seq = 3");
    // Without an anchor the shortened chain is consistent; the head kept from earlier shows it.
    a.s.ingest(&["audit", "verify"]).ok();
    a.s.ingest(&["audit", "verify", "--head", &head]).refused(exit::INTEGRITY, &["entries after it were removed"]);
}
