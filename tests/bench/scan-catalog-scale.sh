#!/usr/bin/env bash
# Benchmark (not a test): reading Microsoft's offline scan catalog at scale. A catalog in
# Microsoft's layout with $UPDATES bundle updates (default 50,000: 100,000 revisions, each
# bundle with a leaf carrying one file, extended and localised properties for every bundle)
# is built with gcab (MSZIP, one folder per cabinet, as cabarc writes them; the properties
# spread over cabinets of 5,000 bundles each, which index.xml names by revision range, as
# Microsoft's are: a cabinet holds at most 65,535 files) and signed with osslsigncode under a
# test root; then, timing whole processes with hyperfine (median of $RUNS runs):
#   - `fetch plan --wsusscn2` (signature, every cabinet read in one pass, package.xml parsed
#     as a stream, every update mapped), against `gcab -x` extracting the same cabinets
#     (decompression alone, to a disk of the same machine);
#   - its peak memory (GNU time).
# A reader that decompresses a cabinet's folder from its start for every file (as the cab
# crate's read_file does) is quadratic: 4,000 bundles took 19.5 s that way.
#
# Usage: tests/bench/scan-catalog-scale.sh     (RUNS=5 UPDATES=50000 by default)
# Needs: hyperfine, python3, gcab, osslsigncode, openssl. Data goes under $BENCH_DIR
# (default /var/tmp), removed after.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
runs="${RUNS:-5}"
updates="${UPDATES:-50000}"
for tool in hyperfine python3 gcab osslsigncode openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install $tool)"; exit 2; }
done
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" --bin fetch
fetch="$root/target/release/fetch"
work="$(mktemp -d "${BENCH_DIR:-/var/tmp}/ferry-scan.XXXXXX")"
require_free_kib "$work" $((2 * 1024 * 1024))
trap 'rm -rf "$work"' EXIT

echo "== building a scan catalog of $updates bundles"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$work/root.key" -out "$work/root.pem" \
    -subj "/CN=bench root" -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$work/signer.key" -out "$work/signer.csr" -subj "/CN=bench signer" 2>/dev/null
printf 'extendedKeyUsage=codeSigning\nbasicConstraints=CA:false\n' >"$work/ext.cnf"
openssl x509 -req -days 30 -in "$work/signer.csr" -CA "$work/root.pem" -CAkey "$work/root.key" -set_serial 7 \
    -out "$work/signer.pem" -extfile "$work/ext.cnf" 2>/dev/null
python3 - "$updates" "$work/build" <<'PY'
import base64, hashlib, os, sys
n, out = int(sys.argv[1]), sys.argv[2]
per_cab = 5000
def props(i):
    d = f"{out}/package{2 + i // per_cab}"
    os.makedirs(f"{d}/x", exist_ok=True); os.makedirs(f"{d}/l/en", exist_ok=True)
    return d
os.makedirs(f"{out}/package", exist_ok=True)
product, security = "a3c2375d-0c8a-42f9-bce0-28333e198407", "0fa1201d-4330-4fa8-8ae9-b877473b6441"
updates = [f'<Update UpdateId="{product}" RevisionId="1" RevisionNumber="1" IsSoftware="false"/>',
           f'<Update UpdateId="{security}" RevisionId="2" RevisionNumber="1" IsSoftware="false"/>']
