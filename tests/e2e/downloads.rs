//! fetch on a flaky network: a loopback server started by each test injects faults, and the
//! tests assert on the traffic it saw as well as on the bundle.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::http::{Fault, Server};
use crate::support::*;

/// Serves a catalog of `updates` at /catalog.json with `faults` keyed by file name.
fn serve(updates: &[TestUpdate], faults: &[(&str, Fault)], delay: Duration) -> Server {
    let (text, mut files) = catalog(updates, "");
    files.insert("catalog.json".into(), text.into_bytes());
    let faults: BTreeMap<String, Fault> = faults.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    Server::with_faults(files, faults, delay)
}

const FAST_RETRY: &[&str] = &["--retry-delay", "0.05"];

fn big_update() -> Vec<TestUpdate> {
    vec![TestUpdate::new("KB5034122", "Windows 10", "windows10.0-kb5034122-x64.msu", 1_000_000)]
}

#[test]
fn a_dropped_connection_resumes_with_a_range_request() {
    let s = Scratch::new();
    let updates = big_update();
    let file = updates[0].file;
    let server = serve(&updates, &[(file, Fault::drop_after(400_000, 1))], Duration::ZERO);
    let (secret, public) = s.key("signer");
    let bundle = s.pack(&server.url("catalog.json"), &secret, FAST_RETRY);

    let stats = server.stats(file);
    assert_eq!(stats.requests, 2, "{stats:?}");
    assert_eq!(stats.ranges, [400_000], "the second request resumes where the first broke off");
    assert!(stats.bytes_sent < 1_200_000, "served {} bytes for a 1,000,000-byte file", stats.bytes_sent);
    s.trust(&public);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
    assert!(s.ingest(&["list", "--available", "--json"]).ok().contains("KB5034122"));
}

#[test]
fn a_server_without_ranges_makes_fetch_start_over() {
    let s = Scratch::new();
    let updates = big_update();
    let file = updates[0].file;
    let fault = Fault { ignore_range: true, ..Fault::drop_after(300_000, 1) };
    let server = serve(&updates, &[(file, fault)], Duration::ZERO);
    let (secret, public) = s.key("signer");
    let bundle = s.pack(&server.url("catalog.json"), &secret, FAST_RETRY);
    let stats = server.stats(file);
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.ranges, [300_000], "fetch asked for the rest");
    assert_eq!(stats.bytes_sent, 1_300_000, "the server sent the whole file again");
    s.trust(&public);
    s.ingest(&["import", bundle.to_str().unwrap()]).ok();
}

#[test]
fn several_files_download_at_once() {
    // Each body waits 300 ms: files fetched at once overlap, and the server counts how many
    // connections were open together. Three files with --parallel 4: all three; with
    // --parallel 2: never more than two.
    for (parallel, expected) in [("4", 3), ("2", 2)] {
        let s = Scratch::new();
        let server = serve(&three_updates(), &[], Duration::from_millis(300));
        let (secret, _) = s.key("signer");
        s.pack(&server.url("catalog.json"), &secret, &["--parallel", parallel]);
        assert_eq!(server.max_open_connections(), expected, "--parallel {parallel}");
    }
}

#[test]
fn server_errors_are_retried() {
    let s = Scratch::new();
    let updates = three_updates();
    let file = updates[1].file;
    let server = serve(&updates, &[(file, Fault::status(500, 2))], Duration::ZERO);
    let (secret, _) = s.key("signer");
    let out = s.pack_run(&server.url("catalog.json"), &secret, &["--json", "--retry-delay", "0.05"], &[]).ok();
    assert_eq!(server.stats(file).requests, 3);
    let retries: Vec<serde_json::Value> =
        out.lines().map(json_line).filter(|e| e["type"] == "retrying").map(|e| e["data"].clone()).collect();
    assert_eq!(retries.len(), 2, "{out}");
    assert_eq!(retries[0]["cause"], "HTTP 500 Internal Server Error");
    assert_eq!(retries[1]["delay_ms"], 100, "the delay doubles");
}

