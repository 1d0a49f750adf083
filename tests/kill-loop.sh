#!/usr/bin/env bash
# The long run of the kill -9 test (not part of the suite): 1,000 imports killed at random
# moments, each followed by the integrity check, `ingest check` and a completing re-import.
# The suite runs the same test 50 times. FERRY_KILL_SEED repeats a run.
#
# Usage: tests/kill-loop.sh [RUNS]      (1000 by default; about 15 minutes here)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY_KILL_RUNS="${1:-1000}" cargo test --manifest-path "$root/Cargo.toml" --locked --test e2e \
    -- crash::kill_9_at_random_moments --exact --nocapture
