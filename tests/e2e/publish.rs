//! Publishing to distribution points: a real nginx on 127.0.0.1 serves what `ingest publish`
//! wrote, the stock `minisign` verifies the index, a reader of the previous index keeps
//! consistent files, `ingest dp verify` finds what a branch office's copy lost or gained,
//! and every refusal names what was wrong.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// nginx serving `root` on a free loopback port, as its own user, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn serve(root: &Path) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let prefix = dir.path();
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
                 fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
                 types {{ application/json json; }}\n  default_type application/octet-stream;\n\
                 server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
                p = prefix.display(),
                root = root.display()
            ),
        )
        .unwrap();
        let child = tool("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(prefix)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx is installed (.ci/run installs it)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, port, _dir: dir }
    }

    /// (status, body) of GET `path`.
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let response = reqwest::blocking::get(format!("http://127.0.0.1:{}/{path}", self.port)).unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().unwrap().to_vec())
    }

    fn get_ok(&self, path: &str) -> Vec<u8> {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}");
        body
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dp_dir(s: &Scratch) -> PathBuf {
    s.path("dp-hq")
}

/// The update-list server with its three standard updates approved and a distribution point
/// `hq` carrying every approved update.
fn published_server() -> Scratch {
    let s = update_list_server();
    s.ingest(&["approve", "KB5034122", "7zip.7zip@24.09", "VideoLAN.VLC@3.0.21"]).ok();
    s.ingest(&["dp", "add", "hq", "--path", dp_dir(&s).to_str().unwrap(), "--approved"]).ok();
    s
}

fn index_at(dir: &Path, generation: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("generations").join(generation).join("index.json")).unwrap())
        .unwrap()
}

