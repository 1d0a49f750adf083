//! Shared parts of the end-to-end tests: a scratch directory per test, runners for the real
//! binaries, generated catalogs and payloads, a loopback HTTP server, and the stock tools.

pub mod http;
pub mod rawzip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::LazyLock;

use sha2::Digest;

/// The programs under test: the ones cargo built, or those in `FERRY_E2E_BIN_DIR` (for the
/// Windows builds, run through wine by `.ci/windows/run`; tests/e2e/windows.txt lists the
/// tests that do not run there, and why).
pub static FETCH: LazyLock<String> = LazyLock::new(|| program("fetch", env!("CARGO_BIN_EXE_fetch")));
pub static INGEST: LazyLock<String> = LazyLock::new(|| program("ingest", env!("CARGO_BIN_EXE_ingest")));
pub static MAIL: LazyLock<String> = LazyLock::new(|| program("ferry-mail", env!("CARGO_BIN_EXE_ferry-mail")));
pub static CLIENT: LazyLock<String> = LazyLock::new(|| program("ferry-client", env!("CARGO_BIN_EXE_ferry-client")));

fn program(name: &str, built: &str) -> String {
    match std::env::var_os("FERRY_E2E_BIN_DIR") {
        Some(dir) => Path::new(&dir).join(name).to_string_lossy().into_owned(),
        None => built.to_string(),
    }
}

/// Documented exit codes (bins/common/mod.rs).
pub mod exit {
    pub const USAGE: i32 = 2;
    pub const INPUT: i32 = 3;
    pub const NETWORK: i32 = 4;
    pub const INTEGRITY: i32 = 5;
    pub const SIGNATURE: i32 = 6;
    pub const BUNDLE: i32 = 7;
    pub const ROLLBACK: i32 = 8;
    pub const LOCAL: i32 = 9;
    pub const NOT_FOUND: i32 = 10;
    pub const BUSY: i32 = 11;
    pub const DAMAGED: i32 = 12;
}

/// The result of running a binary, with its output as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        let text = |bytes: &[u8]| unix_spelling(String::from_utf8_lossy(bytes).into_owned());
        Run { code: output.status.code().unwrap_or(-1), stdout: text(&output.stdout), stderr: text(&output.stderr) }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts failure with `code` and a message on stderr containing every one of `parts`.
    #[track_caller]
    pub fn refused(self, code: i32, parts: &[&str]) -> String {
        self.failed(code, parts, false)
    }

    /// Asserts failure with `code` and a report on stdout containing every one of `parts`
    /// (for commands whose findings are their output, such as `ingest check`).
    #[track_caller]
    pub fn refused_on_stdout(self, code: i32, parts: &[&str]) -> String {
        self.failed(code, parts, true)
    }

    #[track_caller]
    fn failed(self, code: i32, parts: &[&str], on_stdout: bool) -> String {
        assert_eq!(self.code, code, "expected exit code {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        let (name, text) = if on_stdout { ("stdout", &self.stdout) } else { ("stderr", &self.stderr) };
        for part in parts {
            assert!(text.contains(part), "{name} lacks {part:?}:\n{text}");
        }
        assert!(!self.stderr.contains("panicked"), "a binary panicked:\n{}", self.stderr);
        if on_stdout { self.stdout } else { self.stderr }
    }
}

