//! Computers: inventories in every format read, newer reports replacing older ones per
//! facet, computer groups with their policies, the judgment and its reports; hostile
//! inventories refused one by one while the rest imports.

use std::path::{Path, PathBuf};

use crate::support::*;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// A server holding the sample catalog's updates, the important and critical ones and two
/// applications approved.
fn server() -> Scratch {
    let s = Scratch::new();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let bundle = s.pack(samples().join("catalog.json").to_str().unwrap(), &secret, &[]);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    s.ingest(&["approve", "--severity", "important", "--severity", "critical", "--by", "alice"]).ok();
    s.ingest(&["approve", "7zip.7zip@24.09", "--by", "alice"]).ok();
    s
}

fn computer(s: &Scratch, name: &str) -> serde_json::Value {
    let out = s.ingest(&["computers", "list", "--json"]).ok();
    out.lines().map(data).find(|c| c["name"] == name).unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn three_computers_report_and_the_reports_say_which_need_what() {
    let s = server();
    let reports = samples().join("computers/reports");
    let out = s.ingest(&["computers", "import", reports.to_str().unwrap()]).ok();
    assert!(out.contains("PC-0001 (new computer): ferry-report report of 2026-11-20T08:00:00Z"), "{out}");
    // The Get-HotFix export names no time: its file's time stands in, and is said.
    assert!(out.contains("PC-0002 (new computer): hotfix-csv no time in the report; the file's"), "{out}");
    // The report of PC-0002 is older than the export's hotfixes: those are kept.
    assert!(
        out.contains("PC-0002: ferry-report report of 2026-11-19T09:30:00Z") && out.contains("kept newer hotfixes"),
        "{out}"
    );
    let winget = samples().join("computers/winget-export-PC-0003.json");
    s.ingest(&["computers", "import", winget.to_str().unwrap(), "--computer", "PC-0003"]).ok();

    assert_eq!(computer(&s, "PC-0001")["level"], "missing", "7-Zip 24.08 is older than the approved 24.09");
    assert_eq!(computer(&s, "PC-0002")["level"], "missing-important", "KB5034122 is not installed");
    let lower = s.ingest(&["computers", "show", "pc-0003"]).ok();
    assert!(lower.starts_with("PC-0003  level missing-important"), "names compare without letter case: {lower}");

    let show = s.ingest(&["computers", "show", "PC-0002"]).ok();
    assert!(show.contains("missing    KB5034122") && show.contains("not in its list of installed updates"), "{show}");
    assert!(show.contains("installed  7zip.7zip@24.09") && show.contains("7-Zip 24.09 (x64)"), "{show}");
    assert!(show.contains("hotfixes 2") && show.contains("(file time)") && show.contains("[hotfix-csv]"), "{show}");

    // Windows Update status: per update, the computers it is not applied on.
    let report = s.ingest(&["computers", "report", "--kind", "updates", "--format", "json"]).ok();
    let updates: Vec<serde_json::Value> = report.lines().map(data).collect();
    let kb = updates.iter().find(|u| u["id"] == "KB5034122").unwrap();
    assert_eq!((kb["not_applied"].as_u64(), kb["missing"].as_u64()), (Some(1), Some(1)));
    // Computer security status: per computer, its level and what it misses, and why.
    let security = s.ingest(&["computers", "report", "--kind", "computers"]).ok();
    let pc2 = security.lines().position(|l| l.trim_start().starts_with("PC-0002")).expect(&security);
    assert!(security.lines().nth(pc2).unwrap().contains("missing-important"), "{security}");
    assert!(security.lines().nth(pc2 + 1).unwrap().contains("missing      KB5034122"), "{security}");
    let not_applied = s.ingest(&["computers", "report", "--kind", "not-applied", "--update", "7zip.7zip@24.09"]).ok();
    assert!(not_applied.contains("PC-0001") && !not_applied.contains("PC-0002 "), "{not_applied}");
    let html = s.path("compliance.html");
    s.ingest(&["computers", "report", "--format", "html", "--out", html.to_str().unwrap()]).ok();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("missing-important") && page.contains("PC-0003"), "{page}");

    // A test group with thirty days of grace: PC-0001's missing 7-Zip is within it.
    s.ingest(&["computers", "group", "add", "pilot", "--test", "--grace-days", "30", "--by", "alice"]).ok();
    s.ingest(&["computers", "assign", "pilot", "--computer", "PC-0001", "--by", "alice"]).ok();
    assert_eq!(computer(&s, "PC-0001")["level"], "grace");
    let policies = s.ingest(&["computers", "report", "--kind", "policies"]).ok();
    assert!(
        policies.contains("pilot [test]: all approved updates, 30 days of grace after approval; 0 compliant, 1 grace"),
        "{policies}"
    );

    let audit = s.ingest(&["audit", "list", "--json"]).ok();
    assert!(audit.contains("inventories-imported") && audit.contains("computers-assigned"), "{audit}");
    s.ingest(&["audit", "verify"]).ok();
}