fn index_ids(index: &serde_json::Value) -> Vec<String> {
    index["updates"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect()
}

/// (path, sha256) of every file an index lists.
fn index_files(index: &serde_json::Value) -> Vec<(String, String)> {
    index["updates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["files"].as_array().unwrap().iter())
        .map(|f| (f["path"].as_str().unwrap().to_string(), f["sha256"].as_str().unwrap().to_string()))
        .collect()
}

fn minisign_verifies(s: &Scratch, index: &[u8], signature: &[u8]) -> String {
    let (file, sig) = (s.path("downloaded-index.json"), s.path("downloaded-index.json.minisig"));
    std::fs::write(&file, index).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let out = tool("minisign")
        .arg("-V")
        .arg("-m")
        .arg(&file)
        .arg("-x")
        .arg(&sig)
        .arg("-p")
        .arg(s.data_dir().join("server.pub"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "minisign -V: {text}");
    text
}

#[test]
fn published_over_nginx_verified_by_minisign_and_a_reader_of_the_old_index_stays_consistent() {
    let s = published_server();
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("hq published as generation 1: 3 updates, 3 files"), "{out}");
    let web = Nginx::serve(&dp_dir(&s));

    // A client: the pointer, then the immutable generation it names, then a file.
    assert_eq!(web.get_ok("current"), b"1\n");
    let index = web.get_ok("generations/1/index.json");
    let signature = web.get_ok("generations/1/index.json.minisig");
    let said = minisign_verifies(&s, &index, &signature);
    assert!(said.contains("ferry-dp-index v1 dp=hq generation=1"), "{said}");
    let first: serde_json::Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(index_ids(&first), ["7zip.7zip@24.09", "KB5034122", "VideoLAN.VLC@3.0.21"]);
    let msu = &first["updates"][1];
    assert_eq!(msu["install"]["command"], "wusa.exe", "{msu}");
    assert_eq!(first["agent_return_codes"]["4"], "invalid Windows Script Host state");
    for (path, digest) in index_files(&first) {
        assert_eq!(sha256_hex(&web.get_ok(&path)), digest, "{path}");
    }

    // Declined: gone from the next generation, while a reader of generation 1 still gets
    // every file it lists, with its digest.
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21"]).ok();
    let out = s.ingest(&["publish", "hq"]).ok();
    assert!(
        out.contains("hq published as generation 2: 2 updates") && out.contains("removed: VideoLAN.VLC@3.0.21"),
        "{out}"
    );
    assert_eq!(web.get_ok("current"), b"2\n");
    let second: serde_json::Value = serde_json::from_slice(&web.get_ok("generations/2/index.json")).unwrap();
    assert_eq!(index_ids(&second), ["7zip.7zip@24.09", "KB5034122"]);
    for (path, digest) in index_files(&first) {
        assert_eq!(sha256_hex(&web.get_ok(&path)), digest, "a reader of generation 1 fetches {path}");
    }
    assert_eq!(web.get("generations/1/index.json").0, 200, "the previous generation stays");

    // One generation later nobody reads generation 1: it and the declined file are pruned.
    s.ingest(&["decline", "7zip.7zip@24.09"]).ok();
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("pruned 1 file and 1 old generation"), "{out}");
    let vlc = index_files(&first).into_iter().find(|(p, _)| p.ends_with("vlc-3.0.21-win64.exe")).unwrap().0;
    assert_eq!(web.get(&vlc).0, 404);
    assert_eq!(web.get("generations/1/index.json").0, 404);
    let zip = index_files(&second).into_iter().find(|(p, _)| p.ends_with("7z2409-x64.exe")).unwrap().0;
    assert_eq!(web.get(&zip).0, 200, "generation 2 is the previous one now: its files stay");

    let verified = s.ingest(&["dp", "verify", dp_dir(&s).to_str().unwrap()]).ok();
    assert!(verified.contains("intact"), "{verified}");
}

#[test]
fn publishing_again_with_nothing_changed_writes_no_generation_and_puts_back_a_lost_file() {
    let s = published_server();
    s.ingest(&["publish"]).ok();
    let out = s.ingest(&["publish", "--json"]).ok();
    let done: serde_json::Value = first_of(&out, "published");
    assert_eq!(done["new_generation"], false, "{done}");
    assert_eq!(done["generation"], 1);
    assert_eq!(done["placed"]["unchanged"], 3);

    let index = index_at(&dp_dir(&s), "1");
    let (lost, digest) = index_files(&index).remove(0);
    std::fs::remove_file(dp_dir(&s).join(&lost)).unwrap();
    let out = s.ingest(&["publish", "--json"]).ok();
    let done: serde_json::Value = first_of(&out, "published");
    assert_eq!(done["new_generation"], false);
    assert_eq!(done["placed"]["unchanged"], 2);
    assert_eq!(sha256_hex(&std::fs::read(dp_dir(&s).join(&lost)).unwrap()), digest);

    // Published files are read-only.
    let meta = std::fs::metadata(dp_dir(&s).join(&lost)).unwrap();
    assert!(meta.permissions().readonly(), "{lost}");
    let listed = s.ingest(&["dp", "list", "--json"]).ok();
    let dp: serde_json::Value = data(listed.trim());
    assert_eq!(dp["generation"], 1);
    assert_eq!(dp["name"], "hq");
}

#[test]
fn a_group_distribution_point_carries_the_approved_members_only() {
    let s = update_list_server();
    s.ingest(&["group", "create", "servers"]).ok();
    s.ingest(&["group", "add", "servers", "KB5034122", "7zip.7zip@24.09"]).ok();
    s.ingest(&["approve", "KB5034122", "VideoLAN.VLC@3.0.21"]).ok();
    let dir = s.path("dp-servers");
    s.ingest(&["dp", "add", "servers", "--path", dir.to_str().unwrap(), "--group", "servers"]).ok();
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("servers published as generation 1: 1 update"), "{out}");
    assert_eq!(index_ids(&index_at(&dir, "1")), ["KB5034122"]);
    assert_eq!(index_at(&dir, "1")["carries"], "approved updates of group servers");
    s.ingest(&["group", "delete", "servers"])
        .refused(exit::INPUT, &["update group \"servers\" is carried by distribution point servers"]);
}

