#!/usr/bin/env bash
# idprune pareto (joint search) on one machine: for each strategy and parameter budget the best
# compressed model, in OUT_DIR/pareto.csv. Threads only by default (the search evaluates candidates as
# TBB tasks); RANKS=P runs it under `mpirun -n P` (see common.sh for binding and for running as root).
#
#   jobs/local/pareto.sh                                      # embedded default model and data
#   BUDGETS=0.1,0.2 STRATEGIES=greedy,svd jobs/local/pareto.sh
#   CONFIG=jobs/configs/pareto.ini jobs/local/pareto.sh
#
# Variables (empty means "not given"; paths relative to the current folder):
#   CONFIG            INI config file (--config); when set, only the options below that are set are added
#                     (they win over the file), and the defaults are not applied
#   MODEL             model file (default: data/models/fashion-mnist-small.safetensors, the embedded default)
#   DATA              data folder (default: data/fashion-mnist-small, the embedded default)
#   STRATEGIES        comma-separated strategies   (default: empty = idprune's own list)
#   BUDGETS           comma-separated parameter fractions (default: 0.05,0.075,0.1,0.15,0.2,0.3)
#   COMPRESSION_SIZE  compression-set size          (default: empty = idprune's 2000)
#   SEED              random seed                   (default: empty = idprune's)
#   OUT_DIR           output folder (default: results/pareto-<config name>, or results/pareto)
#   EXTRA_ARGS        further idprune pareto options, word-split
#   IDPRUNE_BIN, RANKS, THREADS, MPIRUN, MPIRUN_ARGS: see jobs/local/common.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

if [ -z "${CONFIG:-}" ]; then
  : "${MODEL:=$idprune_root/data/models/fashion-mnist-small.safetensors}" "${DATA:=$idprune_root/data/fashion-mnist-small}"
  : "${BUDGETS:=0.05,0.075,0.1,0.15,0.2,0.3}"
  default_out=results/pareto
else
  default_out="results/pareto-$(basename "$CONFIG" .ini)"
fi
OUT_DIR=${OUT_DIR:-$default_out}

help=$("$IDPRUNE_BIN" pareto --help 2>&1) || { echo "pareto.sh: '$IDPRUNE_BIN pareto' is not available" >&2; exit 2; }
args=(pareto --out "$OUT_DIR")
if grep -q -- '--threads' <<<"$help"; then args+=(--threads "$THREADS"); fi
if grep -q -- '--resume' <<<"$help"; then args+=(--resume); fi
add --config "${CONFIG:-}"
add --model "${MODEL:-}"
add --data "${DATA:-}"
add --strategies "${STRATEGIES:-}"
add --budgets "${BUDGETS:-}"
add --compression-size "${COMPRESSION_SIZE:-}"
add --seed "${SEED:-}"
# shellcheck disable=SC2206  # EXTRA_ARGS is a word list on purpose
args+=(${EXTRA_ARGS:-})

launch "${args[@]}"
echo "pareto.sh: results in $OUT_DIR" >&2
