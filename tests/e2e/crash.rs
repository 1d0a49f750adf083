//! Crash safety of `ingest import`: a crash at any write, a kill -9 at any moment, a full disk
//! or a medium pulled out mid-read leaves a registry that passes SQLite's integrity check, an
//! `ingest check` that is clean, and an import that, run again, finishes with the complete,
//! correct state.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::*;

/// `ingest` built with the `failpoints` feature, into its own target directory (the shipped
/// binary never has them). Built once per test run.
pub(crate) fn failpoint_ingest() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("failpoints");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--locked", "--quiet", "--features", "failpoints", "--bin", "ingest"])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .output()
            .unwrap();
        assert!(out.status.success(), "building ingest with failpoints: {}", String::from_utf8_lossy(&out.stderr));
        target.join("debug/ingest")
    })
}

/// A bundle of several files and the state a clean import of it gives.
struct Fixture {
    s: Scratch,
    public: PathBuf,
    /// Volumes every server imports before the one that is interrupted.
    before: Vec<PathBuf>,
    bundle: PathBuf,
    reference: String,
}

impl Fixture {
    fn new(files: usize, size: usize) -> Fixture {
        let s = Scratch::new();
        const IDS: [&str; 16] = [
            "KB5000001",
            "KB5000002",
            "KB5000003",
            "KB5000004",
            "KB5000005",
            "KB5000006",
            "KB5000007",
            "KB5000008",
            "KB5000009",
            "KB5000010",
            "KB5000011",
            "KB5000012",
            "KB5000013",
            "KB5000014",
            "KB5000015",
            "KB5000016",
        ];
        const NAMES: [&str; 16] = [
            "a.msu", "b.msu", "c.msu", "d.msu", "e.msu", "f.msu", "g.msu", "h.msu", "i.msu", "j.msu", "k.msu", "l.msu",
            "m.msu", "n.msu", "o.msu", "p.msu",
        ];
        let updates: Vec<TestUpdate> =
            (0..files).map(|i| TestUpdate::new(IDS[i], "Windows 11", NAMES[i], size + i)).collect();
        let catalog = local_catalog(&s.path("feed"), &updates);
        let (secret, public) = s.key("signer");
        let bundle = s.pack(catalog.to_str().unwrap(), &secret, &[]);
        Fixture { s, public, before: vec![], bundle, reference: String::new() }.with_reference()
    }

    /// A file of 150,000 bytes that travels in chunks on 120,000-byte volumes: every server
    /// has imported the other volumes, and the interrupted import is of the one whose chunk
    /// completes the file, so that the join itself is interrupted.
    fn joining() -> Fixture {
        let s = Scratch::new();
        // Bytes that do not repeat, so that every chunk is its own entry and each join step
        // reads another chunk (identical chunks: volumes::a_file_with_identical_chunks_…).
        let mut update = TestUpdate::new("KB5000001", "Windows 11", "a.msu", 150_000);
        update.body = (0u32..150_000 / 32 + 1)
            .flat_map(|i| <sha2::Sha256 as sha2::Digest>::digest(i.to_le_bytes()).to_vec())
            .take(150_000)
            .collect();
        let updates = [update];
        let catalog = local_catalog(&s.path("feed"), &updates);
        let (secret, public) = s.key("signer");
        let out = s.pack_run(catalog.to_str().unwrap(), &secret, &["--json", "--media", "120000"], &[]).ok();
        let result: serde_json::Value = data(out.lines().last().unwrap());
        let mut volumes: Vec<PathBuf> =
            result["volumes"].as_array().unwrap().iter().map(|v| PathBuf::from(v["path"].as_str().unwrap())).collect();
        let carries_chunk = |v: &PathBuf| zip_entries(v).iter().any(|(n, _)| n.starts_with("chunks/"));
        assert!(volumes.iter().filter(|v| carries_chunk(v)).count() >= 2, "the file travels in chunks: {out}");
        let last = volumes.iter().rposition(carries_chunk).unwrap();
        let bundle = volumes.remove(last);
        Fixture { s, public, before: volumes, bundle, reference: String::new() }.with_reference()
    }

