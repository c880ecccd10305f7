#!/usr/bin/env bash
# Runs every codec fuzz target for SECONDS (default 600) each, two at a time, at low priority,
# and writes one log per target under $LOGS (default fuzz/logs). See docs/codecs.md.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER=${1:-600}
LOGS=${LOGS:-logs}
mkdir -p "$LOGS"
run() {
    local t=$1
    mkdir -p "work/$t"
    local start=$(date -u +%FT%TZ)
    RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run -O -a -s none "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER" -dict=codec.dict -print_final_stats=1 >"$LOGS/$t.log" 2>&1 && rc=0 || rc=$?
    echo "target=$t start=$start end=$(date -u +%FT%TZ) exit=$rc" >>"$LOGS/summary.txt"
}
for pair in "openai_chat openai_responses" "anthropic_messages gemini_generate_content" "detect"; do
    for t in $pair; do run "$t" & done
    wait
done
