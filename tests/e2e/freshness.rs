//! Freshness without a trusted clock: expiry judged against the later of the system clock and
//! the latest accepted bundle, an explicit and logged way to relax it, a recovery from a
//! bundle dated in the future, and the receipt that records every judgement.

use crate::support::*;

fn audit_events(s: &Scratch) -> Vec<serde_json::Value> {
    let out = s.ingest(&["audit", "list", "--json"]).ok();
    out.lines().map(data).collect()
}

#[test]
fn expired_bundle() {
    let a = Accepted::new();
    let bundle = a.resigned("expired-bundle.zip", |m| {
        m["created"] = "2024-01-01T00:00:00Z".into();
        m["expires"] = "2024-01-02T00:00:00Z".into();
    });
    a.refuse(&bundle, exit::ROLLBACK, &["expired at 2024-01-02T00:00:00Z", "--allow-expired"]);

    // Relaxing is explicit, warned about, and logged.
    let receipt = a.s.path("receipt.json");
    let out =
        a.s.ingest(&["import", bundle.to_str().unwrap(), "--allow-expired", "--receipt", receipt.to_str().unwrap()]);
    assert!(
        out.stderr.contains("accepted past its expiry (2024-01-02T00:00:00Z) because of --allow-expired"),
        "{}",
        out.stderr
    );
    out.ok();
    let accepted = audit_events(&a.s).into_iter().rfind(|e| e["event"] == "bundle-accepted").unwrap();
    assert_eq!(accepted["detail"]["time"]["expiry_relaxed"], true, "{accepted}");
    let receipt: serde_json::Value = serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    assert_eq!(receipt["bundles"][0]["verified"]["time"]["expiry_relaxed"], true);
}

#[test]
fn bundle_dated_in_the_future_then_clock_reset() {
    let a = Accepted::new();
    let future = a.resigned("dated-in-the-future.zip", |m| m["created"] = "2999-01-01T00:00:00Z".into());
    a.s.ingest(&["import", future.to_str().unwrap()]).ok();

    // A fresh bundle valid for 30 days now looks expired: judged against 2999.
    let fresh = a.s.pack(a.catalog.to_str().unwrap(), &a.secret, &["--expires-in-days", "30"]);
    let stderr =
        a.s.ingest(&["import", fresh.to_str().unwrap()])
            .refused(exit::ROLLBACK, &["judged against 2999-01-01T00:00:00Z"]);
    assert!(stderr.contains("ingest trust clock-reset"), "{stderr}");
    let verify = a.s.ingest(&["verify", fresh.to_str().unwrap(), "--allow-expired"]);
    assert!(verify.stderr.contains("system clock"), "the clock judgement is reported: {}", verify.stderr);

    let out = a.s.ingest(&["trust", "clock-reset"]).ok();
    assert!(out.contains("forgot the latest bundle time 2999-01-01T00:00:00Z"), "{out}");
    let reset = audit_events(&a.s).into_iter().rfind(|e| e["event"] == "clock-reset").unwrap();
    assert_eq!(reset["detail"]["forgotten_latest_time"], "2999-01-01T00:00:00Z");
    a.s.ingest(&["import", fresh.to_str().unwrap()]).ok();
}

#[test]
fn receipt_records_every_check() {
    let a = Accepted::new();
    let (stranger, _) = a.s.key("stranger");
    let foreign = a.s.pack(a.catalog.to_str().unwrap(), &stranger, &[]);
    let receipt = a.s.path("officer/receipt.json");
    std::fs::create_dir_all(receipt.parent().unwrap()).unwrap();
    a.s.ingest(&[
        "import",
        a.next.to_str().unwrap(),
        foreign.to_str().unwrap(),
        "--receipt",
        receipt.to_str().unwrap(),
    ])
    .refused(exit::SIGNATURE, &["not signed by enough trusted keys"]);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&receipt).unwrap()).unwrap();
    assert_eq!(r["format"], 1);
    let bundles = r["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 2, "{r:#}");
    let ok = bundles.iter().find(|b| b["outcome"] == "accepted").expect("the accepted bundle");
    let v = &ok["verified"];
    assert_eq!(v["signers"].as_array().unwrap().len(), 1);
    assert_eq!(v["payloads"].as_array().unwrap().len(), 3, "every payload's check is listed: {v:#}");
    for p in v["payloads"].as_array().unwrap() {
        assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
        assert!(p["size"].as_u64().unwrap() > 0);
        assert_eq!(p["volume"], 1);
    }
    assert!(v["manifest_sha256"].is_string() && v["time"]["judged_against"].is_string());
    assert!(ok["timings"]["verify_ms"].is_u64());
    let refused = bundles.iter().find(|b| b["outcome"] == "refused").expect("the refused bundle");
    assert_eq!(refused["class"], "signature");
    assert!(refused["reason"].as_str().unwrap().contains("not signed by enough trusted keys"));
    // The receipt's head anchors the audit log.
    a.s.ingest(&["audit", "verify", "--head", r["audit_head"].as_str().unwrap()]).ok();
}
