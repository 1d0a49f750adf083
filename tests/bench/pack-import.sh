#!/usr/bin/env bash
# Benchmark (not a test): `ingest import` (and `fetch pack` from local files) of about 2 GiB in
# about 100 files of mixed sizes (none over a quarter of the total), timed with hyperfine
# (median of $RUNS runs) and printed as ratios against baselines measured in the same run on
# the same payloads:
#   (a) sha256sum over the payloads, then cp into a directory (hash, then copy)
#   (b) openssl dgst -sha256 over the payloads alone (a fast single-core SHA-256)
# and, for reading the ratios:
#   - `ingest verify` of the same bundle: every check of an import, with the reads and the
#     hashing on both cores, but nothing written;
#   - the disk's floor: the same bytes written once, straight to the disk (dd with direct
#     I/O, four files at a time), as an import writes each byte once into the store before
#     registering. Where the floor is slower than (b), no import can beat (b) on this machine.
# A second shape, one file of $BIG_MIB MiB, shows that memory stays flat with file size and
# that one large file is still hashed while it is written.
# Peak memory comes from GNU time.
#
# Usage: tests/bench/pack-import.sh     (RUNS=3 TOTAL_MIB=2048 BIG_MIB=512 by default)
# Needs: hyperfine, openssl, python3, GNU time (apt-get install hyperfine time openssl python3).
# Data is generated under $BENCH_DIR (default /var/tmp) and removed afterwards.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-3}"
total_mib="${TOTAL_MIB:-2048}"
big_mib="${BIG_MIB:-512}"
for tool in hyperfine openssl python3 /usr/bin/time sha256sum; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine time openssl python3)"; exit 2; }
done

# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin fetch --bin ingest
fetch="$root/target/release/fetch"
ingest="$root/target/release/ingest"

work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-bench.XXXXXX")"
# payloads, bundle, store, the baseline's copy, the floor file, and a margin
require_free_kib "$work" $(( (total_mib * 5 + 1024) * 1024 ))
trap 'chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work" || true' EXIT
"$fetch" key gen --unencrypted --secret-key "$work/bench.key" --public-key "$work/bench.pub" >/dev/null

# run_shape NAME TITLE SIZE_MIB...: one payload per size.
run_shape() {
    local name="$1" title="$2"; shift 2
    local dir="$work/$name" mib bytes=0
    for mib in "$@"; do bytes=$((bytes + mib * 1048576)); done
    echo
    echo "== $title: $# file(s), $((bytes / 1048576)) MiB"
    make_payloads "$dir/payloads" "$@"
    write_catalog "$dir/payloads" payloads "$dir/catalog.json"
    local pack_cmd="$fetch --work-dir $dir/work pack --catalog $dir/catalog.json --key $work/bench.key --out $dir/media"
    local import_cmd="$ingest --data-dir $dir/data import $dir/media/ferry-default-000001.zip"
    local reset_pack="rm -rf $dir/work $dir/media"
    local reset_import="chmod -R u+w $dir/data 2>/dev/null; rm -rf $dir/data; $ingest --data-dir $dir/data trust add $work/bench.pub"

    hyperfine --style none --runs "$runs" --export-json "$dir/b.json" "openssl dgst -sha256 $dir/payloads/*" >/dev/null
    hyperfine --style none --runs "$runs" --export-json "$dir/a.json" \
        --prepare "rm -rf $dir/copy; mkdir $dir/copy" "sha256sum $dir/payloads/* >/dev/null && cp $dir/payloads/* $dir/copy/" >/dev/null
    rm -rf "$dir/copy"
    # (payload sizes are whole MiB, so every direct write is whole pages)
    hyperfine --style none --runs "$runs" --export-json "$dir/floor.json" --prepare "rm -rf $dir/floor; mkdir $dir/floor" \
        "ls $dir/payloads/* | xargs -P 4 -I {} sh -c 'dd if=\"\$1\" of=$dir/floor/\$(basename \"\$1\") bs=1M oflag=direct status=none' _ {}" >/dev/null
    rm -rf "$dir/floor"
    hyperfine --style none --runs "$runs" --export-json "$dir/pack.json" --prepare "$reset_pack" "$pack_cmd" >/dev/null
    hyperfine --style none --runs "$runs" --export-json "$dir/import.json" --prepare "$reset_import" "$import_cmd" >/dev/null
    "$ingest" --data-dir "$dir/vdata" trust add "$work/bench.pub" >/dev/null
    hyperfine --style none --runs "$runs" --export-json "$dir/verify.json" \
        "$ingest --data-dir $dir/vdata verify $dir/media/ferry-default-000001.zip" >/dev/null

    eval "$reset_pack"
    local pack_rss; pack_rss=$(peak_kib $pack_cmd)
    eval "$reset_import" >/dev/null
    local import_rss; import_rss=$(peak_kib $import_cmd)

    local ta tb tf tp ti tv
    ta=$(median "$dir/a.json"); tb=$(median "$dir/b.json"); tf=$(median "$dir/floor.json")
    tp=$(median "$dir/pack.json"); ti=$(median "$dir/import.json"); tv=$(median "$dir/verify.json")
    printf '  %-44s %8.3f s  %s\n' "(a) sha256sum, then cp" "$ta" "$(rate $bytes $ta)"
    printf '  %-44s %8.3f s  %s\n' "(b) openssl dgst -sha256" "$tb" "$(rate $bytes $tb)"
    printf '  %-44s %8.3f s  %s\n' "floor: the bytes written once, direct I/O" "$tf" "$(rate $bytes $tf)"
    printf '  %-44s %8.3f s  %s  peak RSS %s KiB\n' "fetch pack (local files)" "$tp" "$(rate $bytes $tp)" "$pack_rss"
    printf '  %-44s %8.3f s  %s  peak RSS %s KiB\n' "ingest import" "$ti" "$(rate $bytes $ti)" "$import_rss"
    printf '  %-44s %8.3f s  %s\n' "ingest verify (reads and hashes only)" "$tv" "$(rate $bytes $tv)"
    echo "  ratios (throughput of ferry / throughput of baseline; higher is better):"
    echo "    import vs (a): $(ratio $ta $ti)"
    echo "    import vs (b): $(ratio $tb $ti)"
    echo "    import vs the write floor: $(ratio $tf $ti); the floor vs (b): $(ratio $tb $tf)"
    echo "    verify vs (b): $(ratio $tb $tv)"
    echo "    pack   vs (a): $(ratio $ta $tp)   pack vs (b): $(ratio $tb $tp)"
    chmod -R u+w "$dir"; rm -rf "$dir"
}

echo "ferry pack/import benchmark, median of $runs runs ($(nproc) cores)"
# shellcheck disable=SC2046
run_shape mixed "mixed sizes" $(mixed_sizes_mib "$total_mib")
run_shape single "one large file" "$big_mib"
