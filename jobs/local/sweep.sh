#!/usr/bin/env bash
# idprune sweep on one machine: one compression strategy over a grid, one row per grid point in
# OUT_DIR/results.csv and OUT_DIR/results.jsonl. Threads only by default; RANKS=P runs it under
# `mpirun -n P` (see common.sh for binding and for running as root).
#
#   jobs/local/sweep.sh                                       # greedy eps sweep, embedded default
#   THREADS=2 LAYERS=1 jobs/local/sweep.sh                    # layer 1 only
#   RANKS=2 THREADS=1 jobs/local/sweep.sh                     # two MPI ranks, one thread each
#   CONFIG=jobs/configs/sweep-greedy.ini jobs/local/sweep.sh
#
# Always runs with --resume: running the same command again continues an interrupted sweep (Ctrl-C or
# a kill loses at most the points in flight) and never repeats a finished point.
#
# Variables (empty means "not given"; paths relative to the current folder):
#   CONFIG            INI config file (--config); when set, only the options below that are set are added
#                     (they win over the file), and the defaults are not applied
#   MODEL             model file (default: data/models/fashion-mnist-small.safetensors, the embedded default)
#   DATA              data folder (default: data/fashion-mnist-small, the embedded default)
#   STRATEGY          greedy | magnitude | random | svd | a joint strategy    (default: greedy)
#   RULE              eps | k | fraction | rank                                (default: eps)
#   GRID              comma-separated values     (default: 1e-3,3e-3,1e-2,3e-2,0.1,0.3,1)
#   LAYERS            comma-separated layers to compress (default: empty = all hidden layers)
#   COMPRESSION_SIZE  compression-set size        (default: empty = idprune's 2000)
#   SEED              random seed                 (default: empty = idprune's)
#   ENGINE            pivot engine                (default: empty = idprune's tsqr)
#   OUT_DIR           output folder (default: results/sweep-<config name>, or
#                     results/sweep-<strategy>-<rule>[-layers<L>] without CONFIG)
#   EXTRA_ARGS        further idprune sweep options, word-split
#   IDPRUNE_BIN, RANKS, THREADS, MPIRUN, MPIRUN_ARGS: see jobs/local/common.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

if [ -z "${CONFIG:-}" ]; then
  : "${MODEL:=$idprune_root/data/models/fashion-mnist-small.safetensors}" "${DATA:=$idprune_root/data/fashion-mnist-small}"
  : "${STRATEGY:=greedy}" "${RULE:=eps}" "${GRID:=1e-3,3e-3,1e-2,3e-2,0.1,0.3,1}"
  default_out="results/sweep-$STRATEGY-$RULE${LAYERS:+-layers${LAYERS//,/_}}"
else
  default_out="results/sweep-$(basename "$CONFIG" .ini)"
fi
OUT_DIR=${OUT_DIR:-$default_out}

args=(sweep --out "$OUT_DIR" --resume --threads "$THREADS")
add --config "${CONFIG:-}"
add --model "${MODEL:-}"
add --data "${DATA:-}"
add --strategy "${STRATEGY:-}"
add --rule "${RULE:-}"
add --grid "${GRID:-}"
add --layers "${LAYERS:-}"
add --compression-size "${COMPRESSION_SIZE:-}"
add --seed "${SEED:-}"
add --engine "${ENGINE:-}"
# shellcheck disable=SC2206  # EXTRA_ARGS is a word list on purpose
args+=(${EXTRA_ARGS:-})

launch "${args[@]}"
echo "$(basename "$0"): results in $OUT_DIR" >&2
