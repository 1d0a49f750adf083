#!/usr/bin/env bash
# Benchmark (not a test): publishing to a distribution point on the store's file system.
# $FILES files (default 20,000) of $FILE_KIB KiB each (default 64: 1.25 GiB in all), two per
# approved update, are put in a store (sparse files, each with its own first bytes, so that
# every digest differs and the disk is not filled), then, timing whole processes with
# hyperfine (median of $RUNS runs):
#   - a first `ingest publish` into an empty distribution point (a checked copy of every
#     file, or a reflink where the file system clones: never a hard link, which would let
#     an edit on the share reach the store), against `cp -r` of the same store tree and a
#     `sync` (publish makes its copies durable before the index names them);
#   - a publish with nothing changed, target under 1 s, against `find -type f -printf '%s'`,
#     which stats every published file as the publish does;
#   - a pass of `ingest watch --once` over an empty drop folder with this registry and this
#     published point (it asks whether the point is behind: the registry's approved list
#     against the current index), target under 100 ms, against `sqlite3` counting the
#     approved updates of the same registry (opening it and reading one table).
#
# Usage: tests/bench/publish.sh      (RUNS=5 FILES=20000 FILE_KIB=64 by default)
# Needs: hyperfine, python3, sqlite3, minisign (the generated list is signed as a peer's). Data goes under $BENCH_DIR (default /var/tmp), removed after.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-5}"
files="${FILES:-20000}"
file_kib="${FILE_KIB:-64}"
for tool in hyperfine python3 sqlite3 minisign; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine python3 sqlite3 minisign)"; exit 2; }
done
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin ingest
ingest="$root/target/release/ingest"
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-publish.XXXXXX")"
# The point's copies are written whole (the store's files are sparse), twice over with cp's.
require_free_kib "$work" $((files * file_kib * 2 + 1024 * 1024))
trap 'rm -rf "$work"' EXIT
export USER="${USER:-bench}"
data="$work/data"

echo "generating $files files of $file_kib KiB ($((files * file_kib / 1024 / 1024)) GiB, sparse) in the store"
python3 - "$files" "$file_kib" "$work/list.csv" "$data/store" <<'PY'
import csv, hashlib, json, os, sys
n, kib, out, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
size = kib * 1024
zeros = hashlib.sha256()
cols = ["id", "revision", "title", "vendor", "product", "version", "classification", "severity", "kb",
        "release_date", "withdrawn", "origin", "available", "status", "status_set_by", "status_actor",
        "status_set_at", "eula_accepted_by", "eula_accepted_at", "groups", "metadata"]
chunk = bytes(1 << 20)
with open(out, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\r\n")
    w.writerow(cols)
    for u in range(n // 2):
        uid = f"KB{6000000 + u}"
        entries = []
        for j in range(2):
            head = f"{uid}/{j}".encode().ljust(64, b".")
            h = hashlib.sha256(head)
            left = size - len(head)
            while left:
                step = min(left, len(chunk)); h.update(chunk[:step]); left -= step
            digest = h.hexdigest()
            path = os.path.join(store, "sha256", digest[:2], digest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as s:
                s.write(head); s.truncate(size)
            os.chmod(path, 0o444)
            name = f"windows-{uid.lower()}-{['x64', 'arm64'][j]}.msu"
            entries.append({"name": name, "url": f"https://updates.example/{name}", "sha256": digest, "size": size})
        update = {"id": uid, "revision": 1, "title": f"Update {uid}", "vendor": "Example Vendor",
                  "product": "Windows 11", "version": "1", "classification": "security-update",
                  "severity": "important", "kb": uid, "release_date": "2026-01-01", "files": entries}
        w.writerow([uid, 1, update["title"], "Example Vendor", "Windows 11", "1", "security-update", "important",
                    uid, "2026-01-01", "no", "bundle", "no", "undefined", "system", "", "2026-01-01T00:00:00Z",
                    "", "", "", json.dumps(update, separators=(",", ":"))])
PY
sign_generated_list "$data" "$work/list.csv"
"$ingest" --data-dir "$data" --set rules.apply=false import-list "$work/list.csv" >/dev/null
python3 - "$data/registry.sqlite" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("UPDATE files SET present = 1, stored_at = '2026-01-01T00:00:00Z'")
con.commit()
PY
"$ingest" --data-dir "$data" approve --all >/dev/null
"$ingest" --data-dir "$data" dp add bench --path "$work/dp" --approved >/dev/null
"$ingest" --data-dir "$data" server-key export --out "$work/server.pub" >/dev/null

bench() { # NAME COMMAND... : median seconds into $work/NAME.json
    local name="$1"; shift
    hyperfine --runs "$runs" --style none --export-json "$work/$name.json" "$@" >/dev/null 2>&1 \
        || { echo "$name failed"; hyperfine --runs 1 "$@"; exit 1; }
    median "$work/$name.json"
}
ms() { python3 -c 'import sys; print(f"{float(sys.argv[1])*1000:.0f} ms")' "$1"; }

echo "timing (median of $runs runs; a ratio above 1 means ferry is slower than the baseline)"
t_first=$(bench first --prepare "rm -rf $work/dp" "$ingest --data-dir $data publish")
b_first=$(bench firstb --prepare "rm -rf $work/cp" "sh -c 'cp -r --sparse=never $data/store/sha256 $work/cp && sync'")
echo "publish, first ($files files, checked copies): $(ms "$t_first"); cp -r of the store then sync $(ms "$b_first"), ratio $(ratio "$t_first" "$b_first")"
"$ingest" --data-dir "$data" publish >/dev/null
t_again=$(bench again "$ingest --data-dir $data publish")
b_again=$(bench againb "find $work/dp/files -type f -printf '%s\n'")
echo "publish, nothing changed:             $(ms "$t_again") (target < 1 s); find stating every file $(ms "$b_again"), ratio $(ratio "$t_again" "$b_again")"
mkdir -p "$work/drop"
"$ingest" --data-dir "$data" watch --once --drop "$work/drop" >/dev/null
t_watch=$(bench watch "$ingest --data-dir $data watch --once --drop $work/drop")
b_watch=$(bench watchb "sqlite3 $data/registry.sqlite \"SELECT count(*) FROM updates WHERE status = 'approved'\"")
echo "watch pass, empty drop folder:        $(ms "$t_watch") (target < 100 ms); sqlite3 counting approved updates $(ms "$b_watch"), ratio $(ratio "$t_watch" "$b_watch")"
"$ingest" --data-dir "$data" dp verify "$work/dp" --key "$work/server.pub" | tail -1
