#!/usr/bin/env bash
# Benchmark (not a test): the update list at scale. A generated list of $UPDATES updates
# (default 200,000) with two files each (400,000 files), 100 products of 2,000 updates,
# each update superseding the previous one of its product, is imported as CSV into a fresh
# data directory; then, timing whole processes with hyperfine (median of $RUNS runs):
#   - `ingest list --kb …` (1 match) and `ingest list --product …` (2,000 matches), target
#     under 100 ms each, against Python's sqlite3 running the same SELECT in a new process;
#   - `ingest export-list`, target under 3 s, against Python's csv module writing the rows
#     of the updates joined with their metadata from the same registry;
#   - `ingest import-list` of that CSV into a fresh data directory, target under 10 s,
#     against Python reading the same CSV and inserting its rows into a fresh SQLite table;
#   - `ingest refresh` with four rules, target under 5 s: the first one after the import
#     (marks 198,000 superseded updates and applies the rules' thousands of decisions; the
#     registry is restored before each run) and a steady one (nothing left to change).
# 90% of the files are marked present in the registry (the store itself is not needed for
# these commands), so that availability and supersedence have work to do.
#
# Usage: tests/bench/update-list-scale.sh      (RUNS=5 UPDATES=200000 by default)
# Needs: hyperfine, python3, minisign (the generated list is signed as a peer server's). Data goes under $BENCH_DIR (default /var/tmp), removed after.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-5}"
updates="${UPDATES:-200000}"
for tool in hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine python3)"; exit 2; }
done
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin ingest
ingest="$root/target/release/ingest"
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-scale.XXXXXX")"
require_free_kib "$work" $((2 * 1024 * 1024))
trap 'rm -rf "$work"' EXIT
export USER="${USER:-bench}"
# The interpreter itself, not a version manager's shim, so that the baselines do not pay
# for the shim's start.
py="$(python3 -c 'import sys; print(sys.executable)')"

echo "generating $updates updates with two files each"
python3 - "$updates" "$work/list.csv" <<'PY'
import csv, hashlib, json, sys
n, out = int(sys.argv[1]), sys.argv[2]
cols = ["id", "revision", "title", "vendor", "product", "version", "classification", "severity", "kb",
        "release_date", "withdrawn", "origin", "available", "status", "status_set_by", "status_actor",
        "status_set_at", "eula_accepted_by", "eula_accepted_at", "groups", "metadata"]