/// A test's own scratch directory with a fetch work directory and an ingest data directory.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::Builder::new().prefix("ferry-e2e-").tempdir().unwrap() }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn work_dir(&self) -> PathBuf {
        self.path("fetch-work")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path("ingest-data")
    }

    pub fn media(&self) -> PathBuf {
        self.path("media")
    }

    /// Runs `fetch` with this scratch's work directory.
    pub fn fetch(&self, args: &[&str]) -> Run {
        self.fetch_with_env(args, &[])
    }

    pub fn fetch_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(&*FETCH);
        cmd.arg("--work-dir").arg(self.work_dir()).args(args).stdin(Stdio::null()).env_remove("FERRY_KEY_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().unwrap())
    }

    /// Runs `ingest` with this scratch's data directory, logged in as "tester" (a CI job may
    /// have no login name; `approvals::actor_unknown` tests that case).
    pub fn ingest(&self, args: &[&str]) -> Run {
        Run::from(
            Command::new(&*INGEST)
                .arg("--data-dir")
                .arg(self.data_dir())
                .args(args)
                .stdin(Stdio::null())
                .env("USER", "tester")
                .env_remove("USERNAME")
                .output()
                .unwrap(),
        )
    }

    /// Runs `ingest` like [`Scratch::ingest`], failing the test if it has not finished within
    /// `limit` (then it is killed): for inputs planted to make it wait forever.
    #[track_caller]
    pub fn ingest_within(&self, limit: std::time::Duration, args: &[&str]) -> Run {
        let mut child = Command::new(&*INGEST)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("USER", "tester")
            .env_remove("USERNAME")
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "ingest {args:?} still ran after {limit:?}: it waits on something planted\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Run::from(child.wait_with_output().unwrap())
    }

    /// Generates an unencrypted key pair named `name`; returns (secret, public) paths.
    pub fn key(&self, name: &str) -> (PathBuf, PathBuf) {
        let (secret, public) = (self.path(&format!("{name}.key")), self.path(&format!("{name}.pub")));
        self.key_gen(&secret, &public, &["--unencrypted"]).ok();
        (secret, public)
    }

    /// Trusts `public` for the default channel.
    pub fn trust(&self, public: &Path) {
        self.ingest(&["trust", "add", public.to_str().unwrap()]).ok();
    }

    /// Runs `fetch pack` of `catalog`, signed with `key`, into the media directory.
    pub fn pack_run(&self, catalog: &str, key: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
        self.pack_from(&["--catalog", catalog], key, extra, env)
    }

    /// Runs `fetch pack` of the feed `feed` names (`["--winget", DIR]`, …), signed with
    /// `key`, into the media directory.
    pub fn pack_from(&self, feed: &[&str], key: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let media = self.media();
        let mut args = vec!["pack"];
        args.extend_from_slice(feed);
        args.extend_from_slice(&["--key", key.to_str().unwrap(), "--out", media.to_str().unwrap()]);
        args.extend_from_slice(extra);
        self.fetch_with_env(&args, env)
    }

    /// Packs `catalog` with `key` into the media directory and returns the bundle path.
    pub fn pack(&self, catalog: &str, key: &Path, extra: &[&str]) -> PathBuf {
        let out = self.pack_run(catalog, key, &[extra, &["--json"]].concat(), &[]).ok();
        let result = json_line(out.lines().last().unwrap());
        assert_eq!(result["type"], "bundle", "{out}");
        host_path(result["data"]["path"].as_str().unwrap())
    }

    /// Runs `fetch key gen` for the two key paths.
    pub fn key_gen(&self, secret: &Path, public: &Path, extra: &[&str]) -> Run {
        let mut args =
            vec!["key", "gen", "--secret-key", secret.to_str().unwrap(), "--public-key", public.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.fetch(&args)
    }

    /// Everything a refused bundle must leave unchanged: the update list, the trust store,
    /// and the files in the content store.
    /// Everything a refusal must leave as it was: every table of the registry but the audit
    /// log and the change reports (a refusal adds an entry to each: that is their job), so
    /// channel state (highest sequence, latest time, threshold, trust version), accepted
    /// bundles and volumes, rotations, trusted keys, the update list, groups, rules, licence
    /// acceptances and distribution points; and every file of the store, its temporary,
    /// pending and chunk areas included.
    pub fn state(&self) -> String {
        let mut out = String::new();
        let registry = self.data_dir().join("registry.sqlite");
        if registry.exists() {
            let db =
                rusqlite::Connection::open_with_flags(&registry, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let tables: Vec<String> = db
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT IN ('audit_log', 'reports') ORDER BY name")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for table in tables {
                let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
                let columns = stmt.column_count();
                let mut rows: Vec<String> = stmt
                    .query_map([], |r| {
                        (0..columns)
                            .map(|i| {
                                r.get_ref(i).map(|v| match v {
                                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                                    other => format!("{other:?}"),
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()
                            .map(|cells| cells.join(" | "))
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                rows.sort();
                out.push_str(&format!("[{table}]\n{}\n", rows.join("\n")));
            }
        }
        let mut stored: Vec<String> = walk(&self.data_dir().join("store"));
        stored.sort();
        out.push_str(&format!("[store]\n{}\n", stored.join("\n")));
        out
    }
}

/// Makes `peer`'s server key (created on first use) a peer key of `s`: `s` then takes the
/// update lists and groups `peer` exports.
pub fn trust_peer(s: &Scratch, peer: &Scratch) {
    let public = peer.path("peer-server.pub");
    peer.ingest(&["server-key", "export", "--out", public.to_str().unwrap()]).ok();
    s.ingest(&["trust", "add-peer", public.to_str().unwrap()]).ok();
}

/// Signs `file` as `export-list` (`kind` list) or `export-groups` (`kind` groups) on
/// `server` would, with the stock minisign tool and that server's key: `FILE.minisig`.
pub fn sign_export_with_minisign(server: &Scratch, file: &Path, kind: &str) {
    let key = std::fs::read_to_string(server.data_dir().join("server.pub")).unwrap();
    let key_id = key.lines().next().unwrap().rsplit(' ').next().unwrap().to_string();
    let signature = PathBuf::from(format!("{}.minisig", file.display()));
    let _ = std::fs::remove_file(&signature);
    let out = tool("minisign")
        .args(["-S", "-s"])
        .arg(server.data_dir().join("server.key"))
        .arg("-m")
        .arg(file)
        .arg("-x")
        .arg(&signature)
        .args(["-t", &format!("ferry-list v1 kind={kind} server={key_id} created=2026-01-01T00:00:00Z")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "minisign -S: {}", String::from_utf8_lossy(&out.stderr));
}

/// The types of JSON line ferry prints (docs/json.md).
pub const JSON_TYPES: &[&str] = &[
    "inventory",
    "inventory-refused",
    "judgment",
    "computer",
    "computer-detail",
    "computer-group",
    "policy-levels",
    "update-status",
    "not-applied",
    "install-result",
    "results-refused",
    "results-summary",
    "compliance-alert",
    "client-step",
    "install-results",
    "audit-entry",
    "audit-verified",
    "bundle",
    "bundle-contents",
    "cached",
    "check",
    "clock-behind",
    "config-value",
    "data-directory",
    "distribution-point",
    "download-started",
    "downloaded",
    "error",
    "eula",
    "file-system-limit",
    "group",
    "groups-imported",
    "import",
    "import-done",
    "left-out",
    "list-imported",
    "membership",
    "msrc-kb",
    "msrc-skipped",
    "nothing-new",
    "packed",
    "peer-key",
    "plan",
    "plan-skipped",
    "plan-update",
    "point-verified",
    "progress",
    "publish-preview",
    "published",
    "scan-catalog",
    "scan-skipped",
    "scan-update",
    "refresh",
    "registration",
    "report",
    "report-header",
    "retrying",
    "rule",
    "rule-test",
    "sealing",
    "selected",
    "status-change",
    "trusted-key",
    "update",
    "update-detail",
    "verified",
    "watch-pass",
];

/// One line of ferry's JSON output, checked to have the one documented shape:
/// `{"type": KNOWN, "format": 1, "data": …}`.
pub fn json_line(line: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let kind = v["type"].as_str().unwrap_or_else(|| panic!("no type: {line}"));
    assert!(JSON_TYPES.contains(&kind), "unknown type {kind:?}: {line}");
    assert_eq!(v["format"], 1, "{line}");
    assert!(v.get("data").is_some(), "no data: {line}");
    assert_eq!(v.as_object().unwrap().len(), 3, "{line}");
    v
}

/// What a program under test printed, in the spelling the assertions use. Under wine the
/// Windows programs name `/tmp/x` as `Z:\tmp\x`, join paths with `\`, and say "File not
/// found." and "Path not found." where Linux says "No such file or directory": read back
/// in Unix spelling (the strings of JSON lines too), the same assertions hold on both
/// systems.
fn unix_spelling(text: String) -> String {
    if std::env::var_os("FERRY_E2E_BIN_DIR").is_none() {
        return text;
    }
    text.split_inclusive('\n')
        .map(|line| {
            let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
            match serde_json::from_str::<serde_json::Value>(body) {
                Ok(mut value) if body.starts_with('{') => {
                    if respell_strings(&mut value) {
                        format!("{value}{end}")
                    } else {
                        line.to_string()
                    }
                }
                _ => format!("{}{end}", respell(body)),
            }
        })
        .collect()
}

/// [`respell`] on every string in `value`; whether any changed.
fn respell_strings(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => {
            let new = respell(s);
            let changed = new != *s;
            *s = new;
            changed
        }
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |c, v| respell_strings(v) | c),
        serde_json::Value::Object(map) => map.values_mut().fold(false, |c, v| respell_strings(v) | c),
        _ => false,
    }
}

/// Text in Unix spelling: in each word that holds a path (from `Z:\` or an absolute `/` on),
/// `\` becomes `/` (so `/tmp/data\store` and `Z:\tmp\x` read `/tmp/data/store` and `/tmp/x`,
/// while `"../etc\n"`, an escape outside any path, stays); Windows' words for a missing file
/// become Linux's.
fn respell(text: &str) -> String {
    let words = text.split_inclusive(char::is_whitespace).map(|word| {
        // An absolute path begins the word or follows a quote, bracket or `=`.
        let absolute = word
            .char_indices()
            .find(|&(i, c)| c == '/' && word[..i].chars().next_back().is_none_or(|before| "\"'(<[=".contains(before)));
        let start = word.find("Z:\\").or(absolute.map(|(i, _)| i));
        match start {
            Some(i) => {
                let (head, path) = word.split_at(i);
                let path = path.replacen("Z:\\\\", "/", 1).replacen("Z:\\", "/", 1);
                format!("{head}{}", path.replace("\\\\", "/").replace('\\', "/"))
            }
            None => word.to_string(),
        }
    });
    words
        .collect::<String>()
        .replace("File not found.", "No such file or directory")
        .replace("Path not found.", "No such file or directory")
}

/// A path a program under test printed, as this machine names it. Under wine the Windows
/// programs print `Z:\tmp\…` for `/tmp/…` (wine's drive Z: is the Unix root) and join with
/// `\` (`/tmp/media\ferry-default-000001.zip`).
pub fn host_path(printed: &str) -> PathBuf {
    if std::env::var_os("FERRY_E2E_BIN_DIR").is_none() {
        return PathBuf::from(printed);
    }
    let rest = printed.strip_prefix("Z:").or_else(|| printed.strip_prefix("z:")).unwrap_or(printed);
    PathBuf::from(rest.replace('\\', "/"))
}

/// The `data` of the first line of type `kind` in a command's JSON output: its result,
/// among the `progress` events before it.
#[track_caller]
pub fn first_of(stdout: &str, kind: &str) -> serde_json::Value {
    let line = stdout.lines().find(|l| json_line(l)["type"] == kind);
    data(line.unwrap_or_else(|| panic!("no {kind:?} line in:\n{}", stdout.chars().take(4000).collect::<String>())))
}

/// The `data` of one line of ferry's JSON output ([`json_line`]).
pub fn data(line: &str) -> serde_json::Value {
    json_line(line)["data"].take()
}

/// Every file below `dir`, relative to it.
pub fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p).into_iter().map(|s| format!("{}/{s}", e.file_name().to_string_lossy())));
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A small generated update file: `size` bytes derived from `seed`.
pub fn payload(seed: &str, size: usize) -> Vec<u8> {
    let line = format!("ferry test payload {seed}\n");
    line.bytes().cycle().take(size).collect()
}

/// One catalog update with one file, for generated catalogs.
pub struct TestUpdate {
    pub id: &'static str,
    pub product: &'static str,
    pub revision: u32,
    pub file: &'static str,
    pub body: Vec<u8>,
}

impl TestUpdate {
    pub fn new(id: &'static str, product: &'static str, file: &'static str, size: usize) -> TestUpdate {
        TestUpdate { id, product, revision: 1, file, body: payload(id, size) }
    }
}

/// A catalog whose file URLs are `base` + file name; also returns the served files.
pub fn catalog(updates: &[TestUpdate], base: &str) -> (String, BTreeMap<String, Vec<u8>>) {
    let mut files = BTreeMap::new();
    let entries: Vec<serde_json::Value> = updates
        .iter()
        .map(|u| {
            files.insert(u.file.to_string(), u.body.clone());
            serde_json::json!({
                "id": u.id, "revision": u.revision, "title": format!("{} update", u.product),
                "vendor": "Test Vendor", "product": u.product, "version": "1.0",
                "classification": "security-update", "severity": "important", "release_date": "2024-01-09",
                "files": [{"name": u.file, "url": format!("{base}{}", u.file),
                           "sha256": sha256_hex(&u.body), "size": u.body.len()}]
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&serde_json::json!({"format": 1, "updates": entries})).unwrap();
    (text, files)
}

/// Writes a catalog and its files into `dir` (file URLs relative to the catalog).
pub fn local_catalog(dir: &Path, updates: &[TestUpdate]) -> PathBuf {
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let (text, files) = catalog(updates, "files/");
    for (name, body) in files {
        std::fs::write(dir.join("files").join(name), body).unwrap();
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// The standard three-update catalog used by many tests.
pub fn three_updates() -> Vec<TestUpdate> {
    vec![
        TestUpdate::new("KB5034122", "Windows 10", "windows10.0-kb5034122-x64.msu", 40_000),
        TestUpdate::new("7zip.7zip@24.09", "7-Zip", "7z2409-x64.exe", 12_345),
        TestUpdate::new("VideoLAN.VLC@3.0.21", "VLC media player", "vlc-3.0.21-win64.exe", 70_001),
    ]
}

/// Runs a stock tool, failing the test with a clear message if it is not installed.
/// Daemons such as nginx live in /usr/sbin, which a non-root PATH may lack.
pub fn tool(name: &str) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found =
        std::env::split_paths(&path).chain([PathBuf::from("/usr/sbin")]).map(|p| p.join(name)).find(|p| p.is_file());
    let found =
        found.unwrap_or_else(|| panic!("{name} is not installed; .ci/run installs it (apt-get install {name})"));
    Command::new(found)
}

/// Reads every entry of a zip as (name, bytes), in order.
pub fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).unwrap();
            (f.name().unwrap().to_string(), bytes)
        })
        .collect()
}

/// Writes entries into a new zip with the `zip` crate (stored, CRC computed honestly).
pub fn write_zip(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), options).unwrap();
        std::io::Write::write_all(&mut w, bytes).unwrap();
    }
    w.finish().unwrap();
}

