//! Change reports: every import, registration, CSV import and refresh stores one; `ingest
//! report` shows the latest or any earlier one as text, JSON or a self-contained HTML page,
//! with text from bundles made harmless.

use crate::support::*;

fn report_json(s: &Scratch, args: &[&str]) -> serde_json::Value {
    data(&s.ingest(&[&["report", "--format", "json"], args].concat()).ok())
}

fn entry<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["updates"].as_array().unwrap().iter().find(|e| e["id"] == id).unwrap_or_else(|| panic!("{id}: {report}"))
}

fn kinds(entry: &serde_json::Value) -> Vec<String> {
    entry["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap().to_string()).collect()
}

/// A signer, a catalog of `updates` with the given titles and severities, packed.
fn packed(s: &Scratch, feed: &str, updates: Vec<TestUpdate>, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let catalog = local_catalog(&s.path(feed), &updates);
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&catalog).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&catalog, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    if !s.path("signer.key").exists() {
        let (_, public) = s.key("signer");
        s.trust(&public);
    }
    s.pack(catalog.to_str().unwrap(), &s.path("signer.key"), &[]).to_str().unwrap().to_string()
}

#[test]
fn an_import_reports_new_updates_arrived_files_and_rule_decisions() {
    let s = Scratch::new();
    let bundle = packed(&s, "feed", three_updates(), |_| {});
    s.ingest(&["rules", "add", "seven-zip", "--approve", "--product", "7-Zip"]).ok();
    let out = s.ingest(&["import", &bundle]).ok();
    assert!(out.contains("change report 1 stored: `ingest report 1` shows it"), "{out}");

    let r = report_json(&s, &[]);
    assert_eq!(r["id"], 1);
    assert_eq!(r["kind"], "import");
    assert_eq!(r["by"], "tester");
    assert_eq!(r["sources"][0]["outcome"], "accepted", "{r}");
    assert_eq!(r["updates"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(kinds(entry(&r, "7zip.7zip@24.09")), ["new", "approved"], "{r}");
    assert_eq!(entry(&r, "7zip.7zip@24.09")["status"], "approved");
    assert_eq!(entry(&r, "KB5034122")["available"], true);
    let arrived: Vec<&str> =
        r["files_arrived"].as_array().unwrap().iter().map(|f| f["names"][0].as_str().unwrap()).collect();
    assert_eq!(arrived.len(), 3, "{r}");
    assert!(arrived.contains(&"7z2409-x64.exe"), "{r}");

    let text = s.ingest(&["report"]).ok();
    assert!(text.contains("3 new, 1 approved, 3 files arrived"), "{text}");
    assert!(text.contains("approved: by rule seven-zip (was undefined)"), "{text}");
    // The same bundle again: no report that says nothing changed (no noise), an audit
    // entry instead.
    let again = s.ingest(&["import", &bundle]).ok();
    assert!(again.contains("nothing changed: no change report stored"), "{again}");
    let list = s.ingest(&["report", "--list"]).ok();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "a heading and report 1: {list}");
    assert!(lines[0].starts_with("ID") && lines[0].ends_with("WHAT CHANGED"), "{list}");
    assert!(lines[1].starts_with("1 ") && lines[1].contains("3 new, 1 approved"), "{list}");
    // Columns line up: the headline starts under its heading.
    assert_eq!(lines[1].find("3 new"), lines[0].find("WHAT CHANGED"), "{list}");
    let audit = s.ingest(&["audit", "list", "--json"]).ok();
    assert!(audit.lines().any(|l| data(l)["event"] == "bundle-already-imported"), "{audit}");
}

#[test]
fn import_json_ends_with_the_report_and_the_refresh() {
    let s = Scratch::new();
    let bundle = packed(&s, "feed", three_updates(), |_| {});
    let out = s.ingest(&["import", "--json", &bundle]).ok();
    let last: serde_json::Value = data(out.lines().last().unwrap());
    assert_eq!(last["report"], 1, "{out}");
    assert_eq!(last["headline"], "3 new, 3 files arrived (119.5 KiB)", "{out}");
    assert!(last["refresh"]["day"].is_string(), "{out}");
}

#[test]
fn a_refused_bundle_and_missing_volumes_are_in_the_report() {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let out = s.pack_run(catalog.to_str().unwrap(), &secret, &["--json", "--media", "120000"], &[]).ok();
    let result: serde_json::Value = data(out.lines().last().unwrap());
    let first = host_path(result["volumes"][0]["path"].as_str().unwrap()).display().to_string();
    let mut bytes = std::fs::read(&first).unwrap();
    let truncated_bundle = s.path("truncated_bundle.zip");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&truncated_bundle, &bytes).unwrap();

    s.ingest(&["import", &first, truncated_bundle.to_str().unwrap()]).refused(exit::BUNDLE, &["truncated_bundle.zip"]);
    let r = report_json(&s, &[]);
    let outcomes: Vec<&str> = r["sources"].as_array().unwrap().iter().map(|x| x["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["accepted", "refused"], "{r}");
    assert!(r["sources"][1]["path"].as_str().unwrap().ends_with("truncated_bundle.zip"));
    assert!(!r["sources"][1]["detail"].as_str().unwrap().is_empty());
    assert_eq!(r["waiting"][0]["missing_volumes"], serde_json::json!([2, 3]), "{r}");
    let text = s.ingest(&["report"]).ok();
    assert!(text.contains("1 refused, 1 volume set incomplete"), "{text}");
    assert!(text.contains("volumes 2, 3 still missing"), "{text}");
}

#[test]
fn html_is_self_contained_sortable_and_escapes_hostile_text() {
    let s = Scratch::new();
    let bundle = packed(&s, "feed", three_updates(), |doc| {
        let list = doc["updates"].as_array_mut().unwrap();
        list[0]["title"] = "<script>alert(1)</script>\u{1b}]0;owned\u{7} \"quoted\" & <b>bold</b>".into();
        list[0]["severity"] = "critical".into();
        list[1]["product"] = "<img src=x onerror=alert(2)>".into();
    });
    s.ingest(&["import", &bundle]).ok();
    let page = s.path("report.html");
    s.ingest(&["report", "--format", "html", "--out", page.to_str().unwrap()]).ok();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script>alert") && !html.contains("<img") && !html.contains("<b>bold"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(html.contains("&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;"), "{html}");
    assert!(!html.contains('\u{1b}') && !html.contains("owned"), "control sequences are stripped");
    assert_eq!(html.matches("<script").count(), 1, "only the page's own sorting script");
    assert!(html.contains("Content-Security-Policy") && html.contains("default-src 'none'"));
    for external in ["http://", "https://", "url(", "<link", "<iframe", "@import"] {
        assert!(!html.contains(external), "{external}: the page loads nothing");
    }
    assert!(html.contains("<table class=\"sortable\" id=\"updates\">"), "{html}");
    // Counts by product and severity.
    assert!(html.contains("<caption>By severity</caption><tr><td>critical</td><td class=\"n\">1</td></tr>"), "{html}");
    assert!(html.contains("<td>&lt;img src=x onerror=alert(2)&gt;</td><td class=\"n\">1</td>"), "{html}");

    let text = s.ingest(&["report"]).ok();
    assert!(!text.contains('\u{1b}') && !text.contains("owned"), "{text:?}");
}

#[test]
fn register_import_list_and_refresh_each_store_a_report() {
    let s = update_list_server();
    s.ingest(&["group", "create", "pilot"]).ok();
    s.ingest(&["rules", "add", "to-pilot", "--add-to-group", "pilot", "--product", "Hotfix"]).ok();
    let file = s.path("urgent-fix.exe");
    std::fs::write(&file, payload("urgent", 5_000)).unwrap();
    let out = s
        .ingest(&["register", file.to_str().unwrap(), "--product", "Hotfix", "--classification", "security-update"])
        .ok();
    assert!(out.contains("change report 2 stored"), "{out}");
    let r = report_json(&s, &[]);
    assert_eq!(r["kind"], "register");
    let id = r["updates"][0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("manual-"), "{r}");
    assert_eq!(kinds(&r["updates"][0]), ["new", "added-to-group"], "{r}");
    assert_eq!(r["files_arrived"][0]["names"][0], "urgent-fix.exe");
    assert_eq!(r["sources"][0]["outcome"], "registered");

    let csv = s.path("list.csv");
    s.ingest(&["export-list", "--out", csv.to_str().unwrap()]).ok();
    let other = Scratch::new();
    trust_peer(&other, &s);
    other.ingest(&["import-list", csv.to_str().unwrap()]).ok();
    let r = report_json(&other, &[]);
    assert_eq!(r["kind"], "import-list");
    assert_eq!(r["sources"][0]["outcome"], "imported");
    assert_eq!(r["updates"].as_array().unwrap().len(), 6, "{r}");
    assert!(r["updates"].as_array().unwrap().iter().all(|e| e["available"] == false), "no files came by CSV");

    let refreshed: serde_json::Value = data(s.ingest(&["refresh", "--json"]).ok().trim());
    assert_eq!(refreshed["report"], 3, "{refreshed}");
    let r = report_json(&s, &["3"]);
    assert_eq!(r["kind"], "refresh");
    assert!(r["updates"].as_array().unwrap().is_empty(), "nothing changed: {r}");
}

#[test]
fn a_report_that_does_not_exist_is_refused() {
    let s = update_list_server();
    s.ingest(&["report", "99"]).refused(exit::NOT_FOUND, &["change report \"99\" not found"]);
    let empty = Scratch::new();
    let (_, public) = empty.key("signer");
    empty.trust(&public);
    empty.ingest(&["report"]).refused(exit::NOT_FOUND, &["(none stored yet)"]);
    s.ingest(&["report", "--list", "7"]).refused(exit::USAGE, &["cannot be used with"]);
    s.ingest(&["report", "--format", "pdf"]).refused(exit::USAGE, &["invalid value 'pdf'"]);
}

#[test]
fn a_report_past_its_detail_limit_counts_everything_and_names_what_needs_a_person_first() {
    let s = Scratch::new();
    let csv = s.path("list.csv");
    generated_list(&csv, 1_050);
    s.ingest(&["group", "create", "pilot"]).ok();
    // 6 of the 1,050 are in Product 7 with a release day in the 8th month: decisions a
    // person should read before 1,044 plain arrivals.
    s.ingest(&["rules", "add", "pilot-first", "--add-to-group", "pilot", "--product", "Product 7"]).ok();
    s.ingest(&["rules", "add", "decline-low", "--decline", "--severity", "low"]).ok();
    // A generated list, signed as a peer server (here the server itself) would sign it.
    trust_peer(&s, &s);
    sign_export_with_minisign(&s, &csv, "list");
    s.ingest(&["import-list", csv.to_str().unwrap()]).ok();
    let r = report_json(&s, &[]);
    let named = r["updates"].as_array().unwrap();
    assert_eq!(named.len(), 1_000, "the detail limit");
    assert_eq!(r["totals"]["updates"], 1_050, "{}", r["totals"]);
    assert_eq!(r["totals"]["by_change"]["new"], 1_050);
    assert_eq!(r["totals"]["by_change"]["declined"], 210);
    assert_eq!(r["totals"]["by_change"]["added to group"], 105);
    assert_eq!(r["totals"]["by_product"]["Product 7"], 105);
    // Every decision is named (210 declined, 105 added to a group), then arrivals by id.
    let with = |kind: &str| named.iter().filter(|e| kinds(e).iter().any(|k| k == kind)).count();
    assert_eq!(with("declined"), 210);
    assert_eq!(with("added-to-group"), 105);
    let ids: Vec<&str> = named.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "named in id order");

    let text = s.ingest(&["report"]).ok();
    assert!(text.contains("1050 new, 210 declined, 105 added to group"), "{text}");
    assert!(text.contains("... and 50 more updates (`ingest list` shows them)"), "{text}");
    let html = s.ingest(&["report", "--format", "html"]).ok();
    assert!(html.contains("&hellip; and 50 more updates"), "{html}");
    assert!(html.contains("<td>Product 7</td><td class=\"n\">105</td>"), "counts cover every update");
    let listed = s.ingest(&["report", "--list"]).ok();
    assert!(listed.contains("1050 new"), "{listed}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_not_the_command() {
    let s = update_list_server();
    for args in
        [&["list"][..], &["report"], &["report", "--format", "html"], &["list", "--json"], &["approve", "KB5034122"]]
    {
        // The pipe's reading end is closed before ingest even starts, so that its first
        // write fails whatever the timing (a reading end closed after the spawn could let
        // everything fit in the pipe's buffer first).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(&*INGEST)
            .arg("--data-dir")
            .arg(s.data_dir())
            .args(args)
            .env("USER", "tester")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(update_json(&s, "KB5034122")["status"], "approved", "the command did its work");
}

#[test]
fn standard_output_on_a_full_disk() {
    let s = update_list_server();
    // /dev/full refuses every write with "no space left on device".
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = std::process::Command::new(&*INGEST)
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["approve", "KB5034122"])
        .env("USER", "tester")
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::LOCAL), "{stderr}");
    assert!(stderr.contains("writing to standard output failed") && stderr.contains("No space left"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(update_json(&s, "KB5034122")["status"], "approved", "the command did its work");
}
