//! Bundles split into volumes that fit the courier's media: each volume a complete, signed
//! zip, recognised by its manifest rather than its name, importable alone, in any order; a
//! file too large for one volume travels in chunks and is joined on import.

use crate::support::*;

/// A catalog whose VLC file (70,001 bytes) is too large for one 120,000-byte volume.
fn split_pack(s: &Scratch) -> (Vec<std::path::PathBuf>, std::path::PathBuf) {
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, public) = s.key("signer");
    let out = s.pack_run(catalog.to_str().unwrap(), &secret, &["--json", "--media", "120000"], &[]).ok();
    let result: serde_json::Value = data(out.lines().last().unwrap());
    let sealing = out.lines().filter(|l| json_line(l)["type"] == "sealing").count();
    assert_eq!(sealing, result["volumes"].as_array().unwrap().len(), "one sealing event per volume:\n{out}");
    let volumes: Vec<std::path::PathBuf> = result["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert!(v["size"].as_u64().unwrap() <= 120_000, "a volume is larger than the medium: {v}");
            host_path(v["path"].as_str().unwrap())
        })
        .collect();
    (volumes, public)
}

fn available(s: &Scratch, id: &str) -> bool {
    let shown: serde_json::Value = data(s.ingest(&["show", "--json", id]).ok().trim());
    shown["available"].as_bool().unwrap()
}

#[test]
fn volumes_arrive_out_of_order_and_a_chunked_file_is_joined() {
    let s = Scratch::new();
    let (volumes, public) = split_pack(&s);
    assert_eq!(volumes.len(), 3, "{volumes:?}");
    // Which volumes carry VLC's chunks (the test needs one chunked across two volumes).
    let vlc = sha256_hex(&three_updates()[2].body);
    let carrying: Vec<usize> = volumes
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            let manifest: serde_json::Value =
                serde_json::from_slice(&zip_entries(v).into_iter().find(|(n, _)| n == "manifest.json").unwrap().1)
                    .unwrap();
            let k = manifest["layout"]["payloads"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["chunk_of"]["file"] == vlc.as_str())
                .map(|p| p["volume"].as_u64().unwrap())
                .collect::<Vec<_>>();
            assert_eq!(k.len(), 2, "VLC travels in two chunks");
            zip_entries(v).iter().any(|(n, _)| n.starts_with("chunks/"))
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(carrying.len(), 2, "two volumes carry a chunk");

    // Disc file systems and data diodes rename files: ingest must not care.
    let renamed: Vec<std::path::PathBuf> = volumes
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let to = s.path(&format!("disc-{}.zip", ["c", "a", "b"][i]));
            std::fs::copy(v, &to).unwrap();
            to
        })
        .collect();

    s.trust(&public);
    for v in &renamed {
        s.ingest(&["verify", v.to_str().unwrap()]).ok();
    }
    // Reverse order, the middle volume held back.
    let out = s.ingest(&["import", renamed[2].to_str().unwrap()]).ok();
    assert!(out.contains("still missing"), "{out}");
    let out = s.ingest(&["import", renamed[0].to_str().unwrap()]).ok();
    assert!(out.contains("volume 2 still missing"), "{out}");
    let before = s.ingest(&["list", "--available", "--json"]).ok().lines().count();
    assert!(before < 3, "an update whose file travels in the missing volume is not available yet");
    let middle_has_vlc_chunk = carrying.contains(&1);
    assert_eq!(available(&s, "VideoLAN.VLC@3.0.21"), !middle_has_vlc_chunk);
    let state = s.path("state.json");
    s.ingest(&["state", "export", "--out", state.to_str().unwrap()]).ok();
    let exported: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(exported["incomplete_sets"][0]["missing_volumes"], serde_json::json!([2]));

    let out = s.ingest(&["import", renamed[1].to_str().unwrap()]).ok();
    assert!(out.contains("every volume has arrived"), "{out}");
    for id in ["KB5034122", "7zip.7zip@24.09", "VideoLAN.VLC@3.0.21"] {
        assert!(available(&s, id), "{id} is not available");
    }
    let digest = vlc;
    let stored = s.data_dir().join("store/sha256").join(&digest[..2]).join(&digest);
    assert_eq!(std::fs::read(stored).unwrap(), three_updates()[2].body, "the joined file is the original");
    assert!(walk(&s.data_dir().join("store/chunks")).is_empty(), "chunks are removed once joined");
}

