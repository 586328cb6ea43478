#!/bin/sh
# bench/run.sh [BUILD] [main.py options] — asynctrace benchmarks.
# `make bench` runs this after building the tracer and the test targets.
# Needs root (BPF). uftrace and bpftrace are the peers; without one, its rows
# are missing and the run says so. See docs/performance.md.
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
here=$(dirname "$0")
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: must run as root (BPF uprobes)" >&2
	exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "bench: python3 not found" >&2
	exit 1
fi
exec python3 "$here/main.py" --build "$BUILD" "$@"
