//! The README's first command, `bash samples/demo.sh`, runs the whole journey on the shipped
//! samples. This test runs it against the binaries under test.

use std::process::Command;

use crate::support::*;

#[test]
fn demo_script_runs_the_journey() {
    let s = Scratch::new();
    let bin_dir = std::path::Path::new(FETCH).parent().unwrap();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/demo.sh"))
        .env("FERRY_BIN_DIR", bin_dir)
        .env("FERRY_DEMO_DIR", s.path("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "fetch pack",
        "fetch inspect",
        "ingest trust add",
        "ingest verify",
        "ingest import",
        "ingest list",
        "already imported",
    ] {
        assert!(stdout.contains(step), "the demo did not show {step:?}:\n{stdout}");
    }
    assert!(stdout.contains("KB5034122"), "{stdout}");
}

/// The sample catalog's digests and sizes match the shipped payloads.
#[test]
fn sample_catalog_matches_its_payloads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("catalog.json")).unwrap()).unwrap();
    let mut checked = 0;
    for u in catalog["updates"].as_array().unwrap() {
        for f in u["files"].as_array().unwrap() {
            let bytes = std::fs::read(root.join(f["url"].as_str().unwrap())).unwrap();
            assert_eq!(sha256_hex(&bytes), f["sha256"].as_str().unwrap(), "{}", f["name"]);
            assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap(), "{}", f["name"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
}
