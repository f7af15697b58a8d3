#!/usr/bin/env bash
# Sweep benchmark: wall-clock time of a whole `idprune sweep` run (start-up, data, compression,
# evaluation of the full test set, results written) repeated REPS times; prints every time, the
# median, minimum and maximum, and with BASELINE_BIN set, the same for another idprune build run
# interleaved with this one (so that both see the same machine load) and the ratio of the medians.
# The default is the issue-5 benchmark: the 32-point greedy eps grid of jobs/configs/sweep-greedy.ini
# on the reference model and the full Fashion-MNIST (jobs/fetch-fashion-mnist.sh data/fashion-mnist).
#
#   jobs/local/bench-sweep.sh
#   REPS=7 BASELINE_BIN=/path/to/older/idprune jobs/local/bench-sweep.sh
#   MODEL=data/models/fashion-mnist-small.safetensors DATA=data/fashion-mnist-small REPS=1 jobs/local/bench-sweep.sh
#
# Variables (empty means "not given"):
#   MODEL, DATA   model file and data folder  (default: the reference model, data/fashion-mnist)
#   CONFIG        sweep configuration          (default: jobs/configs/sweep-greedy.ini: strategy, rule, grid)
#   REPS          runs per build               (default: 5)
#   BASELINE_BIN  a second idprune to compare  (default: none)
#   EXTRA_ARGS    further idprune sweep options for both builds, word-split
#   IDPRUNE_ARGS  further options for IDPRUNE_BIN only (e.g. --precision f32, which older builds lack)
#   IDPRUNE_BIN, THREADS: see jobs/local/common.sh (one rank; THREADS defaults to the cores)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

MODEL=${MODEL:-$idprune_root/data/models/fashion-mnist-reference.safetensors}
DATA=${DATA:-$idprune_root/data/fashion-mnist}
CONFIG=${CONFIG:-$idprune_root/jobs/configs/sweep-greedy.ini}
REPS=${REPS:-5}
for f in "$MODEL" "$DATA" "$CONFIG"; do
  [ -e "$f" ] || { echo "bench-sweep.sh: '$f' not found" >&2; exit 2; }
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "bench-sweep.sh: REPS=$REPS is not a positive integer" >&2; exit 2; }
if [ -n "${BASELINE_BIN:-}" ] && [ ! -x "$BASELINE_BIN" ]; then
  echo "bench-sweep.sh: BASELINE_BIN '$BASELINE_BIN' is not an executable" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2206  # EXTRA_ARGS is a word list on purpose
extra=(${EXTRA_ARGS:-})
# shellcheck disable=SC2206
own=(${IDPRUNE_ARGS:-})

# run BIN [ARGS...]: one sweep into a fresh folder; prints its wall-clock seconds.
run() {
  local bin="$1" out="$work/out" t0 t1
  shift
  rm -rf "$out"
  t0=$(date +%s.%N)
  "$bin" sweep --config "$CONFIG" --model "$MODEL" --data "$DATA" --threads "$THREADS" --progress-interval 1000 \
    --out "$out" "${extra[@]}" "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; echo "bench-sweep.sh: $bin failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# stats "t1 t2 ...": median min max
stats() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END {
  m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f %.3f %.3f\n", m, v[1], v[NR] }'; }

times="" base=""
for ((r = 1; r <= REPS; ++r)); do
  if [ -n "${BASELINE_BIN:-}" ]; then
    t=$(run "$BASELINE_BIN")
    base="$base $t"
    echo "run $r: baseline $t s" >&2
  fi
  t=$(run "$IDPRUNE_BIN" "${own[@]}")
  times="$times $t"
  echo "run $r: idprune $t s" >&2
done
read -r med lo hi <<<"$(stats "$times")"
points=$(grep -c "" "$work/out/results.csv")
points=$((points - 1))
core=$(grep -o '"blas_core":"[^"]*"' "$work/out/results.jsonl" | head -1 | cut -d'"' -f4)
echo "bench-sweep: $points points, $THREADS threads, OpenBLAS $core, $REPS runs"
echo "  idprune   median $med s (min $lo, max $hi):$times"
json="{\"points\": $points, \"threads\": $THREADS, \"blas_core\": \"$core\", \"reps\": $REPS, \"median_s\": $med, \"min_s\": $lo, \"max_s\": $hi"
if [ -n "$base" ]; then
  read -r bmed blo bhi <<<"$(stats "$base")"
  ratio=$(awk -v a="$med" -v b="$bmed" 'BEGIN { printf "%.3f", a / b }')
  echo "  baseline  median $bmed s (min $blo, max $bhi):$base"
  echo "  idprune / baseline (medians) = $ratio"
  json="$json, \"baseline_median_s\": $bmed, \"baseline_min_s\": $blo, \"baseline_max_s\": $bhi, \"ratio\": $ratio"
fi
echo "$json}"
