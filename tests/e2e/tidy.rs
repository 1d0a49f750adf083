//! Rules a reviewer would otherwise forget: every Rust file starts with a `//!` paragraph
//! saying what it owns, and the binaries hold no rules (no SQL, no hashing, no zip).

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_file_says_what_it_owns() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["core/src", "bins", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("//!"), "{} does not start with a //! paragraph", f.display());
    }
}

#[test]
fn binaries_hold_no_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("bins"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for forbidden in ["rusqlite", "sha2::", "zip::", "ed25519", "SELECT ", "INSERT ", "reqwest"] {
            assert!(!text.contains(forbidden), "{} uses {forbidden:?}: that belongs in core/", f.display());
        }
    }
}
