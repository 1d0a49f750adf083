//! A distribution point is a share that clients and other administrators can write to. What
//! they edit or plant there (an edit in place, links, FIFOs, directories at file names) must
//! never reach the content store, make publish write or delete outside the point, or make
//! ingest wait forever: publish puts the point right and says what it repaired, `dp verify`
//! reports it. Each test is named after what was planted.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Long enough for a slow machine, far shorter than "forever".
const PATIENCE: Duration = Duration::from_secs(30);

fn point(s: &Scratch) -> PathBuf {
    s.path("dp-hq")
}

fn point_arg(s: &Scratch) -> String {
    point(s).to_str().unwrap().to_string()
}

/// The update-list server with three approved updates published once to `hq`.
fn published() -> Scratch {
    let s = update_list_server();
    s.ingest(&["approve", "KB5034122", "7zip.7zip@24.09", "VideoLAN.VLC@3.0.21"]).ok();
    s.ingest(&["dp", "add", "hq", "--path", &point_arg(&s), "--approved"]).ok();
    s.ingest(&["publish"]).ok();
    s
}

/// Every published file: (its path in the point, the store's copy of it).
fn published_files(s: &Scratch) -> Vec<(PathBuf, PathBuf)> {
    let mut rels = walk(&point(s).join("files"));
    rels.sort();
    rels.into_iter()
        .map(|rel| {
            let digest = rel[3..67].to_string();
            (point(s).join("files").join(&rel), s.data_dir().join("store/sha256").join(&digest[..2]).join(&digest))
        })
        .collect()
}

/// A directory outside the point holding what someone else owns, including numbered
/// directories that look like generations.
fn bystander(s: &Scratch, name: &str) -> PathBuf {
    let dir = s.path(name);
    for g in ["1", "2", "3"] {
        std::fs::create_dir_all(dir.join(g)).unwrap();
        std::fs::write(dir.join(g).join("index.json"), b"not ferry's").unwrap();
    }
    std::fs::write(dir.join("precious.txt"), b"not ferry's either").unwrap();
    dir
}

fn untouched(dir: &Path) {
    let mut found = walk(dir);
    found.sort();
    assert_eq!(found, ["1/index.json", "2/index.json", "3/index.json", "precious.txt"], "{}", dir.display());
    assert_eq!(std::fs::read(dir.join("precious.txt")).unwrap(), b"not ferry's either");
}

/// The store is whole and unchanged by what happened on the share.
fn store_intact(s: &Scratch, before: &[String]) {
    s.ingest(&["check"]).ok();
    let mut now = walk(&s.data_dir().join("store"));
    now.sort();
    assert_eq!(now, before, "the store's files");
}

fn store_files(s: &Scratch) -> Vec<String> {
    let mut files = walk(&s.data_dir().join("store"));
    files.sort();
    files
}

