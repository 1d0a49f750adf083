#!/usr/bin/env bash
# Benchmark (not a test): computers at scale. A list of $UPDATES updates (default 20,000),
# all approved, each applying to one of 40 Windows builds (so $UPDATES/40, about 500, apply
# to each computer), every fourth superseding an earlier one of its build; $COMPUTERS
# computers (default 10,000), each reporting its build, 300 installed updates of its 500 and
# 150 programs, as ferry computer reports (one JSON file each). Timed with hyperfine
# (median of $RUNS runs), each against a baseline doing the same work in Python with the
# same data and SQLite:
#   - `ingest computers import DIR` of all reports into a registry without computers
#     (restored before each run), target under 60 s (this includes the judgment that follows
#     an import); baseline: Python reading each report with json and inserting the same rows
#     (computer, hotfixes, programs) into tables of the same shape, 256 files a transaction;
#   - `ingest computers judge` again (the verdicts mostly stand, and only changes are
#     written; the first judgment, writing all of them, is in the import), target under
#     10 s; baseline: Python reading the approved
#     updates' builds and every computer's installed KBs from the registry, computing each
#     computer's missing updates as a set difference and writing them as rows;
#   - `ingest computers report --kind updates` (the per-update status), target under 2 s;
#     baseline: Python running the same per-update count over the stored judgments;
#   - peak memory of the import of 1,000 reports and of all of them: flat means a ratio near 1.
#
# Usage: tests/bench/computers-scale.sh      (RUNS=3 COMPUTERS=10000 UPDATES=20000 by default)
# Needs: hyperfine, python3, minisign, GNU time. Data goes under $BENCH_DIR (default
# /var/tmp), about 400 MB, removed after.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-3}"
computers="${COMPUTERS:-10000}"
updates="${UPDATES:-20000}"
for tool in hyperfine python3 minisign /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine python3 minisign time)"; exit 2; }
done
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin ingest
ingest="$root/target/release/ingest"
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-computers.XXXXXX")"
require_free_kib "$work" $((2 * 1024 * 1024))
trap 'rm -rf "$work"' EXIT
export USER="${USER:-bench}"
py="$(python3 -c 'import sys; print(sys.executable)')"

echo "generating $updates updates and $computers computer reports"
python3 - "$updates" "$computers" "$work" <<'PY'
import csv, hashlib, json, os, random, sys
n, m, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
builds = 40
cols = ["id", "revision", "title", "vendor", "product", "version", "classification", "severity", "kb",
        "release_date", "withdrawn", "origin", "available", "status", "status_set_by", "status_actor",
        "status_set_at", "eula_accepted_by", "eula_accepted_at", "groups", "metadata"]
severities = ["critical", "important", "moderate", "low"]
with open(f"{work}/list.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\r\n")
    w.writerow(cols)
    for i in range(n):
        kb, build = f"KB{6000000 + i}", str(19000 + i % builds)
        day = f"2025-{1 + (i // 40) % 12:02d}-{1 + i % 28:02d}"
        name = f"windows10.0-{kb.lower()}-x64.msu"
        update = {"id": kb, "revision": 1, "title": f"Update {i} for build {build}", "vendor": "Microsoft",
                  "product": "Windows 10", "version": build, "classification": "security-update",
                  "severity": severities[i % 4], "kb": kb, "release_date": day,
                  "applicability": {"os_builds": [build]},
                  "files": [{"name": name, "url": f"https://updates.example/{name}",
                             "sha256": hashlib.sha256(kb.encode()).hexdigest(), "size": 1000000 + i}]}
        if i % 4 == 0 and i >= 4 * builds:
            update["supersedes"] = [f"KB{6000000 + i - 4 * builds}"]
        w.writerow([kb, 1, update["title"], "Microsoft", "Windows 10", build, "security-update",
                    update["severity"], kb, day, "no", "bundle", "no", "undefined", "system", "",
                    "2026-01-01T00:00:00Z", "", "", "", json.dumps(update, separators=(",", ":"))])
