//! Paths that someone else can write to, on the command line and in drop folders: links named
//! like a hotfix, FIFOs named like a bundle, `processed/` and `rejected/` planted as links,
//! names carrying terminal escape sequences. Only plain files are read, nothing waits forever,
//! nothing lands outside the drop folder, and names reach the terminal made harmless.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

const PATIENCE: Duration = Duration::from_secs(30);

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success(), "mkfifo {}", path.display());
}

fn store_files(s: &Scratch) -> Vec<String> {
    let mut files = walk(&s.data_dir().join("store"));
    files.sort();
    files
}

/// A server trusting a signer, a bundle it signed, and an empty drop folder.
fn server_with_a_bundle_and_a_drop_folder() -> (Scratch, std::path::PathBuf, std::path::PathBuf) {
    let s = Scratch::new();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let good = s.pack(local_catalog(&s.path("feed"), &three_updates()).to_str().unwrap(), &secret, &[]);
    let drop = s.path("drop");
    std::fs::create_dir_all(&drop).unwrap();
    (s, good, drop)
}

/// One pass of `ingest watch` over `drop`, not waiting for files to settle.
fn watch_once(s: &Scratch, drop: &Path) -> Run {
    Run::from(
        Command::new(&*INGEST)
            .arg("--data-dir")
            .arg(s.data_dir())
            .args(["watch", "--once", "--settle", "0", "--drop"])
            .arg(drop)
            .env("USER", "tester")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

const NEW_UPDATE: [&str; 4] = ["--product", "Windows 11", "--classification", "security-update"];

#[test]
fn link_named_like_a_hotfix() {
    let s = update_list_server();
    let secret = s.path("etc/shadow");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, b"root:$6$secret:19000:0:99999:7:::\n").unwrap();
    let link = s.path("Downloads/windows11.0-kb5050001-x64.msu");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(&secret, &link).unwrap();
    let (before, files) = (s.state(), store_files(&s));
    s.ingest(&[&["register", link.to_str().unwrap()][..], &NEW_UPDATE].concat())
        .refused(exit::INPUT, &[&format!("is a symbolic link to {}", secret.display()), "--follow-symlinks"]);
    assert_eq!((s.state(), store_files(&s)), (before, files), "a refusal changes nothing");

    // Said explicitly, the link is read, and where it led is printed.
    let out = s.ingest(&[&["register", link.to_str().unwrap(), "--follow-symlinks"][..], &NEW_UPDATE].concat()).ok();
    assert!(out.contains(&format!("read through the symbolic link to {}", secret.display())), "{out}");
}

#[test]
fn fifo_named_like_a_hotfix() {
    let s = update_list_server();
    let fifo = s.path("Downloads/windows11.0-kb5050002-x64.msu");
    mkfifo(&fifo);
    let (before, files) = (s.state(), store_files(&s));
    s.ingest_within(PATIENCE, &[&["register", fifo.to_str().unwrap()][..], &NEW_UPDATE].concat())
        .refused(exit::INPUT, &["windows11.0-kb5050002-x64.msu: is a FIFO, socket or device, not a plain file"]);
    assert_eq!((s.state(), store_files(&s)), (before, files), "a refusal changes nothing");
    // The lock was given back: the next command runs.
    s.ingest(&["refresh"]).ok();
}

#[test]
fn fifo_named_like_a_bundle() {
    let s = update_list_server();
    let fifo = s.path("media/ferry-default-000002.zip");
    mkfifo(&fifo);
    let before = s.state();
    s.ingest_within(PATIENCE, &["import", fifo.to_str().unwrap()])
        .refused(exit::INPUT, &["ferry-default-000002.zip: is a FIFO, socket or device, not a plain file"]);
    s.ingest_within(PATIENCE, &["verify", fifo.to_str().unwrap()]).refused(exit::INPUT, &["is a FIFO"]);
    assert_eq!(s.state(), before);
}

#[test]
fn manual_id_taken_by_another_update() {
    // A registry that holds, under the id a file registered by hand would get, another
    // update (written before catalogs were kept out of the manual- namespace).
    let s = update_list_server();
    let file = s.path("Downloads/windows11.0-kb5050003-x64.msu");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, payload("urgent", 20_000)).unwrap();
    let id = format!("manual-{}", &sha256_hex(&std::fs::read(&file).unwrap())[..16]);
    let db = rusqlite::Connection::open(s.data_dir().join("registry.sqlite")).unwrap();
    db.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    for (table, column) in [("updates", "id"), ("update_metadata", "update_id"), ("update_files", "update_id")] {
        db.execute(&format!("UPDATE {table} SET {column} = ?1 WHERE {column} = '7zip.7zip@24.09'"), [&id]).unwrap();
    }
    drop(db);
    let (before, files) = (s.state(), store_files(&s));
    s.ingest(&[&["register", file.to_str().unwrap()][..], &NEW_UPDATE].concat()).refused(
        exit::INPUT,
        &[
            "windows11.0-kb5050003-x64.msu would become manual update",
            &id,
            "that id is taken by another update with other files (7z2409-x64.exe",
        ],
    );
    assert_eq!((s.state(), store_files(&s)), (before, files));
}

#[test]
fn processed_and_rejected_are_links_out_of_the_drop_folder() {
    let (s, good, drop) = server_with_a_bundle_and_a_drop_folder();
    std::fs::copy(&good, drop.join("good.zip")).unwrap();
    std::fs::write(drop.join("bad.zip"), b"not a zip").unwrap();
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir_all(elsewhere.join("inner")).unwrap();
    symlink(elsewhere.join("inner"), drop.join("processed")).unwrap();
    symlink(&elsewhere, drop.join("rejected")).unwrap();

    let run = watch_once(&s, &drop);
    // Somebody else's links: neither followed nor removed; the files stay, remembered.
    let stdout = run.refused_on_stdout(
        exit::BUNDLE,
        &[
            "processed: is a symbolic link, not a directory",
            "rejected: is a symbolic link, not a directory",
            "it is not read again while unchanged",
        ],
    );
    assert!(walk(&elsewhere).is_empty(), "nothing lands outside the drop folder: {:?}", walk(&elsewhere));
    assert!(std::fs::symlink_metadata(drop.join("processed")).unwrap().file_type().is_symlink(), "{stdout}");
    assert!(drop.join("good.zip").is_file() && drop.join("bad.zip").is_file());
}

#[test]
fn escape_sequences_in_a_dropped_file_name() {
    let (s, good, drop) = server_with_a_bundle_and_a_drop_folder();
    let named = drop.join("update\u{1b}]0;owned\u{7}\u{1b}[2J.zip");
    std::fs::copy(&good, &named).unwrap();
    let out = s.ingest(&["verify", named.to_str().unwrap()]).ok();
    assert!(!out.contains('\u{1b}') && out.contains("update.zip"), "{out:?}");
    let out = s.ingest(&["import", named.to_str().unwrap()]).ok();
    assert!(!out.contains('\u{1b}') && out.contains("imported: ") && out.contains("update.zip"), "{out:?}");

    std::fs::write(drop.join("bad\u{1b}[31m.zip"), b"not a zip").unwrap();
    let run = watch_once(&s, &drop);
    let stdout = run.refused_on_stdout(exit::BUNDLE, &["bad.zip", "update.zip"]);
    assert!(!stdout.contains('\u{1b}') && !stdout.contains('\u{7}'), "{stdout:?}");
}
