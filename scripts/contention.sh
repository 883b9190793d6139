#!/usr/bin/env bash
# Measures one hot key under racing `etagstore edit` writers: WRITERS
# processes each run EDITS `edit KEY --jq '.n += 1'` on one key of STORE,
# then the final count is checked (a lost update fails the run) and one
# line is printed: writers, edits, seconds, edits per second. docs/scaling.md
# has the numbers and the simulation (scripts/contention-sim.py) beside them.
#
#   scripts/contention.sh STORE WRITERS EDITS
#
# STORE is any --store value with its environment already set (for moto:
# AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ALLOW_HTTP=true and any
# AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY). ETAGSTORE_BIN picks the binary.
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
store=$1 writers=$2 edits=$3
bin=${ETAGSTORE_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/etagstore}
key=contention-$$
"$bin" --store "$store" set "$key" '{"n": 0}' --etag '' >/dev/null
start=$(date +%s.%N)
pids=()
for _ in $(seq "$writers"); do
  (
    for _ in $(seq "$edits"); do
      "$bin" --store "$store" edit "$key" --retries 100000 --jq '.n += 1' >/dev/null
    done
  ) &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
end=$(date +%s.%N)
n=$("$bin" --store "$store" get "$key" | tr -dc '0-9')
"$bin" --store "$store" delete "$key" --etag "$("$bin" --store "$store" etag "$key")"
total=$((writers * edits))
[ "$n" -eq "$total" ] || { echo "error: lost updates: n is $n, expected $total" >&2; exit 1; }
awk -v w="$writers" -v t="$total" -v s="$start" -v e="$end" \
  'BEGIN { printf "writers %d edits %d seconds %.2f edits/s %.1f\n", w, t, e - s, t / (e - s) }'