os.makedirs(f"{work}/reports")
random.seed(22)
per_build = [[i for i in range(n) if i % builds == b] for b in range(builds)]
for c in range(m):
    b = c % builds
    installed = random.sample(per_build[b], min(300, len(per_build[b])))
    report = {
        "format": "ferry-computer-report", "version": 1, "computer": f"PC-{c:05d}",
        "created": "2026-11-20T08:00:00Z", "client": "ferry-client 0.1.0",
        "os": {"product": "Windows 10 Enterprise", "build": f"10.0.{19000 + b}.{c % 1000}", "architecture": "x64"},
        "hotfixes": [{"kb": f"KB{6000000 + i}", "description": "Security Update", "installed_on": "2025-06-01"}
                     for i in installed],
        "programs": [{"name": f"Program {p} of vendor {p % 17}", "version": f"{p % 9}.{c % 7}.{p}",
                      "publisher": f"Vendor {p % 17}"} for p in range(150)],
        "packages": None, "scan": None,
    }
    with open(f"{work}/reports/PC-{c:05d}.json", "w", encoding="utf-8") as f:
        json.dump(report, f)
PY
echo "  $(du -sh "$work/reports" | cut -f1) of reports"
mkdir -p "$work/first"
reports=("$work"/reports/*.json)
ln "${reports[@]:0:1000}" "$work/first/"

data="$work/data"
sign_generated_list "$data" "$work/list.csv"
"$ingest" --data-dir "$data" --set rules.apply=false import-list "$work/list.csv" >/dev/null
python3 - "$data/registry.sqlite" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("UPDATE updates SET status = 'approved', status_set_by = 'person', status_set_at = '2026-01-01T00:00:00Z'")
con.execute("UPDATE files SET present = 1, stored_at = '2026-01-01T00:00:00Z' WHERE abs(random()) % 10 != 0")
con.commit()
PY
cp "$data/registry.sqlite" "$work/registry.empty"

bench() { # NAME COMMAND... : median seconds into $work/NAME.json
    local name="$1"; shift
    hyperfine --runs "$runs" --warmup 0 --style none --export-json "$work/$name.json" "$@" >/dev/null 2>&1 \
        || { echo "$name failed"; hyperfine --runs 1 "$@"; exit 1; }
    median "$work/$name.json"
}
secs() { python3 -c 'import sys; print(f"{float(sys.argv[1]):.2f} s")' "$1"; }

cat >"$work/import.py" <<'PY'
# The baseline of the import: each report read with json, its rows inserted into tables of
# the registry's shape, 256 files a transaction.
import json, os, sqlite3, sys
src, db = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
con.executescript("""
CREATE TABLE computers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, os_product TEXT,
    os_build TEXT, os_arch TEXT, first_seen TEXT NOT NULL, last_report TEXT NOT NULL);
CREATE TABLE computer_hotfixes (computer_id INTEGER NOT NULL, kb TEXT NOT NULL, description TEXT,
    installed_on TEXT, PRIMARY KEY (computer_id, kb)) WITHOUT ROWID;
CREATE TABLE computer_programs (computer_id INTEGER NOT NULL, n INTEGER NOT NULL, name TEXT NOT NULL,
    version TEXT, publisher TEXT, product_code TEXT, PRIMARY KEY (computer_id, n)) WITHOUT ROWID;
""")
names = sorted(os.listdir(src))
for start in range(0, len(names), 256):
    with con:
        for name in names[start:start + 256]:
            with open(os.path.join(src, name), encoding="utf-8") as f:
                r = json.load(f)
            cur = con.execute("INSERT INTO computers (name, os_product, os_build, os_arch, first_seen, last_report) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (r["computer"], r["os"]["product"], r["os"]["build"],
                              r["os"]["architecture"], r["created"], r["created"]))
            cid = cur.lastrowid
            con.executemany("INSERT INTO computer_hotfixes VALUES (?, ?, ?, ?)",
                            [(cid, h["kb"], h.get("description"), h.get("installed_on")) for h in r["hotfixes"]])
            con.executemany("INSERT INTO computer_programs VALUES (?, ?, ?, ?, ?, ?)",
                            [(cid, i, p["name"], p.get("version"), p.get("publisher"), p.get("product_code"))
                             for i, p in enumerate(r["programs"])])
PY
cat >"$work/judge.py" <<'PY'
# The baseline of the judgment: the approved updates' builds and each computer's installed
# KBs read from the registry, each computer's missing updates computed, written as rows.
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
by_build = {}
for uid, kb, meta in con.execute("SELECT u.id, u.kb, m.metadata FROM updates u JOIN update_metadata m "
                                 "ON m.update_id = u.id WHERE u.status = 'approved'"):
    for b in json.loads(meta).get("applicability", {}).get("os_builds", []):
        by_build.setdefault(b, []).append((uid, kb))
installed = {}
for cid, kb in con.execute("SELECT computer_id, kb FROM computer_hotfixes"):
    installed.setdefault(cid, set()).add(kb)
out = sqlite3.connect(sys.argv[2])
out.execute("CREATE TABLE judgments (computer_id INTEGER, update_id TEXT, verdict TEXT, reason TEXT, "
            "PRIMARY KEY (computer_id, update_id)) WITHOUT ROWID")
with out:
    for cid, build in con.execute("SELECT id, os_build FROM computers"):
        have = installed.get(cid, set())
        number = build.split(".")[2]
        out.executemany("INSERT INTO judgments VALUES (?, ?, 'missing', ?)",
                        [(cid, uid, f"{kb} is not in its list of installed updates")
                         for uid, kb in by_build.get(number, []) if kb not in have])
PY

echo "timing (median of $runs runs; lower is better; a ratio above 1 means ferry is slower than the baseline)"
t_import=$(bench import --prepare "cp $work/registry.empty $data/registry.sqlite" \
    "$ingest --data-dir $data computers import $work/reports")
b_import=$(bench importb --prepare "rm -f $work/py.sqlite" "$py $work/import.py $work/reports $work/py.sqlite")
echo "import $computers reports (and judge): $(secs "$t_import") (target < 60 s); Python json + sqlite3 inserts $(secs "$b_import"), ratio $(ratio "$t_import" "$b_import")"
cp "$data/registry.sqlite" "$work/registry.full"

t_judge=$(bench judge "$ingest --data-dir $data computers judge")
b_judge=$(bench judgeb --prepare "rm -f $work/judged.sqlite" "$py $work/judge.py $data/registry.sqlite $work/judged.sqlite")
echo "judge $computers computers:           $(secs "$t_judge") (target < 10 s); Python set differences into rows $(secs "$b_judge"), ratio $(ratio "$t_judge" "$b_judge")"
judged=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM judgments").fetchone()[0])' "$data/registry.sqlite")
echo "  $judged verdicts not satisfied stored"

t_report=$(bench report "$ingest --data-dir $data computers report --kind updates --out $work/updates.txt")
b_report=$(bench reportb "$py -c 'import sqlite3,sys; c=sqlite3.connect(\"file:$data/registry.sqlite?mode=ro\", uri=True); [print(r) for r in c.execute(\"SELECT j.update_id, count(*), sum(j.verdict = \\\"missing\\\"), u.title, u.severity FROM judgments j JOIN updates u ON u.id = j.update_id GROUP BY j.update_id ORDER BY 2 DESC\")]' > $work/py-updates.txt")
echo "per-update status report:          $(secs "$t_report") (target < 2 s); Python's per-update count $(secs "$b_report"), ratio $(ratio "$t_report" "$b_report")"

cp "$work/registry.empty" "$data/registry.sqlite"
m_first=$(peak_kib "$ingest" --data-dir "$data" computers import "$work/first")
cp "$work/registry.empty" "$data/registry.sqlite"
m_all=$(peak_kib "$ingest" --data-dir "$data" computers import "$work/reports")
echo "peak memory: import of 1,000 reports $((m_first / 1024)) MiB, of $computers $((m_all / 1024)) MiB; ratio $(ratio "$m_all" "$m_first") (flat: near 1)"
