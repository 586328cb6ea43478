#!/bin/sh
# make demo: trace the bundled tokio demo, print a report, write a timeline.
set -eu
BUILD=${1:-build}
TRACER="$BUILD/asynctrace"
DEMO="$BUILD/targets/rust/debug/demo"
TRACE="$BUILD/demo.trace"
TIMELINE="$BUILD/demo-timeline.json"

# In process (the default backend): no root needed to record.
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
