//! Approval rules and supersedence: what a refresh (after each import, or `ingest refresh`)
//! marks and decides, what `rules test` predicts, and that a person's decision always holds.

use crate::support::*;

fn today_plus(days: i64) -> String {
    let out =
        std::process::Command::new("date").args(["-u", "-d", &format!("+{days} days"), "+%Y-%m-%d"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn report(s: &Scratch, args: &[&str]) -> serde_json::Value {
    data(s.ingest(&[args, &["--json"]].concat()).ok().trim())
}

fn ids(list: &serde_json::Value, field: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        list.as_array().unwrap().iter().map(|d| d[field].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

/// A second bundle: KB5034441 (critical) supersedes KB5034122, which the list holds, and
/// KB5030000, which it never saw; a withdrawn update claims to supersede 7-Zip.
fn import_successors(s: &Scratch) -> String {
    let dir = s.path("feed2");
    let updates = vec![TestUpdate::new("KB5034441", "Windows 10", "windows10.0-kb5034441-x64.msu", 20_000)];
    let catalog = local_catalog(&dir, &updates);
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&catalog).unwrap()).unwrap();
    let list = doc["updates"].as_array_mut().unwrap();
    list[0]["severity"] = "critical".into();
    list[0]["supersedes"] = serde_json::json!(["KB5034122", "KB5030000"]);
    let mut withdrawn = list[0].clone();
    withdrawn["id"] = "KB5040000".into();
    withdrawn["withdrawn"] = true.into();
    withdrawn["files"] = serde_json::json!([]);
    withdrawn["supersedes"] = serde_json::json!(["7zip.7zip@24.09"]);
    list.push(withdrawn);
    std::fs::write(&catalog, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let bundle = s.pack(catalog.to_str().unwrap(), &s.path("signer.key"), &[]);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok()
}

#[test]
fn supersedence_is_marked_when_the_successor_is_present() {
    let s = update_list_server();
    assert!(listed(&s, &["--superseded"]).is_empty());
    let out = import_successors(&s);
    assert!(out.contains("KB5034122: superseded (by KB5034441)"), "{out}");
    assert!(!out.contains("7zip.7zip@24.09: superseded"), "a withdrawn update supersedes nothing: {out}");
    assert_eq!(listed(&s, &["--superseded"]), ["KB5034122"]);
    assert!(!listed(&s, &["--not-superseded"]).contains(&"KB5034122".to_string()));

    let shown = update_json(&s, "KB5034122");
    assert_eq!(shown["superseded"], true);
    assert!(shown["superseded_since"].is_string());
    let chain = s.ingest(&["show", "KB5034122"]).ok();
    assert!(chain.contains("superseded by  KB5034122 <- KB5034441 (present)"), "{chain}");
    let chain = s.ingest(&["show", "KB5030000"]).refused(exit::NOT_FOUND, &["update \"KB5030000\" not found"]);
    assert!(chain.is_empty() || !chain.contains("panicked"));
    let table = s.ingest(&["list"]).ok();
    assert!(table.lines().any(|l| l.contains("KB5034122") && l.ends_with("(superseded)")), "{table}");

    // The superseded update can be declined by filter.
    s.ingest(&["decline", "--superseded", "--by", "alice"]).ok();
    assert_eq!(ids_with(&s, "declined"), ["KB5034122"]);
    let audit = s.ingest(&["audit", "list"]).ok();
    assert!(audit.contains("refresh"), "the marking is audited: {audit}");
}

#[test]
fn decline_superseded_wins_and_a_person_is_never_overruled() {
    let s = update_list_server();
    s.ingest(&["approve", "VideoLAN.VLC@3.0.21", "--by", "alice"]).ok();
    s.ingest(&["decline", "7zip.7zip@24.09", "--by", "alice"]).ok();
    s.ingest(&[
        "rules",
        "add",
        "approve-security",
        "--approve",
        "--classification",
        "security-update",
        "--classification",
        "critical-update",
        "--by",
        "carol",
    ])
    .ok();
    s.ingest(&["rules", "add", "decline-superseded", "--decline", "--superseded", "--by", "carol"]).ok();
    let rules = s.ingest(&["rules", "list"]).ok();
    assert!(
        rules.contains("approve-security: approve when classification is one of security-update, critical-update"),
        "{rules}"
    );
    assert!(rules.contains("decline-superseded: decline when superseded"), "{rules}");

    let r = report(&s, &["refresh"]);
    assert_eq!(ids(&r["decisions"], "id"), ["KB5034122"], "{r}");
    assert_eq!(r["decisions"][0]["rule"], "approve-security");
    assert_eq!(ids(&r["held"], "id"), ["KB5099999"], "the licence is not accepted: {r}");
    assert!(r["held"][0]["reason"].as_str().unwrap().contains("licence"));
    let shown = update_json(&s, "KB5034122");
    assert_eq!(
        (shown["status_set_by"].as_str(), shown["status_actor"].as_str()),
        (Some("rule"), Some("rule approve-security"))
    );
    // The person's decisions held; the withdrawn update was passed by.
    assert_eq!(update_json(&s, "VideoLAN.VLC@3.0.21")["status_actor"], "alice");
    assert_eq!(update_json(&s, "7zip.7zip@24.09")["status"], "declined");
    assert_eq!(update_json(&s, "KB5011111")["status"], "undefined");

    // The successor arrives: the import's refresh declines what it supersedes, approves it.
    let out = import_successors(&s);
    assert!(out.contains("KB5034122: approved -> declined by rule decline-superseded"), "{out}");
    assert!(out.contains("KB5034441: undefined -> approved by rule approve-security"), "{out}");

    // Tested alone, a rule is judged among the others: the decline rule still wins.
    s.ingest(&["reset", "KB5034122", "--by", "alice"]).ok();
    let r = report(&s, &["rules", "test", "approve-security"]);
    assert!(!ids(&r["decisions"], "id").contains(&"KB5034122".to_string()), "{r}");
    let r = report(&s, &["rules", "test", "decline-superseded"]);
    assert_eq!(ids(&r["decisions"], "id"), ["KB5034122"], "{r}");
    s.ingest(&["refresh"]).ok();

    // A reset hands the update back to the rules; a person's decline holds.
    s.ingest(&["decline", "KB5034441", "--by", "alice"]).ok();
    let r = report(&s, &["refresh"]);
    assert!(r["decisions"].as_array().unwrap().is_empty(), "{r}");
    s.ingest(&["reset", "KB5034441", "--by", "alice"]).ok();
    let r = report(&s, &["refresh"]);
    assert_eq!(ids(&r["decisions"], "id"), ["KB5034441"], "{r}");
    s.ingest(&["audit", "verify"]).ok();
}

#[test]
fn days_after_arrival_are_counted_and_tested_without_change() {
    let s = update_list_server();
    s.ingest(&["rules", "add", "win10-after-7", "--approve", "--product", "windows 10", "--days-since-arrival", "7"])
        .ok();
    let before = s.state();
    let r = report(&s, &["refresh"]);
    assert!(r["decisions"].as_array().unwrap().is_empty(), "0 days after arrival: {r}");
    let r = report(&s, &["rules", "test", "win10-after-7", "--at", &today_plus(6)]);
    assert!(r["decisions"].as_array().unwrap().is_empty(), "{r}");
    let r = report(&s, &["rules", "test", "win10-after-7", "--at", &today_plus(7)]);
    assert_eq!(ids(&r["decisions"], "id"), ["KB5034122"], "{r}");
    // A rule described on the command line is tested without being stored.
    let r = report(&s, &["rules", "test", "--decline", "--product", "7-zip"]);
    assert_eq!(ids(&r["decisions"], "id"), ["7zip.7zip@24.09"], "{r}");
    let out = s.ingest(&["rules", "test", "--decline", "--product", "7-zip"]).ok();
    assert!(out.contains("7zip.7zip@24.09: undefined -> declined by rule tested"), "{out}");
    assert_eq!(s.state(), before, "testing changes nothing");
    assert!(!s.ingest(&["rules", "list"]).ok().contains("tested"));
}

#[test]
fn test_group_pattern() {
    let s = update_list_server();
    s.ingest(&["group", "create", "pilot"]).ok();
    s.ingest(&["rules", "add", "pilot-windows", "--add-to-group", "pilot", "--product", "Windows 10"]).ok();
    s.ingest(&["rules", "add", "after-pilot", "--approve", "--group", "pilot", "--days-in-group", "7"]).ok();
    let r = report(&s, &["refresh"]);
    assert_eq!(ids(&r["group_additions"], "id"), ["KB5011111", "KB5034122"], "{r}");
    assert!(r["decisions"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(listed(&s, &["--group", "pilot"]), ["KB5011111", "KB5034122"]);
    let r = report(&s, &["rules", "test", "--at", &today_plus(7)]);
    assert_eq!(ids(&r["decisions"], "id"), ["KB5034122"], "after 7 days in the pilot group, not withdrawn: {r}");

    // A person takes it out of the pilot: the group rule does not put it back.
    s.ingest(&["group", "remove", "pilot", "KB5034122"]).ok();
    let r = report(&s, &["refresh"]);
    assert!(r["group_additions"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(listed(&s, &["--group", "pilot"]), ["KB5011111"]);
}

#[test]
fn rule_without_condition() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["rules", "add", "everything", "--approve"]).refused(exit::INPUT, &["it has no condition"]);
    assert_eq!(s.state(), before);
    assert!(s.ingest(&["rules", "list", "--json"]).ok().is_empty());
}

#[test]
fn rule_without_action() {
    let s = update_list_server();
    s.ingest(&["rules", "add", "what", "--product", "7-Zip"])
        .refused(exit::USAGE, &["--approve, --decline or --add-to-group"]);
    s.ingest(&["rules", "add", "both", "--approve", "--decline", "--superseded"]).refused(exit::USAGE, &["--decline"]);
    assert!(s.ingest(&["rules", "list", "--json"]).ok().is_empty());
}

#[test]
fn rule_group_unknown() {
    let s = update_list_server();
    s.ingest(&["rules", "add", "r", "--approve", "--group", "nowhere"])
        .refused(exit::NOT_FOUND, &["update group \"nowhere\" not found"]);
    s.ingest(&["rules", "add", "r", "--add-to-group", "nowhere", "--product", "7-Zip"])
        .refused(exit::NOT_FOUND, &["update group \"nowhere\" not found"]);
    assert!(s.ingest(&["rules", "list", "--json"]).ok().is_empty());
}

#[test]
fn rule_name_taken() {
    let s = update_list_server();
    s.ingest(&["rules", "add", "r", "--decline", "--superseded"]).ok();
    s.ingest(&["rules", "add", "R", "--approve", "--product", "7-Zip"])
        .refused(exit::INPUT, &["approval rule \"r\" exists already"]);
    s.ingest(&["rules", "remove", "nothing"]).refused(exit::NOT_FOUND, &["approval rule \"nothing\" not found"]);
}

#[test]
fn group_used_by_a_rule() {
    let s = update_list_server();
    s.ingest(&["group", "create", "pilot"]).ok();
    s.ingest(&["rules", "add", "after-pilot", "--approve", "--group", "pilot", "--days-in-group", "7"]).ok();
    s.ingest(&["group", "delete", "pilot"])
        .refused(exit::INPUT, &["update group \"pilot\" is used by approval rule after-pilot"]);
    s.ingest(&["rules", "remove", "after-pilot"]).ok();
    s.ingest(&["group", "delete", "pilot"]).ok();
}
