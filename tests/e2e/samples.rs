//! The README's first command, `bash samples/demo.sh`, runs the whole journey on the shipped
//! samples. This test runs it against the binaries under test.

use std::process::Command;

use crate::support::*;

#[test]
fn demo_script_runs_the_journey() {
    let s = Scratch::new();
    let bin_dir = std::path::Path::new(&*FETCH).parent().unwrap();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/demo.sh"))
        .env("FERRY_BIN_DIR", bin_dir)
        .env("FERRY_DEMO_DIR", s.path("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // What the journey left, not the titles the script prints before each step (which it
    // prints whether or not the step works).
    let demo = s.path("demo");
    let server = demo.join("server");
    let run = |args: &[&str]| {
        Run::from(
            Command::new(&*INGEST).arg("--data-dir").arg(&server).args(args).env("USER", "tester").output().unwrap(),
        )
    };
    let listed: Vec<serde_json::Value> = run(&["list", "--json"]).ok().lines().map(data).collect();
    assert!(listed.len() >= 6, "the sample updates and the one registered by hand: {listed:?}");
    assert!(listed.iter().any(|u| u["id"] == "KB5034122" && u["status"] == "approved"), "{listed:?}");
    assert!(listed.iter().any(|u| u["origin"] == "manual"), "the hotfix registered by hand: {listed:?}");
    assert!(
        listed.iter().any(|u| u["id"] == "Mozilla.Firefox.ESR@115.15.0" && u["classification"] == "application"),
        "the version packed from the sample winget tree: {listed:?}"
    );
    // Imported, then imported again as a no-op, then the next week's bundle by the watcher.
    assert!(stdout.contains("imported: ") && stdout.contains("already imported: "), "{stdout}");
    let channels = run(&["state", "export", "--out", s.path("state.json").to_str().unwrap()]);
    channels.ok();
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(s.path("state.json")).unwrap()).unwrap();
    // Sequence 1 from the catalog, 2 from the winget tree, 3 the scan catalog, 4 by the watcher.
    assert_eq!(state["channels"]["default"]["highest_sequence"], 4, "the watcher imported sequence 4: {state}");
    // The distribution point verifies, as a branch office would check it.
    let verified = run(&["dp", "verify", demo.join("www/updates").to_str().unwrap()]).ok();
    assert!(verified.contains("intact: every file present"), "{verified}");
    let point = demo.join("www/updates");
    let current = std::fs::read_to_string(point.join("current")).unwrap();
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(point.join("generations").join(current.trim()).join("index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(index["scan_catalog"]["name"], "wsusscn2.cab", "the carried scan catalog is published: {index}");
    // The watcher's drop folder: the bundle processed, the damaged copy rejected with why.
    let mut drop = walk(&demo.join("drop"));
    drop.sort();
    assert!(drop.iter().any(|f| f.starts_with("processed/ferry-default-")), "{drop:?}");
    assert!(drop.contains(&"rejected/damaged-copy.zip.reason.txt".to_string()), "{drop:?}");
    // The outputs a person keeps: the CSV list and the HTML report.
    assert!(std::fs::read_to_string(demo.join("update-list.csv")).unwrap().starts_with("\u{feff}id,revision,title,"));
    assert!(std::fs::read_to_string(demo.join("first-import.html")).unwrap().contains("KB5034122"));
    run(&["check"]).ok();
}

/// The sample catalog's digests and sizes match the shipped payloads.
#[test]
fn sample_catalog_matches_its_payloads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("catalog.json")).unwrap()).unwrap();
    let mut checked = 0;
    for u in catalog["updates"].as_array().unwrap() {
        for f in u["files"].as_array().unwrap() {
            let bytes = std::fs::read(root.join(f["url"].as_str().unwrap())).unwrap();
            assert_eq!(sha256_hex(&bytes), f["sha256"].as_str().unwrap(), "{}", f["name"]);
            assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap(), "{}", f["name"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}

fn schedule_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/schedule")
}

/// The sample paths, moved into a scratch directory with the binaries under test.
fn localised(text: &str, s: &Scratch) -> String {
    let bin_dir = std::path::Path::new(&*FETCH).parent().unwrap();
    text.replace("/usr/local/bin/", &format!("{}/", bin_dir.display()))
        .replace("/var/lib/", &format!("{}/", s.path("var-lib").display()))
        .replace("/srv/ferry/", &format!("{}/", s.path("srv").display()))
        .replace("/etc/ferry/", &format!("{}/", s.path("etc").display()))
}

/// The systemd units pass `systemd-analyze verify` (with the binaries they name present).
#[test]
fn systemd_units_verify() {
    let s = Scratch::new();
    let units = s.path("units");
    std::fs::create_dir_all(&units).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(schedule_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".service") || name.ends_with(".timer") {
            std::fs::write(units.join(&name), localised(&std::fs::read_to_string(&path).unwrap(), &s)).unwrap();
            names.push(format!("./{name}"));
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "./ferry-fetch-pack.service",
            "./ferry-fetch-pack.timer",
            "./ferry-ingest-watch.service",
            "./ferry-ingest-watch.timer"
        ]
    );
    let out = tool("systemd-analyze").arg("verify").args(&names).current_dir(&units).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
}

/// The crontab's two lines, run as cron would run them (with the sample paths moved into a
/// scratch directory): the weekly pack writes a bundle to the outbox; carried to the drop
/// folder, the watcher's line imports it and moves it to processed/.
#[test]
fn crontab_lines_run_the_weekly_pack_and_the_watcher() {
    let s = Scratch::new();
    let etc = s.path("etc");
    std::fs::create_dir_all(&etc).unwrap();
    local_catalog(&etc, &three_updates());
    s.key_gen(&etc.join("signing.key"), &etc.join("signing.pub"), &["--unencrypted"]).ok();
    std::fs::write(etc.join("key-passphrase"), "unused: the key is not encrypted\n").unwrap();
    let crontab = localised(&std::fs::read_to_string(schedule_dir().join("crontab")).unwrap(), &s);
    let jobs: Vec<String> = crontab
        .lines()
        .filter(|l| l.starts_with(|c: char| c == '*' || c.is_ascii_digit()))
        .map(|l| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(jobs.len(), 2, "{crontab}");
    let bin_dir = std::path::Path::new(&*FETCH).parent().unwrap();
    let run = |job: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(job)
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("USER", "cron")
            .output()
            .unwrap();
        assert!(out.status.success(), "{job}:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let pack = jobs.iter().find(|j| j.contains("fetch pack")).unwrap();
    run(pack);
    let outbox = s.path("srv/outbox");
    let bundles: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(bundles.len(), 1, "{bundles:?}");

    let data = s.path("var-lib/ferry/ingest");
    let ingest = |args: &[&str]| {
        let out = Command::new(&*INGEST).arg("--data-dir").arg(&data).args(args).env("USER", "admin").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    ingest(&["trust", "add", etc.join("signing.pub").to_str().unwrap()]);
    let drop = s.path("srv/drop");
    std::fs::create_dir_all(&drop).unwrap();
    let name = bundles[0].file_name().unwrap();
    std::fs::copy(&bundles[0], drop.join(name)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(drop.join(name))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
        .unwrap();
    let watch = jobs.iter().find(|j| j.contains("ingest watch")).unwrap();
    let printed = run(watch);
    assert!(printed.contains("accepted:"), "{printed}");
    assert!(drop.join("processed").join(name).is_file());
    // The next run finds nothing and, as cron wants, says nothing.
    assert_eq!(run(watch), "");
}

/// The Task Scheduler sample has the shape Task Scheduler 1.2 reads and runs one watcher
/// pass every 15 minutes, never two at once, each stopped before the next is due. (Wine's
/// schtasks registers it in .ci/windows/run; wine keeps no triggers or actions, so their
/// shape is checked here.)
#[test]
fn task_scheduler_sample_has_the_task_shape() {
    let path = schedule_dir().join("ferry-ingest-watch.xml");
    let check = r#"
import sys, xml.etree.ElementTree as E
ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
root = E.parse(sys.argv[1]).getroot()
def text(path):
    found = root.find(path, ns)
    return None if found is None else (found.text or "").strip()
print("root", root.tag.split("}")[1], root.get("version"))
print("interval", text("t:Triggers/t:TimeTrigger/t:Repetition/t:Interval"))
print("enabled", text("t:Triggers/t:TimeTrigger/t:Enabled"))
print("instances", text("t:Settings/t:MultipleInstancesPolicy"))
print("limit", text("t:Settings/t:ExecutionTimeLimit"))
print("command", text("t:Actions/t:Exec/t:Command"))
print("arguments", text("t:Actions/t:Exec/t:Arguments"))
print("principal", root.find("t:Principals/t:Principal", ns).get("id"), root.find("t:Actions", ns).get("Context"))
"#;
    let out = tool("python3").args(["-c", check]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shape = String::from_utf8_lossy(&out.stdout);
    for line in [
        "root Task 1.2",
        "interval PT15M",
        "enabled true",
        "instances IgnoreNew",
        "limit PT14M",
        r"command C:\Program Files\ferry\ingest.exe",
        "principal Author Author",
    ] {
        assert!(shape.lines().any(|l| l == line), "{line:?} not in:\n{shape}");
    }
    let arguments = shape.lines().find_map(|l| l.strip_prefix("arguments ")).unwrap();
    assert!(arguments.contains(" watch --once --drop "), "{arguments}");
}

/// The demo builds every binary of the package (ferry-mail too: ingest's mail notification
/// runs it from beside itself), so that a user who ran it has them all.
#[test]
fn the_demo_builds_every_binary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let demo = std::fs::read_to_string(root.join("samples/demo.sh")).unwrap();
    let build = demo.lines().find(|l| l.trim_start().starts_with("cargo build")).expect("the demo builds");
    let bins: Vec<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|section| section.lines().find_map(|l| l.trim().strip_prefix("name = ")))
        .map(|name| name.trim_matches('"'))
        .collect();
    assert!(bins.contains(&"ferry-mail"), "{bins:?}");
    for bin in bins {
        assert!(build.contains(&format!("--bin {bin}")), "the demo does not build {bin}: {build}");
    }
}