#[test]
fn client_errors_are_not_retried() {
    let s = Scratch::new();
    let updates = three_updates();
    let file = updates[2].file;
    let server = serve(&updates, &[(file, Fault::status(403, 99))], Duration::ZERO);
    let (secret, _) = s.key("signer");
    s.pack_run(&server.url("catalog.json"), &secret, FAST_RETRY, &[])
        .refused(4, &[&format!("download {}: HTTP 403 Forbidden", server.url(file))]);
    assert_eq!(server.stats(file).requests, 1);
    assert!(walk(&s.media()).is_empty());
}

#[test]
fn a_stalled_server_times_out() {
    let s = Scratch::new();
    let updates = three_updates();
    let file = updates[0].file;
    let server = serve(&updates, &[(file, Fault::stall(Duration::from_secs(5)))], Duration::ZERO);
    let (secret, _) = s.key("signer");
    let started = std::time::Instant::now();
    s.pack_run(
        &server.url("catalog.json"),
        &secret,
        &["--timeout", "0.5", "--retries", "1", "--retry-delay", "0.05"],
        &[],
    )
    .refused(4, &[&format!("download {}", server.url(file)), "gave up after 2 attempts"]);
    assert!(started.elapsed() < Duration::from_secs(4), "the timeout did not cut the stall short");
    assert!(walk(&s.media()).is_empty());
}

#[test]
fn a_warm_cache_downloads_nothing() {
    let s = Scratch::new();
    let updates = three_updates();
    let server = serve(&updates, &[], Duration::ZERO);
    let (secret, public) = s.key("signer");
    s.pack(&server.url("catalog.json"), &secret, &[]);
    let after_first = server.requests().len();
    let second = s.pack(&server.url("catalog.json"), &secret, &[]);
    let again: Vec<String> = server.requests()[after_first..].to_vec();
    assert_eq!(again, ["catalog.json"], "the second pack fetched payloads again");
    s.trust(&public);
    s.ingest(&["import", second.to_str().unwrap()]).ok();
}

#[test]
fn a_damaged_cache_entry_is_downloaded_again() {
    let s = Scratch::new();
    let updates = three_updates();
    let server = serve(&updates, &[], Duration::ZERO);
    let (secret, public) = s.key("signer");
    s.pack(&server.url("catalog.json"), &secret, &[]);
    let digest = sha256_hex(&updates[1].body);
    let cached = s.work_dir().join("cache/sha256").join(&digest[..2]).join(&digest);
    let mut perms = std::fs::metadata(&cached).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&cached, perms).unwrap();
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&cached, bytes).unwrap();

    let second = s.pack(&server.url("catalog.json"), &secret, &[]);
    assert_eq!(server.stats(updates[1].file).requests, 2, "the damaged file was fetched again");
    assert_eq!(server.stats(updates[0].file).requests, 1);
    s.trust(&public);
    s.ingest(&["import", second.to_str().unwrap()]).ok();
}

#[test]
fn the_proxy_comes_from_the_environment() {
    let s = Scratch::new();
    let updates = three_updates();
    let server = serve(&updates, &[], Duration::ZERO);
    let proxy = server.url("");
    let (secret, _) = s.key("signer");
    // The catalog's host does not exist; only the proxy can answer.
    s.pack_run(
        "http://updates.example.invalid/catalog.json",
        &secret,
        &[],
        &[("HTTP_PROXY", proxy.as_str()), ("http_proxy", proxy.as_str()), ("NO_PROXY", ""), ("no_proxy", "")],
    )
    .ok();
    assert_eq!(server.requests().len(), 4, "{:?}", server.requests());
}

#[test]
fn an_unusable_ca_file_is_refused() {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let ca = s.path("not-a-certificate.pem");
    std::fs::write(&ca, "this is not PEM\n").unwrap();
    let (secret, _) = s.key("signer");
    s.pack_run(catalog.to_str().unwrap(), &secret, &["--ca-cert", ca.to_str().unwrap()], &[])
        .refused(exit::INPUT, &["not-a-certificate.pem"]);
}

