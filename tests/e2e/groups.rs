//! Update groups: created, filled by id or filter, listed, used as a filter, deleted; every
//! change audited; refusals that change nothing.

use crate::support::*;

#[test]
fn groups_collect_updates_for_filters_and_approval() {
    let s = update_list_server();
    let out = s
        .ingest(&["group", "create", "tested-on-servers", "--description", "passed the server pilot", "--by", "alice"])
        .ok();
    assert!(out.contains("update group tested-on-servers created"), "{out}");
    let out = s.ingest(&["group", "add", "tested-on-servers", "KB5034122", "KB5099999", "--by", "alice"]).ok();
    assert!(out.contains("2 updates added to tested-on-servers"), "{out}");
    // By filter; one of the matches is a member already.
    let out = s.ingest(&["group", "add", "tested-on-servers", "--kb", "KB5034122", "--by", "alice"]).ok();
    assert!(out.contains("0 updates added") && out.contains("already in tested-on-servers: KB5034122"), "{out}");

    // Names compare without letter case, in filters too.
    assert_eq!(listed(&s, &["--group", "Tested-On-Servers"]), ["KB5034122", "KB5099999"]);
    assert_eq!(update_json(&s, "KB5034122")["groups"], serde_json::json!(["tested-on-servers"]));

    // A group selects what to approve; the member whose licence is not accepted is skipped.
    let out = s.ingest(&["approve", "--group", "tested-on-servers", "--by", "bob"]).ok();
    assert!(out.contains("approved: 1 update") && out.contains("skipped KB5099999"), "{out}");

    let list = s.ingest(&["group", "list", "--json"]).ok();
    let g: serde_json::Value = data(list.trim());
    assert_eq!(g["name"], "tested-on-servers");
    assert_eq!(g["description"], "passed the server pilot");
    assert_eq!((g["members"].as_u64(), g["approved"].as_u64()), (Some(2), Some(1)));
    let show = s.ingest(&["group", "show", "tested-on-servers"]).ok();
    assert!(show.contains("2 members, 1 approved") && show.contains("KB5099999"), "{show}");

    s.ingest(&["group", "remove", "tested-on-servers", "KB5099999", "--by", "alice"]).ok();
    assert_eq!(listed(&s, &["--group", "tested-on-servers"]), ["KB5034122"]);
    let out = s.ingest(&["group", "delete", "tested-on-servers", "--by", "alice"]).ok();
    assert!(out.contains("deleted (1 members"), "{out}");
    assert_eq!(listed(&s, &[]).len(), 5, "the updates stay in the list");
    assert_eq!(update_json(&s, "KB5034122")["groups"], serde_json::json!([]));

    let audit = s.ingest(&["audit", "list", "--json"]).ok();
    let events: Vec<String> = audit
        .lines()
        .map(data)
        .filter(|e| e["event"].as_str().unwrap().starts_with("group-"))
        .map(|e| format!("{} {}", e["event"].as_str().unwrap(), e["detail"]["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        ["group-created alice", "group-members-added alice", "group-members-removed alice", "group-deleted alice"]
    );
    s.ingest(&["audit", "verify"]).ok();
}

#[test]
fn group_that_exists_already() {
    let s = update_list_server();
    s.ingest(&["group", "create", "pilot", "--by", "alice"]).ok();
    let before = s.state();
    s.ingest(&["group", "create", "PILOT", "--by", "bob"])
        .refused(exit::INPUT, &["update group \"pilot\" exists already"]);
    assert_eq!(s.state(), before);
}

#[test]
fn group_unknown() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["group", "add", "nowhere", "KB5034122", "--by", "alice"])
        .refused(exit::NOT_FOUND, &["update group \"nowhere\" not found"]);
    s.ingest(&["list", "--group", "nowhere"]).refused(exit::NOT_FOUND, &["update group \"nowhere\" not found"]);
    s.ingest(&["approve", "--group", "nowhere", "--by", "alice"])
        .refused(exit::NOT_FOUND, &["update group \"nowhere\" not found"]);
    s.ingest(&["group", "delete", "nowhere", "--by", "alice"])
        .refused(exit::NOT_FOUND, &["update group \"nowhere\" not found"]);
    assert_eq!(s.state(), before);
}

#[test]
fn group_name_with_a_slash() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["group", "create", "../servers", "--by", "alice"])
        .refused(exit::USAGE, &["group name \"../servers\" is not valid"]);
    assert_eq!(s.state(), before);
}

#[test]
fn group_member_unknown() {
    let s = update_list_server();
    s.ingest(&["group", "create", "pilot", "--by", "alice"]).ok();
    let before = s.state();
    // One unknown id refuses the command; the known one is not added either.
    s.ingest(&["group", "add", "pilot", "KB5034122", "KB0000000", "--by", "alice"])
        .refused(exit::NOT_FOUND, &["update \"KB0000000\" not found"]);
    assert_eq!(s.state(), before);
    s.ingest(&["group", "add", "pilot", "--by", "alice"]).refused(exit::USAGE, &["name the updates"]);
}

#[test]
fn group_description_with_control_characters() {
    let s = update_list_server();
    let before = s.state();
    s.ingest(&["group", "create", "pilot", "--description", "pilot\u{1b}[2J"]).refused(
        exit::INPUT,
        &["group pilot: the description must be at most 200 characters, without control characters"],
    );
    assert_eq!(s.state(), before);
    assert!(s.ingest(&["group", "list", "--json"]).ok().is_empty());
}
