#!/usr/bin/env bash
# The whole ferry journey on the shipped samples, with no network:
#   fetch pack → fetch inspect → (minisign -V, if installed) → ingest trust add →
#   ingest verify → ingest import → ingest list → ingest approve (a licence accepted
#   first) → ingest show → ingest import again.
#
# Uses the demo key in samples/keys/, which ingest accepts only with --allow-demo-key.
# Everything is written under $FERRY_DEMO_DIR (default: a new temporary directory).
# FERRY_BIN_DIR points at already-built binaries; otherwise they are built with cargo.
set -euo pipefail

samples="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$samples")"

if [[ -z "${FERRY_BIN_DIR:-}" ]]; then
    echo "== building fetch and ingest (cargo build --release --locked)"
    cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin fetch --bin ingest
    FERRY_BIN_DIR="$root/target/release"
fi
fetch="$FERRY_BIN_DIR/fetch"
ingest="$FERRY_BIN_DIR/ingest"

demo="${FERRY_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")}"
mkdir -p "$demo"
export FERRY_WORK_DIR="$demo/fetch-work"   # the online machine's state
export FERRY_DATA_DIR="$demo/server"       # the offline management server
media="$demo/usb-stick"

step() {
    echo
    echo "== $(basename "$1") ${*:2}"
    "$@"
}

echo "ferry demo in $demo"

step "$fetch" pack --catalog "$samples/catalog.json" --key "$samples/keys/demo.key" --out "$media"
bundle="$(ls "$media"/ferry-default-*.zip | tail -n 1)"

step "$fetch" inspect "$bundle"

if command -v minisign >/dev/null && command -v unzip >/dev/null; then
    echo
    echo "== an auditor checks the manifest signature with the stock minisign tool"
    audit="$demo/audit"
    mkdir -p "$audit"
    unzip -p "$bundle" manifest.json >"$audit/manifest.json"
    sig="$(unzip -Z1 "$bundle" 'signatures/*' | head -n 1)"
    unzip -p "$bundle" "$sig" >"$audit/manifest.json.minisig"
    minisign -V -p "$samples/keys/demo.pub" -m "$audit/manifest.json"
fi

step "$ingest" trust add "$samples/keys/demo.pub" --allow-demo-key
step "$ingest" verify "$bundle"
step "$ingest" import "$bundle"
step "$ingest" list
step "$ingest" approve --severity important --severity critical --by demo-admin
step "$ingest" eula accept KB5002519 --by demo-admin
step "$ingest" approve KB5002519 --by demo-admin
step "$ingest" show KB5034122
step "$ingest" import "$bundle"

echo
echo "done: the update list is in $FERRY_DATA_DIR, the bundle in $media"
