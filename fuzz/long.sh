#!/usr/bin/env bash
# Long fuzz runs (not in CI: hours on 2 cores). Runs each target, one at a
# time, for a fixed number of executions (default 10^7), on one core, and
# appends a line per target to fuzz/long-results.txt: executions, seconds,
# coverage (libFuzzer's `cov:` edges and `ft:` features at the end), corpus
# size, crashes. Any crash stops the script; libFuzzer leaves the input
# under fuzz/artifacts/<target>/ (see README.md to replay and minimise it).
# Needs a nightly toolchain; installs cargo-fuzz when missing.
# Usage: fuzz/long.sh [runs] [target...]
# Environment: FUZZ_MAX_LEN (libFuzzer's -max_len, default 4096), FUZZ_TAG
# (a suffix of the log's and the result's name: several workers of one
# target, each with its own tag, grow one corpus and add up executions).
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-10000000}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire_parse link client)
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
mkdir -p long
for t in "${targets[@]}"; do
    # The corpus grows in fuzz/long/<target> (not committed); the committed
    # seeds are only read.
    mkdir -p "long/$t"
    log="long/$t${FUZZ_TAG:-}.log"
    start=$(date +%s)
    status=ok
    if ! nice cargo +nightly fuzz run --release "$t" "long/$t" "corpus/$t" -- \
        -runs="$runs" -print_final_stats=1 -max_len="${FUZZ_MAX_LEN:-4096}" -rss_limit_mb=2048 >"$log" 2>&1; then
        status=CRASH
    fi
    secs=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(printf '%s' "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo '?')
    ft=$(printf '%s' "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo '?')
    corp=$(printf '%s' "$last" | grep -o 'corp: [0-9]*' | grep -o '[0-9]*' || echo '?')
    pcs=$(grep -o 'Loaded 1 modules *([0-9]*' "$log" | grep -o '[0-9]*$' | head -1 || echo '?')
    line="$(date -u +%F) $t${FUZZ_TAG:-}: $execs executions in ${secs}s, -max_len=${FUZZ_MAX_LEN:-4096}, cov $cov of $pcs edges, ft $ft features, corpus $corp, $status"
    echo "$line" | tee -a long-results.txt
    if [ "$status" != ok ]; then
        tail -40 "$log"
        exit 1
    fi
done
