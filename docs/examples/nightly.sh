#!/usr/bin/env bash
# Nightly regression run of one suite: run it, diff against the last good run with the suite's gates, keep
# every run, and refresh the history plot. Exit code: 0 gates passed, 1 a gate (or forgetting budget)
# failed, 2 bad input. Cheap when nothing changed: the generation cache answers every request again.
#
#   SUITE=suites/support-triage RESULTS=results/nightly docs/examples/nightly.sh
set -uo pipefail

SUITE=${SUITE:-suites/support-triage}
RESULTS=${RESULTS:-results/nightly}
BASELINE=${BASELINE:-results/baselines/$(basename "$SUITE")}  # used until a nightly run has passed
HARNESS=${HARNESS:-harness}
name=$(basename "$SUITE")
mkdir -p "$RESULTS"

# A run killed last night (machine rebooted, job timed out) is finished first: nothing is generated twice.
for partial in "$RESULTS"/"$name"-*/progress; do
  [ -d "$partial" ] || continue
  "$HARNESS" run "$SUITE" --resume "$(dirname "$partial")" --quiet ${RUN_ARGS:-} || true
done

run="$RESULTS/$name-$(date -u +%Y%m%d-%H%M%S)"
"$HARNESS" run "$SUITE" --out "$run" --quiet ${RUN_ARGS:-}
status=$?
if [ "$status" -eq 2 ] || [ ! -f "$run/run.json" ]; then
  echo "nightly: the run did not complete (exit $status); rerun this script to resume it" >&2
  exit 2
fi

last_good=$(cat "$RESULTS/LAST_GOOD" 2>/dev/null || echo "$BASELINE")
"$HARNESS" diff "$last_good" "$run" --gate "$SUITE/gates.toml" --out "$run/diff"
gates=$?
if [ "$gates" -eq 0 ] && [ "$status" -eq 0 ]; then
  echo "$run" > "$RESULTS/LAST_GOOD"  # tomorrow's reference
fi
"$HARNESS" history "$RESULTS" --suite "$name" --out "$RESULTS/history" > /dev/null || true
[ "$gates" -ne 0 ] && exit "$gates"
exit "$status"