fn verified_intact(s: &Scratch) {
    let out = s.ingest_within(PATIENCE, &["dp", "verify", &point_arg(s)]).ok();
    assert!(out.contains("intact: every file present"), "{out}");
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn published_file_edited_in_place() {
    let s = published();
    let before = store_files(&s);
    for (published, stored) in published_files(&s) {
        let meta = std::fs::metadata(&published).unwrap();
        assert_eq!(meta.nlink(), 1, "{} has other names", published.display());
        assert_ne!(
            meta.ino(),
            std::fs::metadata(&stored).unwrap().ino(),
            "{} is the store's file",
            published.display()
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o444, "{}: readable by the web server", published.display());
    }
    // A client with a writable share (or the file's owner) edits a published file in place.
    let (victim, _) = &published_files(&s)[0];
    std::fs::set_permissions(victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(victim).unwrap();
    file.write_all(b"MZ planted").unwrap();
    drop(file);

    store_intact(&s, &before);
    s.ingest(&["dp", "verify", &point_arg(&s)]).refused_on_stdout(exit::INTEGRITY, &["corrupt", "SHA-256"]);
    let out = s.ingest(&["publish", "--check"]).ok();
    assert!(out.contains("1 replaced what was there"), "{out}");
    verified_intact(&s);
    store_intact(&s, &before);
}

#[test]
fn point_hard_linked_to_the_store() {
    // What earlier versions published on the store's file system: the store's own inodes.
    let s = published();
    let before = store_files(&s);
    for (published, stored) in published_files(&s) {
        std::fs::remove_file(&published).unwrap();
        std::fs::hard_link(&stored, &published).unwrap();
    }
    let out = s.ingest(&["publish"]).ok();
    assert_eq!(out.matches("(a hard link); replaced by a copy of its own").count(), 3, "{out}");
    for (published, stored) in published_files(&s) {
        assert_eq!(std::fs::metadata(&published).unwrap().nlink(), 1, "{}", published.display());
        assert_eq!(std::fs::metadata(&stored).unwrap().nlink(), 1, "{}", stored.display());
    }
    verified_intact(&s);
    store_intact(&s, &before);
    let again = s.ingest(&["publish"]).ok();
    assert!(!again.contains("repaired"), "put right once: {again}");
}

#[test]
fn files_directory_is_a_link_to_another_directory() {
    let s = published();
    let elsewhere = bystander(&s, "elsewhere");
    std::fs::remove_dir_all(point(&s).join("files")).unwrap();
    symlink(&elsewhere, point(&s).join("files")).unwrap();
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21"]).ok();
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("files was a symbolic link; replaced by a directory"), "{out}");
    untouched(&elsewhere);
    assert!(std::fs::symlink_metadata(point(&s).join("files")).unwrap().is_dir());
    verified_intact(&s);
}

#[test]
fn files_directory_is_a_link_to_the_store() {
    let s = published();
    let before = store_files(&s);
    std::fs::remove_dir_all(point(&s).join("files")).unwrap();
    symlink(s.data_dir().join("store/sha256"), point(&s).join("files")).unwrap();
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21", "7zip.7zip@24.09"]).ok();
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("files was a symbolic link"), "{out}");
    // Once more, so that pruning runs over what the link pointed at.
    s.ingest(&["decline", "KB5034122"]).ok();
    s.ingest(&["publish"]).ok();
    store_intact(&s, &before);
}

#[test]
fn files_subdirectory_is_a_link_elsewhere() {
    let s = published();
    let elsewhere = bystander(&s, "elsewhere");
    let (first, _) = &published_files(&s)[0];
    let fan_out = first.parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&fan_out).unwrap();
    symlink(&elsewhere, &fan_out).unwrap();
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("was a symbolic link; replaced by a directory"), "{out}");
    untouched(&elsewhere);
    assert!(std::fs::symlink_metadata(&fan_out).unwrap().is_dir());
    assert!(std::fs::symlink_metadata(first).unwrap().is_file());
    verified_intact(&s);
}

#[test]
fn generations_directory_is_a_link_elsewhere() {
    let s = published();
    let elsewhere = bystander(&s, "elsewhere");
    std::fs::remove_dir_all(point(&s).join("generations")).unwrap();
    symlink(&elsewhere, point(&s).join("generations")).unwrap();
    // Three publishes with changes: pruning of old generations runs twice.
    for id in ["VideoLAN.VLC@3.0.21", "7zip.7zip@24.09", "KB5034122"] {
        s.ingest(&["decline", id]).ok();
        s.ingest(&["publish"]).ok();
    }
    untouched(&elsewhere);
    let generations = walk(&point(&s).join("generations"));
    assert!(!generations.is_empty() && generations.iter().all(|g| !g.starts_with('1')), "{generations:?}");
    verified_intact(&s);
}

