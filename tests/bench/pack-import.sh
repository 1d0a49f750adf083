#!/usr/bin/env bash
# Benchmark (not a test): fetch pack and ingest import of about 1 GiB of generated payloads,
# timed with hyperfine (median of $RUNS runs) and printed as ratios against baselines
# measured in the same run on the same files:
#   - openssl dgst -sha256 over the payloads (a fast single-core SHA-256)
#   - sha256sum over the payloads, then cp into a directory (hash + copy, one after the other)
# Peak memory comes from /usr/bin/time -v. Two data shapes show whether memory stays flat
# with file size: 32 files of 32 MiB, and one file of 1 GiB.
#
# Usage: tests/bench/pack-import.sh            (RUNS=3 SIZE_MIB=1024 by default)
# Needs: hyperfine, openssl, python3, GNU time (apt-get install hyperfine time).
# Data is generated under $BENCH_DIR (default /var/tmp) and removed afterwards.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-3}"
size_mib="${SIZE_MIB:-1024}"
for tool in hyperfine openssl python3 /usr/bin/time sha256sum; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine time openssl python3)"; exit 2; }
done

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin fetch --bin ingest
fetch="$root/target/release/fetch"
ingest="$root/target/release/ingest"

work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-bench.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work" || true' EXIT
"$fetch" key gen --unencrypted --secret-key "$work/bench.key" --public-key "$work/bench.pub" >/dev/null

# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

run_shape() {
    local name="$1" count="$2"
    local each=$((size_mib / count))
    local dir="$work/$name"
    mkdir -p "$dir/payloads"
    echo
    echo "== $name: $count file(s) of $each MiB"
    for i in $(seq 1 "$count"); do
        head -c "$((each * 1048576))" /dev/urandom >"$dir/payloads/update-$i.msu"
    done
    python3 - "$dir" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
ups = []
for n in sorted(os.listdir(f"{d}/payloads")):
    h = hashlib.sha256()
    with open(f"{d}/payloads/{n}", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    ups.append({"id": n.replace(".msu", ""), "revision": 1, "title": n, "vendor": "Bench", "product": "Bench",
                "version": "1", "classification": "update-rollup", "release_date": "2024-01-09",
                "files": [{"name": n, "url": f"payloads/{n}", "sha256": h.hexdigest(),
                           "size": os.path.getsize(f"{d}/payloads/{n}")}]})
json.dump({"format": 1, "updates": ups}, open(f"{d}/catalog.json", "w"))
PY
    local bytes=$((each * count * 1048576))
    local pack_cmd="$fetch --work-dir $dir/work pack --catalog $dir/catalog.json --key $work/bench.key --out $dir/media"
    local import_cmd="$ingest --data-dir $dir/data import $dir/media/ferry-default-000001.zip"
    local reset_pack="rm -rf $dir/work $dir/media"
    local reset_import="chmod -R u+w $dir/data 2>/dev/null; rm -rf $dir/data; $ingest --data-dir $dir/data trust add $work/bench.pub"

    hyperfine --style basic --runs "$runs" --export-json "$dir/openssl.json" "openssl dgst -sha256 $dir/payloads/*" >/dev/null
    hyperfine --style basic --runs "$runs" --export-json "$dir/shacp.json" \
        --prepare "rm -rf $dir/copy; mkdir $dir/copy" "sha256sum $dir/payloads/* >/dev/null && cp $dir/payloads/* $dir/copy/" >/dev/null
    hyperfine --style basic --runs "$runs" --export-json "$dir/pack.json" --prepare "$reset_pack" "$pack_cmd" >/dev/null
    hyperfine --style basic --runs "$runs" --export-json "$dir/import.json" --prepare "$reset_import" "$import_cmd" >/dev/null

    eval "$reset_pack"
    local pack_rss; pack_rss=$(peak_kib $pack_cmd)
    eval "$reset_import" >/dev/null
    local import_rss; import_rss=$(peak_kib $import_cmd)

    local t_openssl t_shacp t_pack t_import
    t_openssl=$(median "$dir/openssl.json"); t_shacp=$(median "$dir/shacp.json")
    t_pack=$(median "$dir/pack.json"); t_import=$(median "$dir/import.json")
    printf '  %-28s %8.3f s  %s\n' "openssl dgst -sha256" "$t_openssl" "$(rate $bytes $t_openssl)"
    printf '  %-28s %8.3f s  %s\n' "sha256sum + cp" "$t_shacp" "$(rate $bytes $t_shacp)"
    printf '  %-28s %8.3f s  %s  peak RSS %s KiB\n' "fetch pack" "$t_pack" "$(rate $bytes $t_pack)" "$pack_rss"
    printf '  %-28s %8.3f s  %s  peak RSS %s KiB\n' "ingest import" "$t_import" "$(rate $bytes $t_import)" "$import_rss"
    echo "  ratios (throughput of ferry / throughput of baseline; higher is better):"
    echo "    pack   vs openssl dgst -sha256: $(ratio $t_openssl $t_pack)"
    echo "    pack   vs sha256sum + cp:       $(ratio $t_shacp $t_pack)"
    echo "    import vs openssl dgst -sha256: $(ratio $t_openssl $t_import)"
    echo "    import vs sha256sum + cp:       $(ratio $t_shacp $t_import)"
    chmod -R u+w "$dir"; rm -rf "$dir"
}

echo "ferry pack/import benchmark: $size_mib MiB per shape, median of $runs runs ($(nproc) cores)"
run_shape many-files 32
run_shape one-file 1
