#!/bin/sh
# bench/codec.sh [BUILD] — the trace format's event encoding, measured on
# traces recorded here (root: BPF uprobes). `make bench-codec` runs this.
# See docs/performance.md, "Trace format 3.0".
set -eu
BUILD=${1:-build}
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: must run as root (BPF uprobes)" >&2
	exit 1
fi
dir=$(mktemp -d /tmp/asynctrace-bench-codec-XXXXXX)
trap 'rm -rf "$dir"' EXIT
debug=$BUILD/targets/rust/debug
release=$BUILD/targets/rust/release
record() { # name, command...
	name=$1
	shift
	"$BUILD/asynctrace" record -q -o "$dir/$name.trace" "$@" >/dev/null
}
record tokio_mt -- "$debug/tokio_mt" --tasks 50 --yields 200
record tokio_ct -- "$debug/tokio_ct" --tasks 50 --yields 200
record async_std_tasks -- "$debug/async_std_tasks" --tasks 50 --yields 200
record futures_exec -- "$debug/futures_exec" --tasks 50 --yields 200
record tokio_mt_release -- "$release/tokio_mt" --tasks 50 --yields 200
record reuse_tokio -- "$debug/reuse_tokio"
record probe_mech --function '^(multi_ret|tail_caller|tail_target|plain|recurse)$' -- \
	"$BUILD/targets/c/probe_mech" --calls 20000
# not exec: the trap removes the traces when the bench is done
"$BUILD/codec-bench" "$dir"/*.trace
