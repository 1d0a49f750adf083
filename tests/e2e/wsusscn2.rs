//! `fetch plan --wsusscn2`: scan catalogs in Microsoft's layout, built in the test with
//! gcab (MSZIP) and signed with osslsigncode under a test root, yield Microsoft updates with
//! supersedence and SHA-1 provenance; a cabinet whose signature does not hold is refused
//! before anything in it is read.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test root and a code-signing certificate it issued, as PEM files in `dir`.
struct Pki {
    root: PathBuf,
    signer: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, name: &str) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let path = |f: &str| dir.join(format!("{name}-{f}"));
    run(tool("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650"])
        .arg("-keyout")
        .arg(path("root.key"))
        .arg("-out")
        .arg(path("root.pem"))
        .args([
            "-subj",
            &format!("/CN={name} root"),
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]));
    run(tool("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes"])
        .arg("-keyout")
        .arg(path("signer.key"))
        .arg("-out")
        .arg(path("signer.csr"))
        .args(["-subj", &format!("/CN={name} signer")]));
    std::fs::write(path("ext.cnf"), "extendedKeyUsage=codeSigning\nbasicConstraints=CA:false\n").unwrap();
    run(tool("openssl")
        .args(["x509", "-req", "-days", "3650", "-set_serial", "7"])
        .arg("-in")
        .arg(path("signer.csr"))
        .arg("-CA")
        .arg(path("root.pem"))
        .arg("-CAkey")
        .arg(path("root.key"))
        .arg("-out")
        .arg(path("signer.pem"))
        .arg("-extfile")
        .arg(path("ext.cnf")));
    Pki { root: path("root.pem"), signer: path("signer.pem"), key: path("signer.key") }
}

fn sha1_of(bytes: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(bytes).into()
}