/// A server that has accepted sequence 1 (one update), and a signed sequence 2 (all three
/// updates) not imported yet: the starting point of the refusal tests, so that "nothing
/// changed" is checked against a non-empty list.
pub struct Accepted {
    pub s: Scratch,
    pub secret: PathBuf,
    pub catalog: PathBuf,
    pub next: PathBuf,
}

impl Accepted {
    pub fn new() -> Accepted {
        let s = Scratch::new();
        let catalog = local_catalog(&s.path("feed"), &three_updates());
        let (secret, public) = s.key("signer");
        s.trust(&public);
        let first = s.pack(catalog.to_str().unwrap(), &secret, &["--id", "KB5034122"]);
        s.ingest(&["import", first.to_str().unwrap()]).ok();
        let next = s.pack(catalog.to_str().unwrap(), &secret, &[]);
        Accepted { s, secret, catalog, next }
    }

    /// Writes a copy of the next bundle with its entries changed by `edit`.
    pub fn tampered(&self, name: &str, edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> PathBuf {
        let mut entries = zip_entries(&self.next);
        edit(&mut entries);
        let path = self.s.path(name);
        write_zip(&path, &entries);
        path
    }

    /// A copy of the next bundle whose manifest was changed by `edit` and signed again by the
    /// trusted key with the stock minisign tool, under the original trusted comment: the
    /// signature is genuine, so what is refused is the manifest itself.
    pub fn resigned(&self, fixture: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
        let entries = zip_entries(&self.next);
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&entries.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
        edit(&mut manifest);
        self.resigned_bytes(fixture, &serde_json::to_vec_pretty(&manifest).unwrap())
    }

    /// A copy of the next bundle whose manifest is `manifest`, signed by the trusted key as
    /// [`Accepted::resigned`] does.
    pub fn resigned_bytes(&self, fixture: &str, manifest: &[u8]) -> PathBuf {
        self.resigned_bytes_with(fixture, manifest, &[])
    }

    /// [`Accepted::resigned_bytes`] with more options for `minisign -S` (`-l`: legacy form).
    pub fn resigned_bytes_with(&self, fixture: &str, manifest: &[u8], options: &[&str]) -> PathBuf {
        let entries = zip_entries(&self.next);
        let (sig_name, sig) = entries.iter().find(|(n, _)| n.starts_with("signatures/")).unwrap();
        let comment = String::from_utf8(sig.clone()).unwrap();
        let comment = comment.lines().find_map(|l| l.strip_prefix("trusted comment: ")).unwrap().to_string();
        let (manifest_path, sig_path) =
            (self.s.path(&format!("{fixture}.json")), self.s.path(&format!("{fixture}.minisig")));
        std::fs::write(&manifest_path, manifest).unwrap();
        let out = tool("minisign")
            .args(["-S", "-s"])
            .arg(&self.secret)
            .arg("-m")
            .arg(&manifest_path)
            .arg("-x")
            .arg(&sig_path)
            .args(["-t", &comment])
            .args(options)
            .output()
            .unwrap();
        assert!(out.status.success(), "minisign -S: {}", String::from_utf8_lossy(&out.stderr));
        let new_sig = std::fs::read(&sig_path).unwrap();
        let sig_name = sig_name.clone();
        self.tampered(fixture, |entries| {
            *entry(entries, "manifest.json") = manifest.to_vec();
            *entry(entries, &sig_name) = new_sig;
        })
    }

    /// Imports `bundle`, expecting a refusal, and checks that nothing changed.
    #[track_caller]
    pub fn refuse(&self, bundle: &Path, code: i32, parts: &[&str]) -> String {
        let before = self.s.state();
        let stderr = self.s.ingest(&["import", bundle.to_str().unwrap()]).refused(code, parts);
        assert_eq!(self.s.state(), before, "a refused bundle changed the registry or the store");
        let verify = self.s.ingest(&["verify", bundle.to_str().unwrap()]);
        assert_eq!(verify.code, code, "verify and import disagree: {}", verify.stderr);
        stderr
    }
}

/// The first signature entry of `entries`: (name, bytes).
pub fn signature_entry(entries: &mut [(String, Vec<u8>)]) -> &mut (String, Vec<u8>) {
    entries.iter_mut().find(|(n, _)| n.starts_with("signatures/")).expect("a signature entry")
}

/// The entry of `entries` named `name`.
pub fn entry<'a>(entries: &'a mut [(String, Vec<u8>)], name: &str) -> &'a mut Vec<u8> {
    &mut entries.iter_mut().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no entry {name}")).1
}

