#!/usr/bin/env bash
# The quickstart over several seeds on this machine: wall clock, peak memory, the test accuracy
# of BLT at every step and of its B control, and whether the run shows what the quickstart is
# for — BLT's accuracy never falls significantly from one step to the next (exact McNemar test
# on the same test images, p < 0.05: `accuracy.csv`'s p_mcnemar), rises overall, and ends above
# B. A dip that the test images cannot tell from no change is shown beside the verdict.
#
#   bash scripts/quickstart_seeds.sh OUT [SEED ...]                  # default seeds: 0 1 2
#   NUM_IMAGES=18000 EPOCHS=3 bash scripts/quickstart_seeds.sh OUT 0 1  # other settings
#
# Each seed runs `ventral quickstart --out OUT/seed_S --seed S --overwrite` (its log and GNU
# time's report beside it) and adds a row to a Markdown table; the accuracies come from the
# report's `dynamics/BLT/accuracy.csv` and `dynamics/B/accuracy.csv`. Exits 1 when a seed does
# not show the rise (after running all of them), 2 when a quickstart fails. The accuracies do not
# depend on what else runs on the machine; the wall clock does: time with nothing else running.
# They do depend on the CPU's instruction set (AVX2 and AVX-512 kernels sum in other orders).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: bash scripts/quickstart_seeds.sh OUT [SEED ...]}"
shift
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(0 1 2)
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs GNU time at $TIME (Debian: apt install time)" >&2; exit 2; }
cargo build --release -q -p ventral-cli
V="${CARGO_TARGET_DIR:-target}/release/ventral"
extra=()
[ -z "${NUM_IMAGES:-}" ] || extra+=(--num-images "$NUM_IMAGES")
[ -z "${EPOCHS:-}" ] || extra+=(--epochs "$EPOCHS")
mkdir -p "$OUT"

# Accuracies of an accuracy.csv (`timestep,accuracy,…`), space-separated, in step order.
accs() { awk -F, 'NR > 1 { printf "%s ", $2 }' "$1"; }
# Its McNemar p-values against the previous step (column p_mcnemar; "-" at t = 0).
pvals() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "p_mcnemar") c = i }
  NR > 1 { printf "%s ", (c && $c != "" ? $c : "-") }' "$1"; }

echo "settings: ${NUM_IMAGES:-default} images, ${EPOCHS:-default} epochs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo
echo "| seed | wall clock (s) | peak memory (MiB) | BLT test accuracy over steps | B | BLT's last step vs B (McNemar) | shows the rise |"
echo "|---|---|---|---|---|---|---|"
failed=0
for s in "${SEEDS[@]}"; do
  d="$OUT/seed_$s"
  if ! "$TIME" -f "WALL %e PEAK_KB %M" -o "$d.time" \
      "$V" quickstart --out "$d" --seed "$s" --overwrite "${extra[@]}" >"$d.log" 2>&1; then
    echo "seed $s: the quickstart failed; see $d.log" >&2
    exit 2
  fi
  wall=$(sed -n 's/.*WALL \([0-9.]*\).*/\1/p' "$d.time")
  peak=$(sed -n 's/.*PEAK_KB \([0-9]*\).*/\1/p' "$d.time")
  blt=$(accs "$d/dynamics/BLT/accuracy.csv")
  b=$(accs "$d/dynamics/B/accuracy.csv")
  ps=$(pvals "$d/dynamics/BLT/accuracy.csv")
  verdict=$(awk -v blt="$blt" -v b="$b" -v ps="$ps" 'BEGIN {
    n = split(blt, a, " "); m = split(b, c, " "); split(ps, p, " "); why = ""; dips = ""
    for (i = 2; i <= n; i++) if (a[i] < a[i - 1]) {
      if (p[i] == "-" || p[i] + 0 < 0.05) why = why sprintf("falls at t=%d (p = %s); ", i - 1, p[i])
      else dips = dips sprintf("t=%d %+.1f points, p = %.2f; ", i - 1, 100 * (a[i] - a[i - 1]), p[i])
    }
    if (a[n] <= a[1]) why = why "no rise; "
    if (a[n] <= c[m]) why = why "last step not above B; "
    sub(/; $/, "", dips); sub(/; $/, "", why)
    if (why == "") print (dips == "" ? "yes" : "yes (not significant: " dips ")"); else print "no: " why
  }')
  case "$verdict" in yes*) ;; *) failed=1 ;; esac
  shown=$(echo "$blt" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.3f", (i > 1 ? " → " : ""), $i }')
  # BLT's last step against B's on the same images (networks_compared.csv's last BLT,B row).
  vs_b=$(awk -F, '$1 == "BLT" && $2 == "B" { r = sprintf("%+.1f points, %d / %d images, p = %.2g", 100 * ($5 - $6), $7, $8, $9) } END { print (r == "" ? "-" : r) }' \
    "$d/dynamics/networks_compared.csv" 2>/dev/null || echo -)
  printf '| %s | %.0f | %.0f | %s | %.3f | %s | %s |\n' "$s" "$wall" "$((peak / 1024))" "$shown" \
    "$(echo "$b" | awk '{print $NF}')" "$vs_b" "$verdict"
done
exit "$failed"