fn file_id(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(sha1_of(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const WINDOWS_10: &str = "a3c2375d-0c8a-42f9-bce0-28333e198407";
const SECURITY_UPDATES: &str = "0fa1201d-4330-4fa8-8ae9-b877473b6441";
const PLAIN_UPDATES: &str = "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83";
const JANUARY: &str = "2b0ab5e4-0d0f-4b0e-9e8e-1a7a2a3b4c01";
const DECEMBER: &str = "2b0ab5e4-0d0f-4b0e-9e8e-1a7a2a3b4c00";
const TOOL: &str = "2b0ab5e4-0d0f-4b0e-9e8e-1a7a2a3b4c02";

/// Builds a scan catalog in `dir` in Microsoft's layout: two categories and a product, a
/// January cumulative update (a bundle whose leaf carries the file) that supersedes
/// December's, and an update of a classification ferry does not carry. `edit` may change
/// any file (path relative to the catalog, text) before the cabinets are made.
fn scan_catalog(dir: &Path, pki: &Pki, edit: impl FnOnce(&mut Vec<(String, String)>)) -> PathBuf {
    scan_catalog_at(dir, pki, MICROSOFT, edit)
}

const MICROSOFT: &str = "http://download.windowsupdate.com/c/msdownload/update/software/secu";

/// The two update files of the catalog, as (file name at the download base, bytes).
fn update_files() -> Vec<(String, Vec<u8>)> {
    [("windows10.0-kb5034122-x64", 3000), ("windows10.0-kb5033372-x64", 2500)]
        .iter()
        .map(|(name, size)| {
            let bytes = payload(&format!("{name}.msu"), *size);
            (format!("{name}_{}.msu", hex(&sha1_of(&bytes))), bytes)
        })
        .collect()
}

/// [`scan_catalog`] whose files are downloaded from `base`.
fn scan_catalog_at(dir: &Path, pki: &Pki, base: &str, edit: impl FnOnce(&mut Vec<(String, String)>)) -> PathBuf {
    let january = payload("windows10.0-kb5034122-x64.msu", 3000);
    let december = payload("windows10.0-kb5033372-x64.msu", 2500);
    let url = |name: &str, bytes: &[u8]| format!("{base}/{name}_{}.msu", hex(&sha1_of(bytes)));
    let update = |id: &str, rev: u32, number: u32, extra: &str| {
        format!(
            r#"<Update UpdateId="{id}" RevisionId="{rev}" RevisionNumber="{number}" CreationDate="2024-01-09T18:00:00Z" DefaultLanguage="en" IsBundle="true">{extra}</Update>"#
        )
    };
    let categories = |class: &str| {
        format!(
            r#"<Categories><Category Type="Company" Id="56309036-4c77-4dd9-951a-99ee9c246a94"/><Category Type="Product" Id="{WINDOWS_10}"/><Category Type="UpdateClassification" Id="{class}"/></Categories>"#
        )
    };
    let leaf = |id: &str, rev: u32, bundle: u32, bytes: &[u8]| {
        format!(
            r#"<Update UpdateId="{id}" RevisionId="{rev}" RevisionNumber="1" IsLeaf="true"><BundledBy><Revision Id="{bundle}"/></BundledBy><PayloadFiles><File Id="{}"/></PayloadFiles></Update>"#,
            file_id(bytes)
        )
    };
    let package = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<OfflineSyncPackage xmlns="http://schemas.microsoft.com/msus/2004/02/OfflineSync" MinimumClientVersion="5.8.0.2678" PackageId="8a7d4f3e-0000-0000-0000-000000000001" PackageVersion="1.0" ProtocolVersion="1.0" CreationDate="2024-01-10T00:00:00Z" SourceId="cc56a0b6-9cf6-4f49-8bf7-3a3f9e1a1f90">
<Updates>
<Update UpdateId="{WINDOWS_10}" RevisionId="1" RevisionNumber="1" IsSoftware="false"/>
<Update UpdateId="{SECURITY_UPDATES}" RevisionId="2" RevisionNumber="1" IsSoftware="false"/>
<Update UpdateId="{PLAIN_UPDATES}" RevisionId="3" RevisionNumber="1" IsSoftware="false"/>
{december}
{december_leaf}
{january}
{january_leaf}
{tool}
</Updates>
<FileLocations>
<FileLocation Id="{january_id}" Url="{january_url}"/>
<FileLocation Id="{december_id}" Url="{december_url}"/>
</FileLocations>
</OfflineSyncPackage>
"#,
        december = update(
            DECEMBER,
            10,
            200,
            &format!("{}<SupersededBy><Revision Id=\"20\"/></SupersededBy>", categories(SECURITY_UPDATES))
        ),
        december_leaf = leaf("9d6e0b1c-0000-4000-8000-000000000010", 11, 10, &december),
        january = update(
            JANUARY,
            20,
            201,
            &format!("{}<Prerequisites><UpdateId Id=\"{WINDOWS_10}\"/></Prerequisites>", categories(SECURITY_UPDATES))
        ),
        january_leaf = leaf("9d6e0b1c-0000-4000-8000-000000000020", 21, 20, &january),
        tool = update(TOOL, 30, 100, &categories(PLAIN_UPDATES)),
        january_id = file_id(&january),
        january_url = url("windows10.0-kb5034122-x64", &january),
        december_id = file_id(&december),
        december_url = url("windows10.0-kb5033372-x64", &december),
    );
    let extended = |kb: &str, severity: &str, cves: &[&str]| {
        let cves: String = cves.iter().map(|c| format!("<CveID>{c}</CveID>")).collect();
        format!(
            r#"<ExtendedProperties DefaultPropertiesLanguage="en" Handler="http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsPatch" MsrcSeverity="{severity}"><KBArticleID>{kb}</KBArticleID>{cves}<SupportUrl>https://support.microsoft.com/help/{kb}</SupportUrl></ExtendedProperties>"#
        )
    };
    let title =
        |t: &str| format!("<LocalizedProperties><Language>en</Language><Title>{t}</Title></LocalizedProperties>");
    let mut files: Vec<(String, String)> = vec![
        ("package/package.xml".into(), package),
        ("index.xml".into(), r#"<?xml version="1.0"?><OfflineSyncPackageIndex><CABLIST><CAB NAME="package.cab"/><CAB NAME="package2.cab" RANGESTART="1"/></CABLIST></OfflineSyncPackageIndex>"#.into()),
        ("package2/l/en/1".into(), title("Windows 10")),
        ("package2/l/en/2".into(), title("Security Updates")),
        ("package2/l/en/3".into(), title("Updates")),
        ("package2/x/10".into(), extended("5033372", "Important", &["CVE-2023-35628"])),
        ("package2/l/en/10".into(), title("2023-12 Cumulative Update for Windows 10 Version 22H2 for x64-based Systems (KB5033372)")),
        ("package2/x/20".into(), extended("5034122", "Critical", &["CVE-2024-20674", "CVE-2024-20700"])),
        ("package2/l/en/20".into(), title("2024-01 Cumulative Update for Windows 10 Version 22H2 for x64-based Systems (KB5034122) &amp; more")),
        ("package2/x/30".into(), extended("890830", "", &[])),
        ("package2/l/en/30".into(), title("Windows Malicious Software Removal Tool x64")),
    ];
    edit(&mut files);
    let build = dir.join("build");
    for (rel, text) in &files {
        let path = build.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    for inner in ["package", "package2"] {
        let from = build.join(inner);
        let names: Vec<String> = walk(&from);
        run(tool("gcab").arg("-c").arg("-z").arg(build.join(format!("{inner}.cab"))).args(&names).current_dir(&from));
    }
    let unsigned = dir.join("unsigned.cab");
    run(tool("gcab")
        .arg("-c")
        .arg("-z")
        .arg(&unsigned)
        .args(["package.cab", "package2.cab", "index.xml"])
        .current_dir(&build));
    let signed = dir.join("wsusscn2.cab");
    sign(pki, &unsigned, &signed);
    signed
}

/// Signs the cabinet `unsigned` into `signed` with the certificate of `pki`.
fn sign(pki: &Pki, unsigned: &Path, signed: &Path) {
    let _ = std::fs::remove_file(signed);
    run(tool("osslsigncode")
        .arg("sign")
        .arg("-certs")
        .arg(&pki.signer)
        .arg("-key")
        .arg(&pki.key)
        .arg("-in")
        .arg(unsigned)
        .arg("-out")
        .arg(signed));
}

fn plan(s: &Scratch, cab: &Path, root: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let args = [
        &["plan", "--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", root.to_str().unwrap(), "--json"][..],
        extra,
    ]
    .concat();
    s.fetch(&args).ok().lines().map(json_line).collect()
}

#[test]
fn scan_catalog_yields_microsoft_updates_with_supersedence_and_sha1() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let cab = scan_catalog(&s.path("catalog"), &pki, |_| {});
    let lines = plan(&s, &cab, &pki.root, &["--superseded", "include"]);
    assert_eq!(lines[0]["type"], "scan-catalog");
    assert!(lines[0]["data"]["signer"].as_str().unwrap().contains("test signer"), "{}", lines[0]);
    let updates: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "scan-update").map(|l| &l["data"]).collect();
    let ids: Vec<&str> = updates.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [DECEMBER, JANUARY], "one update per bundle; categories and leaves are not offered");
    let january = updates[1];
    assert_eq!(january["kb"], "KB5034122");
    assert_eq!(january["revision"], 201, "Microsoft's revision number");
    assert_eq!(january["severity"], "critical");
    assert_eq!(january["classification"], "security-update");
    assert_eq!(january["products"], serde_json::json!(["Windows 10"]));
    assert_eq!(january["cves"], serde_json::json!(["CVE-2024-20674", "CVE-2024-20700"]));
    assert!(
        january["title"].as_str().unwrap().ends_with("(KB5034122) & more"),
        "entities of XML itself are read: {january}"
    );
    assert_eq!(january["supersedes"], serde_json::json!([DECEMBER]));
    let file = &january["files"][0];
    assert_eq!(file["sha1"], hex(&sha1_of(&payload("windows10.0-kb5034122-x64.msu", 3000))));
    assert_eq!(file["digest"], "vendor-sha1", "the digest's provenance: the catalog's SHA-1");
    let skipped: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "scan-skipped").map(|l| &l["data"]).collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("classification Updates"), "{skipped:?}");

    // By default, what a selected update supersedes stays behind, and is said so.
    let lines = plan(&s, &cab, &pki.root, &["--kb", "5033372", "--kb", "KB5034122"]);
    let ids: Vec<&str> =
        lines.iter().filter(|l| l["type"] == "scan-update").map(|l| l["data"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [JANUARY]);
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "scan-skipped" && l["data"]["reason"].as_str().unwrap().contains("superseded by"))
    );
}

