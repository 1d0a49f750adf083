//! Scheduled ingestion: `ingest watch` over a drop folder, with bundles copied in out of order
//! and one still being written, rejected files with their reasons, the daily refresh, one
//! watcher at a time, and a drop folder it cannot move files out of.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::*;

/// `ingest watch ARGS --json` with the scratch's data directory, in UTC.
fn watch(s: &Scratch, args: &[&str]) -> Command {
    let mut cmd = Command::new(&*INGEST);
    cmd.arg("--data-dir").arg(s.data_dir()).arg("watch").args(args).arg("--json");
    cmd.env("USER", "tester").env("TZ", "UTC").stdin(Stdio::null());
    cmd
}

/// The JSON record of each pass printed by a watcher that ended with `code`.
fn passes(mut cmd: Command, code: i32) -> Vec<serde_json::Value> {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The passes, among the progress of their imports and publishes.
    stdout.lines().map(json_line).filter(|l| l["type"] == "watch-pass").map(|mut l| l["data"].take()).collect()
}

/// Three bundles of one channel, sequences 1 to 3, each adding an update, packed with a
/// trusted key; the server has imported none. Also a distribution point and a rule that
/// approves security updates.
fn server_with_three_bundles() -> (Scratch, [PathBuf; 3]) {
    let s = Scratch::new();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let all = three_updates();
    let bundles: Vec<PathBuf> = (1..=3)
        .map(|n| {
            let catalog = local_catalog(&s.path(&format!("feed-{n}")), &all[..n]);
            let packed = s.pack(catalog.to_str().unwrap(), &secret, &[]);
            let kept = s.path(&format!("sequence-{n}.zip"));
            std::fs::rename(packed, &kept).unwrap();
            kept
        })
        .collect();
    s.ingest(&["rules", "add", "security", "--approve", "--classification", "security-update"]).ok();
    s.ingest(&["dp", "add", "lan", "--path", s.path("dp").to_str().unwrap(), "--approved"]).ok();
    (s, bundles.try_into().unwrap())
}

