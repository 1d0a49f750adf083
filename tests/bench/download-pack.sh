#!/usr/bin/env bash
# Benchmark (not a test): fetch pack downloading about 2 GiB (about 100 files of mixed sizes,
# none over a quarter of the total) from a loopback nginx, timed with hyperfine (median of
# $RUNS runs) and printed as ratios against baselines measured in the same run, on the same
# files:
#   (a) curl each file to disk, then sha256sum, then zip -0, one after the other
#   (b) openssl dgst -sha256 over the files alone (a fast single-core SHA-256)
# and, for reading the ratios, the disk's floor: the same bytes written once into one file and
# synced (a pack writes each byte at least once, into its bundle, and syncs it). Where that
# floor is slower than (b) (a CPU with SHA extensions hashes faster than the disk writes),
# no pack can beat (b).
# Also: one 1.5 GiB file alone against (b); a second pack with a warm cache; peak RSS from
# GNU time.
#
# Usage: tests/bench/download-pack.sh     (RUNS=3 TOTAL_MIB=2048 BIG_MIB=1536 by default)
# Needs: nginx, curl, zip, hyperfine, openssl, python3, GNU time.
# Data is generated under $BENCH_DIR (default /var/tmp) and removed afterwards.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-3}"
total_mib="${TOTAL_MIB:-2048}"
big_mib="${BIG_MIB:-1536}"
for tool in nginx curl zip hyperfine openssl python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx curl zip hyperfine time)"; exit 2; }
done

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin fetch
fetch="$root/target/release/fetch"

# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-bench.XXXXXX")"
# Served files, curl's copies, zip -0's archive, fetch's cache and bundle: five copies at most.
need_kib=$(( (total_mib > big_mib ? total_mib : big_mib) * 1024 * 6 ))
require_free_kib "$work" "$need_kib"
nginx_pid=""
cleanup() {
    if [[ -n "$nginx_pid" ]]; then
        kill "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work" || true
}
trap cleanup EXIT
chmod 755 "$work"   # nginx's workers run as an unprivileged user
"$fetch" key gen --unencrypted --secret-key "$work/bench.key" --public-key "$work/bench.pub" >/dev/null

# A loopback nginx serving $work/www.
mkdir -p "$work/www" "$work/nginx/logs"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server { listen 127.0.0.1:$port; root $work/www; }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' &
nginx_pid=$!
sleep 0.5


# make_set NAME SIZES_MIB...: files in www/NAME and a catalog pointing at nginx.
make_set() {
    local name="$1"; shift
    make_payloads "$work/www/$name" "$@"
    write_catalog "$work/www/$name" "http://127.0.0.1:$port/$name" "$work/www/$name/catalog.json"
}

run_set() {
    local name="$1" label="$2"
    local dir="$work/run-$name"
    mkdir -p "$dir"
    local bytes; bytes=$(du -cb "$work/www/$name"/*.msu | tail -n 1 | cut -f1)
    local files; files=$(ls "$work/www/$name"/*.msu | wc -l)
    local url="http://127.0.0.1:$port/$name"
    echo
    echo "== $label: $files files, $((bytes / 1048576)) MiB, from a loopback nginx"

    local list="$dir/urls.txt"
    ls "$work/www/$name"/*.msu | xargs -n1 basename | sed "s|^|$url/|" >"$list"
    local baseline_a="cd $dir/a && xargs -n1 curl -sSfO <$list && sha256sum *.msu >/dev/null && zip -0 -q $dir/a.zip *.msu"
    local pack="$fetch --work-dir $dir/work pack --catalog $url/catalog.json --key $work/bench.key --out $dir/media"
    local reset_pack="chmod -R u+w $dir/work $dir/media 2>/dev/null; rm -rf $dir/work $dir/media"
    local reset_bundle="rm -rf $dir/media"

    hyperfine --style none --runs "$runs" --export-json "$dir/b.json" "openssl dgst -sha256 $work/www/$name/*.msu" >/dev/null
    hyperfine --style none --runs "$runs" --export-json "$dir/a.json" \
        --prepare "rm -rf $dir/a $dir/a.zip; mkdir $dir/a" "$baseline_a" >/dev/null
    hyperfine --style none --runs "$runs" --export-json "$dir/floor.json" --prepare "rm -f $dir/floor.bin" \
        "cat $work/www/$name/*.msu >$dir/floor.bin && sync $dir/floor.bin" >/dev/null
    rm -f "$dir/floor.bin"
    hyperfine --style none --runs "$runs" --export-json "$dir/pack.json" --prepare "$reset_pack" "$pack" >/dev/null
    hyperfine --style none --runs "$runs" --export-json "$dir/warm.json" --prepare "$reset_bundle" "$pack" >/dev/null
    eval "$reset_pack"
    local rss; rss=$(peak_kib $pack)
    eval "$reset_pack"
    local rss_vol; rss_vol=$(peak_kib $pack --media 1073741824)
    local nvol; nvol=$(ls "$dir/media" | wc -l)

    local ta tb tf tp tw
    ta=$(median "$dir/a.json"); tb=$(median "$dir/b.json"); tf=$(median "$dir/floor.json")
    tp=$(median "$dir/pack.json"); tw=$(median "$dir/warm.json")
    printf '  %-44s %8.3f s  %s\n' "(a) curl, then sha256sum, then zip -0" "$ta" "$(rate "$bytes" "$ta")"
    printf '  %-44s %8.3f s  %s\n' "(b) openssl dgst -sha256" "$tb" "$(rate "$bytes" "$tb")"
    printf '  %-44s %8.3f s  %s\n' "floor: the bytes written once and synced" "$tf" "$(rate "$bytes" "$tf")"
    printf '  %-44s %8.3f s  %s  peak RSS %s KiB\n' "fetch pack, cold cache" "$tp" "$(rate "$bytes" "$tp")" "$rss"
    printf '  %-44s %8.3f s  %s\n' "fetch pack, warm cache" "$tw" "$(rate "$bytes" "$tw")"
    printf '  %-44s peak RSS %s KiB (%s volumes)\n' "fetch pack --media 1 GiB, cold cache" "$rss_vol" "$nvol"
    echo "  ratios (throughput of fetch / throughput of baseline; higher is better):"
    echo "    cold pack vs (a): $(ratio "$ta" "$tp")"
    echo "    cold pack vs (b): $(ratio "$tb" "$tp")"
    echo "    cold pack vs the write floor: $(ratio "$tf" "$tp"); the floor vs (b): $(ratio "$tb" "$tf")"
    chmod -R u+w "$dir"; rm -rf "$dir"
}

echo "ferry download + pack benchmark, median of $runs runs ($(nproc) cores)"
sizes=$(mixed_sizes_mib "$total_mib")
make_set mixed $sizes
run_set mixed "mixed sizes"
rm -rf "$work/www/mixed"
make_set single "$big_mib"
run_set single "one large file"
