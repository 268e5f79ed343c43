#!/usr/bin/env bash
# Fuzz every parser and config reader of ventral (crates/ventral-fuzz; issue 13).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [EXECS_PER_TARGET] [TARGET...]
#   SEED=7 bash scripts/fuzz.sh …     # another mutation stream (default 0, the documented runs')
#   CHECKS=1 bash scripts/fuzz.sh …   # the dev build: integer-overflow and debug assertions on
#
# Defaults: 600 s and 1 000 000 executions per target (whichever ends first), every target.
# The mutations are a pure function of SEED and the corpus: the same seed explores the same
# inputs again, so a new run that should find something new takes a new SEED.
# Each target runs in its own process (so peak memory is per target) under a 1 GiB
# VENTRAL_MAX_MEMORY and a 4 GiB address-space limit; a process that aborts (allocation
# failure, stack overflow) has the input it was running saved as a finding. The table and
# target/fuzz-report.csv give executions, executions per second, findings and peak RSS.
# Findings land in target/fuzz-findings/<target>/; once fixed, copy them into
# fuzz/regressions/<target>/ so the test suite replays them.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER="${1:-600}"
EXECS="${2:-1000000}"
SEED="${SEED:-0}"
shift 2 2>/dev/null || shift $#
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ventral-target}"
# The whole workspace: building one package alone unifies features differently and rebuilds burn.
# CHECKS=1: the dev profile (as the test suite builds), whose overflow checks and debug
# assertions turn an arithmetic wrap — silent in a release build — into a finding; slower.
if [ "${CHECKS:-0}" = 1 ]; then
  cargo build --locked --workspace >&2 || exit 1
  BIN="$CARGO_TARGET_DIR/debug/ventral-fuzz"
else
  cargo build --release --locked --workspace >&2 || exit 1
  BIN="$CARGO_TARGET_DIR/release/ventral-fuzz"
fi
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <("$BIN" list | awk '{print $1}')
fi
REPORT=target/fuzz-report.csv
mkdir -p target/fuzz-findings
rm -f "$REPORT"
WORK_BASE=/dev/shm; [ -d "$WORK_BASE" ] || WORK_BASE="${TMPDIR:-/tmp}"
status=0
for t in "${TARGETS[@]}"; do
  work="$WORK_BASE/ventral-fuzz-sh-$t-$$"
  mkdir -p "$work"
  (
    ulimit -v $((4 * 1024 * 1024))
    VENTRAL_MAX_MEMORY=1G exec "$BIN" run --target "$t" --seconds "$SECONDS_PER" --execs "$EXECS" --seed "$SEED" \
      --work "$work" --report "$REPORT"
  )
  rc=$?
  if [ $rc -ne 0 ]; then
    status=1
    if [ $rc -gt 128 ]; then
      # Killed by a signal (abort): keep the input that was running.
      f=$(find "$work" -name .input -print -quit)
      if [ -n "$f" ]; then
        dest="target/fuzz-findings/$t/abort-$(date +%s)"
        mkdir -p "target/fuzz-findings/$t"
        cp "$f" "$dest"
        echo "ABORT in $t (exit $rc): input saved as $dest" >&2
      fi
    fi
  fi
  rm -rf "$work"
done
echo "report: $REPORT"
exit $status