#[test]
fn a_directory_of_volumes_imports_in_one_go() {
    let s = Scratch::new();
    let (volumes, public) = split_pack(&s);
    s.trust(&public);
    let out = s.ingest(&["import", s.media().to_str().unwrap()]).ok();
    assert_eq!(out.matches("imported:").count(), volumes.len(), "{out}");
    assert!(out.contains("every volume has arrived"), "{out}");
    assert_eq!(s.ingest(&["list", "--available", "--json"]).ok().lines().count(), 3);
}

#[test]
fn each_volume_verifies_with_stock_minisign() {
    let s = Scratch::new();
    let (volumes, public) = split_pack(&s);
    for (k, v) in volumes.iter().enumerate() {
        let entries = zip_entries(v);
        let manifest = s.path(&format!("m{k}.json"));
        std::fs::write(&manifest, &entries.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
        let sig = s.path(&format!("m{k}.json.minisig"));
        std::fs::write(&sig, &entries.iter().find(|(n, _)| n.starts_with("signatures/")).unwrap().1).unwrap();
        let out = tool("minisign").arg("-V").arg("-p").arg(&public).arg("-m").arg(&manifest).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains(&format!(" volume={}/3 ", k + 1)), "{stdout}");
    }
}

#[test]
fn a_medium_too_small_for_the_manifest_is_refused() {
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let (secret, _) = s.key("signer");
    s.pack_run(catalog.to_str().unwrap(), &secret, &["--media", "5000"], &[]).refused(
        exit::INPUT,
        &["a volume of 5000 bytes cannot hold its part of the bundle: every volume keeps", "64 KiB to spare"],
    );
    assert!(walk(&s.media()).is_empty());
    assert!(!s.work_dir().join("state.json").exists(), "no sequence was used");
    s.pack_run(catalog.to_str().unwrap(), &secret, &["--media", "floppy"], &[])
        .refused(exit::INPUT, &["--media \"floppy\" is neither a number of bytes nor one of"]);
}

/// An import that joined a file but stopped before its registry transaction leaves the file
/// in the store and the volume unaccepted; importing that volume again must register the
/// file as present.
#[test]
fn a_joined_file_left_by_an_interrupted_import_is_registered_on_the_next() {
    let s = Scratch::new();
    let (volumes, public) = split_pack(&s);
    s.trust(&public);
    let vlc = three_updates()[2].body.clone();
    let digest = sha256_hex(&vlc);
    let chunk_volumes: Vec<&std::path::PathBuf> =
        volumes.iter().filter(|v| zip_entries(v).iter().any(|(n, _)| n.starts_with("chunks/"))).collect();
    s.ingest(&["import", chunk_volumes[0].to_str().unwrap()]).ok();
    // What the interrupted import of the second chunk's volume left behind: the joined file.
    let stored = s.data_dir().join("store/sha256").join(&digest[..2]).join(&digest);
    std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
    std::fs::write(&stored, &vlc).unwrap();
    assert!(!available(&s, "VideoLAN.VLC@3.0.21"));
    s.ingest(&["import", chunk_volumes[1].to_str().unwrap()]).ok();
    assert!(available(&s, "VideoLAN.VLC@3.0.21"), "the joined file was not registered");
}

/// A volume refused after its payloads reached the store's waiting areas (here by a fault
/// point in the registry transaction, where the rollback rules are judged again) takes back
/// what it put there: no chunk waits in `chunks/`, no file in `pending/`, and `ingest check`
/// is clean.
#[test]
fn volume_refused_after_the_store_step_leaves_no_chunk() {
    let s = Scratch::new();
    let (volumes, public) = split_pack(&s);
    s.trust(&public);
    let chunk_volume =
        volumes.iter().find(|v| zip_entries(v).iter().any(|(n, _)| n.starts_with("chunks/"))).expect("a chunked file");
    let out = std::process::Command::new(crate::crash::failpoint_ingest())
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(["import", chunk_volume.to_str().unwrap()])
        .env("USER", "tester")
        .env("FAILPOINTS", "registry.refuse-import=return")
        .output()
        .unwrap();
    let run = Run::from(out);
    run.refused(exit::INPUT, &["refused at fault point registry.refuse-import"]);
    for area in ["chunks", "pending", "tmp", "sha256"] {
        assert!(walk(&s.data_dir().join("store").join(area)).is_empty(), "store/{area} keeps what a refusal brought");
    }
    s.ingest(&["check"]).ok();
    // The same volume, accepted this time, keeps its chunk waiting for the rest, and check
    // counts that chunk as expected.
    s.ingest(&["import", chunk_volume.to_str().unwrap()]).ok();
    assert_eq!(walk(&s.data_dir().join("store/chunks")).len(), 1);
    s.ingest(&["check"]).ok();
}

