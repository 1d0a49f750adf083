//! Where ingest keeps its data when no directory is given: run as root, the system's
//! locations (`/var/lib/ferry/ingest`, `ingest.toml` in `/etc/ferry`); run by anyone else,
//! their own data directory. ingest says which and why (`config show`, and the first time
//! it makes one). Needs root, as CI runs, to be both.

use crate::support::*;

fn as_root() {
    if std::process::Command::new("id").arg("-u").output().unwrap().stdout != b"0\n" {
        panic!("this test runs as root (as CI does) to be both an administrator and another account");
    }
}

/// ingest with `args` and no data directory given, with `home` as HOME, as root or (with
/// `uid`) as a user id with no account.
fn ingest_without_a_data_dir(home: &std::path::Path, uid: Option<u32>, args: &[&str]) -> Run {
    let mut command = match uid {
        Some(uid) => {
            let mut c = std::process::Command::new("setpriv");
            c.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups", INGEST.as_str()]);
            c
        }
        None => std::process::Command::new(INGEST.as_str()),
    };
    let out = command
        .args(args)
        .env_remove("FERRY_DATA_DIR")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home)
        .current_dir(home)
        .output()
        .unwrap();
    Run::from(out)
}

#[test]
fn root_gets_the_system_location_and_is_told_so() {
    as_root();
    let home = tempfile::tempdir().unwrap();
    let out = ingest_without_a_data_dir(home.path(), None, &["config", "show"]).ok();
    assert!(out.contains("# data directory: /var/lib/ferry/ingest (system location: running as root)"), "{out}");
    assert!(out.contains("# /etc/ferry/ingest.toml"), "the configuration is read from /etc/ferry: {out}");
    let json = ingest_without_a_data_dir(home.path(), None, &["config", "show", "--json"]).ok();
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "data-directory");
    assert_eq!(first["data"]["dir"], "/var/lib/ferry/ingest");
    assert_eq!(first["data"]["config_file"], "/etc/ferry/ingest.toml");
    assert_eq!(first["data"]["system"], true);
}

#[test]
fn another_account_gets_its_own_data_directory_and_is_told_once() {
    as_root();
    let home = tempfile::tempdir().unwrap();
    assert!(std::process::Command::new("chmod").arg("a+rwx").arg(home.path()).status().unwrap().success());
    let own = home.path().join(".local/share/ferry/ingest");
    let out = ingest_without_a_data_dir(home.path(), Some(54321), &["config", "show"]).ok();
    assert!(
        out.contains(&format!(
            "# data directory: {} (this account's own data directory: not running as an administrator)",
            own.display()
        )),
        "{out}"
    );
    assert!(out.contains(&format!("# {}/ingest.toml", own.display())), "{out}");
    assert!(!own.exists(), "showing the configuration makes no directory");
    // The first command that writes makes it, and says where and why; the next says nothing.
    let first = ingest_without_a_data_dir(home.path(), Some(54321), &["check"]);
    assert!(
        first.stderr.contains(&format!("a new data directory, {} (this account's own data directory", own.display())),
        "{}",
        first.stderr
    );
    first.ok();
    assert!(own.join("registry.sqlite").is_file());
    let second = ingest_without_a_data_dir(home.path(), Some(54321), &["check"]);
    assert!(!second.stderr.contains("data directory"), "{}", second.stderr);
    second.ok();
}
