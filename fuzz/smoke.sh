#!/usr/bin/env bash
# Runs every fuzz target for a short smoke (default 30 s each) and fails on
# any crash. Needs a nightly toolchain; installs cargo-fuzz when missing.
# Usage: fuzz/smoke.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz smoke SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
for t in wire_parse link client; do
    # New inputs go to a scratch corpus; the committed seeds are only read.
    scratch=$(mktemp -d)
    log=$(mktemp)
    if ! cargo +nightly fuzz run "$t" "$scratch" "corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 -max_len=4096 >"$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz target $t FAILED"
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    rate=$(grep -o 'exec/s: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')
    echo "fuzz $t: ${secs}s, $runs executions, $rate exec/s, no crash"
    rm -rf "$log" "$scratch"
done