classes = ["security-update", "critical-update", "update-rollup", "feature-pack", "definition-update"]
severities = ["critical", "important", "moderate", "low", "unspecified"]
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\r\n")
    w.writerow(cols)
    for i in range(n):
        product, k = f"Product {i % 100}", i // 100
        uid, kb = f"KB{5000000 + i}", f"KB{5000000 + i}"
        day = f"20{20 + k // 400:02d}-{1 + (k // 32) % 12:02d}-{1 + k % 28:02d}"
        files = []
        for j in range(2):
            digest = hashlib.sha256(f"{i}/{j}".encode()).hexdigest()
            name = f"windows-{kb.lower()}-{['x64', 'arm64'][j]}.msu"
            files.append({"name": name, "url": f"https://updates.example/{name}", "sha256": digest,
                          "size": 1000000 + i, "architecture": ["x64", "arm64"][j]})
        update = {"id": uid, "revision": 1, "title": f"Update {i} for {product}", "vendor": "Example Vendor",
                  "product": product, "version": str(k), "classification": classes[i % 5],
                  "severity": severities[(i // 5) % 5], "kb": kb, "release_date": day, "files": files}
        if k > 0:
            update["supersedes"] = [f"KB{5000000 + i - 100}"]
        w.writerow([uid, 1, update["title"], "Example Vendor", product, str(k), classes[i % 5],
                    update["severity"], kb, day, "no", "bundle", "no", "undefined", "system", "",
                    "2026-01-01T00:00:00Z", "", "", "", json.dumps(update, separators=(",", ":"))])
PY
echo "  $(du -h "$work/list.csv" | cut -f1) of CSV"

data="$work/data"
sign_generated_list "$data" "$work/list.csv"
"$ingest" --data-dir "$data" --set rules.apply=false import-list "$work/list.csv" >/dev/null
python3 - "$data/registry.sqlite" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("UPDATE files SET present = 1, stored_at = '2026-01-01T00:00:00Z' WHERE abs(random()) % 10 != 0")
con.commit()
PY
"$ingest" --data-dir "$data" group create pilot >/dev/null
"$ingest" --data-dir "$data" rules add critical-after-30 --approve --severity critical --days-since-release 30 >/dev/null
"$ingest" --data-dir "$data" rules add decline-superseded --decline --superseded >/dev/null
"$ingest" --data-dir "$data" rules add pilot-first --add-to-group pilot --product "Product 7" >/dev/null
"$ingest" --data-dir "$data" rules add after-pilot --approve --group pilot --days-in-group 0 >/dev/null
cp "$data/registry.sqlite" "$work/registry.before-refresh"

pyquery() {
    # A new Python process running one SELECT on the registry, printing the rows.
    echo "$py -c 'import sqlite3,sys; c=sqlite3.connect(\"file:$data/registry.sqlite?mode=ro\", uri=True); [print(r) for r in c.execute(sys.argv[1], sys.argv[2:])]' '$1' ${2:-}"
}
bench() { # NAME COMMAND... : median seconds into $work/NAME.json
    local name="$1"; shift
    hyperfine --runs "$runs" --warmup 1 --style none --export-json "$work/$name.json" "$@" >/dev/null 2>&1 \
        || { echo "$name failed"; hyperfine --runs 1 "$@"; exit 1; }
    median "$work/$name.json"
}
ms() { python3 -c 'import sys; print(f"{float(sys.argv[1])*1000:.0f} ms")' "$1"; }

echo "timing (median of $runs runs; lower is better; a ratio above 1 means ferry is slower than the baseline)"
t_one=$(bench list1 "$ingest --data-dir $data list --kb KB5123456")
b_one=$(bench list1b "$(pyquery 'SELECT * FROM updates WHERE kb = ?' KB5123456)")
echo "list, 1 match:          $(ms "$t_one") (target < 100 ms); Python sqlite3 SELECT $(ms "$b_one"), ratio $(ratio "$t_one" "$b_one")"
rows=$("$ingest" --data-dir "$data" list --product "Product 7" --json | wc -l)
t_many=$(bench list2000 "$ingest --data-dir $data list --product 'Product 7'")
b_many=$(bench list2000b "$(pyquery "SELECT * FROM updates WHERE product = ? COLLATE NOCASE ORDER BY release_date DESC" "'Product 7'")")
echo "list, $rows matches:    $(ms "$t_many") (target < 100 ms); Python sqlite3 SELECT $(ms "$b_many"), ratio $(ratio "$t_many" "$b_many")"

t_export=$(bench export "$ingest --data-dir $data export-list --out $work/export.csv")
b_export=$(bench exportb "$py -c 'import csv,sqlite3; c=sqlite3.connect(\"file:$data/registry.sqlite?mode=ro\", uri=True); w=csv.writer(open(\"$work/py.csv\",\"w\",newline=\"\")); w.writerows(c.execute(\"SELECT * FROM updates u JOIN update_metadata m ON m.update_id = u.id ORDER BY u.id\"))'")
echo "export-list:            $(ms "$t_export") (target < 3 s); Python csv of the updates joined with their metadata $(ms "$b_export"), ratio $(ratio "$t_export" "$b_export")"

# The fresh server trusts the exporting one as a peer (its signed export is what is imported).
t_import=$(bench import --prepare "rm -rf $work/fresh && $ingest --data-dir $work/fresh trust add-peer $data.pub" "$ingest --data-dir $work/fresh import-list $work/export.csv")
b_import=$(bench importb --prepare "rm -f $work/py.sqlite" "$py -c 'import csv,sqlite3; c=sqlite3.connect(\"$work/py.sqlite\"); r=csv.reader(open(\"$work/export.csv\",newline=\"\",encoding=\"utf-8\")); h=next(r); c.execute(\"CREATE TABLE u (\"+\",\".join(h)+\")\"); c.executemany(\"INSERT INTO u VALUES (\"+\",\".join(\"?\"*len(h))+\")\", r); c.commit()'")
echo "import-list (fresh):    $(ms "$t_import") (target < 10 s); Python csv into one SQLite table $(ms "$b_import"), ratio $(ratio "$t_import" "$b_import")"

t_first=$(bench refresh1 --prepare "cp $work/registry.before-refresh $data/registry.sqlite" "$ingest --data-dir $data refresh")
"$ingest" --data-dir "$data" refresh >/dev/null
t_steady=$(bench refresh2 "$ingest --data-dir $data refresh")
b_scan=$(bench refreshb "$(pyquery "SELECT u.id, u.status, u.superseded_since, (SELECT count(*) FROM update_files x JOIN files f ON f.sha256 = x.sha256 WHERE x.update_id = u.id AND f.present = 0) FROM updates u" "")")
echo "refresh, first:         $(ms "$t_first") (target < 5 s); Python reading each update's status and availability $(ms "$b_scan"), ratio $(ratio "$t_first" "$b_scan")"
echo "refresh, steady:        $(ms "$t_steady") (target < 5 s); ratio $(ratio "$t_steady" "$b_scan")"
"$ingest" --data-dir "$data" report --list --limit 1
