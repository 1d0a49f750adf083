#!/usr/bin/env bash
# Not part of the test suite (it writes about 14 GiB and takes about 2 minutes): one update file over 4 GiB goes through
# fetch pack, stock unzip, ingest verify and ingest import, and comes out byte for byte.
# A ZIP64 entry is needed for it; the hostile-input suite covers the refusals.
#
# Usage: tests/bench/zip64-large-file.sh      (SIZE_MIB=4608 by default)
# Data is generated under $BENCH_DIR (default /var/tmp) and removed afterwards.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
size_mib="${SIZE_MIB:-4608}"
for tool in unzip sha256sum python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool"; exit 2; }
done
cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin fetch --bin ingest
fetch="$root/target/release/fetch"
ingest="$root/target/release/ingest"

# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-zip64.XXXXXX")"
need_kib=$(( size_mib * 1024 * 3 + 1048576 ))   # the file, the bundle, the stored copy
require_free_kib "$work" "$need_kib"
cleanup() { chmod -R u+w "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/feed/files"
big="$work/feed/files/huge-update.msu"
# Random head and tail around a sparse middle: the digest depends on every region.
head -c 1048576 /dev/urandom >"$big"
truncate -s "$(( size_mib * 1048576 - 1048576 ))" "$big"
head -c 1048576 /dev/urandom >>"$big"
digest=$(sha256sum "$big" | cut -d' ' -f1)
bytes=$(stat -c %s "$big")
python3 - "$work/feed" "$digest" "$bytes" <<'PY'
import json, sys
feed, digest, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
json.dump({"format": 1, "updates": [{"id": "KB9000001", "revision": 1, "title": "A file over 4 GiB",
    "vendor": "Test Vendor", "product": "Windows Server", "version": "1", "classification": "service-pack",
    "release_date": "2024-01-09", "files": [{"name": "huge-update.msu", "url": "files/huge-update.msu",
    "sha256": digest, "size": size}]}]}, open(f"{feed}/catalog.json", "w"))
PY
"$fetch" key gen --unencrypted --secret-key "$work/k.key" --public-key "$work/k.pub" >/dev/null
"$ingest" --data-dir "$work/data" trust add "$work/k.pub" >/dev/null

(( bytes > 4294967295 )) || { echo "SIZE_MIB must make a file over 4 GiB - 1"; exit 2; }
echo "file: $bytes bytes"
"$fetch" --work-dir "$work/w" pack --catalog "$work/feed/catalog.json" --key "$work/k.key" --out "$work/media" 2>/dev/null
bundle=$(ls "$work/media"/*.zip)
unzip -l "$bundle" | grep -q "$bytes" && echo "unzip -l: lists the entry with its full size"
"$ingest" --data-dir "$work/data" verify "$bundle"
"$ingest" --data-dir "$work/data" import "$bundle"
stored="$work/data/store/sha256/${digest:0:2}/$digest"
[[ "$(sha256sum "$stored" | cut -d' ' -f1)" == "$digest" ]] && echo "stored copy: SHA-256 matches"
"$ingest" --data-dir "$work/data" check
echo "ok: a file over 4 GiB travels in a ZIP64 entry and arrives intact"
