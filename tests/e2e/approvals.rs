//! Approval status: approve, decline and reset by id or by filter, recorded with who and
//! when; a licence that must be accepted first; refusals that change nothing.

use crate::support::*;

#[test]
fn approve_by_id_records_who_and_when() {
    let s = update_list_server();
    assert_eq!(ids_with(&s, "undefined").len(), 5, "every update arrives undefined");
    let out = s.ingest(&["approve", "KB5034122", "--by", "alice"]).ok();
    assert!(out.contains("approved: 1 update (by alice)"), "{out}");
    assert!(out.contains("KB5034122  undefined -> approved"), "{out}");
    let shown = update_json(&s, "KB5034122");
    assert_eq!(shown["status"], "approved");
    assert_eq!(shown["status_set_by"], "person");
    assert_eq!(shown["status_actor"], "alice");
    let audit = s.ingest(&["audit", "list", "--json"]).ok();
    let entry: serde_json::Value = data(audit.lines().next_back().unwrap());
    assert_eq!(entry["event"], "status-set");
    assert_eq!(entry["subject"], "approved");
    assert_eq!(entry["detail"]["by"], "alice");
    assert_eq!(entry["detail"]["updates"], serde_json::json!(["KB5034122"]));
    s.ingest(&["audit", "verify"]).ok();

    // Approving again changes nothing and logs nothing.
    let out = s.ingest(&["approve", "KB5034122", "--by", "alice"]).ok();
    assert!(out.contains("approved: 0 updates") && out.contains("already approved: KB5034122"), "{out}");
    assert_eq!(s.ingest(&["audit", "list", "--json"]).ok(), audit);
}

#[test]
fn approve_decline_and_reset_by_filter() {
    let s = update_list_server();
    s.ingest(&["approve", "--product", "vlc media player", "--by", "alice"]).ok();
    assert_eq!(ids_with(&s, "approved"), ["VideoLAN.VLC@3.0.21"]);
    let out = s.ingest(&["decline", "--kb", "5034122", "--by", "bob", "--json"]).ok();
    let change: serde_json::Value = data(out.trim());
    assert_eq!(change["status"], "declined");
    assert_eq!(change["changed"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(ids_with(&s, "declined"), ["KB5034122"]);

    // A reset hands the update back to the rules: undefined, set by the system.
    s.ingest(&["reset", "KB5034122", "--by", "bob"]).ok();
    let shown = update_json(&s, "KB5034122");
    assert_eq!((shown["status"].as_str(), shown["status_set_by"].as_str()), (Some("undefined"), Some("system")));

    // Released-before and -after select by date (every test update is dated 2024-01-09).
    s.ingest(&["decline", "--released-before", "2024-01-08", "--by", "bob"]).ok();
    assert!(ids_with(&s, "declined").is_empty());
    s.ingest(&["decline", "--released-after", "2024-01-09", "--status", "undefined", "--by", "bob"]).ok();
    assert_eq!(ids_with(&s, "declined").len(), 4, "all undefined ones, the withdrawn one included");
}

#[test]
fn licence_not_accepted() {
    let s = update_list_server();
    let before = s.state();
    // Named by id, the update refuses the whole command, the other named update included.
    s.ingest(&["approve", "KB5034122", "KB5099999", "--by", "alice"]).refused(
        exit::INPUT,
        &["nothing was changed", "KB5099999: its licence must be accepted first", "ingest eula accept KB5099999"],
    );
    assert_eq!(s.state(), before);
    // Matched by a filter, it is skipped and reported; the others are approved.
    let out = s.ingest(&["approve", "--classification", "security-update", "--by", "alice"]).ok();
    assert!(out.contains("skipped KB5099999: its licence must be accepted first"), "{out}");
    let mut others: Vec<String> = listed(&s, &["--classification", "security-update"])
        .into_iter()
        .filter(|id| id != "KB5099999" && id != "KB5011111")
        .collect();
    others.sort();
    assert!(!others.is_empty(), "the filter matches others than the one skipped");
    let mut approved = ids_with(&s, "approved");
    approved.sort();
    assert_eq!(approved, others, "every other match is approved, the skipped one not");

    let shown = s.ingest(&["eula", "show", "KB5099999"]).ok();
    assert!(shown.contains("must be accepted before approval") && shown.contains("accepted       no"), "{shown}");
    assert!(shown.contains("install on servers you own"), "{shown}");
    assert!(!shown.contains('\u{1b}'), "the licence's escape sequence reached the terminal: {shown:?}");
    assert!(
        shown.contains("Accepting (`ingest eula accept KB5099999`) records your name"),
        "what accepting means: {shown}"
    );
    let out = s.ingest(&["eula", "accept", "KB5099999", "--by", "carol"]).ok();
    assert!(out.contains("licence of KB5099999 accepted by carol"), "{out}");
    let licence: serde_json::Value = data(s.ingest(&["eula", "show", "KB5099999", "--json"]).ok().trim());
    assert_eq!(licence["accepted"]["by"], "carol");

    s.ingest(&["approve", "KB5099999", "--by", "alice"]).ok();
    assert_eq!(update_json(&s, "KB5099999")["status"], "approved");
    let audit = s.ingest(&["audit", "list"]).ok();
    assert!(audit.contains("eula-accepted") && audit.contains("carol"), "{audit}");
}

#[test]
fn withdrawn_update_approved() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["approve", "KB5011111", "--by", "alice"])
        .refused(exit::INPUT, &["KB5011111: withdrawn by its vendor; it can only be declined"]);
    assert_eq!(s.state(), before);
    s.ingest(&["decline", "KB5011111", "--by", "alice"]).ok();
    assert_eq!(update_json(&s, "KB5011111")["status"], "declined");
}