#[test]
fn a_crash_before_the_switch_leaves_the_previous_generation_current_and_the_next_publish_completes() {
    let s = published_server();
    s.ingest(&["publish"]).ok();
    s.ingest(&["decline", "KB5034122"]).ok();
    let crashed = Command::new(crate::crash::failpoint_ingest())
        .arg("--data-dir")
        .arg(s.data_dir())
        .arg("publish")
        .env("USER", "tester")
        .env("FAILPOINTS", "publish.before-switch=return")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the failpoint aborts");
    let dir = dp_dir(&s);
    assert_eq!(std::fs::read_to_string(dir.join("current")).unwrap(), "1\n");
    assert!(dir.join("generations/2/index.json").is_file(), "the complete generation 2 waits, unnamed");
    let verified = s.ingest(&["dp", "verify", dir.to_str().unwrap()]).ok();
    assert!(verified.contains("generation 1") && verified.contains("intact"), "{verified}");

    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("hq published as generation 3: 2 updates"), "{out}");
    assert_eq!(std::fs::read_to_string(dir.join("current")).unwrap(), "3\n");
    let mut generations: Vec<String> = std::fs::read_dir(dir.join("generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    generations.sort();
    assert_eq!(generations, ["2", "3"], "a number is never reused; the last two stay");
    s.ingest(&["dp", "verify", dir.to_str().unwrap()]).ok();
}

#[test]
fn publishing_to_another_file_system_copies_and_checks_every_file() {
    // /dev/shm is a tmpfs: it has no copy-on-write clones, so every file is a checked copy.
    let shm = Path::new("/dev/shm");
    let target = tempfile::Builder::new().prefix("ferry-dp-").tempdir_in(shm).expect("/dev/shm is writable");
    let s = update_list_server();
    s.ingest(&["approve", "KB5034122", "VideoLAN.VLC@3.0.21"]).ok();
    s.ingest(&["dp", "add", "shm", "--path", target.path().to_str().unwrap(), "--approved"]).ok();
    let done: serde_json::Value = first_of(&s.ingest(&["publish", "--json"]).ok(), "published");
    assert_eq!(done["placed"]["copied"], 2, "{done}");
    assert_eq!(done["placed"]["reflinked"], 0, "{done}");
    s.ingest(&["dp", "verify", target.path().to_str().unwrap()]).ok();
}

/// Publishes `hq` with its three updates and returns its directory.
fn published(s: &Scratch) -> PathBuf {
    s.ingest(&["publish"]).ok();
    dp_dir(s)
}

#[test]
fn dp_verify_names_missing_corrupt_and_extra_files() {
    let s = published_server();
    let dir = published(&s);
    let files = index_files(&index_at(&dir, "1"));
    let missing = &files[0].0;
    let corrupt = &files[1].0;
    std::fs::remove_file(dir.join(missing)).unwrap();
    let size = std::fs::metadata(dir.join(corrupt)).unwrap().len() as usize;
    std::fs::remove_file(dir.join(corrupt)).unwrap();
    std::fs::write(dir.join(corrupt), vec![b'x'; size]).unwrap();
    std::fs::create_dir_all(dir.join("files/planted")).unwrap();
    std::fs::write(dir.join("files/planted/setup.exe"), b"not from the management server").unwrap();

    let out = s.ingest(&["dp", "verify", dir.to_str().unwrap()]).refused_on_stdout(
        exit::INTEGRITY,
        &[
            &format!("missing  {missing}"),
            &format!("corrupt  {corrupt}: SHA-256"),
            "extra    files/planted/setup.exe",
            "NOT intact: 1 missing, 1 corrupt, 1 extra",
        ],
    );
    assert!(!out.contains("panicked"));
    let json = s.ingest(&["dp", "verify", dir.to_str().unwrap(), "--json"]);
    let found: serde_json::Value = data(json.refused_on_stdout(exit::INTEGRITY, &[]).trim());
    assert_eq!(found["missing"], serde_json::json!([missing]));

    // A plain publish trusts sizes: it puts back what was lost and prunes what was planted;
    // with --check it reads every file and replaces what differs.
    let out = s.ingest(&["publish"]).ok();
    assert!(out.contains("1 copied") && out.contains("pruned 1 file"), "{out}");
    s.ingest(&["dp", "verify", dir.to_str().unwrap()]).refused_on_stdout(exit::INTEGRITY, &["corrupt"]);
    let out = s.ingest(&["publish", "--check"]).ok();
    assert!(out.contains("1 replaced what was there"), "{out}");
    s.ingest(&["dp", "verify", dir.to_str().unwrap()]).ok();
}

#[test]
fn index_altered_after_signing_is_refused() {
    let s = published_server();
    let dir = published(&s);
    let index = dir.join("generations/1/index.json");
    let mut text = std::fs::read_to_string(&index).unwrap();
    text = text.replace("wusa.exe", "evil.exe");
    std::fs::remove_file(&index).unwrap();
    std::fs::write(&index, text).unwrap();
    s.ingest(&["dp", "verify", dir.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["generation 1: index.json was altered after signing"]);
}

#[test]
fn index_signed_by_another_key_is_refused() {
    let s = published_server();
    let dir = published(&s);
    let (_, other) = s.key("other");
    s.ingest(&["dp", "verify", dir.to_str().unwrap(), "--key", other.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["generation 1: index.json is signed by key", "not by the server key"]);
}

#[test]
fn nothing_published_is_refused() {
    let s = published_server();
    published(&s);
    let empty = s.path("empty-dp");
    std::fs::create_dir_all(&empty).unwrap();
    s.ingest(&["dp", "verify", empty.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["no current file: nothing was published here"]);
}

#[test]
fn dp_path_inside_the_data_directory_is_refused() {
    let s = update_list_server();
    let inside = s.data_dir().join("www");
    s.ingest(&["dp", "add", "bad", "--path", inside.to_str().unwrap(), "--approved"])
        .refused(exit::INPUT, &["overlaps the data directory"]);
    assert!(s.ingest(&["dp", "list"]).ok().contains("no distribution points"));
}

#[test]
fn dp_path_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let s = update_list_server();
    let mut path = s.dir.path().as_os_str().to_owned();
    path.push(std::ffi::OsStr::from_bytes(b"/www-\xff"));
    let out = Command::new(&*INGEST)
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["dp", "add", "latin1", "--approved", "--path"])
        .arg(&path)
        .env("USER", "tester")
        .output()
        .unwrap();
    Run::from(out).refused(exit::INPUT, &["distribution point latin1: path", "is not UTF-8"]);
    assert!(s.ingest(&["dp", "list"]).ok().contains("no distribution points"));
}

#[test]
fn dp_path_overlapping_another_is_refused() {
    let s = published_server();
    let nested = dp_dir(&s).join("files");
    s.ingest(&["dp", "add", "nested", "--path", nested.to_str().unwrap(), "--approved"])
        .refused(exit::INPUT, &["overlaps that of distribution point hq"]);
    s.ingest(&["dp", "add", "HQ", "--path", s.path("elsewhere").to_str().unwrap(), "--approved"])
        .refused(exit::INPUT, &["distribution point \"hq\" exists already"]);
}

#[test]
fn dp_group_unknown_is_refused() {
    let s = update_list_server();
    s.ingest(&["dp", "add", "x", "--path", s.path("x").to_str().unwrap(), "--group", "nobody"])
        .refused(exit::NOT_FOUND, &["update group \"nobody\" not found"]);
    s.ingest(&["dp", "add", "x", "--path", s.path("x").to_str().unwrap()]).refused(exit::USAGE, &["--approved"]);
}

#[test]
fn dp_name_unknown_is_refused() {
    let s = published_server();
    s.ingest(&["publish", "branch"]).refused(exit::NOT_FOUND, &["distribution point \"branch\" not found"]);
    s.ingest(&["dp", "remove", "branch"]).refused(exit::NOT_FOUND, &["distribution point \"branch\" not found"]);
    let out = s.ingest(&["dp", "remove", "hq"]).ok();
    assert!(out.contains("its directory") && out.contains("is left as it is"), "{out}");
}

#[test]
fn trusted_comment_not_of_the_index_is_refused() {
    // Signed by the right key, but with a comment naming another generation: an old
    // signature cannot vouch for a renumbered index.
    let s = published_server();
    let dir = published(&s);
    let generation = dir.join("generations/1");
    std::fs::remove_file(generation.join("index.json.minisig")).unwrap();
    let out = tool("minisign")
        .arg("-S")
        .arg("-s")
        .arg(s.data_dir().join("server.key"))
        .arg("-m")
        .arg(generation.join("index.json"))
        .arg("-t")
        .arg("ferry-dp-index v1 dp=hq generation=7 published=2026-01-01T00:00:00Z")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "minisign -S: {}", String::from_utf8_lossy(&out.stderr));
    s.ingest(&["dp", "verify", dir.to_str().unwrap()]).refused(
        exit::SIGNATURE,
        &["generation 1: the trusted comment of index.json.minisig", "does not match index.json"],
    );
}

#[test]
fn store_file_damaged_is_not_copied_out() {
    // A copy (here to a tmpfs) is hashed on the way: a store file that changed since it was
    // verified is refused, and the distribution point keeps no half-placed file.
    let shm = Path::new("/dev/shm");
    let target = tempfile::Builder::new().prefix("ferry-dp-").tempdir_in(shm).expect("/dev/shm is writable");
    use std::os::unix::fs::MetadataExt;
    let s = update_list_server();
    if std::fs::metadata(shm).unwrap().dev() == std::fs::metadata(s.data_dir()).unwrap().dev() {
        panic!("/dev/shm must be another file system than {} for this test", s.data_dir().display());
    }
    s.ingest(&["approve", "KB5034122"]).ok();
    let digest = update_json(&s, "KB5034122")["metadata"]["files"][0]["sha256"].as_str().unwrap().to_string();
    let stored = s.data_dir().join("store/sha256").join(&digest[..2]).join(&digest);
    let size = std::fs::metadata(&stored).unwrap().len() as usize;
    std::fs::remove_file(&stored).unwrap();
    std::fs::write(&stored, vec![b'x'; size]).unwrap();
    s.ingest(&["dp", "add", "shm", "--path", target.path().to_str().unwrap(), "--approved"]).ok();
    s.ingest(&["publish"]).refused(exit::INTEGRITY, &["store file", "SHA-256 mismatch"]);
    assert!(!target.path().join("current").exists(), "no generation without its files");
    assert!(
        walk(target.path()).iter().all(|p| !p.contains(".ferry-") && !p.ends_with(".msu")),
        "{:?}",
        walk(target.path())
    );
}

#[test]
fn a_pilot_group_receives_updates_before_approval() {
    // "Pilot for 7 days, then approve for all": a point for the pilot group carries its
    // undecided members, never declined ones; the point for everyone waits for approval.
    let s = update_list_server();
    s.ingest(&["group", "create", "pilot", "--by", "tester"]).ok();
    s.ingest(&["group", "add", "pilot", "7zip.7zip@24.09", "VideoLAN.VLC@3.0.21", "KB5034122", "--by", "tester"]).ok();
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21", "--by", "tester"]).ok();
    let (pilot, hq) = (s.path("dp-pilot"), dp_dir(&s));
    let out = s
        .ingest(&[
            "dp",
            "add",
            "pilot",
            "--path",
            pilot.to_str().unwrap(),
            "--group",
            "pilot",
            "--include-unapproved",
            "--by",
            "tester",
        ])
        .ok();
    assert!(out.contains("approved and undecided updates of group pilot (a pilot)"), "{out}");
    s.ingest(&["dp", "add", "hq", "--path", hq.to_str().unwrap(), "--approved", "--by", "tester"]).ok();
    s.ingest(&["publish"]).ok();
    let mut ids = index_ids(&index_at(&pilot, "1"));
    ids.sort();
    assert_eq!(ids, ["7zip.7zip@24.09", "KB5034122"], "undecided members, not the declined one");
    assert!(index_ids(&index_at(&hq, "1")).is_empty(), "nothing is approved for everyone yet");
    s.ingest(&["approve", "KB5034122", "--by", "tester"]).ok();
    s.ingest(&["publish"]).ok();
    assert_eq!(index_ids(&index_at(&hq, "2")), ["KB5034122"]);
    // Only a group's point carries undecided updates.
    s.ingest(&["dp", "add", "all", "--path", s.path("dp-all").to_str().unwrap(), "--approved", "--include-unapproved"])
        .refused(exit::INPUT, &["only a point for an update group (a pilot) carries undecided updates"]);
}

/// Every file below `dir` with its bytes: what a dry run must leave as it found it.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    walk(dir).into_iter().map(|rel| (rel.clone(), std::fs::read(dir.join(&rel)).unwrap())).collect()
}

