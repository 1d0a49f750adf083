//! CSV exchange between management servers: a list exported from one server and imported
//! into a fresh one is the same list; lists are signed by the exporting server's key and
//! taken only from trusted peers (unsigned, statuses and groups only, on request); merging
//! keeps revisions, signed metadata and later decisions; bad rows are named by line and
//! change nothing; cells a spreadsheet would run are neutralised.

use crate::support::*;

/// A second management server trusting the same signer for bundles and `a`'s server key
/// for lists, with an empty list.
fn fresh_server(a: &Scratch) -> Scratch {
    let b = Scratch::new();
    b.trust(&a.path("signer.pub"));
    trust_peer(&b, a);
    b
}

/// Signs a list or groups file made or edited by the test with `s`'s own server key, and
/// makes `s` trust that key as a peer's: what the test checks is then the rows, not the
/// signature (whose own tests are `list_*` below).
fn resign(s: &Scratch, file: &std::path::Path, kind: &str) {
    let public = s.path("own-server.pub");
    if !public.exists() {
        s.ingest(&["server-key", "export", "--out", public.to_str().unwrap()]).ok();
        s.ingest(&["trust", "add-peer", public.to_str().unwrap()]).ok();
    }
    sign_export_with_minisign(s, file, kind);
}

fn export(s: &Scratch, what: &str) -> std::path::PathBuf {
    let out = s.path(&format!("exchange/{what}.csv"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    s.ingest(&[&format!("export-{what}"), "--out", out.to_str().unwrap()]).ok();
    out
}

/// `ingest list --json` with the fields a fresh server cannot share (it lacks the files)
/// taken out.
fn list_without_files(s: &Scratch) -> Vec<serde_json::Value> {
    s.ingest(&["list", "--json"])
        .ok()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = data(l);
            let o = v.as_object_mut().unwrap();
            o.remove("available");
            o.remove("files_present");
            // Where the update came from on this server: by CSV on the receiving one.
            o.remove("origin");
            v
        })
        .collect()
}