#[test]
fn generation_number_is_a_link_elsewhere() {
    let s = published();
    let elsewhere = bystander(&s, "elsewhere");
    symlink(elsewhere.join("1"), point(&s).join("generations/7")).unwrap();
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21"]).ok();
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("generations/7 was a symbolic link; removed"), "{out}");
    assert!(out.contains("published as generation 2"), "a planted number is not counted: {out}");
    untouched(&elsewhere);
}

#[test]
fn current_is_a_fifo() {
    let s = published();
    let current = point(&s).join("current");
    std::fs::remove_file(&current).unwrap();
    mkfifo(&current);
    s.ingest_within(PATIENCE, &["dp", "verify", &point_arg(&s)])
        .refused(exit::SIGNATURE, &["current is a FIFO, socket or device, not a plain file"]);
    let out = s.ingest_within(PATIENCE, &["publish"]).ok();
    assert!(out.contains("repaired: current is a FIFO"), "{out}");
    assert!(out.contains("published as generation 2"), "{out}");
    assert_eq!(std::fs::read_to_string(&current).unwrap(), "2\n");
    verified_intact(&s);
}

#[test]
fn current_is_a_link_elsewhere() {
    let s = published();
    let elsewhere = bystander(&s, "elsewhere");
    let current = point(&s).join("current");
    std::fs::remove_file(&current).unwrap();
    symlink(elsewhere.join("precious.txt"), &current).unwrap();
    s.ingest(&["dp", "verify", &point_arg(&s)])
        .refused(exit::SIGNATURE, &["current is a symbolic link, not a plain file"]);
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("repaired: current is a symbolic link"), "{out}");
    untouched(&elsewhere);
    assert!(std::fs::symlink_metadata(&current).unwrap().is_file());
    verified_intact(&s);
}

#[test]
fn current_holds_text_that_is_no_generation() {
    let s = published();
    std::fs::write(point(&s).join("current"), "../../etc\n").unwrap();
    s.ingest(&["dp", "verify", &point_arg(&s)])
        .refused(exit::SIGNATURE, &["current holds \"../../etc\\n\", not a generation number"]);
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("repaired: current holds"), "{out}");
    verified_intact(&s);
}

#[test]
fn directory_planted_at_a_file_name() {
    let s = published();
    let (victim, _) = &published_files(&s)[0];
    std::fs::remove_file(victim).unwrap();
    std::fs::create_dir_all(victim.join("inside")).unwrap();
    std::fs::write(victim.join("inside/setup.exe"), b"planted").unwrap();
    s.ingest(&["dp", "verify", &point_arg(&s)])
        .refused_on_stdout(exit::INTEGRITY, &["is a directory, not a plain file"]);
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("was a directory; replaced by the published file"), "{out}");
    verified_intact(&s);
}

#[test]
fn link_planted_at_a_file_name() {
    let s = published();
    let elsewhere = bystander(&s, "elsewhere");
    let (victim, _) = &published_files(&s)[0];
    std::fs::remove_file(victim).unwrap();
    symlink(elsewhere.join("precious.txt"), victim).unwrap();
    s.ingest(&["dp", "verify", &point_arg(&s)])
        .refused_on_stdout(exit::INTEGRITY, &["is a symbolic link, not a plain file"]);
    let out = s.ingest(&["publish", "--check"]).ok();
    assert!(out.contains("was a symbolic link; replaced by the published file"), "{out}");
    untouched(&elsewhere);
    verified_intact(&s);
}

#[test]
fn fifo_planted_at_a_file_name() {
    let s = published();
    let (victim, _) = &published_files(&s)[0];
    std::fs::remove_file(victim).unwrap();
    mkfifo(victim);
    s.ingest_within(PATIENCE, &["dp", "verify", &point_arg(&s)])
        .refused_on_stdout(exit::INTEGRITY, &["is a FIFO, socket or device"]);
    let out = s.ingest_within(PATIENCE, &["publish", "--check"]).ok();
    assert!(out.contains("was a FIFO, socket or device; replaced"), "{out}");
    verified_intact(&s);
}