fn index_ids(dp: &Path) -> Vec<String> {
    let current = std::fs::read_to_string(dp.join("current")).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dp.join("generations").join(current.trim()).join("index.json")).unwrap())
            .unwrap();
    let mut ids: Vec<String> = index["updates"].as_array().unwrap().iter().map(|u| u["id"].to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn three_bundles_copied_out_of_order_one_still_being_written_go_in_by_sequence() {
    let (s, [one, two, three]) = server_with_three_bundles();
    let drop = s.path("drop");
    std::fs::create_dir_all(drop.join("from-branch")).unwrap();
    // Names that sort against the sequence; the newest arrives first.
    std::fs::copy(&three, drop.join("a-newest.zip")).unwrap();
    std::fs::copy(&one, drop.join("from-branch/b-oldest.zip")).unwrap();
    let mut damaged = std::fs::read(&one).unwrap();
    damaged.truncate(damaged.len() / 2);
    std::fs::write(drop.join("d-cut-short.zip"), &damaged).unwrap();
    std::fs::write(drop.join("README.txt"), "not a bundle").unwrap();
    // Sequence 2 is still being copied when the watcher starts.
    let body = std::fs::read(&two).unwrap();
    let arriving = drop.join("c-arriving.zip");
    let mut writer = std::fs::File::create(&arriving).unwrap();
    writer.write_all(&body[..1000]).unwrap();

    let watcher = watch(&s, &["--drop", drop.to_str().unwrap(), "--once", "--settle", "1", "--max-wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    for chunk in body[1000..].chunks(body.len() / 5 + 1) {
        std::thread::sleep(Duration::from_millis(300));
        writer.write_all(chunk).unwrap();
        writer.flush().unwrap();
    }
    drop_writer(writer);
    let out = watcher.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The cut-short bundle is refused (a bundle fault: exit 7) but does not stop the others.
    assert_eq!(out.status.code(), Some(exit::BUNDLE), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() >= Duration::from_secs(2), "waited for the file being written");
    let pass: serde_json::Value = data(stdout.lines().last().unwrap());

    let order: Vec<(String, &str, &str)> = pass["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let path = host_path(b["path"].as_str().unwrap());
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            (name, b["outcome"].as_str().unwrap(), b["disposition"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        order,
        [
            ("b-oldest.zip".to_string(), "accepted", "processed"),
            ("c-arriving.zip".to_string(), "accepted", "processed"),
            ("a-newest.zip".to_string(), "accepted", "processed"),
            ("d-cut-short.zip".to_string(), "refused", "rejected"),
        ],
        "{stdout}"
    );
    assert_eq!(pass["ignored"].as_array().unwrap().len(), 1);

    // The drop folder: processed/ keeps the volume folder's path, rejected/ has the reason.
    let mut left = walk(&drop);
    left.sort();
    assert_eq!(
        left,
        [
            "README.txt",
            "processed/a-newest.zip",
            "processed/c-arriving.zip",
            "processed/from-branch/b-oldest.zip",
            "rejected/d-cut-short.zip",
            "rejected/d-cut-short.zip.reason.txt",
        ]
    );
    assert_eq!(std::fs::read(drop.join("processed/c-arriving.zip")).unwrap(), body, "imported whole");
    let reason = std::fs::read_to_string(drop.join("rejected/d-cut-short.zip.reason.txt")).unwrap();
    assert!(
        reason.contains("what:    the bundle's zip container or manifest is unsafe or malformed (bundle)")
            && reason.contains("d-cut-short.zip"),
        "{reason}"
    );
    assert!(!reason.contains("Bundle"), "words, not type names: {reason}");
    assert!(reason.contains("move it\nback into the drop folder"), "{reason}");

    // The audit log, the change report and the distribution point.
    let report: serde_json::Value = data(&s.ingest(&["report", &pass["report"].to_string(), "--format", "json"]).ok());
    let sources: Vec<&str> =
        report["sources"].as_array().unwrap().iter().map(|x| x["outcome"].as_str().unwrap()).collect();
    assert_eq!(sources, ["accepted", "accepted", "accepted", "refused"]);
    assert!(report["by"].as_str().unwrap().starts_with("ingest watch"), "{report}");
    let published = &pass["published"].as_array().unwrap()[0];
    assert_eq!(published["name"], "lan");
    assert_eq!(published["updates"], 3);
    assert_eq!(index_ids(&s.path("dp")).len(), 3);
    s.ingest(&["dp", "verify", s.path("dp").to_str().unwrap()]).ok();

    // A second pass has nothing to do, prints nothing in text mode, and publishes nothing.
    let quiet = Command::new(&*INGEST)
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["watch", "--once", "--drop", drop.to_str().unwrap()])
        .env("USER", "tester")
        .output()
        .unwrap();
    assert!(quiet.status.success() && quiet.stdout.is_empty(), "{}", String::from_utf8_lossy(&quiet.stdout));
    let again = passes(watch(&s, &["--drop", drop.to_str().unwrap(), "--once"]), 0);
    assert!(again[0]["bundles"].as_array().unwrap().is_empty() && again[0]["published"].as_array().unwrap().is_empty());
}

/// Closes the file being written, as a copy tool does at the end.
fn drop_writer(writer: std::fs::File) {
    writer.sync_all().unwrap();
}

#[test]
fn an_approval_made_by_hand_is_published_by_the_next_pass_and_arrivals_are_notified() {
    let (s, [one, two, _]) = server_with_three_bundles();
    s.ingest(&["rules", "remove", "security"]).ok();
    let drop = s.path("drop");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::copy(&one, drop.join("one.zip")).unwrap();
    set_modified(&drop.join("one.zip"), SystemTime::now() - Duration::from_secs(60));
    let first = passes(watch(&s, &["--drop", drop.to_str().unwrap(), "--once"]), 0);
    assert_eq!(first[0]["published"][0]["updates"], 0, "nothing approved yet");
    s.ingest(&["approve", "KB5034122"]).ok();
    let inbox = s.path("notified.json");
    let command = format!("notify.command=[\"sh\", \"-c\", \"cat > {}\"]", inbox.display());
    let second = passes(watch(&s, &["--drop", drop.to_str().unwrap(), "--once", "--set", &command]), 0);
    assert_eq!(second[0]["published"][0]["updates"], 1, "{second:?}");
    assert_eq!(index_ids(&s.path("dp")), ["\"KB5034122\""]);
    assert!(!inbox.exists(), "nothing arrived and nothing was refreshed: no notification");
    // A bundle arrives: the pass's change report is sent to the configured command.
    std::fs::copy(&two, drop.join("two.zip")).unwrap();
    set_modified(&drop.join("two.zip"), SystemTime::now() - Duration::from_secs(60));
    let third = passes(watch(&s, &["--drop", drop.to_str().unwrap(), "--once", "--set", &command]), 0);
    let sent = data(&std::fs::read_to_string(&inbox).unwrap());
    assert_eq!(sent["id"], third[0]["report"], "{sent}");
    assert_eq!(sent["sources"][0]["outcome"], "accepted");
}

fn set_modified(path: &Path, when: SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
}

#[test]
fn the_daily_refresh_runs_once_after_its_time_even_without_bundles() {
    let s = update_list_server();
    let drop = s.path("drop");
    std::fs::create_dir_all(&drop).unwrap();
    // The import's refresh ran a moment ago; the daily time is set to just after it.
    std::thread::sleep(Duration::from_millis(1100));
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() % 86_400;
    let at = format!("watch.daily_refresh={:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let args = ["--drop", drop.to_str().unwrap(), "--once", "--set", at.as_str()];
    let first = passes(watch(&s, &args), 0);
    let report = first[0]["daily_refresh"].as_u64().expect("the daily refresh ran");
    let shown: serde_json::Value = data(&s.ingest(&["report", &report.to_string(), "--format", "json"]).ok());
    assert_eq!(shown["kind"], "refresh");
    assert!(shown["by"].as_str().unwrap().starts_with("ingest watch (daily refresh at"), "{shown}");
    let second = passes(watch(&s, &args), 0);
    assert!(second[0]["daily_refresh"].is_null(), "once a day: {second:?}");
    // No daily refresh configured: none runs.
    let third = passes(watch(&s, &["--drop", drop.to_str().unwrap(), "--once", "--set", "watch.daily_refresh="]), 0);
    assert!(third[0]["daily_refresh"].is_null());
}

#[test]
fn a_second_watcher_exits_with_a_clear_message() {
    let s = update_list_server();
    let drop = s.path("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let mut first = watch(&s, &["--drop", drop.to_str().unwrap(), "--interval", "3600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = s.data_dir().join("watch.lock");
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |t| t.trim() != first.id().to_string()) {
        assert!(started.elapsed() < Duration::from_secs(20), "the first watcher did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = watch(&s, &["--drop", drop.to_str().unwrap(), "--once"]).output().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(exit::BUSY), "{stderr}");
    assert!(
        stderr.contains(&format!("another ingest watch (process {}) is running on data directory", first.id())),
        "{stderr}"
    );
    // Other commands are not kept out between passes.
    s.ingest(&["approve", "KB5034122"]).ok();
}

#[test]
fn a_drop_it_cannot_move_files_out_of_is_read_once_per_file() {
    let (s, [one, two, _]) = server_with_three_bundles();
    let stick = s.path("stick");
    std::fs::create_dir_all(&stick).unwrap();
    // processed/ and rejected/ cannot be made: the files stay where they are.
    std::fs::write(stick.join("processed"), "").unwrap();
    std::fs::write(stick.join("rejected"), "").unwrap();
    std::fs::copy(&one, stick.join("one.zip")).unwrap();
    std::fs::write(stick.join("junk.zip"), "not a zip").unwrap();
    for f in ["one.zip", "junk.zip"] {
        set_modified(&stick.join(f), SystemTime::now() - Duration::from_secs(60));
    }
    let first = passes(watch(&s, &["--drop", stick.to_str().unwrap(), "--once"]), exit::BUNDLE);
    let dispositions: Vec<&str> =
        first[0]["bundles"].as_array().unwrap().iter().map(|b| b["disposition"].as_str().unwrap()).collect();
    assert_eq!(dispositions, ["remembered", "remembered"], "{first:?}");
    let second = passes(watch(&s, &["--drop", stick.to_str().unwrap(), "--once"]), 0);
    assert_eq!(second[0]["remembered"], 2);
    assert!(second[0]["bundles"].as_array().unwrap().is_empty() && second[0]["report"].is_null());
    // A new file on the stick (another size and time) is read.
    std::fs::copy(&two, stick.join("one.zip")).unwrap();
    set_modified(&stick.join("one.zip"), SystemTime::now() - Duration::from_secs(30));
    let third = passes(watch(&s, &["--drop", stick.to_str().unwrap(), "--once"]), 0);
    assert_eq!(third[0]["bundles"][0]["outcome"], "accepted", "{third:?}");
}

#[test]
fn no_drop_folder_given_is_refused() {
    let s = update_list_server();
    let out = watch(&s, &["--once"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::INPUT), "{stderr}");
    assert!(
        stderr.contains("no drop folder: give --drop DIR (or --inventories DIR, --results DIR), or set watch.drop")
    );
}

#[test]
fn drop_folder_not_a_directory_is_refused() {
    let s = update_list_server();
    let file = s.path("drop-is-a-file");
    std::fs::write(&file, "").unwrap();
    let out = watch(&s, &["--once", "--drop", file.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::INPUT), "{stderr}");
    assert!(stderr.contains("drop-is-a-file is not a directory"), "{stderr}");
}

#[test]
fn daily_refresh_time_malformed_is_refused() {
    let s = update_list_server();
    let drop = s.path("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let out =
        watch(&s, &["--once", "--drop", drop.to_str().unwrap(), "--set", "watch.daily_refresh=3am"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::INPUT), "{stderr}");
    assert!(stderr.contains("watch.daily_refresh") && stderr.contains("expected HH:MM"), "{stderr}");
}

#[test]
fn an_absent_drop_folder_is_a_warning_not_a_failure() {
    let s = update_list_server();
    let stick = s.path("stick-not-plugged-in");
    let out = watch(&s, &["--once", "--drop", stick.to_str().unwrap()]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("stick-not-plugged-in is not there"), "{stderr}");
}

#[test]
fn interval_zero_is_refused() {
    let s = update_list_server();
    let drop = s.path("drop");
    std::fs::create_dir_all(&drop).unwrap();
    for (args, says) in [
        (vec!["--interval", "0"], "--interval 0: give at least one second"),
        (vec!["--set", "watch.interval_seconds=0"], "watch.interval_seconds is 0"),
    ] {
        let out =
            watch(&s, &[&["--once", "--drop", drop.to_str().unwrap()], args.as_slice()].concat()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::INPUT), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}

#[test]
fn service_commands_on_linux_name_the_systemd_units() {
    // `ingest service` manages a Windows service (driven under wine by .ci/windows/run); on
    // Linux a systemd unit runs the watcher, and each subcommand says so.
    let s = Scratch::new();
    for command in ["install", "start", "stop", "uninstall"] {
        s.ingest(&["service", command])
            .refused(exit::USAGE, &["Windows service", "samples/schedule/ferry-ingest-watch.service"]);
    }
    assert!(!s.data_dir().exists(), "nothing was made");
}