    fn with_reference(mut self) -> Fixture {
        let clean = self.server("reference");
        self.import(&clean).ok();
        self.reference = self.state_of(&clean);
        self
    }

    /// A fresh data directory that trusts the signer.
    fn server(&self, name: &str) -> PathBuf {
        let dir = self.s.path(name);
        let _ = std::fs::remove_dir_all(&dir);
        self.run(&dir, &["trust", "add", self.public.to_str().unwrap()]).ok();
        for volume in &self.before {
            self.run(&dir, &["import", volume.to_str().unwrap()]).ok();
        }
        dir
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Run {
        Run::from(Command::new(&*INGEST).arg("--data-dir").arg(dir).args(args).stdin(Stdio::null()).output().unwrap())
    }

    fn import(&self, dir: &Path) -> Run {
        self.run(dir, &["import", self.bundle.to_str().unwrap()])
    }

    /// The update list, the trust store and the stored files.
    fn state_of(&self, dir: &Path) -> String {
        let list = self.run(dir, &["list", "--json"]).ok();
        let trust = self.run(dir, &["trust", "list", "--json"]).ok();
        let trust: Vec<String> = trust.lines().map(|l| l.split("\"added_at\"").next().unwrap().to_string()).collect();
        let mut stored = walk(&dir.join("store/sha256"));
        stored.sort();
        format!("{list}\n{}\n{}", trust.join("\n"), stored.join("\n"))
    }

    /// After an interruption: the registry is sound, `ingest check` is clean, and importing
    /// again finishes with the reference state.
    #[track_caller]
    fn recovers(&self, dir: &Path, what: &str) {
        let db = rusqlite::Connection::open(dir.join("registry.sqlite")).unwrap();
        let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(integrity, "ok", "{what}");
        drop(db);
        let check = self.run(dir, &["check"]);
        assert_eq!(check.code, 0, "{what}: ingest check is not clean:\n{}{}", check.stdout, check.stderr);
        self.import(dir).ok();
        assert_eq!(self.state_of(dir), self.reference, "{what}: importing again did not give the complete state");
        assert!(walk(&dir.join("store/tmp")).is_empty() && walk(&dir.join("store/pending")).is_empty(), "{what}");
    }
}

/// Every crash point an import passes, in order.
const CRASH_POINTS: &[&str] = &[
    "ingest.copied",
    "store.before-rename",
    "store.after-rename",
    "ingest.before-register",
    "registry.before-commit",
    "ingest.before-publish",
    "store.publish",
    "ingest.before-chunk-removal",
];

#[test]
fn crash_at_every_write_of_an_import() {
    crash_at_every_write(&Fixture::new(4, 20_000));
}

/// The same for the import that joins a file from its chunks: the join, the chunks'
/// removal and their registration are interrupted too.
#[test]
fn crash_at_every_write_of_a_join() {
    let f = Fixture::joining();
    assert!(!walk(&f.server("check-before").join("store/chunks")).is_empty(), "the first chunk waits");
    crash_at_every_write(&f);
}

fn crash_at_every_write(f: &Fixture) {
    let ingest = failpoint_ingest();
    for point in CRASH_POINTS {
        let mut crashes = 0;
        for pass in 0.. {
            let dir = f.server("crashing");
            let out = Command::new(ingest)
                .arg("--data-dir")
                .arg(&dir)
                .args(["import", f.bundle.to_str().unwrap()])
                .env("FAILPOINTS", format!("{point}={pass}*off->return"))
                .output()
                .unwrap();
            if out.status.success() {
                break; // the import went past every pass of this point
            }
            assert_eq!(out.status.signal(), Some(6), "{point} pass {pass}: expected an abort, got {:?}", out.status);
            crashes += 1;
            f.recovers(&dir, &format!("crash at {point}, pass {pass}"));
        }
        assert!(crashes > 0, "the import never passed crash point {point}");
    }
}

/// A small, dependency-free pseudo-random sequence (xorshift), seeded from the clock and
/// printed, so that a failing run can be repeated.
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::env::var("FERRY_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("kill -9 test: FERRY_KILL_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn kill_9_at_random_moments() {
    // FERRY_KILL_RUNS=1000 is the long run (tests/crash/kill-loop.sh).
    let runs: usize = std::env::var("FERRY_KILL_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(50);
    // Large enough that the import, not the process start, fills the measured time.
    let f = Fixture::new(16, 1_500_000);
    // The machine's load changes while the suite runs: each kill is drawn over the duration
    // of a clean import measured just before it.
    let timed = || {
        let dir = f.server("timed");
        let started = Instant::now();
        f.import(&dir).ok();
        started.elapsed().as_micros() as u64
    };
    let mut random = Random::new();
    let (mut in_lock, mut finished, mut before) = (0, 0, 0);
    // Two thirds of the runs must land inside the lock. The suite's other tests share the two
    // cores, so a clean import timed just before a kill can be slower or faster than the
    // killed one and a kill may land before or after the import: such runs are checked for
    // recovery all the same, and more are made while too few landed, up to twice as many.
    let wanted = (runs * 2).div_ceil(3);
    let mut run = 0;
    while (run < runs || in_lock < wanted) && run < runs * 2 {
        run += 1;
        let span = timed();
        let dir = f.server("killed");
        let mut child = Command::new(&*INGEST)
            .arg("--data-dir")
            .arg(&dir)
            .args(["import", f.bundle.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let at = random.below(span);
        std::thread::sleep(Duration::from_micros(at));
        let _ = child.kill(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The lock is taken before "importing" is printed and released at exit.
        if out.status.success() {
            finished += 1;
        } else if stderr.contains("importing") {
            in_lock += 1;
        } else {
            before += 1;
        }
        f.recovers(&dir, &format!("kill -9 after {at} µs (run {run})"));
    }
    eprintln!("kill -9 test: {in_lock} of {run} kills inside the lock, {before} before it, {finished} after the end");
    assert!(
        in_lock >= wanted,
        "only {in_lock} of {run} kills landed while the import held its lock ({before} landed before it \
         took the lock, {finished} after it finished); {wanted} were wanted"
    );
}

#[test]
fn medium_removed_mid_read() {
    let f = Fixture::new(4, 300_000);
    let dir = f.server("media-removed");
    let out = Command::new(failpoint_ingest())
        .arg("--data-dir")
        .arg(&dir)
        .args(["import", f.bundle.to_str().unwrap()])
        .env("FAILPOINTS", "bundle.read=3*off->return")
        .output()
        .unwrap();
    let run = Run::from(out);
    run.refused(exit::LOCAL, &["injected read error: the medium was removed"]);
    assert!(f.run(&dir, &["list", "--json"]).ok().is_empty(), "nothing is registered");
    let db = rusqlite::Connection::open(dir.join("registry.sqlite")).unwrap();
    let highest: Option<i64> = db.query_row("SELECT MAX(highest_sequence) FROM channels", [], |r| r.get(0)).unwrap();
    assert_eq!(highest, None, "the sequence did not advance");
    drop(db);
    f.recovers(&dir, "medium removed");
}

/// A tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&at).output();
        match out {
            Ok(o) if o.status.success() => Tmpfs(at),
            Ok(o) => panic!(
                "cannot mount a tmpfs for the disk-full test (it needs root): {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("cannot run mount for the disk-full test: {e}"),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_during_import() {
    let f = Fixture::new(4, 1_000_000);
    let small = Tmpfs::mount(f.s.path("small-disk"), "2m");
    let dir = small.0.join("data");
    f.run(&dir, &["trust", "add", f.public.to_str().unwrap()]).ok();
    let stderr = f.import(&dir).refused(exit::LOCAL, &["No space left on device"]);
    assert!(stderr.contains("the copy of entry"), "the refusal names what could not be written: {stderr}");
    assert!(f.run(&dir, &["list", "--json"]).ok().is_empty(), "nothing is registered");
    let db = rusqlite::Connection::open(dir.join("registry.sqlite")).unwrap();
    let highest: Option<i64> = db.query_row("SELECT MAX(highest_sequence) FROM channels", [], |r| r.get(0)).unwrap();
    assert_eq!(highest, None, "the sequence did not advance");
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    drop(db);
    f.run(&dir, &["check"]).ok();
    assert!(walk(&dir.join("store/tmp")).is_empty(), "no temporary copy stays behind");
}
