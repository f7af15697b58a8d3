#!/usr/bin/env bash
# LeNet-300-100 on Fashion-MNIST against the published neuron-merging figures: every neuron-pruning
# strategy of `idprune sweep` with the same fraction of neurons kept in both hidden layers (the
# published setting: the share of hidden neurons pruned is the share pruned in each layer), no
# fine-tuning, evaluated once on the test set. No selection happens (the fractions are fixed), so the
# test set only reports. Rows go to OUT_DIR/results.csv; the comparison table to OUT_DIR/table.md;
# the report (figure of every strategy with the published points beside ours, and the table) to
# OUT_DIR/report (index.html, report.md).
#
#   DATA=/path/to/fashion-mnist jobs/local/lenet-merging.sh
#
# Published (Woojeong Kim, Suhyun Kim, Mincheol Park, Geunseok Jeon, "Neuron Merging: Compensating
# for Pruned Neurons", NeurIPS 2020, Table 1: LeNet-300-100 on Fashion-MNIST, unpruned 89.80%, no
# fine-tuning; the same figures, with the citation, in data/published/lenet-300-100-fashion-mnist.csv):
#   pruned 50% 60% 70% 80%: merging 88.69 86.92 82.75 80.02; l1-norm pruning 88.40 85.17 71.26 66.76.
#
# Variables (empty means "not given"):
#   MODEL             default: data/models/fashion-mnist-lenet-300-100.safetensors
#   DATA              Fashion-MNIST folder (default: data/fashion-mnist-small, the embedded subset)
#   STRATEGIES        default: greedy,corrected,random,magnitude,merging,output,flap,obs (every
#                     neuron-pruning sweep strategy; svd and whitened-svd keep every neuron)
#   MEAN_STRATEGIES   also run with --mean-compensation (default: greedy,corrected)
#   SHARES            percent of hidden neurons pruned (default: 50,60,70,80)
#   COMPRESSION_SIZE  compression-set size (default: empty = idprune's 2000)
#   OUT_DIR           default: results/lenet-merging
#   PUBLISHED         published points for the report (default:
#                     data/published/lenet-300-100-fashion-mnist.csv; empty: none)
#   REPORT            0: no report (default 1; the report needs gnuplot)
#   IDPRUNE_BIN, RANKS, THREADS, MPIRUN, MPIRUN_ARGS: see jobs/local/common.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

: "${MODEL:=$idprune_root/data/models/fashion-mnist-lenet-300-100.safetensors}"
: "${DATA:=$idprune_root/data/fashion-mnist-small}"
: "${STRATEGIES:=greedy,corrected,random,magnitude,merging,output,flap,obs}"
MEAN_STRATEGIES=${MEAN_STRATEGIES-greedy,corrected}
: "${SHARES:=50,60,70,80}"
OUT_DIR=${OUT_DIR:-results/lenet-merging}
PUBLISHED=${PUBLISHED-$idprune_root/data/published/lenet-300-100-fashion-mnist.csv}
REPORT=${REPORT:-1}

# Kept fractions 1 - share/100, in the order of SHARES.
grid=$(tr ',' '\n' <<<"$SHARES" | awk '{ printf "%s%g", (NR > 1 ? "," : ""), 1 - $1 / 100 }')

run() {  # strategy [extra options]
  local args=(sweep --model "$MODEL" --data "$DATA" --strategy "$1" --rule fraction --grid "$grid"
    --out "$OUT_DIR" --threads "$THREADS" --resume)
  add --compression-size "${COMPRESSION_SIZE:-}"
  shift
  launch "${args[@]}" "$@"
}
IFS=',' read -r -a plain <<<"$STRATEGIES"
for s in "${plain[@]}"; do run "$s"; done
if [ -n "$MEAN_STRATEGIES" ]; then
  IFS=',' read -r -a mean <<<"$MEAN_STRATEGIES"
  for s in "${mean[@]}"; do run "$s" --mean-compensation; done
fi

# The table: test accuracy (%) per strategy and share pruned, beside the published figures.
awk -F, -v shares="$SHARES" '
  NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next }
  {
    s = $col["strategy"]; f = $col["value"] + 0; acc[s, sprintf("%.0f", 100 * (1 - f))] = 100 * $col["test_accuracy"]
    if (!(s in seen)) { seen[s] = 1; order[++n] = s }
    orig = 100 * $col["original_accuracy"]
  }
  END {
    k = split(shares, sh, ",")
    split("88.69,86.92,82.75,80.02", merging, ","); split("88.40,85.17,71.26,66.76", l1, ",")
    printf "| hidden neurons pruned |"; for (j = 1; j <= k; ++j) printf " %s%% |", sh[j]; printf "\n|---|"
    for (j = 1; j <= k; ++j) printf "---:|"; printf "\n"
    for (i = 1; i <= n; ++i) {
      printf "| %s |", order[i]
      for (j = 1; j <= k; ++j) { key = order[i] SUBSEP sh[j]; if (key in acc) printf " %.2f |", acc[key]; else printf " - |" }
      printf "\n"
    }
    published = (shares == "50,60,70,80")
    if (published) {
      printf "| Kim et al. merging (unpruned 89.80) |"; for (j = 1; j <= k; ++j) printf " %s |", merging[j]; printf "\n"
      printf "| Kim et al. l1-norm pruning |"; for (j = 1; j <= k; ++j) printf " %s |", l1[j]; printf "\n"
      printf "| target: merging - (%.2f - 89.80) |", orig
      for (j = 1; j <= k; ++j) printf " %.2f |", merging[j] - (orig - 89.80); printf "\n"
    }
    printf "\nunpruned: %.2f%% test accuracy\n", orig
  }' "$OUT_DIR/results.csv" | tee "$OUT_DIR/table.md"

# The report: accuracy against the fraction of hidden neurons kept, one curve per strategy, the
# published points beside them, and the same comparison as a table. One process: nothing to divide.
if [ "$REPORT" != 0 ]; then
  report_args=(report "$OUT_DIR" --out "$OUT_DIR/report" --title "LeNet-300-100 on Fashion-MNIST: neuron pruning without fine-tuning")
  if [ -n "$PUBLISHED" ]; then report_args+=(--published "$PUBLISHED"); fi
  echo "$(basename "$0"): $IDPRUNE_BIN ${report_args[*]}" >&2
  "$IDPRUNE_BIN" "${report_args[@]}"
fi
