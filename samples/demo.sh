#!/usr/bin/env bash
# The whole ferry journey on the shipped samples, with no network:
#   fetch pack → fetch inspect → (minisign -V, if installed) → ingest trust add →
#   ingest verify → ingest import → ingest list → a winget manifest tree planned, packed
#   and imported → a scan catalog planned and carried → ingest approve (a licence accepted
#   first) → update group and approval rules → ingest refresh → a file registered by
#   hand → ingest show → CSV export → ingest import again → reports → publishing to a
#   distribution point → three computers' inventories judged and reported, a client's
#   check of the point, their installation results read, their needs in the state file
#   for fetch plan → a
#   scheduled-ingestion pass over a drop folder.
#
# Uses the demo key in samples/keys/, which ingest accepts only with --allow-demo-key.
# Everything is written under $FERRY_DEMO_DIR (default: a new temporary directory).
# FERRY_BIN_DIR points at already-built binaries; otherwise they are built with cargo.
set -euo pipefail

samples="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$samples")"

if [[ -z "${FERRY_BIN_DIR:-}" ]]; then
    # ferry-mail too: ingest mails its notifications through it, from beside itself.
    echo "== building fetch, ingest, ferry-mail and ferry-client (cargo build --release --locked)"
    cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin fetch --bin ingest --bin ferry-mail --bin ferry-client
    FERRY_BIN_DIR="$root/target/release"
fi
fetch="$FERRY_BIN_DIR/fetch"
ingest="$FERRY_BIN_DIR/ingest"
client="$FERRY_BIN_DIR/ferry-client"

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

echo
echo "== third-party applications from a winget manifest tree (samples/winget, the real Firefox ESR"
echo "   manifests with the x64 installer pointed at a sample payload): plan, pack, import"
step "$fetch" plan --winget "$samples/winget/manifests"
step "$fetch" pack --winget "$samples/winget/manifests" --architecture x64 --key "$samples/keys/demo.key" --out "$media"
step "$ingest" import "$(ls "$media"/ferry-default-*.zip | tail -n 1)"
step "$ingest" show Mozilla.Firefox.ESR@115.15.0

echo
echo "== Microsoft updates from an offline scan catalog (samples/wsusscn2, signed under a demo root;"
echo "   Microsoft's own chains to its roots, pinned in ferry): plan, then carry the catalog itself"
scan=(--wsusscn2 "$samples/wsusscn2/wsusscn2.cab" --wsusscn2-root "$samples/wsusscn2/demo-root.pem")
step "$fetch" plan "${scan[@]}"
step "$fetch" pack "${scan[@]}" --carry-scan-catalog --kb 1 --key "$samples/keys/demo.key" --out "$media"
step "$ingest" import "$(ls "$media"/ferry-default-*.zip | tail -n 1)"

step "$ingest" approve --severity important --severity critical --by demo-admin
step "$ingest" eula accept KB5002519 --by demo-admin
step "$ingest" approve KB5002519 --by demo-admin
step "$ingest" group create pilot --description "first wave: IT department" --by demo-admin
step "$ingest" rules add pilot-7zip --add-to-group pilot --product 7-Zip --by demo-admin
step "$ingest" rules add after-pilot --approve --group pilot --days-in-group 7 --by demo-admin
step "$ingest" rules add decline-superseded --decline --superseded --by demo-admin
step "$ingest" refresh
step "$ingest" rules test after-pilot --at "$(date -u -d '+7 days' +%Y-%m-%d)"
hotfix="$demo/downloaded-by-hand/windows10.0-kb5050000-x64.msu"
mkdir -p "$(dirname "$hotfix")"
printf 'an urgent fix downloaded by hand\n' >"$hotfix"
step "$ingest" register "$hotfix" --product "Windows 10" --classification security-update \
    --kb KB5050000 --title "Urgent fix for Windows 10" --by demo-admin
step "$ingest" list
step "$ingest" show 7zip.7zip@24.08
step "$ingest" export-list --out "$demo/update-list.csv"
step "$ingest" import "$bundle"
step "$ingest" report --list
step "$ingest" report 1
step "$ingest" report 1 --format html --out "$demo/first-import.html"
step "$ingest" config show
step "$ingest" dp add headquarters --path "$demo/www/updates" --approved --by demo-admin
step "$ingest" publish
step "$ingest" dp verify "$demo/www/updates"

echo
echo "== three computers report (ferry's report, Get-HotFix | Export-Csv, winget export); which need what"
step "$ingest" computers group add pilot-pcs --test --grace-days 7 --description "IT department" --by demo-admin
step "$ingest" computers import "$samples/computers/reports"
step "$ingest" computers import "$samples/computers/winget-export-PC-0003.json" --computer PC-0003
step "$ingest" computers assign pilot-pcs --computer PC-0001 --by demo-admin
step "$ingest" computers show PC-0002
step "$ingest" computers report
echo "   on PC-0002, the client checks the point's signed index and assignment and says what it would install"
step "$ingest" server-key export --out "$demo/server.pub"
step "$client" install --point "$demo/www/updates" --server-key "$demo/server.pub" \
    --state "$demo/client-PC-0002" --computer PC-0002 --dry-run
echo "   the clients install what they need and report back: one install fails, one needs a restart"
step "$ingest" results import "$samples/computers/results"
step "$ingest" computers report --kind results
step "$ingest" computers report --format html --out "$demo/compliance.html"
echo "   what the computers need and this server lacks goes out in the signed state file, as counts"
step "$ingest" state export --out "$demo/state.json"
step "$fetch" plan --catalog "$samples/catalog.json" --state "$demo/state.json" --server-key "$demo/server.pub"
if command -v minisign >/dev/null; then
    index="$demo/www/updates/generations/$(cat "$demo/www/updates/current")/index.json"
    step minisign -V -m "$index" -p "$FERRY_DATA_DIR/server.pub"
fi

echo
echo "== scheduled ingestion: next week's bundle lands in the drop folder; one watcher pass"
echo "   imports it, moves it to processed/ and publishes what changed (a damaged copy goes to rejected/)"
drop="$demo/drop"
mkdir -p "$drop"
"$fetch" pack --catalog "$samples/catalog.json" --key "$samples/keys/demo.key" --out "$drop" >/dev/null
head -c 1000 "$(ls "$drop"/ferry-default-*.zip | tail -n 1)" >"$drop/damaged-copy.zip"
step "$ingest" approve 7zip.7zip@24.08 --by demo-admin
status=0
step "$ingest" watch --once --drop "$drop" --settle 0 || status=$?
[[ $status -eq 7 ]] || { echo "expected exit 7 for the damaged copy, got $status"; exit 1; }
step cat "$drop/rejected/damaged-copy.zip.reason.txt"

echo
echo "done: the update list is in $FERRY_DATA_DIR (as CSV in $demo/update-list.csv), the bundle in $media,"
echo "the first import's change report in $demo/first-import.html, the computers' compliance report in"
echo "$demo/compliance.html, the approved updates published"
echo "with a signed index in $demo/www/updates (serve it with any web server or file share), and the"
echo "drop folder's processed/ and rejected/ in $drop"
