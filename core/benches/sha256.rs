//! Benchmark (not a test): SHA-256 throughput of the implementations ferry could hash with,
//! on this machine, as ratios against `openssl dgst -sha256` over the same file, so that the
//! choice in ARCHITECTURE.md rests on figures. SHA-256 is what bounds fetch and ingest.
//!
//! Run: `cargo bench -p ferry-core --bench sha256` (SHA_MIB=512 SHA_RUNS=5 by default).
//! The data is generated in a temporary file and removed afterwards.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::Digest;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn read_all_in_blocks(path: &std::path::Path, mut update: impl FnMut(&[u8])) {
    let mut file = std::fs::File::open(path).expect("open the data file");
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).expect("read the data file");
        if n == 0 {
            break;
        }
        update(&buf[..n]);
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn sha_extensions() -> &'static str {
    if std::arch::is_x86_feature_detected!("sha") { "present" } else { "absent" }
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn sha_extensions() -> &'static str {
    "not looked for (not an x86 processor)"
}

fn main() {
    let mib: usize = std::env::var("SHA_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    let runs: usize = std::env::var("SHA_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut data = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..mib {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        data.write_all(&block).expect("write the data file");
    }
    data.flush().expect("flush the data file");
    let path = data.path().to_path_buf();
    let bytes = (mib << 20) as f64;

    let openssl = time_runs(runs, || {
        let out = Command::new("openssl").arg("dgst").arg("-sha256").arg(&path).output().expect("run openssl");
        assert!(out.status.success());
    });
    let sha2 = time_runs(runs, || {
        let mut h = sha2::Sha256::new();
        read_all_in_blocks(&path, |b| h.update(b));
        std::hint::black_box(h.finalize());
    });
    let ring = time_runs(runs, || {
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        read_all_in_blocks(&path, |b| h.update(b));
        std::hint::black_box(h.finish());
    });

    let rate = |d: Duration| bytes / d.as_secs_f64() / (1 << 20) as f64;
    println!("SHA-256 over {mib} MiB, median of {runs} runs");
    println!("  cpu: SHA extensions {}", sha_extensions());
    for (name, d) in [("openssl dgst -sha256", openssl), ("sha2 crate", sha2), ("ring", ring)] {
        println!(
            "  {name:<22} {:>8.0} MiB/s   ratio to openssl {:.2}",
            rate(d),
            openssl.as_secs_f64() / d.as_secs_f64()
        );
    }
}