#[test]
fn scan_catalog_signed_by_another_root() {
    let s = Scratch::new();
    let signer = pki(&s.path("pki"), "stranger");
    let trusted = pki(&s.path("pki"), "test");
    let cab = scan_catalog(&s.path("catalog"), &signer, |_| {});
    s.fetch(&["plan", "--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", trusted.root.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["wsusscn2.cab", "signature is refused", "no trusted root signed"]);
    // Without the test root, Microsoft's pinned roots alone decide.
    s.fetch(&["plan", "--wsusscn2", cab.to_str().unwrap()]).refused(exit::SIGNATURE, &["no trusted root signed"]);
}

#[test]
fn scan_catalog_changed_after_signing() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let cab = scan_catalog(&s.path("catalog"), &pki, |_| {});
    let mut bytes = std::fs::read(&cab).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x20;
    std::fs::write(&cab, bytes).unwrap();
    s.fetch(&["plan", "--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["changed after signing"]);
}

#[test]
fn scan_catalog_unsigned() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    scan_catalog(&s.path("catalog"), &pki, |_| {});
    let unsigned = s.path("catalog/unsigned.cab");
    s.fetch(&["plan", "--wsusscn2", unsigned.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["not signed"]);
}

#[test]
fn scan_catalog_whose_file_id_and_name_disagree() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let cab = scan_catalog(&s.path("catalog"), &pki, |files| {
        let package = &mut files[0].1;
        let at = package.find("_").unwrap() + 1;
        package.replace_range(at..at + 4, "0000");
    });
    let lines = plan(&s, &cab, &pki.root, &[]);
    assert!(
        lines.iter().any(
            |l| l["type"] == "scan-skipped" && l["data"]["reason"].as_str().unwrap().contains("but its file id is")
        ),
        "{lines:?}"
    );
}

#[test]
fn scan_catalog_with_a_package_cut_short() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let cab = scan_catalog(&s.path("catalog"), &pki, |files| {
        let package = &mut files[0].1;
        package.truncate(package.len() / 2);
    });
    s.fetch(&["plan", "--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()])
        .refused(exit::INPUT, &["wsusscn2.cab", "package.xml"]);
}

#[test]
fn scan_catalog_packs_and_imports_with_sha1_provenance() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let server = crate::support::http::Server::start(
        update_files().into_iter().map(|(name, bytes)| (format!("secu/{name}"), bytes)).collect(),
    );
    let cab = scan_catalog_at(&s.path("catalog"), &pki, server.url("secu").trim_end_matches('/'), |_| {});
    let (secret, public) = s.key("signer");
    let feed = ["--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()];
    let out = s.pack_from(&feed, &secret, &["--superseded", "include", "--json"], &[]).ok();
    let lines: Vec<serde_json::Value> = out.lines().map(json_line).collect();
    let bundle = lines.last().unwrap();
    assert_eq!((bundle["type"].as_str(), bundle["data"]["updates"].as_u64()), (Some("bundle"), Some(2)), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "download-started" && l["data"]["sha256"].is_null() && l["data"]["sha1"].is_string()),
        "{out}"
    );
    assert!(lines.iter().any(|l| l["type"] == "scan-skipped"), "the classification not carried is said: {out}");

    s.trust(&public);
    s.ingest(&["import", bundle["data"]["path"].as_str().unwrap()]).ok();
    let january = data(&s.ingest(&["show", JANUARY, "--json"]).ok());
    let file = &january["metadata"]["files"][0];
    assert_eq!(file["sha256_from"], "fetch", "{file}");
    assert_eq!(file["sha1"], hex(&sha1_of(&payload("windows10.0-kb5034122-x64.msu", 3000))));
    assert_eq!(file["sha256"], sha256_hex(&payload("windows10.0-kb5034122-x64.msu", 3000)));
    assert_eq!(january["kb"], "KB5034122");
    assert_eq!(january["metadata"]["applicability"]["prerequisites"], serde_json::json!([[WINDOWS_10]]));
    let text = s.ingest(&["show", JANUARY]).ok();
    assert!(text.contains("computed by fetch; the vendor names it by SHA-1"), "{text}");
    let december = data(&s.ingest(&["show", DECEMBER, "--json"]).ok());
    assert_eq!(december["superseded_by"], serde_json::json!([JANUARY]), "{december}");

    // A filter and a rule can hold back what is known by SHA-1 only.
    assert_eq!(s.ingest(&["list", "--json", "--sha1-only"]).ok().lines().count(), 2);
    assert_eq!(s.ingest(&["list", "--json", "--not-sha1-only"]).ok().lines().count(), 0);
    s.ingest(&["rules", "add", "trusted-digests-only", "--approve", "--not-sha1-only", "--by", "tester"]).ok();
    s.ingest(&["refresh"]).ok();
    let listed = s.ingest(&["list", "--json", "--status", "approved"]).ok();
    assert!(listed.is_empty(), "no update known by SHA-1 only is approved by the rule: {listed}");
    s.ingest(&["rules", "add", "hold-sha1", "--decline", "--sha1-only", "--by", "tester"]).ok();
    s.ingest(&["refresh"]).ok();
    assert_eq!(s.ingest(&["list", "--json", "--status", "declined"]).ok().lines().count(), 2, "the facts hold");
    let report = s.ingest(&["report", "1"]).ok();
    assert!(report.contains("the vendor names it by SHA-1"), "{report}");
}

#[test]
fn scan_catalog_file_whose_sha1_differs() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let mut files = update_files();
    files[0].1.push(b'!');
    let server =
        crate::support::http::Server::start(files.into_iter().map(|(n, b)| (format!("secu/{n}"), b)).collect());
    let cab = scan_catalog_at(&s.path("catalog"), &pki, server.url("secu").trim_end_matches('/'), |_| {});
    let (secret, _) = s.key("signer");
    let media = s.media();
    s.pack_from(
        &["--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()],
        &secret,
        &[],
        &[],
    )
    .refused(exit::INTEGRITY, &["SHA-1 mismatch", "windows10.0-kb5034122-x64"]);
    assert!(walk(&media).is_empty(), "no bundle is left behind: {:?}", walk(&media));
}

#[test]
fn msrc_documents_enrich_the_scan_catalog_and_name_what_it_lacks() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let cab = scan_catalog(&s.path("catalog"), &pki, |_| {});
    let january = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata/msrc-cvrf/cvrfDocument-2024-Jan.xml");
    assert!(january.is_file(), "{} is missing: the tests read the real documents there", january.display());
    let lines = plan(&s, &cab, &pki.root, &["--msrc", january.to_str().unwrap(), "--cve", "CVE-2024-20653"]);
    let updates: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "scan-update").map(|l| &l["data"]).collect();
    assert_eq!(updates.len(), 1, "only KB5034122 fixes CVE-2024-20653, as MSRC says: {lines:?}");
    let cves = updates[0]["cves"].as_array().unwrap();
    assert!(cves.len() > 30 && cves.contains(&serde_json::json!("CVE-2024-20653")), "{cves:?}");
    let uncarried: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "scan-skipped" && l["data"]["reason"].as_str().unwrap().contains("named by MSRC"))
        .map(|l| l["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(uncarried.len(), 36, "the other KBs of January are reported, not dropped: {uncarried:?}");
    assert!(!uncarried.contains(&"KB5034122"));
}

#[test]
fn scan_catalog_whose_entry_climbs_out() {
    // Signed as it is: the signature holds, and the entry's name is what is refused.
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    scan_catalog(&s.path("catalog"), &pki, |_| {});
    let mut bytes = std::fs::read(s.path("catalog/unsigned.cab")).unwrap();
    let at = bytes.windows(9).position(|w| w == b"index.xml").unwrap();
    bytes[at..at + 9].copy_from_slice(b"../dx.xml");
    std::fs::write(s.path("climbing.cab"), bytes).unwrap();
    let signed = s.path("wsusscn2.cab");
    sign(&pki, &s.path("climbing.cab"), &signed);
    s.fetch(&["plan", "--wsusscn2", signed.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()])
        .refused(exit::INPUT, &["\"../dx.xml\"", "outside the cabinet"]);
    assert!(!s.path("dx.xml").exists() && !s.path("catalog/dx.xml").exists(), "nothing is written outside");
}

#[test]
fn scan_catalog_with_a_decompression_bomb() {
    // 40 MiB of spaces in index.xml compress to a few KiB; the reader stops at its cap.
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let cab = scan_catalog(&s.path("catalog"), &pki, |files| {
        let index = files.iter_mut().find(|(name, _)| name == "index.xml").unwrap();
        index.1.push_str(&" ".repeat(40 << 20));
    });
    assert!(std::fs::metadata(&cab).unwrap().len() < 1 << 20, "the bomb is small on disk");
    let started = std::time::Instant::now();
    s.fetch(&["plan", "--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()])
        .refused(exit::INPUT, &["index.xml is more than the 16777216 bytes read"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "refused at the cap, not after the whole bomb");
}

#[test]
fn scan_catalog_from_a_url_is_kept_and_revalidated() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let cab = std::fs::read(scan_catalog(&s.path("catalog"), &pki, |_| {})).unwrap();
    let faults = [("wsusscn2.cab".to_string(), crate::support::http::Fault::drop_after(1000, 1))].into();
    let server = crate::support::http::Server::with_faults(
        [("wsusscn2.cab".to_string(), cab.clone())].into(),
        faults,
        std::time::Duration::ZERO,
    );
    let url = server.url("wsusscn2.cab");
    let plan = || s.fetch(&["plan", "--wsusscn2", &url, "--wsusscn2-root", pki.root.to_str().unwrap(), "--json"]);
    // The first transfer breaks off after 1,000 bytes; the retry resumes there.
    let out = plan().ok();
    assert_eq!(out.lines().filter(|l| l.contains("\"type\":\"scan-update\"")).count(), 1, "{out}");
    let stats = server.stats("wsusscn2.cab");
    assert_eq!(stats.ranges, [1000], "resumed where it broke off: {stats:?}");
    assert_eq!(stats.bytes_sent, cab.len(), "every byte sent once");
    // The next run finds its copy current: nothing is sent again.
    plan().ok();
    let stats = server.stats("wsusscn2.cab");
    assert_eq!((stats.not_modified, stats.bytes_sent), (1, cab.len()), "{stats:?}");
}

#[test]
fn scan_catalog_from_a_url_with_a_bad_signature_is_not_kept() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let mut cab = std::fs::read(scan_catalog(&s.path("catalog"), &pki, |_| {})).unwrap();
    let at = cab.len() / 3;
    cab[at] ^= 0x20;
    let server = crate::support::http::Server::start([("wsusscn2.cab".to_string(), cab)].into());
    let url = server.url("wsusscn2.cab");
    let args = ["plan", "--wsusscn2", url.as_str(), "--wsusscn2-root", pki.root.to_str().unwrap()];
    s.fetch(&args).refused(exit::SIGNATURE, &["changed after signing"]);
    let kept: Vec<String> = walk(&s.work_dir().join("cache/scan-catalog"));
    assert!(kept.iter().all(|f| !f.ends_with(".cab")), "a refused copy is not kept: {kept:?}");
    s.fetch(&args).refused(exit::SIGNATURE, &["changed after signing"]);
    assert_eq!(server.stats("wsusscn2.cab").not_modified, 0, "fetched whole again, not revalidated");
}

#[test]
fn scan_catalog_carried_to_every_distribution_point() {
    let s = Scratch::new();
    let pki = pki(&s.path("pki"), "test");
    let server = crate::support::http::Server::start(
        update_files().into_iter().map(|(name, bytes)| (format!("secu/{name}"), bytes)).collect(),
    );
    let cab = scan_catalog_at(&s.path("catalog"), &pki, server.url("secu").trim_end_matches('/'), |_| {});
    let cab_bytes = std::fs::read(&cab).unwrap();
    let (secret, public) = s.key("signer");
    let feed = ["--wsusscn2", cab.to_str().unwrap(), "--wsusscn2-root", pki.root.to_str().unwrap()];
    let out = s.pack_from(&feed, &secret, &["--carry-scan-catalog", "--json"], &[]).ok();
    let bundle = json_line(out.lines().last().unwrap());
    let path = bundle["data"]["path"].as_str().unwrap().to_string();
    let inspected = data(&s.fetch(&["inspect", &path, "--json"]).ok());
    let carried = &inspected["manifest"]["scan_catalog"];
    assert_eq!(carried["sha256"], sha256_hex(&cab_bytes), "{carried}");
    assert!(carried["signer"].as_str().unwrap().contains("test signer"), "{carried}");

    s.trust(&public);
    let imported = s.ingest(&["import", &path]).ok();
    assert!(imported.contains("scan catalog version 1.0 of 2024-01-10T00:00:00Z kept"), "{imported}");
    s.ingest(&["check"]).ok();
    let point = s.path("www/updates");
    s.ingest(&["dp", "add", "hq", "--path", point.to_str().unwrap(), "--approved", "--by", "tester"]).ok();
    s.ingest(&["publish"]).ok();
    s.ingest(&["dp", "verify", point.to_str().unwrap()]).ok();
    let current = std::fs::read_to_string(point.join("current")).unwrap();
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(point.join("generations").join(current.trim()).join("index.json")).unwrap(),
    )
    .unwrap();
    let published = &index["scan_catalog"];
    assert_eq!(published["name"], "wsusscn2.cab", "{index}");
    assert_eq!(
        std::fs::read(point.join(published["path"].as_str().unwrap())).unwrap(),
        cab_bytes,
        "no approval needed: it is metadata"
    );

    // The catalog alone, when no update is new: a bundle of nothing but metadata.
    let out = s.pack_from(&feed, &secret, &["--carry-scan-catalog", "--kb", "1", "--json"], &[]).ok();
    let alone = json_line(out.lines().last().unwrap());
    assert_eq!((alone["type"].as_str(), alone["data"]["updates"].as_u64()), (Some("bundle"), Some(0)), "{out}");
    s.ingest(&["import", alone["data"]["path"].as_str().unwrap()]).ok();
}