#[test]
fn withdrawn_is_said_withdrawn() {
    // Not "waiting for files" in the report, marked in the list, no empty heading in show.
    let s = update_list_server();
    let list = s.ingest(&["list"]).ok();
    let line = list.lines().find(|l| l.contains("KB5011111")).unwrap();
    assert!(line.ends_with("(withdrawn)"), "{list}");
    let show = s.ingest(&["show", "KB5011111"]).ok();
    assert!(show.contains("files          none (withdrawn by its vendor)"), "{show}");
    let report = s.ingest(&["report"]).ok();
    let entry = report.lines().find(|l| l.contains("KB5011111")).unwrap_or_default();
    assert!(entry.contains("withdrawn") && !entry.contains("waiting for files"), "{report}");
}

#[test]
fn unknown_update_id() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["approve", "KB5034122", "KB1234567", "--by", "alice"])
        .refused(exit::NOT_FOUND, &["update \"KB1234567\" not found"]);
    assert_eq!(s.state(), before, "the known update named with it is unchanged too");
}

#[test]
fn no_selection() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["approve", "--by", "alice"]).refused(exit::USAGE, &["name the updates, give a filter"]);
    s.ingest(&["decline", "KB5034122", "--product", "Windows 10", "--by", "alice"])
        .refused(2, &["give update ids or a filter, not both"]);
    s.ingest(&["approve", "--all", "--by", "\u{7}"]).refused(exit::INPUT, &["is not a name to record"]);
    assert_eq!(s.state(), before);
    // --all is the explicit way to act on everything.
    s.ingest(&["decline", "--all", "--by", "alice"]).ok();
    assert_eq!(ids_with(&s, "declined").len(), 5);
}

#[test]
fn actor_from_the_process_account() {
    // No --by and no login name in the environment (a service, a container, cron): the
    // account name of the process's user id is recorded, as other tools fall back.
    let s = update_list_server();
    let account = String::from_utf8(std::process::Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let out = std::process::Command::new(&*INGEST)
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["approve", "KB5034122"])
        .env_remove("USER")
        .env_remove("USERNAME")
        .output()
        .unwrap();
    let out = Run::from(out).ok();
    assert!(out.contains(&format!("(by {})", account.trim())), "{out}");
    assert_eq!(update_json(&s, "KB5034122")["status_actor"], account.trim());
}

#[cfg(unix)]
#[test]
fn actor_unknown() {
    // A user id with no account (and no login name, no --by): the audit log could not say
    // who acted, so nothing is recorded. Needs root to run as such a user id.
    if std::process::Command::new("id").arg("-u").output().unwrap().stdout != b"0\n" {
        panic!("this test runs as root (as CI does) to take a user id that has no account");
    }
    let s = update_list_server();
    let before = s.state();
    assert!(std::process::Command::new("chmod").arg("-R").arg("a+rwX").arg(s.dir.path()).status().unwrap().success());
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=54321", "--regid=54321", "--clear-groups", INGEST.as_str(), "--data-dir"])
        .arg(s.data_dir())
        .args(["approve", "KB5034122"])
        .env_remove("USER")
        .env_remove("USERNAME")
        .output()
        .unwrap();
    Run::from(out).refused(exit::INPUT, &["who is acting is unknown: give --by NAME"]);
    assert_eq!(s.state(), before);
}