// ----- a server with an update list -----

/// A server that imported the three standard updates plus one whose licence must be
/// accepted (its text carrying a terminal escape sequence, as untrusted text may) and one
/// the vendor withdrew.
pub fn update_list_server() -> Scratch {
    let s = Scratch::new();
    let dir = s.path("feed");
    let mut updates = three_updates();
    updates.push(TestUpdate::new("KB5099999", "SQL Server 2022", "sqlserver2022-kb5099999-x64.exe", 9_000));
    let catalog = local_catalog(&dir, &updates);
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&catalog).unwrap()).unwrap();
    let list = doc["updates"].as_array_mut().unwrap();
    list[0]["kb"] = "KB5034122".into();
    list[3]["eula"] = serde_json::json!({
        "acceptance_required": true,
        "text": "LICENCE TERMS\n\u{1b}[2Jinstall on servers you own\n"
    });
    let mut withdrawn = list[0].clone();
    withdrawn["id"] = "KB5011111".into();
    withdrawn["kb"] = "KB5011111".into();
    withdrawn["withdrawn"] = true.into();
    withdrawn["files"] = serde_json::json!([]);
    list.push(withdrawn);
    std::fs::write(&catalog, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let (secret, public) = s.key("signer");
    s.trust(&public);
    let bundle = s.pack(catalog.to_str().unwrap(), &secret, &[]);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    s
}

