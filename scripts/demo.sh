#!/bin/sh
# make demo: trace the bundled tokio demo, print a report, write a timeline.
set -eu
BUILD=${1:-build}
TRACER="$BUILD/asynctrace"
DEMO="$BUILD/targets/rust/debug/demo"
TRACE="$BUILD/demo.trace"
TIMELINE="$BUILD/demo-timeline.json"

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: recording needs root (BPF uprobes): run 'sudo make demo'" >&2
	exit 1
fi

echo "\$ asynctrace record -o $TRACE -- $DEMO"
"$TRACER" record -o "$TRACE" -- "$DEMO"
echo
echo "\$ asynctrace report --top 15 $TRACE"
"$TRACER" report --top 15 "$TRACE"
echo
echo "\$ asynctrace report --tasks --top 20 $TRACE | sed -n '/^Tasks/,\$p'"
"$TRACER" report --tasks --top 20 "$TRACE" | sed -n '/^Tasks/,$p'
echo
echo "\$ asynctrace tree $TRACE"
"$TRACER" tree "$TRACE"
echo
echo "\$ asynctrace export --format chrome -o $TIMELINE $TRACE"
"$TRACER" export --format chrome -o "$TIMELINE" "$TRACE"
echo "timeline written to $TIMELINE: open it in https://ui.perfetto.dev or chrome://tracing"