/// A chunk that no accepted volume waits for (left by a refusal or a crash of an earlier
/// version) is reported by `ingest check`, and `--repair` moves it to quarantine.
#[test]
fn stray_chunk_in_the_store() {
    let s = Scratch::new();
    let (volumes, public) = split_pack(&s);
    s.trust(&public);
    s.ingest(&["import", volumes[0].to_str().unwrap()]).ok();
    let stray = b"a piece of a file nobody sent";
    let name = sha256_hex(stray);
    std::fs::write(s.data_dir().join("store/chunks").join(&name), stray).unwrap();
    s.ingest(&["check"]).refused_on_stdout(exit::INTEGRITY, &[&format!("{name} is not a file the registry knows")]);
    s.ingest(&["check", "--repair"]).ok();
    assert!(!s.data_dir().join("store/chunks").join(&name).exists());
    s.ingest(&["check"]).ok();
}

/// A file whose content repeats (identical regions, as in a zero-filled image) can be cut
/// into chunks with the same bytes: fetch carries such a chunk once per volume, listed at
/// each of its offsets, and ingest joins the file from it.
#[test]
fn a_file_with_identical_chunks_travels_and_is_joined() {
    let s = Scratch::new();
    let update = TestUpdate::new("KB5000009", "Windows 11", "zeros.msu", 1);
    let update = TestUpdate { body: vec![0u8; 400_000], ..update };
    let catalog = local_catalog(&s.path("feed"), &[update]);
    let (secret, public) = s.key("signer");
    let out = s.pack_run(catalog.to_str().unwrap(), &secret, &["--json", "--media", "120000"], &[]).ok();
    let result: serde_json::Value = data(out.lines().last().unwrap());
    let volumes: Vec<std::path::PathBuf> =
        result["volumes"].as_array().unwrap().iter().map(|v| host_path(v["path"].as_str().unwrap())).collect();
    let manifest: serde_json::Value =
        serde_json::from_slice(&zip_entries(&volumes[0]).into_iter().find(|(n, _)| n == "manifest.json").unwrap().1)
            .unwrap();
    let chunks: Vec<&str> =
        manifest["layout"]["payloads"].as_array().unwrap().iter().map(|p| p["entry"].as_str().unwrap()).collect();
    let distinct: std::collections::BTreeSet<&&str> = chunks.iter().collect();
    assert!(distinct.len() < chunks.len(), "some chunks have the same bytes: {chunks:?}");
    s.trust(&public);
    for v in volumes.iter().rev() {
        s.ingest(&["import", v.to_str().unwrap()]).ok();
    }
    assert!(available(&s, "KB5000009"), "the file was joined");
    s.ingest(&["check"]).ok();
    assert!(walk(&s.data_dir().join("store/chunks")).is_empty(), "no chunk left waiting");
}

#[test]
fn plan_shows_the_volumes_a_pack_writes() {
    // Plan what the media will hold before downloading anything: the same volumes, with
    // the same bytes of files, as the pack then writes.
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let planned = data(&s.fetch(&["plan", "--catalog", catalog.to_str().unwrap(), "--media", "120000", "--json"]).ok());
    let sizes: Vec<u64> = planned["volumes"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let text = s.fetch(&["plan", "--catalog", catalog.to_str().unwrap(), "--media", "120000"]).ok();
    assert!(text.contains(&format!("{} volumes of at most", sizes.len())), "{text}");
    let (secret, _) = s.key("signer");
    let out = s.pack_run(catalog.to_str().unwrap(), &secret, &["--json", "--media", "120000"], &[]).ok();
    let result = data(out.lines().last().unwrap());
    assert_eq!(result["volumes"].as_array().unwrap().len(), sizes.len(), "{planned}\n{out}");
    assert_eq!(sizes.iter().sum::<u64>(), result["payload_bytes"].as_u64().unwrap());
}

#[test]
fn plan_lines_up() {
    // Ids of different lengths keep the columns in line: each size starts under CARRIES.
    let s = Scratch::new();
    let catalog = local_catalog(&s.path("feed"), &three_updates());
    let text = s.fetch(&["plan", "--catalog", catalog.to_str().unwrap()]).ok();
    let mut lines = text.lines().skip(1);
    let header = lines.next().unwrap();
    let at = header.find("CARRIES").unwrap();
    for row in lines.take(3) {
        assert_ne!(row.chars().nth(at), Some(' '), "{text}");
        assert_eq!(row.chars().nth(at - 1), Some(' '), "{text}");
    }
}
