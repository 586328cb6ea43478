#!/bin/sh
# Runs every test: unit tests, the fuzz corpora once, then end-to-end tests
# (which need root for BPF and fail loudly without it). Closing line: "N
# passed, N failed".
set -u
BUILD=${1:-build}
export ASYNCTRACE_BUILD="$(cd "$BUILD" && pwd)"
# Every check must run: a missing tool or file is a failure, not a skip.
export ASYNCTRACE_STRICT=1

. "$(dirname "$0")/count.sh"

echo "== unit tests"
out=$("$ASYNCTRACE_BUILD/unit-tests" 2>&1); printf '%s\n' "$out" | grep -v '^[0-9]* passed' ; count "$out"

echo "== fuzz corpora, replayed once under ASan+UBSan (make fuzz-replay)"
out=$(make --no-print-directory -s -C "$(dirname "$0")/.." BUILD="$ASYNCTRACE_BUILD" fuzz-replay 2>&1); printf '%s\n' "$out" | grep -v '^[0-9]* passed' | tail -n 20; count "$out"

echo "== end-to-end tests"
out=$(python3 "$(dirname "$0")/e2e/run.py" 2>&1); printf '%s\n' "$out" | grep -v '^[0-9]* passed' ; count "$out"

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
