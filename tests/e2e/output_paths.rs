//! Files a person asks ingest to write (`--out`, `--receipt`): never inside the data
//! directory however the path is spelt, never renamed over a symbolic link or a device, with
//! the umask respected, and `-` for standard output (and standard input for CSV imports).
//! Each test is named after the output path that would have done harm.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::{Command, Stdio};

use crate::support::*;

/// Every way an output can be asked for, with `path` as its file.
fn outputs(s: &Scratch, path: &str) -> Vec<Vec<String>> {
    let bundle = s.path("media-copy.zip");
    if !bundle.exists() {
        let media = walk(&s.media());
        std::fs::copy(s.media().join(&media[0]), &bundle).unwrap();
    }
    let b = bundle.to_str().unwrap().to_string();
    [
        vec!["export-list", "--out", path],
        vec!["export-groups", "--out", path],
        vec!["report", "--format", "html", "--out", path],
        vec!["state", "export", "--out", path],
        vec!["server-key", "export", "--out", path],
        vec!["import", &b, "--receipt", path],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect()
}

fn run(s: &Scratch, args: &[String]) -> Run {
    s.ingest(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Every file of the data directory with its size, the registry's aside (its pages move
/// between the WAL and the main file whenever it is opened).
fn data_dir_snapshot(s: &Scratch) -> Vec<(String, u64)> {
    let mut files: Vec<String> = walk(&s.data_dir())
        .into_iter()
        .filter(|f| !f.ends_with(".lock") && !f.starts_with("registry.sqlite"))
        .collect();
    files.sort();
    files.into_iter().map(|f| (f.clone(), std::fs::metadata(s.data_dir().join(&f)).unwrap().len())).collect()
}

#[test]
fn output_into_the_data_directory() {
    let s = update_list_server();
    symlink(s.data_dir(), s.path("innocent-looking")).unwrap();
    let registry = s.data_dir().join("registry.sqlite");
    let spellings = [
        registry.to_str().unwrap().to_string(),
        s.data_dir().join("store/../registry.sqlite").to_str().unwrap().to_string(),
        s.path("innocent-looking/registry.sqlite").to_str().unwrap().to_string(),
        s.data_dir().join("new-file.csv").to_str().unwrap().to_string(),
    ];
    let (before, files) = (s.state(), data_dir_snapshot(&s));
    for path in &spellings {
        for args in outputs(&s, path) {
            run(&s, &args).refused(exit::INPUT, &["inside the data directory", "nothing can overwrite the registry"]);
        }
    }
    assert_eq!(s.state(), before);
    assert_eq!(data_dir_snapshot(&s), files, "the data directory is as it was");
}

#[test]
fn output_is_a_link_to_the_registry() {
    let s = update_list_server();
    let planted = s.path("shared/report.html");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    symlink(s.data_dir().join("registry.sqlite"), &planted).unwrap();
    let elsewhere = s.path("shared/notes.txt");
    std::fs::write(&elsewhere, "somebody's notes").unwrap();
    let planted_elsewhere = s.path("shared/list.csv");
    symlink(&elsewhere, &planted_elsewhere).unwrap();
    // The server key exists already (made on first use), so that the snapshot can be exact.
    s.ingest(&["server-key", "export", "--out", s.path("server.pub").to_str().unwrap()]).ok();
    let (before, files) = (s.state(), data_dir_snapshot(&s));
    for path in [&planted, &planted_elsewhere] {
        for args in outputs(&s, path.to_str().unwrap()) {
            let refused = run(&s, &args);
            // Into the data directory through the link, or a link to a file elsewhere.
            assert_eq!(refused.code, exit::INPUT, "{args:?}: {}", refused.stderr);
            assert!(
                refused.stderr.contains("is a symbolic link to")
                    || refused.stderr.contains("inside the data directory"),
                "{args:?}: {}",
                refused.stderr
            );
        }
        assert!(std::fs::symlink_metadata(path).unwrap().file_type().is_symlink(), "the link stays a link");
    }
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "somebody's notes");
    assert_eq!(s.state(), before);
    assert_eq!(data_dir_snapshot(&s), files);
}

#[test]
fn output_to_dev_stdout() {
    let s = update_list_server();
    let out = s.ingest(&["report", "--format", "html", "--out", "/dev/stdout"]).ok();
    assert!(out.contains("<!DOCTYPE html>") || out.contains("<html"), "{out}");
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink(), "/dev/stdout is still a link");
    // A device has no "beside it" for the signature: it goes where --signature says.
    s.ingest(&["export-list", "--out", "/dev/stdout"])
        .refused(exit::INPUT, &["--out /dev/stdout is not a file that a signature can sit beside"]);
    let signature = s.path("list.csv.minisig");
    let out = s.ingest(&["export-list", "--out", "/dev/stdout", "--signature", signature.to_str().unwrap()]).ok();
    assert!(out.starts_with("\u{feff}id,"), "{out}");
    assert!(std::fs::read_to_string(&signature).unwrap().contains("trusted comment: ferry-list v1 kind=list"));
}

#[test]
fn output_dash_is_standard_output_and_input() {
    let a = update_list_server();
    let exported = Command::new(&*INGEST)
        .arg("--data-dir")
        .arg(a.data_dir())
        .args(["export-list", "--out", "-", "--signature"])
        .arg(a.path("list.minisig"))
        .env("USER", "tester")
        .output()
        .unwrap();
    let csv = String::from_utf8(exported.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&exported.stderr);
    assert!(exported.status.success(), "{stderr}");
    assert!(stderr.contains("updates written to standard output"), "{stderr}");
    assert!(csv.starts_with("\u{feff}id,") && csv.lines().count() == 6, "header and five updates:\n{csv}");
    assert!(!a.path("-").exists(), "no file named -");

    // Another server reads it from standard input.
    let b = Scratch::new();
    let (_, public) = b.key("signer");
    b.trust(&public);
    trust_peer(&b, &a);
    let mut child = Command::new(&*INGEST)
        .arg("--data-dir")
        .arg(b.data_dir())
        .args(["import-list", "-", "--signature"])
        .arg(a.path("list.minisig"))
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), csv.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = Run::from(child.wait_with_output().unwrap()).ok();
    assert!(out.contains("imported 5 rows from standard input"), "{out}");
    assert_eq!(listed(&b, &[]).len(), 5);

    let report = a.ingest(&["report", "--format", "json", "--out", "-"]).ok();
    assert!(serde_json::from_str::<serde_json::Value>(&report).is_ok(), "{report}");
}

#[test]
fn output_under_a_strict_umask() {
    let s = update_list_server();
    let out = s.path("private/list.csv");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 077; exec "$0" --data-dir "$1" export-list --out "$2""#)
        .arg(&*INGEST)
        .arg(s.data_dir())
        .arg(&out)
        .env("USER", "tester")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600, "the umask is respected");
    // A file replaced keeps the mode its owner gave it.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    s.ingest(&["export-list", "--out", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o640);
}

/// Each error is said once: the operating system's message and the path appear one time,
/// not again inside a library's own wording ("… at path …").
#[test]
fn output_into_a_missing_folder() {
    let s = update_list_server();
    let out = s.ingest(&["export-list", "--out", "/nonexistent-ferry-folder/list.csv"]);
    let stderr = out.refused(exit::LOCAL, &["/nonexistent-ferry-folder: No such file or directory"]);
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
    assert!(!stderr.contains("at path"), "{stderr}");
}
