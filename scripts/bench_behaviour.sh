#!/usr/bin/env bash
# Behavioural consistency: ventral behaviour vs Brain-Score's own code (ProbabilitiesClassifier +
# metrics/i1i2 I1n and I2n, score and ceiling), same data, one run; checks the values agree.
#
#   PYTHON=/path/to/python bash scripts/bench_behaviour.sh [OBJECTS] [FIT_PER] [TEST_PER] [FEATURES] [TRIALS_PER_PAIR]
#
# Defaults are Rajalingham2018-sized: 24 objects, 100 fitting images per object (2 400), 10 test
# images per object (240), 1 000 features, 10 trials per (image, distractor) pair (55 200
# trials). Needs a Python with brainscore-vision (scripts/make_behaviour_fixtures.py says how).
# Times each side's whole computation (ventral: the command, including reading its inputs and
# writing its outputs; Brain-Score: decoder fit + probabilities + both metrics, inputs already in
# memory) and prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
K="${1:-24}"; F="${2:-100}"; T="${3:-10}"; D="${4:-1000}"; R="${5:-10}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cargo build --release -q
V_BIN="${CARGO_TARGET_DIR:-target}/release/ventral"
"$PY" scripts/bench_behaviour.py make "$W" "$K" "$F" "$T" "$D" "$R"
S0=$(date +%s.%N)
"$V_BIN" behaviour --features test="$W/test.npz" --fit-features "$W/fit.npz" \
  --fit-stimuli "$W/fit.csv" --trials "$W/trials.csv" --metrics i1n,i2n --out "$W/beh" >/dev/null 2>&1
S1=$(date +%s.%N)
VS=$(echo "$S1 - $S0" | bc -l)
"$PY" scripts/bench_behaviour.py run "$W" > "$W/brainscore.json"
PS=$(sed -n 's/.*"seconds": \([0-9.e-]*\).*/\1/p' "$W/brainscore.json")
echo "Behaviour (Rajalingham2018 protocol): $K objects, $((K * F)) fitting and $((K * T)) test images, $D features, $((K * T * (K - 1) * R)) trials; i1n + i2n, 2 halvings"
"$PY" -c "import json; r = json.load(open('$W/brainscore.json')); print(f\"Brain-Score: decoder {r['decode_seconds']:.2f} s, metrics {r['metric_seconds']:.2f} s\")"
printf "%-12s %10s\n" "" "seconds"
printf "%-12s %10.2f\n" ventral "$VS"
printf "%-12s %10.2f\n" brainscore "$PS"
"$PY" -c "print(f'Brain-Score/ventral time ratio: {$PS / $VS:.1f} (>1: ventral faster)')"
"$PY" scripts/bench_behaviour.py check "$W" "$W/beh"
