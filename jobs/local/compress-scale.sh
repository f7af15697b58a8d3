#!/usr/bin/env bash
# Scaling of one compression point with the size of the compression set: `idprune bench
# compress-scale --json` at each rank count of RANKS_LIST (ranks divide the rows; the cores are
# divided among the ranks), one file per count, OUT_DIR/bench-compress-scale-npP.json, then the
# report (OUT_DIR/report): measured time and its GEMM lower bound against rows (log-log), and the
# table with the ratio and the peak RSS.
#
#   DATA=/path/to/fashion-mnist ROWS=5000,20000,50000 jobs/local/compress-scale.sh
#
# Variables (empty means "not given"):
#   MODEL        default: data/models/fashion-mnist-reference.safetensors
#   DATA         Fashion-MNIST folder (default: data/fashion-mnist-small, the embedded subset)
#   ROWS         compression-set sizes in images (default: 5000,20000,50000)
#   RANKS_LIST   rank counts, space-separated (default: "1 2")
#   THREADS      threads per rank (default: the cores divided by the rank count, at least 1)
#   RULE, VALUE  the rank rule of the point (default: idprune's fraction 0.2)
#   AUGMENT      none | shifts (each image and its 8 one-pixel shifts); BLOCK_ROWS, MAX_MEMORY: streaming
#   OUT_DIR      default: results/compress-scale
#   REPORT       0: no report (default 1; the report needs gnuplot)
#   IDPRUNE_BIN, MPIRUN, MPIRUN_ARGS: see jobs/local/common.sh
set -euo pipefail
threads_given=${THREADS:-}  # common.sh fills THREADS in for one rank
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

: "${MODEL:=$idprune_root/data/models/fashion-mnist-reference.safetensors}"
: "${DATA:=$idprune_root/data/fashion-mnist-small}"
: "${ROWS:=5000,20000,50000}"
: "${RANKS_LIST:=1 2}"
OUT_DIR=${OUT_DIR:-results/compress-scale}
REPORT=${REPORT:-1}
mkdir -p "$OUT_DIR"

for RANKS in $RANKS_LIST; do
  if [ -z "$threads_given" ]; then
    THREADS=$(($(nproc) / RANKS > 0 ? $(nproc) / RANKS : 1))
    export OPENBLAS_NUM_THREADS=$THREADS
  fi
  args=(bench compress-scale --model "$MODEL" --data "$DATA" --rows "$ROWS" --threads "$THREADS" --json)
  add --rule "${RULE:-}"
  add --value "${VALUE:-}"
  add --augment "${AUGMENT:-}"
  add --block-rows "${BLOCK_ROWS:-}"
  add --max-memory "${MAX_MEMORY:-}"
  out="$OUT_DIR/bench-compress-scale-np$RANKS.json"
  # Written to a temporary file first: a failed run leaves no half-written result for the report.
  launch "${args[@]}" >"$out.tmp"
  mv "$out.tmp" "$out"
done

if [ "$REPORT" != 0 ]; then
  echo "$(basename "$0"): $IDPRUNE_BIN report $OUT_DIR --out $OUT_DIR/report" >&2
  "$IDPRUNE_BIN" report "$OUT_DIR" --out "$OUT_DIR/report" --title "Compression time against compression-set rows"
fi
