#!/bin/sh
# bench/run.sh [BUILD] [overhead.py options] — asynctrace benchmarks.
# `make bench` runs this after building the tracer and the test targets.
# Needs root (BPF). bpftrace is the peer; without it only the
# asynctrace-vs-untraced numbers are printed. See docs/performance.md.
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
exec python3 "$here/overhead.py" --build "$BUILD" "$@"
