//! Every `--json` output of both binaries is JSON Lines of one shape (docs/json.md): each
//! line `{"type", "format", "data"}` with a documented type, refusals included.

use crate::support::*;

/// Runs `ingest ARGS` and checks every line of its standard output; returns the types seen.
fn ingest_lines(s: &Scratch, args: &[&str], code: i32) -> Vec<String> {
    let run = s.ingest(args);
    assert_eq!(run.code, code, "ingest {args:?}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    types(&run.stdout)
}

fn types(stdout: &str) -> Vec<String> {
    stdout.lines().map(|l| json_line(l)["type"].as_str().unwrap().to_string()).collect()
}

#[test]
fn every_json_line_of_every_command_has_the_documented_shape() {
    let s = update_list_server();
    let mut seen: Vec<String> = Vec::new();
    let catalog = s.path("feed/catalog.json");
    let catalog = catalog.to_str().unwrap();
    let secret = s.path("signer.key");

    // fetch: plan, pack (with its progress events), inspect.
    let plan = s.fetch(&["plan", "--catalog", catalog, "--json"]).ok();
    seen.extend(types(&plan));
    let packed = s.pack_run(catalog, &secret, &["--json"], &[]).ok();
    seen.extend(types(&packed));
    let bundle = data(packed.lines().last().unwrap())["path"].as_str().unwrap().to_string();
    seen.extend(types(&s.fetch(&["inspect", &bundle, "--json"]).ok()));

    let point = s.path("point");
    let dp = point.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["verify", &bundle, "--json"],
        &["import", &bundle, "--json"],
        &["list", "--json"],
        &["show", "KB5034122", "--json"],
        &["trust", "list", "--json"],
        &["trust", "peers", "--json"],
        &["audit", "verify", "--json"],
        &["check", "--json"],
        &["approve", "KB5034122", "--by", "alice", "--json"],
        &["eula", "show", "KB5099999", "--json"],
        &["group", "create", "pilot", "--by", "alice"],
        &["group", "add", "pilot", "KB5034122", "--by", "alice", "--json"],
        &["group", "list", "--json"],
        &["group", "show", "pilot", "--json"],
        &["rules", "add", "approve-security", "--approve", "--classification", "security-update", "--by", "alice"],
        &["rules", "list", "--json"],
        &["rules", "test", "approve-security", "--json"],
        &["refresh", "--json"],
        &["report", "--json"],
        &["report", "--list", "--json"],
        &["config", "show", "--json"],
        &["dp", "add", "hq", "--path", dp, "--approved"],
        &["dp", "list", "--json"],
        &["publish", "--json"],
        &["dp", "verify", dp, "--json"],
        &["audit", "list", "--json"],
    ];
    for args in commands {
        if args.contains(&"--json") {
            seen.extend(ingest_lines(&s, args, 0));
        } else {
            s.ingest(args).ok();
        }
    }

    // A refusal under --json is a JSON line on standard output too, naming its exit code.
    let refused = s.ingest(&["show", "KB0000000", "--json"]);
    assert_eq!(refused.code, exit::NOT_FOUND, "{}", refused.stderr);
    let error = json_line(refused.stdout.trim());
    assert_eq!(error["type"], "error");
    assert_eq!(error["data"]["exit_code"], exit::NOT_FOUND);
    assert_eq!(error["data"]["class"], "not-found");
    assert!(error["data"]["message"].as_str().unwrap().contains("KB0000000"), "{error}");
    assert!(refused.stderr.contains("KB0000000"), "the message is on standard error as well");
    let fetch_refused = s.fetch(&["inspect", s.path("absent.zip").to_str().unwrap(), "--json"]);
    assert_eq!(types(&fetch_refused.stdout), ["error"]);
    seen.extend(types(&fetch_refused.stdout));

    for expected in [
        "plan",
        "selected",
        "bundle",
        "bundle-contents",
        "verified",
        "update",
        "update-detail",
        "trusted-key",
        "audit-verified",
        "check",
        "status-change",
        "eula",
        "membership",
        "group",
        "rule",
        "rule-test",
        "refresh",
        "report",
        "report-header",
        "config-value",
        "distribution-point",
        "published",
        "point-verified",
        "audit-entry",
        "progress",
        "error",
    ] {
        assert!(seen.iter().any(|t| t == expected), "no {expected:?} line in {seen:?}");
    }
}

#[test]
fn every_json_type_is_documented() {
    let docs = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    for kind in JSON_TYPES {
        assert!(docs.contains(&format!("\"type\":\"{kind}\"")), "docs/json.md has no example of {kind:?}");
    }
}