#[test]
fn a_persons_decision_is_not_overturned_by_a_filter() {
    let s = update_list_server();
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21", "--by", "alice"]).ok();
    // A filter skips it, and says who decided.
    let out = s.ingest(&["approve", "--product", "vlc media player", "--by", "bob"]).ok();
    assert!(out.contains("approved: 0 updates"), "{out}");
    assert!(out.contains("skipped VideoLAN.VLC@3.0.21: a person (alice) set it to declined"), "{out}");
    assert_eq!(update_json(&s, "VideoLAN.VLC@3.0.21")["status"], "declined");
    // --all too.
    let out = s.ingest(&["approve", "--all", "--by", "bob"]).ok();
    assert!(out.contains("skipped VideoLAN.VLC@3.0.21"), "{out}");
    assert_eq!(update_json(&s, "VideoLAN.VLC@3.0.21")["status"], "declined");
    // Saying so overturns it; so does naming it.
    s.ingest(&["approve", "--product", "vlc media player", "--override-people", "--by", "bob"]).ok();
    assert_eq!(update_json(&s, "VideoLAN.VLC@3.0.21")["status"], "approved");
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21", "--by", "alice"]).ok();
    assert_eq!(update_json(&s, "VideoLAN.VLC@3.0.21")["status"], "declined");
    // A reset by filter hands people's decisions back to the rules, and says how many.
    let out = s.ingest(&["reset", "--product", "vlc media player", "--by", "carol"]).ok();
    assert!(out.contains("handed back to the rules: 1 decision people made (VideoLAN.VLC@3.0.21)"), "{out}");
    let shown = update_json(&s, "VideoLAN.VLC@3.0.21");
    assert_eq!((shown["status"].as_str(), shown["status_set_by"].as_str()), (Some("undefined"), Some("system")));
}

#[test]
fn product_misspelt_in_a_filter() {
    // Approving 0 updates of "vlc media playr" passes no longer unnoticed: the closest
    // product is named.
    let s = update_list_server();
    let run = s.ingest(&["approve", "--product", "vlc media playr", "--by", "bob"]);
    assert!(
        run.stderr.contains("no update is of product \"vlc media playr\"; the closest: \"VLC media player\""),
        "{}",
        run.stderr
    );
    assert!(run.ok().contains("approved: 0 updates"));
    let run = s.ingest(&["list", "--product", "Nothing Like It"]);
    assert!(
        run.stderr.contains("no update is of product \"Nothing Like It\"; `ingest list` shows the products"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_list_lines_up() {
    // Columns as wide as their widest cell (never cut on a pipe): every row's title starts
    // where the TITLE heading does, whatever the lengths of ids, products and versions.
    let s = update_list_server();
    let list = s.ingest(&["list"]).ok();
    let mut lines = list.lines();
    let header = lines.next().unwrap();
    let at = header.find("TITLE").unwrap();
    let id_at = header.find("ID").unwrap();
    let rows: Vec<&str> = lines.filter(|l| l.contains('@') || l.contains("KB")).collect();
    assert!(rows.len() >= 5, "{list}");
    for row in rows {
        assert_eq!(row.chars().nth(at - 1), Some(' '), "{list}");
        assert_ne!(row.chars().nth(at), Some(' '), "titles start under TITLE: {list}");
        assert_ne!(row.chars().nth(id_at), Some(' '), "ids start under ID: {list}");
    }
}

#[test]
fn approve_all_as_a_dry_run() {
    // Look before you leap: what --all would approve, said; nothing written, nothing logged.
    let s = update_list_server();
    let before = s.state();
    let out = s.ingest(&["approve", "--all", "--dry-run", "--by", "bob"]).ok();
    assert!(out.starts_with("would be approved: "), "{out}");
    assert!(out.contains("undefined -> approved"), "{out}");
    assert_eq!(s.state(), before, "a dry run changes nothing");
    let json = data(s.ingest(&["reset", "--all", "--dry-run", "--by", "bob", "--json"]).ok().trim());
    assert_eq!(json["dry_run"], true);
    assert_eq!(s.state(), before);
}