#[test]
fn a_server_that_trickles_is_judged_stalled() {
    // 100 bytes every 100 ms is 1,000 bytes a second, below the 10,000 asked for: each
    // attempt ends after about a second instead of lasting the 200 s the file would take.
    let s = Scratch::new();
    let updates = vec![TestUpdate::new("KB5034122", "Windows 10", "windows10.0-kb5034122-x64.msu", 200_000)];
    let file = updates[0].file;
    let server = serve(&updates, &[(file, Fault::trickle(100, Duration::from_millis(100)))], Duration::ZERO);
    let (secret, _) = s.key("signer");
    let started = std::time::Instant::now();
    let args = ["--speed-limit", "10000", "--speed-time", "1", "--retries", "1", "--retry-delay", "0.05"];
    s.pack_run(&server.url("catalog.json"), &secret, &args, &[])
        .refused(4, &["stalled:", "below 10000 bytes a second (--speed-limit, --speed-time)"]);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert_eq!(server.stats(file).requests, 2, "one retry, resumed");
    assert!(walk(&s.media()).is_empty());
}

#[test]
fn speed_time_zero_is_refused() {
    let s = Scratch::new();
    let (secret, _) = s.key("signer");
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    s.pack_run(catalog.to_str().unwrap(), &secret, &["--speed-time", "0"], &[])
        .refused(exit::INPUT, &["--speed-time 0 would judge every transfer stalled"]);
}

/// The three standard updates served with 7-Zip's file altered (a byte flipped: its SHA-256
/// is wrong) and VLC's file gone (404 on every attempt).
fn serve_two_bad() -> (Vec<TestUpdate>, Server) {
    let updates = three_updates();
    let (text, mut files) = catalog(&updates, "");
    files.get_mut(updates[1].file).unwrap()[100] ^= 1;
    files.insert("catalog.json".into(), text.into_bytes());
    let faults = BTreeMap::from([(updates[2].file.to_string(), Fault::status(404, usize::MAX))]);
    (updates, Server::with_faults(files, faults, Duration::ZERO))
}

#[test]
fn one_bad_file_fails_the_pack_by_default() {
    let s = Scratch::new();
    let (_, server) = serve_two_bad();
    let (secret, _) = s.key("signer");
    let run = s.pack_run(&server.url("catalog.json"), &secret, &["--retries", "1", "--retry-delay", "0.05"], &[]);
    assert!([exit::INTEGRITY, exit::NETWORK].contains(&run.code), "{}", run.stderr);
    assert!(walk(&s.media()).is_empty(), "no bundle: {:?}", walk(&s.media()));
}

#[test]
fn skip_failed_leaves_out_what_could_not_be_had_and_says_so_to_the_offline_side() {
    let s = Scratch::new();
    let (updates, server) = serve_two_bad();
    let (secret, public) = s.key("signer");
    let args = ["--skip-failed", "--retries", "1", "--retry-delay", "0.05", "--json"];
    let out = s.pack_run(&server.url("catalog.json"), &secret, &args, &[]).ok();
    let left: Vec<serde_json::Value> =
        out.lines().map(json_line).filter(|l| l["type"] == "left-out").map(|mut l| l["data"].take()).collect();
    assert_eq!(left.len(), 2, "{out}");
    let bundle = data(out.lines().last().unwrap());
    assert_eq!(bundle["updates"], 1, "{bundle}");
    let reasons: BTreeMap<String, String> = bundle["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["id"].as_str().unwrap().to_string(), l["reason"].as_str().unwrap().to_string()))
        .collect();
    assert!(reasons[updates[1].id].contains("SHA-256"), "{reasons:?}");
    assert!(reasons[updates[2].id].contains("404"), "{reasons:?}");

    // The manifest names them, as any zip tool shows.
    let path = host_path(bundle["path"].as_str().unwrap());
    let path = path.to_str().unwrap();
    let manifest = tool("unzip").args(["-p", path, "manifest.json"]).output().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(manifest["left_out"].as_array().unwrap().len(), 2, "{manifest}");

    // The offline side imports what came, and its change report says what did not.
    s.trust(&public);
    let imported = s.ingest(&["import", path]).ok();
    assert!(imported.contains(&format!("{}: left out by fetch", updates[2].id)), "{imported}");
    let report = s.ingest(&["report"]).ok();
    assert!(report.contains("left out by fetch"), "{report}");
    assert_eq!(listed(&s, &[]), [updates[0].id]);
}