#[test]
fn extra_link_and_fifo_are_pruned_without_being_followed() {
    let s = published();
    let elsewhere = bystander(&s, "elsewhere");
    let (first, _) = &published_files(&s)[0];
    symlink(&elsewhere, point(&s).join("files/zz")).unwrap();
    symlink(elsewhere.join("precious.txt"), first.parent().unwrap().join("planted.exe")).unwrap();
    mkfifo(&first.parent().unwrap().join("planted.pipe"));
    let found = s.ingest_within(PATIENCE, &["dp", "verify", &point_arg(&s)]).refused_on_stdout(
        exit::INTEGRITY,
        &["files/zz (a symbolic link)", "planted.exe (a symbolic link)", "planted.pipe (a FIFO, socket or device)"],
    );
    assert!(found.contains("3 extra"), "{found}");
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21"]).ok();
    let out = s.ingest_within(PATIENCE, &["publish"]).ok();
    assert!(out.contains("pruned 3 files"), "{out}");
    untouched(&elsewhere);
    verified_intact(&s);
}

#[test]
fn file_name_too_long_for_a_point() {
    // The model accepts names of up to 255 bytes; beside a 64-digit digest they no longer fit
    // one path component, so the point shortens them, keeping the extension.
    let s = update_list_server();
    let dir = s.path("by-hand");
    std::fs::create_dir_all(&dir).unwrap();
    let ascii = format!("{}.msu", "a".repeat(246));
    let accented = format!("{}.cab", "é".repeat(120));
    for (name, seed) in [(&ascii, "ascii"), (&accented, "accented")] {
        std::fs::write(dir.join(name), payload(seed, 5_000)).unwrap();
    }
    let out = s
        .ingest(&[
            "register",
            dir.join(&ascii).to_str().unwrap(),
            dir.join(&accented).to_str().unwrap(),
            "--product",
            "Windows 11",
            "--classification",
            "security-update",
        ])
        .ok();
    let id = out.split_whitespace().find(|w| w.starts_with("manual-")).unwrap().trim_end_matches([':', ',']);
    s.ingest(&["approve", id]).ok();
    s.ingest(&["dp", "add", "hq", "--path", &point_arg(&s), "--approved"]).ok();
    s.ingest(&["publish"]).ok();
    let published = walk(&point(&s).join("files"));
    assert_eq!(published.len(), 2, "{published:?}");
    for rel in &published {
        let name = rel.rsplit('/').next().unwrap();
        assert!(name.len() <= 255, "{name} is {} bytes", name.len());
        assert!(name.ends_with("~.msu") || name.ends_with("~.cab"), "{name}");
        assert!(name.starts_with(&rel[3..67]), "{name} starts with its digest");
    }
    verified_intact(&s);
}

#[test]
fn one_file_under_two_names() {
    // Two updates list the same bytes under different names: both names wait in one
    // directory of the point before either is renamed into place.
    let s = Scratch::new();
    let body = payload("shared", 30_000);
    let mut first = TestUpdate::new("KB5000001", "Windows 11", "windows11.0-kb5000001-x64.msu", 1);
    let mut second = TestUpdate::new("KB5000002", "Windows Server", "windowsserver-kb5000002-x64.msu", 1);
    first.body = body.clone();
    second.body = body;
    let catalog = local_catalog(&s.path("feed"), &[first, second]);
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let bundle = s.pack(catalog.to_str().unwrap(), &secret, &[]);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    s.ingest(&["approve", "KB5000001", "KB5000002"]).ok();
    s.ingest(&["dp", "add", "hq", "--path", &point_arg(&s), "--approved"]).ok();
    s.ingest(&["publish"]).ok();
    let mut published = walk(&point(&s).join("files"));
    published.sort();
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(
        published[0].ends_with("-windows11.0-kb5000001-x64.msu")
            || published[1].ends_with("-windows11.0-kb5000001-x64.msu")
    );
    verified_intact(&s);
}
