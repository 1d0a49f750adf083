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

/// The layers of `core/src`, in the order of the flow: each may use only those before it
/// (and itself); `fetch` and `server` never use each other.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("formats", &["base"]),
    ("bundle", &["base", "formats"]),
    ("fetch", &["base", "formats", "bundle"]),
    ("server", &["base", "formats", "bundle"]),
    ("publish", &["base", "formats", "bundle", "server"]),
    ("ingest", &["base", "formats", "bundle", "server", "publish"]),
    ("client", &["base", "formats", "publish"]),
];

/// The one circle between files kept on purpose: errors name keys and digests, and names
/// refuse with errors.
const ALLOWED_CIRCLES: &[&[&str]] = &[&["base::error", "base::names"]];

/// A module path (`server::registry::list`) for a file under `core/src`.
fn module_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

/// The `a::b::c` paths a source text names after `prefix` (`crate::`, `super::`), with
/// `crate::{x, y::{z}}` groups expanded to their first path segments (enough to find the
/// module each names).
fn paths_after(text: &str, prefix: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        out.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if depth == 1 && (ident(c) || c.is_whitespace()) {
                    item.push(c);
                }
            }
            out.push(item);
        } else {
            out.push(rest.chars().take_while(|c| ident(*c)).collect());
        }
    }
    out.into_iter().map(|p| p.split_whitespace().collect::<String>().trim_end_matches(':').to_string()).collect()
}

/// Which module of `modules` each `crate::` path (and `super::sibling`) of `module` uses.
fn uses(module: &str, text: &str, modules: &std::collections::BTreeSet<String>) -> std::collections::BTreeSet<String> {
    // Unit tests may reach anywhere.
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
    };
    let mut found: std::collections::BTreeSet<String> =
        paths_after(text, "crate::").iter().filter_map(|p| resolve(p)).collect();
    // A sibling named through the parent (`super::list::X`); the parent itself is the
    // module's own home, not an import.
    if let Some((parent, _)) = module.rsplit_once("::") {
        for path in paths_after(text, "super::") {
            if let Some(m) = resolve(&format!("{parent}::{path}")).filter(|m| m != parent) {
                found.insert(m);
            }
        }
    }
    found.remove(module);
    found
}

/// Every way `files` (module path, text) break the layering: an upward or sideways `crate::`
/// use, or a circle between files.
fn layering_faults(files: &[(String, String)]) -> Vec<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let layer = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut faults = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in files {
        let used = uses(module, text, &modules);
        if !module.is_empty() {
            let Some((_, allowed)) = LAYERS.iter().find(|(l, _)| *l == layer(module)) else {
                faults.push(format!("{module}: in no layer (add its folder to LAYERS)"));
                continue;
            };
            for u in &used {
                let l = layer(u);
                if l != layer(module) && !allowed.contains(&l.as_str()) {
                    faults.push(format!("{module} uses {u}: layer {} may use only {allowed:?}", layer(module)));
                }
            }
        }
        graph.insert(module.clone(), used);
    }
    // Circles: modules that reach themselves, grouped by the set they form.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = graph.get(from).into_iter().flatten().cloned().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(graph.get(&m).into_iter().flatten().cloned());
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut circles: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, r) in &reaches {
        if r.contains(*m) {
            let circle: Vec<String> =
                r.iter().filter(|o| reaches.get(o).is_some_and(|back| back.contains(*m))).cloned().collect();
            circles.insert(circle);
        }
    }
    for circle in circles {
        if !ALLOWED_CIRCLES.iter().any(|allowed| *allowed == circle.iter().map(String::as_str).collect::<Vec<_>>()) {
            faults.push(format!("import circle between {}", circle.join(", ")));
        }
    }
    faults
}

#[test]
fn core_is_layered_without_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("core/src");
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| (module_of(p.strip_prefix(&root).unwrap()), std::fs::read_to_string(p).unwrap()))
        .collect();
    assert!(files.len() > 30);
    let faults = layering_faults(&files);
    assert!(faults.is_empty(), "core/src breaks its layering:\n{}", faults.join("\n"));
}

#[test]
fn the_layering_rule_rejects_an_upward_use_and_a_circle() {
    let file = |m: &str, text: &str| (m.to_string(), text.to_string());
    let files = [
        file("base::error", "use crate::base::names::Sha256;"),
        file("base::names", "use crate::base::error::Error;"),
        file("formats::model", "use crate::{base::names::UpdateId, server::registry::Registry};"),
        file("server::registry", "use crate::formats::model;"),
        file("server::registry::list", "use super::groups::X;"),
        file("server::registry::groups", "use super::{Registry, list::Y};"),
        file("fetch::pack", "use crate::server::store::Store;"),
        file("server::store", ""),
    ];
    let faults = layering_faults(&files);
    assert_eq!(
        faults,
        [
            "formats::model uses server::registry: layer formats may use only [\"base\"]",
            "fetch::pack uses server::store: layer fetch may use only [\"base\", \"formats\", \"bundle\"]",
            "import circle between formats::model, server::registry",
            "import circle between server::registry::groups, server::registry::list",
        ]
    );
}

#[test]
fn every_exit_code_is_documented_in_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let codes = std::fs::read_to_string(root.join("bins/common/mod.rs")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let defined: Vec<u8> = codes
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const ")?.split_once(": u8 = "))
        .map(|(_, n)| n.trim_end_matches(';').parse().unwrap())
        .collect();
    assert!(defined.len() >= 12, "{defined:?}");
    for code in defined {
        assert!(readme.contains(&format!("\n| {code} | ")), "exit code {code} is not in README.md's table");
    }
}

#[test]
fn help_names_each_program_its_values_and_the_exit_codes() {
    for (program, about) in [
        (crate::support::FETCH.as_str(), "Builds signed update bundles"),
        (crate::support::INGEST.as_str(), "Verifies bundles and keeps the update list"),
        (crate::support::MAIL.as_str(), "Sends one message"),
    ] {
        let out = std::process::Command::new(program).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.starts_with(about), "each binary's own description first: {help}");
        assert!(help.contains("Exit codes: 0 success") && help.contains("12 damaged"), "{help}");
    }
    let out = std::process::Command::new(&*crate::support::INGEST).args(["approve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("[possible values: security-update, critical-update"), "{help}");
    assert!(help.contains("[possible values: critical, important, moderate, low, unspecified]"), "{help}");
}
