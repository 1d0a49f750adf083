//! Paths longer than Windows' old 260-character limit: a data directory nested deep enough
//! that every stored file's path is longer works as any other (under wine this drives the
//! Windows programs' long-path handling: std's `\\?\` paths and handle-relative opens).

use crate::support::*;

fn ingest_in(data: &std::path::Path, args: &[&str]) -> Run {
    Run::from(
        std::process::Command::new(&*INGEST)
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .env("USER", "tester")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
}

#[test]
fn a_data_directory_deeper_than_260_characters() {
    let a = Accepted::new();
    let mut deep = a.s.path("deep");
    while deep.as_os_str().len() < 300 {
        deep.push("a-folder-name-of-some-length");
    }
    let data = deep.join("data");
    ingest_in(&data, &["trust", "add", a.s.path("signer.pub").to_str().unwrap()]).ok();
    let out = ingest_in(&data, &["import", a.next.to_str().unwrap()]).ok();
    assert!(out.contains("imported:") && out.contains("3 files newly stored"), "{out}");
    let stored = walk(&data.join("store"));
    assert!(!stored.is_empty());
    assert!(stored.iter().all(|f| data.join("store").join(f).as_os_str().len() > 300), "{stored:?}");
    let checked = ingest_in(&data, &["check"]).ok();
    assert!(checked.contains("clean"), "{checked}");
    let listed = ingest_in(&data, &["list", "--json"]).ok();
    assert_eq!(listed.lines().count(), 3, "{listed}");
}
