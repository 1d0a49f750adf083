# Helpers shared by the benchmark scripts (sourced, not run).

# The median time in seconds from a hyperfine --export-json file.
median() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"; }
# Peak resident memory in KiB of a command, from GNU time.
peak_kib() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}'; }
# Throughput of ferry over a baseline, from the baseline's time and ferry's time.
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }
# Bytes per second as MiB/s.
rate() { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2])/1048576:.0f} MiB/s")' "$1" "$2"; }
# Leaves (removing the empty directory DIR) unless DIR's file system has NEED_KIB free: a
# benchmark that fills the disk takes the machine down with it.
require_free_kib() {
    local dir="$1" need_kib="$2" free_kib
    free_kib=$(df -Pk "$dir" | awk 'NR == 2 {print $4}')
    if (( free_kib < need_kib )); then
        echo "not enough free space in $dir: $((free_kib / 1024)) MiB free, $((need_kib / 1024)) MiB needed"
        rmdir "$dir"
        exit 2
    fi
}
# 100 sizes in whole MiB for a total of $1 MiB, log-normally spread, each at least 1 and at
# most a quarter of the total, summing exactly to the total (the same list every run).
mixed_sizes_mib() {
    python3 - "$1" <<'PY'
import random, sys
total = int(sys.argv[1]); n = 100; random.seed(7)
cap = total // 4
assert total >= n, "the total must be at least 100 MiB"
raw = [random.lognormvariate(0, 1.1) for _ in range(n)]
sizes = [min(cap, max(1, int(r * total / sum(raw)))) for r in raw]
i = 0
while sum(sizes) != total:
    step = 1 if sum(sizes) < total else -1
    if 1 <= sizes[i % n] + step <= cap:
        sizes[i % n] += step
    i += 1
assert sum(sizes) == total and all(1 <= x <= cap for x in sizes)
print(" ".join(str(x) for x in sizes))
PY
}
# make_payloads DIR SIZE_MIB...: random files DIR/update-N.msu, one per size.
make_payloads() {
    local dir="$1" i=0 mib; shift
    mkdir -p "$dir"
    for mib in "$@"; do
        i=$((i + 1))
        # A negative count would make head copy all of /dev/urandom but the last bytes.
        [[ "$mib" =~ ^[0-9]+$ && "$mib" -gt 0 ]] || { echo "bad file size: $mib MiB"; exit 2; }
        head -c "$((mib * 1048576))" /dev/urandom >"$dir/update-$i.msu"
    done
}
# write_catalog DIR BASE OUT: a catalog at OUT with one update per DIR/*.msu, its file's URL
# being BASE/name.
write_catalog() {
    python3 - "$1" "$2" "$3" <<'PY'
import hashlib, json, os, sys
d, base, out = sys.argv[1], sys.argv[2], sys.argv[3]
ups = []
for n in sorted(os.listdir(d)):
    if not n.endswith(".msu"):
        continue
    h = hashlib.sha256()
    with open(f"{d}/{n}", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    ups.append({"id": n[:-4], "revision": 1, "title": n, "vendor": "Bench", "product": "Bench", "version": "1",
                "classification": "update-rollup", "release_date": "2024-01-09",
                "files": [{"name": n, "url": f"{base}/{n}", "sha256": h.hexdigest(), "size": os.path.getsize(f"{d}/{n}")}]})
json.dump({"format": 1, "updates": ups}, open(out, "w"))
PY
}
# Makes DATA's own server key a peer key of DATA and signs the list CSV (as `export-list` on
# that peer would), so that a generated list is imported with its metadata. Needs minisign.
sign_generated_list() {
    local data="$1" csv="$2" key_id
    "$ingest" --data-dir "$data" server-key export --out "$data.pub" >/dev/null
    "$ingest" --data-dir "$data" trust add-peer "$data.pub" >/dev/null
    key_id=$(head -n 1 "$data.pub" | awk '{print $NF}')
    rm -f "$csv.minisig"
    minisign -S -s "$data/server.key" -m "$csv" -t "ferry-list v1 kind=list server=$key_id created=2026-01-01T00:00:00Z" </dev/null >/dev/null
}