#[test]
fn a_dry_run_says_what_a_publish_would_delete_and_changes_nothing() {
    let s = published_server();
    s.ingest(&["publish"]).ok();
    s.ingest(&["decline", "VideoLAN.VLC@3.0.21", "--by", "alice"]).ok();
    s.ingest(&["publish"]).ok();
    s.ingest(&["decline", "7zip.7zip@24.09", "--by", "alice"]).ok();
    let planted = dp_dir(&s).join("files/zz");
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::write(planted.join("planted.exe"), "put here by someone else").unwrap();
    let before = tree(&dp_dir(&s));
    let registry_before = s.state();

    let text = s.ingest(&["publish", "--dry-run"]).ok();
    for part in [
        "hq would write a new generation (now 2): 1 update,",
        "would remove: 7zip.7zip@24.09",
        "would delete files/zz/planted.exe",
        "would delete generation 1",
        "dry run: nothing was written or deleted",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
    // VLC's file is listed by generation 1 only, which goes; 7-Zip's stays with generation 2.
    let vlc_file = index_files(&index_at(&dp_dir(&s), "1"))
        .into_iter()
        .find(|(path, _)| !index_files(&index_at(&dp_dir(&s), "2")).iter().any(|(p, _)| p == path))
        .unwrap()
        .0;
    assert!(text.contains(&format!("would delete {vlc_file}")), "{text}");
    let preview = first_of(&s.ingest(&["publish", "--dry-run", "--json"]).ok(), "publish-preview");
    assert_eq!(tree(&dp_dir(&s)), before, "a dry run leaves the point as it was");
    assert_eq!(s.state(), registry_before, "and the registry");

    // The publish then does what the dry run said.
    let done = first_of(&s.ingest(&["publish", "--json"]).ok(), "published");
    assert_eq!(done["generation"], 3);
    assert_eq!(done["pruned_generations"], preview["generations_to_prune"]);
    assert_eq!(done["pruned_files"], preview["to_prune"].as_array().unwrap().len(), "{preview}");
}