/// Each update's origin on this server.
fn origins(s: &Scratch) -> Vec<String> {
    s.ingest(&["list", "--json"]).ok().lines().map(|l| data(l)["origin"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_list_exported_and_imported_into_a_fresh_server_is_the_same_list() {
    let a = update_list_server();
    a.ingest(&["approve", "KB5034122", "--by", "alice"]).ok();
    a.ingest(&["decline", "7zip.7zip@24.09", "--by", "@bob"]).ok();
    a.ingest(&["eula", "accept", "KB5099999", "--by", "carol"]).ok();
    a.ingest(&["approve", "KB5099999", "--by", "carol"]).ok();
    a.ingest(&["group", "create", "servers", "--description", "=SUM(A1) pilot machines"]).ok();
    a.ingest(&["group", "add", "servers", "KB5034122", "VideoLAN.VLC@3.0.21"]).ok();
    a.ingest(&["rules", "add", "approve-vlc", "--approve", "--product", "VLC media player"]).ok();
    a.ingest(&["refresh"]).ok();
    let by_hand = register_hotfix(&a);
    let (list, groups) = (export(&a, "list"), export(&a, "groups"));
    let text = std::fs::read_to_string(&list).unwrap();
    // UTF-8 after a byte order mark, which Excel needs to read it as UTF-8; CRLF line ends.
    assert!(text.starts_with("\u{feff}id,revision,title,"), "{text}");
    assert!(text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\n'), "{text}");
    assert!(text.contains(",'@bob,"), "a leading @ is neutralised: {text}");
    assert!(std::fs::read_to_string(&groups).unwrap().contains(",'=SUM(A1) pilot machines,"));

    let b = fresh_server(&a);
    b.ingest(&["import-groups", groups.to_str().unwrap()]).ok();
    let out = b.ingest(&["import-list", list.to_str().unwrap()]).ok();
    assert!(out.contains("imported 6 rows") && out.contains("6 new"), "{out}");
    assert!(out.contains("5 updates lack files here"), "the withdrawn one needs none: {out}");
    assert_eq!(list_without_files(&b), list_without_files(&a));
    assert!(origins(&b).iter().all(|o| o == "csv"), "unsigned here: {:?}", origins(&b));
    let group: serde_json::Value = data(b.ingest(&["group", "list", "--json"]).ok().trim());
    assert_eq!(group["description"], "=SUM(A1) pilot machines", "restored on import");
    assert_eq!(group["members"], 2);
    let licence: serde_json::Value = data(b.ingest(&["eula", "show", "KB5099999", "--json"]).ok().trim());
    assert_eq!(licence["accepted"]["by"], "carol");
    assert!(b.ingest(&["audit", "list"]).ok().contains("list-imported"));

    // The files come later by hand: the manual update becomes available on B too.
    b.ingest(&["register", by_hand.to_str().unwrap()]).ok();
    let manual = listed(&b, &["--available"]);
    assert_eq!(manual.len(), 1, "{manual:?}");
    assert!(manual[0].starts_with("manual-"));

    // Exported again, B's list is A's cell for cell, apart from whether files are held,
    // where each update came from (by CSV, on B), and when each server's own system set a
    // status nobody decided (undefined on arrival: each server's arrival time).
    let again = export(&b, "list");
    let comparable = |path: &std::path::Path| {
        let mut rows = rows_without(path, &["available", "origin"]);
        for row in &mut rows {
            if row.iter().any(|(c, v)| c == "status_set_by" && v == "system") {
                row.retain(|(c, _)| c != "status_set_at");
            }
        }
        rows
    };
    assert_eq!(comparable(&again), comparable(&list));
}

/// The rows of a CSV list, each as (column, cell) pairs, without the columns `left_out`.
fn rows_without(path: &std::path::Path, left_out: &[&str]) -> Vec<Vec<(String, String)>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows: Vec<Vec<(String, String)>> = reader
        .records()
        .map(|r| {
            headers
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .filter(|(c, _)| !left_out.contains(&c.as_str()))
                .collect()
        })
        .collect();
    assert!(!rows.is_empty(), "{} holds no rows", path.display());
    rows
}

#[test]
fn merging_keeps_revisions_and_the_later_decision() {
    let a = update_list_server();
    a.ingest(&["approve", "KB5034122", "VideoLAN.VLC@3.0.21", "--by", "alice"]).ok();
    let first = export(&a, "list");
    let b = fresh_server(&a);
    resign(&b, &first, "list");
    b.ingest(&["import-list", first.to_str().unwrap()]).ok();
    assert_eq!(update_json(&b, "KB5034122")["status_actor"], "alice");

    // Later on B, a person declines KB5034122; later still on A, a person declines VLC.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    b.ingest(&["decline", "KB5034122", "--by", "bernard"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    a.ingest(&["decline", "VideoLAN.VLC@3.0.21", "--by", "alice"]).ok();
    let second = export(&a, "list");
    resign(&b, &second, "list");
    let out = b.ingest(&["import-list", second.to_str().unwrap(), "--json"]).ok();
    let merge: serde_json::Value = first_of(&out, "list-imported");
    assert_eq!(merge["statuses_taken"], serde_json::json!(["VideoLAN.VLC@3.0.21"]), "{merge}");
    assert_eq!(update_json(&b, "KB5034122")["status_actor"], "bernard", "B's later decision holds");
    assert_eq!(update_json(&b, "VideoLAN.VLC@3.0.21")["status"], "declined");

    // A revision never goes down: B gets revision 2 by bundle, A's CSV still says 1.
    let dir = b.path("feed-r2");
    let mut updates = three_updates();
    updates[1].revision = 2;
    let catalog = local_catalog(&dir, &updates[1..2]);
    b.ingest(&["import", b.pack(catalog.to_str().unwrap(), &a.path("signer.key"), &[]).to_str().unwrap()]).ok();
    resign(&b, &second, "list");
    let merge: serde_json::Value =
        first_of(&b.ingest(&["import-list", second.to_str().unwrap(), "--json"]).ok(), "list-imported");
    assert_eq!(merge["ignored"], serde_json::json!(["7zip.7zip@24.09"]), "{merge}");
    assert_eq!(update_json(&b, "7zip.7zip@24.09")["revision"], 2);
}

/// The list of `a` as CSV, with `edit` applied to each data line (given its line number).
fn edited_list(a: &Scratch, edit: impl Fn(usize, String) -> String) -> std::path::PathBuf {
    let text = std::fs::read_to_string(export(a, "list")).unwrap();
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
    for (i, line) in lines.iter_mut().enumerate().skip(1) {
        if !line.is_empty() {
            *line = edit(i + 1, std::mem::take(line));
        }
    }
    let path = a.path("exchange/edited.csv");
    std::fs::write(&path, lines.join("\r\n")).unwrap();
    path
}

/// Sets cell `column` (0-based, before the metadata cell, which alone holds commas).
fn with_cell(line: &str, column: usize, value: &str) -> String {
    let mut cells: Vec<&str> = line.splitn(21, ',').collect();
    cells[column] = value;
    cells.join(",")
}

#[test]
fn csv_rows_with_bad_cells() {
    let a = update_list_server();
    // Line 2 gets a status that does not exist, line 4 a damaged metadata cell.
    let path = edited_list(&a, |line, text| match line {
        2 => with_cell(&text, 13, "maybe"),
        4 => text.replacen("{\"\"id\"\"", "{\"\"id\"\" oops", 1),
        _ => text,
    });
    let b = fresh_server(&a);
    resign(&b, &path, "list");
    let before = b.state();
    let out = b.ingest(&["import-list", path.to_str().unwrap()]).refused(
        exit::INPUT,
        &["2 bad rows; nothing was imported", "line 2: \"maybe\" is not a status", "line 4: metadata:"],
    );
    assert!(!out.contains("panicked"));
    assert_eq!(b.state(), before);

    let out = b.ingest(&["import-list", path.to_str().unwrap(), "--skip-invalid"]).ok();
    assert!(
        out.contains("imported 3 rows") && out.contains("skipped line 2") && out.contains("skipped line 4"),
        "{out}"
    );
    assert_eq!(listed(&b, &[]).len(), 3);
}

#[test]
fn csv_with_a_wrong_header() {
    let a = update_list_server();
    let path = a.path("exchange/wrong.csv");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "id,status\r\nKB5034122,approved\r\n").unwrap();
    resign(&a, &path, "list");
    let before = a.state();
    a.ingest(&["import-list", path.to_str().unwrap()])
        .refused(exit::INPUT, &["line 1: the header must be exactly: id,revision"]);
    resign(&a, &path, "groups");
    a.ingest(&["import-groups", path.to_str().unwrap()])
        .refused(exit::INPUT, &["line 1: the header must be exactly: name,"]);
    // After Excel's separator line, the header is the second line.
    std::fs::write(&path, "sep=;\r\nid;status\r\nKB5034122;approved\r\n").unwrap();
    std::fs::remove_file(format!("{}.minisig", path.display())).unwrap();
    a.ingest(&["import-list", path.to_str().unwrap(), "--allow-unsigned"])
        .refused(exit::INPUT, &["line 2: the header must be exactly: id,revision", "(found: id;status)"]);
    assert_eq!(a.state(), before);
}

#[test]
fn csv_row_whose_id_disagrees_with_its_metadata() {
    let a = update_list_server();
    let path =
        edited_list(
            &a,
            |_, text| {
                if text.starts_with("7zip.7zip@24.09,") { with_cell(&text, 0, "7zip.7zip@99") } else { text }
            },
        );
    let b = fresh_server(&a);
    resign(&b, &path, "list");
    b.ingest(&["import-list", path.to_str().unwrap()])
        .refused(exit::INPUT, &["line 2: id \"7zip.7zip@99\" differs from the metadata's id \"7zip.7zip@24.09\""]);
    assert!(listed(&b, &[]).is_empty());
}

#[test]
fn csv_approval_of_a_licence_not_accepted() {
    let a = update_list_server();
    a.ingest(&["eula", "accept", "KB5099999", "--by", "carol"]).ok();
    a.ingest(&["approve", "KB5099999", "--by", "carol"]).ok();
    // The acceptance is cut out of the file: the approval cannot be taken.
    let path = edited_list(&a, |_, text| {
        if text.starts_with("KB5099999,") { with_cell(&with_cell(&text, 17, ""), 18, "") } else { text }
    });
    let b = fresh_server(&a);
    resign(&b, &path, "list");
    let out = b.ingest(&["import-list", path.to_str().unwrap()]).ok();
    assert!(out.contains("KB5099999: status not taken: its licence must be accepted first"), "{out}");
    assert_eq!(update_json(&b, "KB5099999")["status"], "undefined");
}

#[test]
fn csv_update_listed_twice() {
    let a = update_list_server();
    let path = edited_list(&a, |_, text| text);
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.split("\r\n").nth(1).unwrap().to_string();
    std::fs::write(&path, format!("{text}{first}\r\n")).unwrap();
    let b = fresh_server(&a);
    resign(&b, &path, "list");
    b.ingest(&["import-list", path.to_str().unwrap()])
        .refused(exit::INPUT, &["line 7: update 7zip.7zip@24.09 is listed on line 2 already"]);
    assert!(listed(&b, &[]).is_empty());
}

#[test]
fn csv_row_with_missing_cells() {
    let a = update_list_server();
    let path = edited_list(&a, |line, text| if line == 3 { "KB5034122,1,title only".into() } else { text });
    let b = fresh_server(&a);
    resign(&b, &path, "list");
    b.ingest(&["import-list", path.to_str().unwrap()]).refused(exit::INPUT, &["line 3: 3 cells, expected 21"]);
    assert!(listed(&b, &[]).is_empty());
}

#[test]
fn csv_person_status_without_actor() {
    let a = update_list_server();
    a.ingest(&["approve", "KB5034122", "--by", "alice"]).ok();
    let path = edited_list(&a, |_, text| if text.starts_with("KB5034122,") { with_cell(&text, 15, "") } else { text });
    let b = fresh_server(&a);
    resign(&b, &path, "list");
    b.ingest(&["import-list", path.to_str().unwrap()])
        .refused(exit::INPUT, &["status_set_by is person but status_actor names nobody"]);
    assert!(listed(&b, &[]).is_empty());
}

/// The indexes of a registry, as its schema states them.
fn indexes(s: &Scratch) -> Vec<(String, Option<String>)> {
    let db = rusqlite::Connection::open(s.data_dir().join("registry.sqlite")).unwrap();
    let mut stmt = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'index' ORDER BY name").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

/// References the registry's foreign keys name but its rows lack, by table.
fn dangling_references(s: &Scratch) -> Vec<String> {
    let db = rusqlite::Connection::open(s.data_dir().join("registry.sqlite")).unwrap();
    let mut stmt = db.prepare("SELECT \"table\" FROM pragma_foreign_key_check").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

/// The groups of a registry with their members.
fn memberships(s: &Scratch) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(s.data_dir().join("registry.sqlite")).unwrap();
    let mut stmt = db.prepare("SELECT group_name, update_id FROM group_members ORDER BY 1, 2").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

#[test]
fn a_large_list_merged_at_once_is_the_list_merged_in_parts() {
    // 10,050 rows: the bulk merge (foreign keys not checked row by row, so this test checks
    // them whole; the list's indexes built after the rows once as many rows were merged as
    // the list held); in parts of fewer rows, each row is checked and the indexes kept.
    let dir = Scratch::new();
    let whole = dir.path("whole.csv");
    generated_list(&whole, 10_050);
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    let (first, rest) = (dir.path("first.csv"), dir.path("rest.csv"));
    std::fs::write(&first, lines[..9_001].concat()).unwrap();
    std::fs::write(&rest, [lines[0]].iter().chain(&lines[9_001..]).copied().collect::<String>()).unwrap();

    // A rule adds one product's updates to a group: the refresh in the merge's own
    // transaction writes memberships too.
    let server = || {
        let s = Scratch::new();
        s.ingest(&["group", "create", "pilot"]).ok();
        s.ingest(&["rules", "add", "pilot-first", "--add-to-group", "pilot", "--product", "Product 3"]).ok();
        s
    };
    let at_once = server();
    resign(&at_once, &whole, "list");
    let out = at_once.ingest(&["import-list", whole.to_str().unwrap()]).ok();
    assert!(out.contains("10050 new"), "{out}");
    let in_parts = server();
    resign(&in_parts, &first, "list");
    in_parts.ingest(&["import-list", first.to_str().unwrap()]).ok();
    resign(&in_parts, &rest, "list");
    in_parts.ingest(&["import-list", rest.to_str().unwrap()]).ok();
    // A list holding most rows already, merged with all of them at once.
    let grown = server();
    resign(&grown, &first, "list");
    grown.ingest(&["import-list", first.to_str().unwrap()]).ok();
    resign(&grown, &whole, "list");
    let out = grown.ingest(&["import-list", whole.to_str().unwrap()]).ok();
    assert!(out.contains("1050 new, 0 revised, 9000 unchanged"), "{out}");

    let expected = list_without_files(&in_parts);
    assert_eq!(expected.len(), 10_050);
    assert_eq!(list_without_files(&at_once), expected);
    assert_eq!(list_without_files(&grown), expected);
    assert_eq!(indexes(&at_once), indexes(&in_parts), "the same indexes, built again");
    assert_eq!(indexes(&grown), indexes(&in_parts));
    assert_eq!(memberships(&in_parts).len(), 22 + 1_005, "11 rows in two groups each, a product's rows in pilot");
    assert_eq!(memberships(&at_once), memberships(&in_parts));
    assert_eq!(memberships(&grown), memberships(&in_parts));
    for s in [&at_once, &in_parts, &grown] {
        assert_eq!(dangling_references(s), Vec::<String>::new());
    }
    // The rebuilt indexes answer: one KB, one product, the statuses a person set there.
    assert_eq!(listed(&at_once, &["--kb", "KB6004321"]), ["KB6004321"]);
    assert_eq!(listed(&at_once, &["--product", "product 3"]).len(), 1_005);
    assert_eq!(ids_with(&at_once, "approved").len(), 101);
}

#[test]
fn csv_bad_row_after_the_bulk_merge_began() {
    // The rows are merged as they are read: a bad row near the end of a large file comes
    // after ten thousand rows went into the transaction, which must end without a change.
    let s = Scratch::new();
    let path = s.path("list.csv");
    generated_list(&path, 10_020);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.split_terminator("\r\n").map(str::to_string).collect();
    lines[10_015] = with_cell(&lines[10_015], 13, "maybe");
    std::fs::write(&path, lines.join("\r\n") + "\r\n").unwrap();
    s.ingest(&["group", "create", "pilot"]).ok();
    resign(&s, &path, "list");
    let before = s.state();
    s.ingest(&["import-list", path.to_str().unwrap()])
        .refused(exit::INPUT, &["1 bad rows; nothing was imported", "line 10016: \"maybe\" is not a status"]);
    assert_eq!(s.state(), before);
    let fresh = Scratch::new();
    fresh.ingest(&["group", "create", "pilot"]).ok();
    assert_eq!(indexes(&s), indexes(&fresh), "the indexes are all there");
    assert!(memberships(&s).is_empty());
}

/// Rewrites the rows of a CSV list: `edit` gets each row as column name → cell.
fn edit_list(path: &std::path::Path, out: &std::path::Path, mut edit: impl FnMut(&mut Vec<(String, String)>)) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_path(out).unwrap();
    writer.write_record(&headers).unwrap();
    for record in reader.records() {
        let mut row: Vec<(String, String)> =
            headers.iter().cloned().zip(record.unwrap().iter().map(String::from)).collect();
        edit(&mut row);
        writer.write_record(row.iter().map(|(_, v)| v)).unwrap();
    }
    writer.flush().unwrap();
}

fn cell<'a>(row: &'a mut [(String, String)], column: &str) -> &'a mut String {
    &mut row.iter_mut().find(|(c, _)| c == column).unwrap().1
}

/// A row for `id` claiming `revision`, with its metadata changed by `change`.
fn claim(row: &mut [(String, String)], id: &str, revision: u32, change: impl Fn(&mut serde_json::Value)) {
    if cell(row, "id") != id {
        return;
    }
    let mut metadata: serde_json::Value = serde_json::from_str(cell(row, "metadata")).unwrap();
    metadata["revision"] = revision.into();
    change(&mut metadata);
    *cell(row, "metadata") = metadata.to_string();
    *cell(row, "revision") = revision.to_string();
}

#[test]
fn csv_row_rewriting_a_signed_install_command() {
    // Same file digest, "revision 2", another install command: a CSV carries no signature,
    // so the signed metadata stays, and the next publish signs nothing the bundle did not say.
    let a = update_list_server();
    let list = export(&a, "list");
    let forged = a.path("exchange/forged.csv");
    edit_list(&list, &forged, |row| {
        claim(row, "KB5034122", 2, |m| {
            m["install"] = serde_json::json!({
                "command": "cmd.exe",
                "arguments": ["/c", "powershell -enc SQBFAFgA"],
                "exit_codes": {"success": [0], "reboot": [], "failure": []}
            })
        })
    });
    resign(&a, &forged, "list");
    let out = a.ingest(&["import-list", forged.to_str().unwrap()]).ok();
    assert!(out.contains("4 unchanged, 1 kept"), "{out}");
    let shown = update_json(&a, "KB5034122");
    assert_eq!(shown["revision"], 1, "{shown}");
    assert!(shown["metadata"].get("install").is_none_or(|i| i.is_null()), "{shown}");
    a.ingest(&["approve", "KB5034122"]).ok();
    let dp = a.path("dp");
    a.ingest(&["dp", "add", "hq", "--path", dp.to_str().unwrap(), "--approved"]).ok();
    a.ingest(&["publish"]).ok();
    let index = std::fs::read_to_string(dp.join("generations/1/index.json")).unwrap();
    assert!(index.contains("wusa.exe") && !index.contains("powershell"), "{index}");
}

#[test]
fn csv_revision_that_would_freeze_a_signed_update() {
    // A server that first hears of an update by CSV, at a revision no bundle will reach:
    // the signed metadata still wins when its bundle arrives.
    let a = update_list_server();
    let list = export(&a, "list");
    let inflated = a.path("exchange/inflated.csv");
    edit_list(&list, &inflated, |row| claim(row, "KB5034122", u32::MAX, |m| m["title"] = "claimed by a CSV".into()));
    let b = fresh_server(&a);
    resign(&b, &inflated, "list");
    b.ingest(&["import-list", inflated.to_str().unwrap()]).ok();
    assert_eq!(update_json(&b, "KB5034122")["revision"], u32::MAX);
    let bundle = walk(&a.media()).into_iter().find(|f| f.ends_with(".zip")).unwrap();
    b.ingest(&["import", a.media().join(bundle).to_str().unwrap()]).ok();
    let shown = update_json(&b, "KB5034122");
    assert_eq!(shown["revision"], 1, "the signed revision replaces the CSV's claim: {shown}");
    assert_eq!(shown["origin"], "bundle");
    assert_ne!(shown["title"], "claimed by a CSV");
    // And a CSV never raises it again.
    resign(&b, &inflated, "list");
    let out = b.ingest(&["import-list", inflated.to_str().unwrap()]).ok();
    assert!(out.contains("1 kept"), "{out}");
    assert_eq!(update_json(&b, "KB5034122")["revision"], 1);
}

#[test]
fn status_dated_in_the_future() {
    // A person's decision "made" in 2099 would outrank every real one until then.
    let a = update_list_server();
    let list = export(&a, "list");
    let future = a.path("exchange/from-the-future.csv");
    edit_list(&list, &future, |row| {
        if cell(row, "id") == "KB5034122" {
            *cell(row, "status") = "approved".into();
            *cell(row, "status_set_by") = "person".into();
            *cell(row, "status_actor") = "mallory".into();
            *cell(row, "status_set_at") = "2099-01-01T00:00:00Z".into();
        }
    });
    resign(&a, &future, "list");
    let before = a.state();
    a.ingest(&["import-list", future.to_str().unwrap()]).refused(
        exit::INPUT,
        &["status_set_at 2099-01-01T00:00:00Z is in the future", "the latest bundle time accepted, plus 5 minutes"],
    );
    assert_eq!(a.state(), before);
}

#[test]
fn cell_longer_than_any_metadata() {
    let a = update_list_server();
    let list = export(&a, "list");
    let huge = a.path("exchange/huge-cell.csv");
    let title = "x".repeat(20 << 20);
    edit_list(&list, &huge, |row| {
        if cell(row, "id") == "KB5034122" {
            *cell(row, "title") = title.clone();
        }
    });
    resign(&a, &huge, "list");
    let before = a.state();
    a.ingest(&["import-list", huge.to_str().unwrap()]).refused(exit::INPUT, &["a row longer than 8388608 bytes"]);
    assert_eq!(a.state(), before);
}

#[test]
fn quoted_cells_round_trip_exactly() {
    // A description that starts with a quote before a formula sign: written with one more
    // quote, read back as it was.
    let a = update_list_server();
    for (group, description) in
        [("quoted", "'=already quoted"), ("apostrophe", "'tis the pilot"), ("plain", "=SUM(A1)")]
    {
        a.ingest(&["group", "create", group, "--description", description]).ok();
    }
    let groups = export(&a, "groups");
    let b = fresh_server(&a);
    b.ingest(&["import-groups", groups.to_str().unwrap()]).ok();
    let listed: std::collections::BTreeMap<String, String> = b
        .ingest(&["group", "list", "--json"])
        .ok()
        .lines()
        .map(|l| {
            let g: serde_json::Value = data(l);
            (g["name"].as_str().unwrap().to_string(), g["description"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(listed["quoted"], "'=already quoted");
    assert_eq!(listed["apostrophe"], "'tis the pilot");
    assert_eq!(listed["plain"], "=SUM(A1)");
}

/// Registers a hotfix downloaded by hand on `s` (a manual update); returns its path.
fn register_hotfix(s: &Scratch) -> std::path::PathBuf {
    let by_hand = s.path("by-hand/hotfix.msu");
    std::fs::create_dir_all(by_hand.parent().unwrap()).unwrap();
    std::fs::write(&by_hand, payload("hotfix", 5_000)).unwrap();
    s.ingest(&[
        "register",
        by_hand.to_str().unwrap(),
        "--product",
        "Windows 10",
        "--classification",
        "critical-update",
    ])
    .ok();
    by_hand
}

/// A's list, exported and signed, and a second server B that trusts A as a peer and holds
/// A's updates from the same bundle.
fn peers() -> (Scratch, Scratch, std::path::PathBuf) {
    let a = update_list_server();
    a.ingest(&["approve", "KB5034122", "--by", "alice"]).ok();
    let list = export(&a, "list");
    let b = fresh_server(&a);
    let bundle = walk(&a.media()).into_iter().find(|f| f.ends_with(".zip")).unwrap();
    b.ingest(&["import", a.media().join(bundle).to_str().unwrap()]).ok();
    (a, b, list)
}

#[test]
fn list_verified_by_stock_minisign() {
    let (a, _b, list) = peers();
    let out = tool("minisign")
        .arg("-V")
        .arg("-p")
        .arg(a.data_dir().join("server.pub"))
        .arg("-m")
        .arg(&list)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Trusted comment: ferry-list v1 kind=list server="));
}

#[test]
fn list_without_a_signature() {
    let (_a, b, list) = peers();
    std::fs::remove_file(format!("{}.minisig", list.display())).unwrap();
    let before = b.state();
    b.ingest(&["import-list", list.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["no signature", "ingest trust add-peer", "--allow-unsigned"]);
    assert_eq!(b.state(), before);
}

#[test]
fn list_altered_after_signing() {
    // The rows are merged as they are read; the signature is checked against the bytes read
    // before the merge may commit, so an altered list changes nothing.
    let (_a, b, list) = peers();
    let text = std::fs::read_to_string(&list).unwrap().replace(",approved,person,alice,", ",declined,person,alice,");
    std::fs::write(&list, text).unwrap();
    let before = b.state();
    b.ingest(&["import-list", list.to_str().unwrap()])
        .refused(exit::SIGNATURE, &["the file was altered after signing"]);
    assert_eq!(b.state(), before);
}

#[test]
fn list_signed_by_a_bundle_key() {
    // B trusts "signer" for bundles; a list it signs is still not a peer's.
    let (a, b, list) = peers();
    let signature = format!("{}.minisig", list.display());
    std::fs::remove_file(&signature).unwrap();
    let out = tool("minisign")
        .args(["-S", "-s"])
        .arg(a.path("signer.key"))
        .arg("-m")
        .arg(&list)
        .args(["-t", "ferry-list v1 kind=list server=0000000000000000 created=2026-01-01T00:00:00Z"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = b.state();
    b.ingest(&["import-list", list.to_str().unwrap()]).refused(exit::SIGNATURE, &["which is not a trusted peer key"]);
    assert_eq!(b.state(), before);
}

#[test]
fn bundle_signed_by_a_peer_key() {
    // A peer's server key is trusted for lists, never for bundles.
    let (a, b, _list) = peers();
    let catalog = local_catalog(&a.path("feed-peer"), &three_updates());
    let bundle = a.pack(catalog.to_str().unwrap(), &a.data_dir().join("server.key"), &["--min-sequence", "5"]);
    let before = b.state();
    b.ingest(&["import", bundle.to_str().unwrap()]).refused(exit::SIGNATURE, &["not signed by enough trusted keys"]);
    assert_eq!(b.state(), before);
}

#[test]
fn unsigned_list_allowed_takes_statuses_never_metadata() {
    let (a, b, list) = peers();
    // A decision on A later than B's arrival of the update, an update B does not hold, and
    // a title B holds otherwise. (Times are whole seconds: the decision must fall in a
    // later second than B's import.)
    std::thread::sleep(std::time::Duration::from_millis(1100));
    a.ingest(&["approve", "7zip.7zip@24.09", "--by", "alice"]).ok();
    register_hotfix(&a);
    let list = {
        let fresh = export(&a, "list");
        assert_eq!(fresh, list);
        fresh
    };
    let unsigned = a.path("exchange/unsigned.csv");
    edit_list(&list, &unsigned, |row| {
        if cell(row, "id") == "KB5034122" {
            claim(row, "KB5034122", 7, |m| m["title"] = "retitled without a signature".into());
        }
    });
    let run = b.ingest(&["import-list", unsigned.to_str().unwrap(), "--allow-unsigned"]);
    assert!(
        run.stderr.contains("no signature") && run.stderr.contains("taking statuses and groups only"),
        "{}",
        run.stderr
    );
    let out = run.ok();
    assert!(out.contains("1 updates left out: this server does not hold them"), "{out}");
    assert_eq!(update_json(&b, "7zip.7zip@24.09")["status"], "approved", "the later status is taken");
    let shown = update_json(&b, "KB5034122");
    assert_eq!(shown["revision"], 1, "the metadata is not: {shown}");
    assert_ne!(shown["title"], "retitled without a signature");
    assert!(listed(&b, &[]).iter().all(|id| !id.starts_with("manual-")), "no update is made from unsigned metadata");
}

/// The audit log's entries and the change reports of `s`: what a dry run must not add to.
fn records(s: &Scratch) -> (String, String) {
    (s.ingest(&["audit", "list", "--json"]).ok(), s.ingest(&["report", "--list", "--json"]).ok())
}

#[test]
fn import_list_dry_run_says_what_would_change_and_keeps_nothing() {
    let a = update_list_server();
    a.ingest(&["approve", "KB5034122", "--by", "alice"]).ok();
    a.ingest(&["group", "create", "pilot", "--by", "alice"]).ok();
    a.ingest(&["group", "add", "pilot", "KB5034122", "--by", "alice"]).ok();
    let list = export(&a, "list");
    let groups = export(&a, "groups");
    let b = fresh_server(&a);
    let (state, kept) = (b.state(), records(&b));

    let text = b.ingest(&["import-list", list.to_str().unwrap(), "--dry-run"]).ok();
    assert!(text.contains("would import 5 rows"), "{text}");
    assert!(text.contains("updates: 5 new"), "{text}");
    assert!(text.contains("dry run: nothing was changed, no change report stored"), "{text}");
    let would =
        first_of(&b.ingest(&["import-list", list.to_str().unwrap(), "--dry-run", "--json"]).ok(), "list-imported");
    assert_eq!((would["dry_run"].as_bool(), would["report"].is_null()), (Some(true), true), "{would}");
    let text = b.ingest(&["import-groups", groups.to_str().unwrap(), "--dry-run"]).ok();
    assert!(text.contains("would import 1 update groups") && text.contains("dry run"), "{text}");
    assert_eq!(b.state(), state, "a dry run changes no update, status, group or file");
    assert_eq!(records(&b), kept, "nor the audit log, nor the reports");

    // The import itself does what the dry run said.
    let done = first_of(&b.ingest(&["import-list", list.to_str().unwrap(), "--json"]).ok(), "list-imported");
    assert_eq!(done["new"], would["new"]);
    assert_eq!(done["statuses_taken"], would["statuses_taken"]);
    assert_eq!(done["dry_run"], false);
    assert_ne!(b.state(), state);
}

// What a spreadsheet saves back. An administrator opens the export in Excel, changes
// statuses, and saves: the signature no longer matches, so the file goes in unsigned
// (--allow-unsigned: statuses and groups of updates this server holds), in whatever shape
// Excel chose: "CSV UTF-8" (a byte order mark), `;` where the decimal mark is a comma, its
// `sep=` line, "CSV (Comma delimited)" in Windows-1252, a long cell cut at 32,767
// characters.

/// How a spreadsheet saved the list.
struct Saved {
    separator: u8,
    bom: bool,
    sep_line: bool,
    windows_1252: bool,
    /// The metadata cell cut, as Excel cuts a cell longer than it holds.
    cut_metadata: bool,
}

/// `text` in Windows-1252 (the characters the tests use).
fn windows_1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '€' => 0x80,
            c if (c as u32) < 0x80 || (0xa0..=0xff).contains(&(c as u32)) => c as u32 as u8,
            c => panic!("{c:?} is not in the test's Windows-1252"),
        })
        .collect()
}

/// Writes `list` again as a spreadsheet would have saved it.
fn saved_by_a_spreadsheet(list: &std::path::Path, out: &std::path::Path, how: &Saved) {
    let mut reader = csv::Reader::from_path(list).unwrap();
    let mut writer =
        csv::WriterBuilder::new().delimiter(how.separator).terminator(csv::Terminator::CRLF).from_writer(vec![]);
    writer.write_record(reader.headers().unwrap()).unwrap();
    let metadata = reader.headers().unwrap().iter().position(|h| h == "metadata").unwrap();
    for record in reader.records() {
        let mut cells: Vec<String> = record.unwrap().iter().map(String::from).collect();
        if how.cut_metadata {
            let cut = cells[metadata].len() / 2;
            cells[metadata].truncate(cut);
        }
        writer.write_record(&cells).unwrap();
    }
    let mut text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
    if how.sep_line {
        text = format!("sep={}\r\n{text}", how.separator as char);
    }
    let mut bytes = if how.windows_1252 { windows_1252(&text) } else { text.into_bytes() };
    if how.bom {
        bytes.splice(0..0, [0xef, 0xbb, 0xbf]);
    }
    std::fs::write(out, bytes).unwrap();
}

/// Two peers, and on A a later decision by a person whose name is not ASCII and a group:
/// what B should take from A's list however a spreadsheet saved it.
fn decided_with_an_accented_name() -> (Scratch, Scratch, std::path::PathBuf) {
    let (a, b, _) = peers();
    // Times are whole seconds: the decision must fall in a later second than B's import.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    a.ingest(&["approve", "7zip.7zip@24.09", "--by", "Jürgen Müller €"]).ok();
    a.ingest(&["group", "create", "pilot"]).ok();
    a.ingest(&["group", "add", "pilot", "7zip.7zip@24.09"]).ok();
    let list = export(&a, "list");
    (a, b, list)
}

/// A's list saved as `how` says, imported into B unsigned: B takes the decision (with the
/// accented name) and the group.
fn saved_list_goes_in(fixture: &str, how: Saved) {
    let (a, b, list) = decided_with_an_accented_name();
    let saved = a.path(&format!("exchange/{fixture}"));
    saved_by_a_spreadsheet(&list, &saved, &how);
    let run = b.ingest(&["import-list", saved.to_str().unwrap(), "--allow-unsigned"]);
    assert!(run.stderr.contains("taking statuses and groups only"), "{}", run.stderr);
    run.ok();
    let shown = update_json(&b, "7zip.7zip@24.09");
    assert_eq!(shown["status"], "approved", "{shown}");
    assert_eq!(shown["status_actor"], "Jürgen Müller €", "{shown}");
    assert_eq!(shown["groups"], serde_json::json!(["pilot"]), "{shown}");
}

#[test]
fn excel_csv_utf8_with_semicolons_imports_statuses_and_groups() {
    let how = Saved { separator: b';', bom: true, sep_line: false, windows_1252: false, cut_metadata: false };
    saved_list_goes_in("excel-utf8-semicolons.csv", how);
}

#[test]
fn excel_csv_in_windows_1252_with_a_sep_line_imports_statuses_and_groups() {
    let how = Saved { separator: b';', bom: false, sep_line: true, windows_1252: true, cut_metadata: false };
    saved_list_goes_in("excel-windows-1252.csv", how);
}

#[test]
fn excel_csv_with_its_metadata_cells_cut_imports_statuses_and_groups() {
    let how = Saved { separator: b',', bom: true, sep_line: false, windows_1252: false, cut_metadata: true };
    saved_list_goes_in("excel-cut-cells.csv", how);
}

#[test]
fn excel_groups_csv_with_semicolons_in_windows_1252() {
    let (a, b, _) = decided_with_an_accented_name();
    a.ingest(&["group", "create", "office-3", "--description", "Rechner im Büro, 3. Stock", "--by", "Jürgen Müller €"])
        .ok();
    a.ingest(&["group", "add", "office-3", "KB5034122"]).ok();
    let groups = export(&a, "groups");
    let saved = a.path("exchange/excel-groups.csv");
    let mut reader = csv::Reader::from_path(&groups).unwrap();
    let mut writer = csv::WriterBuilder::new().delimiter(b';').terminator(csv::Terminator::CRLF).from_writer(vec![]);
    writer.write_record(reader.headers().unwrap()).unwrap();
    for record in reader.records() {
        writer.write_record(&record.unwrap()).unwrap();
    }
    std::fs::write(&saved, windows_1252(&String::from_utf8(writer.into_inner().unwrap()).unwrap())).unwrap();
    b.ingest(&["import-groups", saved.to_str().unwrap(), "--allow-unsigned"]).ok();
    let out = b.ingest(&["group", "list", "--json"]).ok();
    assert!(out.contains("Rechner im Büro, 3. Stock") && out.contains("Jürgen Müller €"), "{out}");
    assert_eq!(update_json(&b, "KB5034122")["groups"], serde_json::json!(["office-3"]));
}

#[test]
fn csv_saved_as_utf16() {
    let (a, b, list) = peers();
    let text = std::fs::read_to_string(&list).unwrap();
    let saved = a.path("exchange/utf16.csv");
    let bytes: Vec<u8> = "\u{feff}"
        .encode_utf16()
        .chain(text.trim_start_matches('\u{feff}').encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(&saved, bytes).unwrap();
    let before = b.state();
    b.ingest(&["import-list", saved.to_str().unwrap(), "--allow-unsigned"])
        .refused(exit::INPUT, &["UTF-16", "Unicode Text", "CSV UTF-8"]);
    assert_eq!(b.state(), before);
}

#[test]
fn csv_mixing_utf8_and_windows_1252() {
    let (a, b, list) = decided_with_an_accented_name();
    let saved = a.path("exchange/mixed.csv");
    // The accented name in UTF-8 on one row, then a row carrying a Windows-1252 byte.
    let text = std::fs::read_to_string(&list).unwrap();
    let mut bytes = text.into_bytes();
    let last_row = bytes[..bytes.len() - 2].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let at = last_row + bytes[last_row..].windows(5).position(|w| w == b"bundl").unwrap();
    bytes.splice(at..at, *b"\xfc");
    std::fs::write(&saved, bytes).unwrap();
    let before = b.state();
    b.ingest(&["import-list", saved.to_str().unwrap(), "--allow-unsigned"])
        .refused(exit::INPUT, &["not UTF-8, though earlier rows were"]);
    assert_eq!(b.state(), before);
}

#[test]
fn groups_cell_at_the_spreadsheet_limit() {
    let (a, b, list) = peers();
    let saved = a.path("exchange/groups-cut.csv");
    let long: String = (0..10_000).map(|i| format!("g{i};")).collect::<String>().chars().take(32_767).collect();
    edit_list(&list, &saved, |row| {
        if cell(row, "id") == "KB5034122" {
            *cell(row, "groups") = long.clone();
        }
    });
    let before = b.state();
    b.ingest(&["import-list", saved.to_str().unwrap(), "--allow-unsigned"])
        .refused(exit::INPUT, &["groups: 32767 characters or more, a spreadsheet's limit", "export-groups"]);
    assert_eq!(b.state(), before);
}
