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