#[test]
fn hostile_inventories_are_refused_one_by_one_and_the_rest_imports() {
    let s = server();
    let drop = s.path("inventories");
    std::fs::create_dir_all(&drop).unwrap();
    let good = std::fs::read_to_string(samples().join("computers/reports/PC-0001.json")).unwrap();
    std::fs::write(drop.join("good.json"), &good).unwrap();
    std::fs::write(
        drop.join("report-from-the-future.json"),
        good.replace("2026-11-20T08:00:00Z", "2999-01-01T00:00:00Z").replace("PC-0001", "PC-0009"),
    )
    .unwrap();
    std::fs::write(
        drop.join("report-in-latin1.json"),
        good.replace("Igor Pavlov", "Igor Pavl\u{f6}v")
            .replace('\u{f6}', "\u{0}")
            .into_bytes()
            .iter()
            .map(|b| if *b == 0 { 0xF6 } else { *b })
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    std::fs::write(drop.join("report-with-unknown-field.json"), good.replace("\"client\"", "\"shell\"")).unwrap();
    std::fs::write(
        drop.join("report-with-escape-in-name.json"),
        good.replace("7-Zip 24.08 (x64 edition)", "7-Zip\\u001b[2J"),
    )
    .unwrap();
    std::fs::write(
        drop.join("hotfixes-without-a-kb-column.csv"),
        "\"CSName\",\"Description\"\r\n\"PC-0001\",\"Update\"\r\n",
    )
    .unwrap();
    let huge = std::fs::File::create(drop.join("report-too-large.json")).unwrap();
    huge.set_len(17 << 20).unwrap();
    let run = s.ingest_within(std::time::Duration::from_secs(60), &["computers", "import", drop.to_str().unwrap()]);
    let err = run.refused(3, &["report-from-the-future.json", "in the future"]);
    for (file, why) in [
        ("report-in-latin1.json", "not UTF-8"),
        ("report-with-unknown-field.json", "unknown field `shell`"),
        ("report-with-escape-in-name.json", "programs[0].name"),
        ("hotfixes-without-a-kb-column.csv", "not an inventory ferry reads"),
        ("report-too-large.json", "larger than"),
    ] {
        assert!(err.lines().any(|l| l.contains(file) && l.contains(why)), "{file}: {why}: {err}");
    }
    // The good one went in; the computer from the future does not exist.
    assert_eq!(computer(&s, "PC-0001")["level"], "missing");
    assert!(!s.ingest(&["computers", "list"]).ok().contains("PC-0009"));
}

#[test]
fn an_older_report_is_ignored_and_said_so() {
    let s = server();
    let dir = s.path("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(samples().join("computers/reports/PC-0001.json")).unwrap();
    std::fs::write(dir.join("a-newer.json"), good.replace("2026-11-20T08:00:00Z", "2026-11-21T08:00:00Z")).unwrap();
    std::fs::write(dir.join("b-older.json"), good.replace("\"KB5034122\"", "\"KB5000001\"")).unwrap();
    let out = s.ingest(&["computers", "import", dir.to_str().unwrap()]).ok();
    assert!(out.contains("b-older.json ignored: not newer than what is held"), "{out}");
    let show = s.ingest(&["computers", "show", "PC-0001", "--json"]).ok();
    assert!(show.contains("a-newer.json") && !show.contains("b-older.json"), "{show}");
}

#[test]
fn winget_export_without_versions_or_computer() {
    let s = server();
    let export = std::fs::read_to_string(samples().join("computers/winget-export-PC-0003.json")).unwrap();
    let bare = s.path("winget-export-without-versions.json");
    std::fs::write(&bare, export.replace(",\r\n\t\t\t\t\t\"Version\" : \"24.09\"", "")).unwrap();
    s.ingest(&["computers", "import", bare.to_str().unwrap(), "--computer", "PC-0003"])
        .refused(3, &["Packages[0].Version", "--include-versions"]);
    let named = samples().join("computers/winget-export-PC-0003.json");
    s.ingest(&["computers", "import", named.to_str().unwrap()]).refused(3, &["names no computer", "--computer"]);
    let hotfixes = samples().join("computers/reports/PC-0002-hotfixes.csv");
    s.ingest(&["computers", "import", hotfixes.to_str().unwrap(), "--computer", "PC-0001"])
        .refused(3, &["of computer PC-0002, not of PC-0001"]);
    assert!(s.ingest(&["computers", "list"]).ok().contains("no computers yet"));
}

#[cfg(unix)]
#[test]
fn inventory_links_and_fifos_are_refused_without_waiting() {
    let s = server();
    let drop = s.path("inventories");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::copy(samples().join("computers/reports/PC-0001.json"), drop.join("good.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", drop.join("report-link-out-of-the-tree.json")).unwrap();
    let fifo = drop.join("report-that-is-a-fifo.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let run = s.ingest_within(std::time::Duration::from_secs(60), &["computers", "import", drop.to_str().unwrap()]);
    let err = run.refused(3, &["report-link-out-of-the-tree.json: is a symbolic link to /etc/passwd"]);
    assert!(
        err.contains("report-that-is-a-fifo.json: is a FIFO") || err.contains("report-that-is-a-fifo.json"),
        "{err}"
    );
    assert_eq!(computer(&s, "PC-0001")["level"], "missing", "the plain file beside them imports");
}

/// A report of PC-0004 whose offline scan found missing an update the server's list does not
/// know.
const SCAN_REPORT: &str = r#"{"format": "ferry-computer-report", "version": 1, "computer": "PC-0004",
 "created": "2026-11-21T08:00:00Z", "client": "ferry-client 0.1.0",
 "os": {"product": "Windows 10 Enterprise", "build": "10.0.19045.3930", "architecture": "x64"},
 "hotfixes": [{"kb": "KB5034122"}, {"kb": "KB5034441"}], "programs": [], "packages": null,
 "scan": {"scanned": "2026-11-21T07:55:00Z", "catalog_sha256": null,
          "missing": [{"update_id": "8e7dd2ee-5f2b-4bd4-a6a4-4e2bb1a0f1d7", "kb": "KB5099999", "title": "2026-11 update"}]}}"#;

#[test]
fn what_computers_need_and_the_server_lacks_goes_to_fetch_in_the_state_file() {
    // The server took the catalog's metadata only: it knows the updates, holds no file.
    let s = Scratch::new();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let catalog = samples().join("catalog.json");
    let bundle = s.pack(catalog.to_str().unwrap(), &secret, &["--metadata-only"]);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    s.ingest(&["approve", "--severity", "important", "--severity", "critical", "--by", "alice"]).ok();
    s.ingest(&["approve", "7zip.7zip@24.09", "--by", "alice"]).ok();
    let reports = samples().join("computers/reports");
    s.ingest(&["computers", "import", reports.to_str().unwrap()]).ok();
    std::fs::write(s.path("PC-0004.json"), SCAN_REPORT).unwrap();
    s.ingest(&["computers", "import", s.path("PC-0004.json").to_str().unwrap()]).ok();

    let (state, server_key) = (s.path("courier/state.json"), s.path("courier/server.pub"));
    std::fs::create_dir_all(s.path("courier")).unwrap();
    s.ingest(&["server-key", "export", "--out", server_key.to_str().unwrap()]).ok();
    s.ingest(&["state", "export", "--out", state.to_str().unwrap()]).ok();
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(!text.contains("PC-000"), "computer names never leave the closed network: {text}");
    let exported: serde_json::Value = serde_json::from_str(&text).unwrap();
    let needs: Vec<(String, u64)> = exported["computers_need"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap().to_string(), n["computers"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        needs,
        [
            ("7zip.7zip@24.09".to_string(), 1),
            ("8e7dd2ee-5f2b-4bd4-a6a4-4e2bb1a0f1d7".into(), 1),
            ("KB5034122".into(), 1),
            ("b1c3e9a4-6f0d-4e8b-9a57-2c4d5e6f7a81".into(), 1),
        ],
        "{text}"
    );

    let online = Scratch::new();
    let state_args = ["--state", state.to_str().unwrap(), "--server-key", server_key.to_str().unwrap()];
    let plan = online.fetch(&[&["plan", "--catalog", catalog.to_str().unwrap()][..], &state_args].concat()).ok();
    assert!(plan.contains("needed by 1 computer ") && plan.contains("KB5034122"), "{plan}");
    assert!(
        plan.contains("8e7dd2ee-5f2b-4bd4-a6a4-4e2bb1a0f1d7 KB5099999 (needed by 1 computer)"),
        "a need the catalog cannot meet is named: {plan}"
    );

    // --needed: exactly what the computers need, nothing else the server lacks files of.
    let plan = online
        .fetch(&[&["plan", "--json", "--needed", "--catalog", catalog.to_str().unwrap()][..], &state_args].concat())
        .ok();
    let plan = data(plan.lines().last().unwrap());
    let carried: Vec<(&str, u64)> = plan["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), u["needed_by_computers"].as_u64().unwrap()))
        .collect();
    assert_eq!(carried, [("KB5034122", 1), ("7zip.7zip@24.09", 1)], "{plan}");
    assert_eq!(plan["needs_not_offered"][0]["kb"], "KB5099999");

    let delta = online.pack(catalog.to_str().unwrap(), &secret, &[&["--needed"][..], &state_args].concat());
    let out = s.ingest(&["import", delta.to_str().unwrap()]).ok();
    assert!(out.contains("2 payloads verified") && out.contains("2 files newly stored"), "{out}");
    s.ingest(&["state", "export", "--out", state.to_str().unwrap()]).ok();
    let exported: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        exported["computers_need"].as_array().unwrap().len(),
        2,
        "the server now holds what it lacked; only the scans' unknown updates are left: {exported}"
    );
}

#[test]
fn needed_takes_a_state_file_that_names_needs_the_catalog_offers() {
    let s = server();
    let server_key = s.path("server.pub");
    s.ingest(&["server-key", "export", "--out", server_key.to_str().unwrap()]).ok();
    let catalog = samples().join("catalog.json");
    let plan_needed = |state: &std::path::Path| {
        s.fetch(&[
            "plan",
            "--needed",
            "--catalog",
            catalog.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--server-key",
            server_key.to_str().unwrap(),
        ])
    };
    s.fetch(&["plan", "--needed", "--catalog", catalog.to_str().unwrap()]).refused(2, &["--state"]);

    // No computer has reported: nothing is needed.
    let state = s.path("state-without-needs.json");
    s.ingest(&["state", "export", "--out", state.to_str().unwrap()]).ok();
    plan_needed(&state).refused(3, &["says no computer needs an update the server lacks"]);

    // PC-0001's scan found an update the catalog does not carry: it is named.
    s.ingest(&["computers", "import", samples().join("computers/reports").to_str().unwrap()]).ok();
    let state = s.path("state-with-needs-the-catalog-lacks.json");
    s.ingest(&["state", "export", "--out", state.to_str().unwrap()]).ok();
    plan_needed(&state).refused(3, &["offers none of what the computers need", "KB5048652"]);

    // fetch plan --winget lists what the manifests offer; the delta is fetch pack's.
    let winget_tree = s.path("winget-tree");
    s.fetch(&[
        "plan",
        "--winget",
        winget_tree.to_str().unwrap(),
        "--needed",
        "--state",
        state.to_str().unwrap(),
        "--server-key",
        server_key.to_str().unwrap(),
    ])
    .refused(3, &["--state (and --needed) plan against a catalog", "`fetch pack` takes them"]);
}

#[test]
fn installation_results_are_judged_and_reported() {
    let s = server();
    s.ingest(&["computers", "import", samples().join("computers/reports").to_str().unwrap()]).ok();
    assert_eq!(computer(&s, "PC-0002")["level"], "missing-important");
    let results = samples().join("computers/results");
    let out = s.ingest(&["results", "import", results.to_str().unwrap()]).ok();
    assert!(out.contains("PC-0001: 1 new result") && out.contains(", 1 failed"), "{out}");
    assert!(
        out.contains("7zip.7zip@24.09 failed at 2026-11-22T10:02:00Z: failure: ERROR_INSTALL_FAILURE")
            && out.contains("the installer said: setup could not replace 7z.dll"),
        "{out}"
    );
    // A failed installation makes the computer critical; the restart-pending KB puts
    // PC-0002 in place.
    assert_eq!(computer(&s, "PC-0001")["level"], "critical");
    assert_eq!(computer(&s, "PC-0002")["level"], "compliant");
    let show = s.ingest(&["computers", "show", "PC-0001"]).ok();
    assert!(show.contains("failed") && show.contains("its installation failed at 2026-11-22T10:02:00Z"), "{show}");

    let again = s.ingest(&["results", "import", results.to_str().unwrap()]).ok();
    assert!(again.contains("0 new results") && again.contains("(1 recorded before)"), "{again}");

    let listed = s.ingest(&["results", "list", "--json", "--computer", "PC-0002"]).ok();
    let outcomes: Vec<(String, String)> = listed
        .lines()
        .map(data)
        .map(|r| (r["update"].as_str().unwrap().to_string(), r["outcome"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(outcomes, [("7zip.7zip@24.09".into(), "success".into()), ("KB5034122".into(), "reboot".into())]);

    let report = s.ingest(&["computers", "report", "--kind", "results"]).ok();
    assert!(
        report.contains(
            "7zip.7zip@24.09                          1 succeeded, 0 need a restart, 0 were installed already, 1 failed"
        ),
        "{report}"
    );
    let json = s.ingest(&["computers", "report", "--kind", "results", "--format", "json"]).ok();
    assert!(json.lines().any(|l| l.contains("\"results-summary\"")) && json.contains("\"install-result\""), "{json}");
    let html = s.path("results.html");
    s.ingest(&["computers", "report", "--format", "html", "--out", html.to_str().unwrap()]).ok();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Installation results") && page.contains("ERROR_INSTALL_FAILURE"), "{page}");
    let audit = s.ingest(&["audit", "list", "--json"]).ok();
    assert!(audit.contains("install-results-imported"), "{audit}");
}

/// A results file that breaks one rule each; the good one beside them is recorded.
#[test]
fn hostile_results_are_refused_one_by_one() {
    let s = server();
    s.ingest(&["computers", "import", samples().join("computers/reports").to_str().unwrap()]).ok();
    let good = std::fs::read_to_string(samples().join("computers/results/PC-0002.json")).unwrap();
    let dir = s.path("results");
    std::fs::create_dir_all(&dir).unwrap();
    let fixtures = [
        ("computer-without-inventory.json", good.replace("PC-0002", "PC-9999")),
        ("update-not-in-the-list.json", good.replace("\"update\": \"KB5034122\"", "\"update\": \"KB9999999\"")),
        ("digest-of-another-file.json", good.replace("31b11bcf", "00000000")),
        ("written-in-the-future.json", good.replace("2026-11-22T11:40:00Z", "2099-01-01T00:00:00Z")),
        ("result-after-the-file.json", good.replace("11:31:00Z", "11:41:00Z")),
        ("return-code-beyond-32-bits.json", good.replace("3010", "8589934592")),
        ("unknown-field.json", good.replace("\"client\"", "\"agent\"")),
    ];
    for (name, body) in &fixtures {
        std::fs::write(dir.join(name), body).unwrap();
    }
    std::fs::write(dir.join("zz-good.json"), &good).unwrap();
    let run = s.ingest(&["results", "import", dir.to_str().unwrap()]);
    let out = run.stdout.clone();
    let err = run.refused(
        3,
        &[
            "computer-without-inventory.json: computer: PC-9999 has sent no inventory yet",
            "update-not-in-the-list.json: results[0].update: KB9999999 is not in this server's update list",
            "digest-of-another-file.json: results[0].sha256",
            "written-in-the-future.json: created: 2099-01-01T00:00:00Z is in the future",
            "result-after-the-file.json: results[0].at",
            "return-code-beyond-32-bits.json: results[0].return_code",
            "unknown-field.json",
        ],
    );
    assert_eq!(err.matches("ingest: refused").count(), fixtures.len(), "{err}");
    assert!(out.contains("PC-0002: 2 new results from") && out.contains("zz-good.json"), "{out}");
    let listed = s.ingest(&["results", "list", "--json"]).ok();
    assert_eq!(listed.lines().count(), 2, "nothing of a refused file is recorded: {listed}");
}

#[test]
fn a_group_getting_worse_to_its_notify_level_is_notified() {
    let s = server();
    let out = s.path("notices");
    std::fs::create_dir_all(&out).unwrap();
    let script = format!(
        "cat >> {0}/alerts.jsonl; printf '%s\\n' \"$FERRY_REPORT_KIND: $FERRY_REPORT_HEADLINE\" >> {0}/headlines",
        out.display()
    );
    std::fs::write(s.data_dir().join("ingest.toml"), format!("[notify]\ncommand = [\"sh\", \"-c\", {script:?}]\n"))
        .unwrap();
    s.ingest(&["computers", "group", "add", "pilot", "--notify-level", "critical", "--by", "alice"]).ok();
    s.ingest(&["computers", "import", samples().join("computers/reports").to_str().unwrap()]).ok();
    s.ingest(&["computers", "assign", "pilot", "--computer", "PC-0001", "--by", "alice"]).ok();
    assert_eq!(computer(&s, "PC-0001")["level"], "missing");
    assert!(!out.join("alerts.jsonl").exists(), "a group judged for the first time has nothing to get worse from");

    // PC-0001's failed installation makes pilot critical: its notify level.
    let run = s.ingest(&["results", "import", samples().join("computers/results").to_str().unwrap()]);
    assert!(run.stderr.contains("notified by command about the worse compliance"), "{}", run.stderr);
    run.ok();
    let line = std::fs::read_to_string(out.join("alerts.jsonl")).unwrap();
    assert_eq!(json_line(&line)["type"], "compliance-alert", "{line}");
    let alert = data(&line);
    assert_eq!(alert["groups"].as_array().unwrap().len(), 1, "PC-0002 got better, not worse: {alert}");
    assert_eq!(
        (&alert["groups"][0]["group"], &alert["groups"][0]["was"], &alert["groups"][0]["now"]),
        (&serde_json::json!("pilot"), &serde_json::json!("missing"), &serde_json::json!("critical"))
    );
    assert_eq!(alert["groups"][0]["computers"], serde_json::json!(["PC-0001"]));
    let headlines = std::fs::read_to_string(out.join("headlines")).unwrap();
    assert_eq!(headlines, "compliance: pilot got worse: missing to critical\n");

    // Judging again finds nothing worse: no second notice.
    s.ingest(&["computers", "judge"]).ok();
    assert_eq!(std::fs::read_to_string(out.join("alerts.jsonl")).unwrap().lines().count(), 1);
}

#[test]
fn the_watcher_reads_inventories_and_results_from_their_folders() {
    let s = server();
    let (inventories, results) = (s.path("share/inventories"), s.path("share/results"));
    std::fs::create_dir_all(&inventories).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    for name in ["PC-0001.json", "PC-0002.json", "PC-0002-hotfixes.csv"] {
        std::fs::copy(samples().join("computers/reports").join(name), inventories.join(name)).unwrap();
    }
    std::fs::write(inventories.join("not-an-inventory.txt"), "hello\n").unwrap();
    let watch = |extra: &[&str]| s.ingest(&[&["watch", "--once", "--settle", "0", "--no-publish"][..], extra].concat());

    let run = watch(&["--inventories", inventories.to_str().unwrap()]);
    let out = run.stdout.clone();
    run.refused_on_stdout(3, &["refused: ", "not-an-inventory.txt", "judged 2 computers"]);
    assert!(out.contains("accepted: ") && out.contains("PC-0002-hotfixes.csv (inventory)"), "{out}");
    for name in ["PC-0001.json", "PC-0002.json", "PC-0002-hotfixes.csv"] {
        assert!(inventories.join("processed").join(name).is_file(), "{name} is moved to processed/");
    }
    let reason = std::fs::read_to_string(inventories.join("rejected/not-an-inventory.txt.reason.txt")).unwrap();
    assert!(reason.contains("not an inventory ferry reads"), "{reason}");
    assert_eq!(computer(&s, "PC-0002")["level"], "missing-important");

    for name in ["PC-0001.json", "PC-0002.json"] {
        std::fs::copy(samples().join("computers/results").join(name), results.join(name)).unwrap();
    }
    let out = watch(&["--results", results.to_str().unwrap()]).ok();
    assert!(out.contains("(installation results)") && out.contains("judged 2 computers"), "{out}");
    assert!(results.join("processed/PC-0002.json").is_file());
    assert_eq!(computer(&s, "PC-0002")["level"], "compliant");
    assert_eq!(s.ingest(&["results", "list", "--json"]).ok().lines().count(), 3);

    // A pass over folders with nothing new prints nothing.
    let quiet = watch(&["--inventories", inventories.to_str().unwrap(), "--results", results.to_str().unwrap()]).ok();
    assert_eq!(quiet, "");
}

/// The assignment in the current generation of `dp`, and that generation.
fn assignment(dp: &Path) -> (String, serde_json::Value) {
    let g = std::fs::read_to_string(dp.join("current")).unwrap().trim().to_string();
    let text = std::fs::read(dp.join("generations").join(&g).join("assignment.json")).unwrap();
    (g, serde_json::from_slice(&text).unwrap())
}

#[test]
fn publishing_writes_a_signed_assignment_of_groups_to_updates() {
    let s = server();
    let dp = s.path("dp-hq");
    s.ingest(&["dp", "add", "hq", "--path", dp.to_str().unwrap(), "--approved"]).ok();
    s.ingest(&["dp", "add", "elsewhere", "--path", s.path("dp-elsewhere").to_str().unwrap(), "--approved"]).ok();
    s.ingest(&["computers", "import", samples().join("computers/reports").to_str().unwrap()]).ok();
    s.ingest(&["group", "create", "apps"]).ok();
    s.ingest(&["group", "add", "apps", "7zip.7zip@24.09"]).ok();
    s.ingest(&["computers", "group", "add", "pilot", "--test", "--update-group", "apps", "--by", "alice"]).ok();
    s.ingest(&["computers", "group", "add", "branch", "--point", "elsewhere", "--by", "alice"]).ok();
    s.ingest(&["computers", "assign", "pilot", "--computer", "PC-0001", "--by", "alice"]).ok();
    s.ingest(&["publish"]).ok();

    let (g, a) = assignment(&dp);
    let dir = dp.join("generations").join(&g);
    let out = tool("minisign")
        .args(["-V", "-m"])
        .arg(dir.join("assignment.json"))
        .arg("-p")
        .arg(s.data_dir().join("server.pub"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "minisign verifies the assignment with the server key: {said}");
    assert!(said.contains(&format!("ferry-dp-assignment v1 dp=hq generation={g}")), "{said}");

    let groups = a["groups"].as_array().unwrap();
    let named = |name: Option<&str>| {
        groups.iter().find(|x| x["group"].as_str() == name).unwrap_or_else(|| panic!("no {name:?} in {a}"))
    };
    assert_eq!(named(Some("pilot"))["computers"], serde_json::json!(["PC-0001"]));
    assert_eq!(named(Some("pilot"))["updates"], serde_json::json!(["7zip.7zip@24.09"]), "its update group's only");
    assert_eq!(named(Some("branch"))["updates"], serde_json::json!([]), "it installs from another point");
    let everyone: Vec<&str> = named(None)["updates"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
    assert!(everyone.contains(&"KB5034122") && everyone.contains(&"7zip.7zip@24.09"), "{everyone:?}");
    let verified = s.ingest(&["dp", "verify", dp.to_str().unwrap()]).ok();
    assert!(verified.contains("signed assignment of 3 groups"), "{verified}");

    // Nothing changed: no new generation. A computer changing groups: a new one.
    s.ingest(&["publish"]).ok();
    assert_eq!(assignment(&dp).0, g);
    s.ingest(&["computers", "assign", "pilot", "--computer", "PC-0002", "--by", "alice"]).ok();
    let pending = s.ingest(&["publish", "--dry-run"]).ok();
    assert!(pending.contains("hq"), "{pending}");
    s.ingest(&["publish"]).ok();
    let (g2, a2) = assignment(&dp);
    assert_ne!(g2, g);
    assert_eq!(a2["groups"][1]["computers"], serde_json::json!(["PC-0001", "PC-0002"]), "{a2}");

    // An assignment altered on the share is refused, naming it.
    let file = dp.join("generations").join(&g2).join("assignment.json");
    let altered = std::fs::read_to_string(&file).unwrap().replace("PC-0002", "PC-6666");
    std::fs::write(&file, altered).unwrap();
    s.ingest(&["dp", "verify", dp.to_str().unwrap()]).refused(6, &["assignment.json was altered after signing"]);
}

#[test]
fn duplicate_computers_differing_in_case_or_encoding_are_one_computer() {
    let s = server();
    let dir = s.path("duplicates");
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(samples().join("computers/reports/PC-0001.json")).unwrap();
    std::fs::write(dir.join("a-older.json"), &good).unwrap();
    // The same computer in lower case, a day later, written by Windows PowerShell's `>` as
    // UTF-16 with a byte order mark: it lists 7-Zip 24.09, so it is now in place.
    let newer = good.replace("\"PC-0001\"", "\"pc-0001\"").replace("2026-11-20T08:00:00Z", "2026-11-21T08:00:00Z");
    let newer = newer.replace("\"24.08\", \"source\"", "\"24.09\", \"source\"");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(newer.encode_utf16().flat_map(|u| u.to_le_bytes()));
    std::fs::write(dir.join("b-newer-utf16.json"), utf16).unwrap();
    let out = s.ingest(&["computers", "import", dir.to_str().unwrap()]).ok();
    assert!(out.contains("2 reports read, 2 changed what is held"), "{out}");
    let listed = s.ingest(&["computers", "list", "--json"]).ok();
    assert_eq!(listed.lines().count(), 1, "one computer: {listed}");
    assert_eq!(computer(&s, "PC-0001")["level"], "compliant");
    // The older one again, later: ignored and said so.
    let again = s.ingest(&["computers", "import", dir.join("a-older.json").to_str().unwrap()]).ok();
    assert!(again.contains("ignored: not newer than what is held"), "{again}");
}
