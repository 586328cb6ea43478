#!/bin/sh
# The tests again against an ASan+UBSan build (make sanitize-test): every
# unit test, and the end-to-end tests of the readers, importers, exporters
# and command-line errors (the paths that take other people's files), plus
# a few recordings. Leaks count (LeakSanitizer). Closing line: "N passed,
# N failed".
set -u
BUILD=${1:-build-asan}
export ASYNCTRACE_BUILD="$(cd "$BUILD" && pwd)"
export ASYNCTRACE_STRICT=1
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
# What runs sanitized: readers of files from elsewhere first. The recorded
# golden compares paths and is left to the plain run (its targets are a
# link to the plain build's here).
E2E_SELECTED="golden error_ import_ zcore uftrace riscv filters corrupt bad_options help_of chrome_export perfetto_export tokio_current_thread_exact_counts written_files -recorded_text"

. "$(dirname "$0")/count.sh"

echo "== unit tests (ASan+UBSan)"
out=$("$ASYNCTRACE_BUILD/unit-tests" 2>&1); rc=$?
printf '%s\n' "$out" | grep -v '^[0-9]* passed'
count "$out"
[ "$rc" -eq 0 ] || { echo "unit tests exited $rc (a sanitizer report above)"; total_fail=$((total_fail + 1)); }

echo "== end-to-end tests (ASan+UBSan): $E2E_SELECTED"
# shellcheck disable=SC2086 # the selection is words
out=$(python3 "$(dirname "$0")/e2e/run.py" $E2E_SELECTED 2>&1)
printf '%s\n' "$out" | grep -v '^[0-9]* passed'
count "$out"

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