pub fn update_json(s: &Scratch, id: &str) -> serde_json::Value {
    data(s.ingest(&["show", id, "--json"]).ok().trim())
}

/// The sorted ids of the updates `ingest list` shows with `filter`.
pub fn listed(s: &Scratch, filter: &[&str]) -> Vec<String> {
    let out = s.ingest(&[&["list", "--json"], filter].concat()).ok();
    let mut ids: Vec<String> = out.lines().map(|l| data(l)["id"].as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

pub fn ids_with(s: &Scratch, status: &str) -> Vec<String> {
    listed(s, &["--status", status])
}

/// Writes an update-list CSV of `n` generated updates, in the format `ingest export-list`
/// writes: two files each, ten products, each update superseding the previous one of its
/// product, every 100th approved by a person and every 1,000th in groups `tested` and
/// `servers`. Rows for a list too large to build from bundles in a test.
pub fn generated_list(path: &Path, n: usize) {
    let mut out = String::from(
        "id,revision,title,vendor,product,version,classification,severity,kb,release_date,withdrawn,origin,\
         available,status,status_set_by,status_actor,status_set_at,eula_accepted_by,eula_accepted_at,groups,metadata\r\n",
    );
    let classes = ["security-update", "critical-update", "update-rollup", "feature-pack", "definition-update"];
    let severities = ["critical", "important", "moderate", "low", "unspecified"];
    for i in 0..n {
        let (id, product, k) = (format!("KB{}", 6_000_000 + i), format!("Product {}", i % 10), i / 10);
        let day = format!("2025-{:02}-{:02}", 1 + (k / 28) % 12, 1 + k % 28);
        let files: Vec<serde_json::Value> = ["x64", "arm64"]
            .iter()
            .map(|arch| {
                let name = format!("windows-{}-{arch}.msu", id.to_lowercase());
                serde_json::json!({"name": name, "url": format!("https://updates.example/{name}"),
                    "sha256": sha256_hex(format!("{id}/{arch}").as_bytes()), "size": 1000 + i, "architecture": arch})
            })
            .collect();
        let mut update = serde_json::json!({"id": id, "revision": 1, "title": format!("Update {i} for {product}"),
            "vendor": "Example Vendor", "product": product, "version": k.to_string(), "classification": classes[i % 5],
            "severity": severities[(i / 5) % 5], "kb": id, "release_date": day, "files": files});
        if k > 0 {
            update["supersedes"] = serde_json::json!([format!("KB{}", 6_000_000 + i - 10)]);
        }
        let (status, set_by, actor) =
            if i % 100 == 0 { ("approved", "person", "alice") } else { ("undefined", "system", "") };
        let groups = if i % 1000 == 0 { "tested;servers" } else { "" };
        let metadata = serde_json::to_string(&update).unwrap().replace('"', "\"\"");
        out.push_str(&format!(
            "{id},1,Update {i} for {product},Example Vendor,{product},{k},{},{},{id},{day},no,bundle,no,{status},{set_by},\
             {actor},2026-01-01T00:00:00Z,,,{groups},\"{metadata}\"\r\n",
            classes[i % 5],
            severities[(i / 5) % 5],
        ));
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn windows_spelling_is_read_back_in_unix_spelling() {
    assert_eq!(
        respell(r"found: /tmp/e2e/ingest-data\store\sha256\00\x is not a file the registry knows"),
        "found: /tmp/e2e/ingest-data/store/sha256/00/x is not a file the registry knows"
    );
    assert_eq!(respell(r#"key Z:\tmp\e2e\missing\k.pub: Path not found. (os error 3)"#), {
        "key /tmp/e2e/missing/k.pub: No such file or directory (os error 3)"
    });
    assert_eq!(respell(r#"reading "Z:\\tmp\\e2e\\x.zip""#), r#"reading "/tmp/e2e/x.zip""#);
    // An escape outside any path stays.
    assert_eq!(
        respell(r#"current holds "../../etc\n", not a generation"#),
        r#"current holds "../../etc\n", not a generation"#
    );
    let mut json: serde_json::Value = serde_json::json!({"dir": r"Z:\tmp\e2e\data", "n": 1, "eula": "a\nb"});
    assert!(respell_strings(&mut json));
    assert_eq!(json, serde_json::json!({"dir": "/tmp/e2e/data", "n": 1, "eula": "a\nb"}));
}
