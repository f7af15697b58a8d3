#!/usr/bin/env bash
# Pivot-engine benchmark on one machine: `idprune bench id --rows M --cols N --json` under each rank
# count of RANKS_LIST (mpirun -n P; P = 1 runs without mpirun), one JSON file per count in
# OUT_DIR/bench-id-np<P>.json. Counts whose file exists are skipped, so re-running continues.
#
#   jobs/local/bench-engines.sh                               # 1 and 2 ranks, 60000 x 1024
#   ROWS=20000 COLS=512 RANKS_LIST="1 2 4" MPIRUN_ARGS=--oversubscribe jobs/local/bench-engines.sh
#
# Variables (empty means "not given"):
#   ROWS, COLS    matrix size                         (default: 60000 x 1024)
#   RANKS_LIST    space-separated rank counts         (default: "1 2")
#   THREADS       TBB threads per rank                (default: 1, so ranks x threads <= cores)
#   ENGINES       comma-separated engines (--engine)  (default: empty = all)
#   K, TOL        rank or tolerance (--k / --tol)     (default: empty = idprune's)
#   OUT_DIR       output folder                       (default: results/bench-engines)
#   EXTRA_ARGS    further idprune bench id options, word-split
#   IDPRUNE_BIN, MPIRUN, MPIRUN_ARGS: see jobs/local/common.sh
set -euo pipefail
THREADS=${THREADS:-1}
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "$0")/common.sh"

ROWS=${ROWS:-60000}
COLS=${COLS:-1024}
RANKS_LIST=${RANKS_LIST:-1 2}
OUT_DIR=${OUT_DIR:-results/bench-engines}

args=(bench id --rows "$ROWS" --cols "$COLS" --json)
add --engine "${ENGINES:-}"
add --k "${K:-}"
add --tol "${TOL:-}"
# shellcheck disable=SC2206  # EXTRA_ARGS is a word list on purpose
args+=(${EXTRA_ARGS:-})

mkdir -p "$OUT_DIR"
for RANKS in $RANKS_LIST; do
  out="$OUT_DIR/bench-id-np$RANKS.json"
  if [ -s "$out" ]; then
    echo "bench-engines.sh: $RANKS ranks: $out exists, skipped" >&2
    continue
  fi
  # Written next to the final name and renamed when complete: an interrupted run leaves no partial file.
  launch "${args[@]}" >"$out.part"
  mv "$out.part" "$out"
done
echo "bench-engines.sh: results in $OUT_DIR" >&2