locations = []
open(f"{props(0)}/l/en/1", "w").write("<LocalizedProperties><Title>Windows 10</Title></LocalizedProperties>")
open(f"{props(0)}/l/en/2", "w").write("<LocalizedProperties><Title>Security Updates</Title></LocalizedProperties>")
for i in range(n):
    rev, kb = 10 + 2 * i, 5000000 + i
    sha1 = hashlib.sha1(f"payload {i}".encode()).digest()
    fid = base64.b64encode(sha1).decode()
    older = f'<SupersededBy><Revision Id="{rev + 2}"/></SupersededBy>' if i + 1 < n and i % 10 else ""
    updates.append(f'<Update UpdateId="00000000-0000-4000-8000-{i:012d}" RevisionId="{rev}" RevisionNumber="200" '
                   f'CreationDate="2024-01-09T00:00:00Z" DefaultLanguage="en" IsBundle="true"><Categories>'
                   f'<Category Type="Product" Id="{product}"/><Category Type="UpdateClassification" Id="{security}"/>'
                   f'</Categories>{older}</Update>')
    updates.append(f'<Update UpdateId="11111111-0000-4000-8000-{i:012d}" RevisionId="{rev + 1}" RevisionNumber="1">'
                   f'<BundledBy><Revision Id="{rev}"/></BundledBy><PayloadFiles><File Id="{fid}"/></PayloadFiles></Update>')
    locations.append(f'<FileLocation Id="{fid}" Url="http://download.windowsupdate.com/c/msdownload/update/software/'
                     f'secu/windows10.0-kb{kb}-x64_{sha1.hex()}.msu"/>')
    open(f"{props(i)}/x/{rev}", "w").write(
        f'<ExtendedProperties MsrcSeverity="Important"><KBArticleID>{kb}</KBArticleID>'
        f'<CveID>CVE-2024-{10000 + i}</CveID><SupportUrl>https://support.microsoft.com/help/{kb}</SupportUrl>'
        f'</ExtendedProperties>')
    open(f"{props(i)}/l/en/{rev}", "w").write(
        f'<LocalizedProperties><Language>en</Language><Title>2024-01 Cumulative Update for Windows 10 '
        f'(KB{kb})</Title><Description>{"A security issue has been identified. " * 12}</Description>'
        f'</LocalizedProperties>')
open(f"{out}/package/package.xml", "w").write(
    '<OfflineSyncPackage PackageVersion="1.0"><Updates>' + "\n".join(updates) + '</Updates><FileLocations>'
    + "\n".join(locations) + '</FileLocations></OfflineSyncPackage>')
cabs = ['<CAB NAME="package.cab"/>'] + [
    f'<CAB NAME="package{2 + k}.cab" RANGESTART="{1 if k == 0 else 10 + 2 * k * per_cab}"/>'
    for k in range((n + per_cab - 1) // per_cab)]
open(f"{out}/index.xml", "w").write(
    '<OfflineSyncPackageIndex><CABLIST>' + "".join(cabs) + '</CABLIST></OfflineSyncPackageIndex>')
PY
(cd "$work/build/package" && gcab -c -z ../package.cab package.xml)
cabs=()
for dir in "$work"/build/package[0-9]*; do
    name="$(basename "$dir").cab"
    (cd "$dir" && find x l -type f >"$work/list" && gcab -c -z "../$name" $(cat "$work/list"))
    rm -rf "$dir"
    cabs+=("$name")
done
(cd "$work/build" && gcab -c -z "$work/unsigned.cab" package.cab "${cabs[@]}" index.xml)
osslsigncode sign -certs "$work/signer.pem" -key "$work/signer.key" -in "$work/unsigned.cab" -out "$work/wsusscn2.cab" >/dev/null
rm -rf "$work/build/package" "$work/unsigned.cab"
ls -l "$work/wsusscn2.cab"

plan=("$fetch" plan --wsusscn2 "$work/wsusscn2.cab" --wsusscn2-root "$work/root.pem" --superseded include --json)
[[ $("${plan[@]}" | grep -c '"type":"scan-update"') -eq "$updates" ]] || { echo "fetch did not offer every bundle"; exit 1; }
extract="rm -rf $work/x && mkdir -p $work/x && cd $work/x && gcab -x $work/wsusscn2.cab && for c in *.cab; do gcab -x \$c; done"
hyperfine --warmup 1 --runs "$runs" --export-json "$work/plan.json" "${plan[*]} >/dev/null" >/dev/null
hyperfine --warmup 1 --runs "$runs" --export-json "$work/gcab.json" "$extract" >/dev/null
t_plan=$(median "$work/plan.json"); t_gcab=$(median "$work/gcab.json")
echo "fetch plan --wsusscn2, $updates bundles: median ${t_plan} s; gcab -x of the same cabinets: ${t_gcab} s;" \
     "ratio (gcab / fetch, higher is better) $(ratio "$t_gcab" "$t_plan")"
echo "peak memory of fetch plan: $(peak_kib "${plan[@]}") KiB"
