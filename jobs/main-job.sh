#!/usr/bin/env bash
# The main job on the embedded default, from a fresh clone: set up (Debian packages), build, run the
# studies on the small Fashion-MNIST subset (data/fashion-mnist-small) and the small reference model
# (data/models/fashion-mnist-small.safetensors), and finish with `idprune report`. A few minutes on 2 cores.
#
#   ./jobs/main-job.sh                 # results and report in results/main-job/
#   ./jobs/main-job.sh OUT_DIR         # somewhere else
#
# OUT_DIR gets one file or folder per study, named as `idprune report` expects (see
# include/idprune/report/studies.hpp):
#   lowrank-kernel.csv   CPQR vs SVD error, kernel matrix (idprune lowrank)
#   lowrank-layer1.csv   CPQR vs SVD error, layer-1 activations of the model (idprune lowrank --model)
#   bench-cpqr.json      CPQR timing scaling, short settings (idprune bench cpqr --json)
#   bench-engines/       pivot-engine timings, bench-id-np<P>.json per rank count (idprune bench id --json)
#   sweep-layer1/        layer 1 alone, greedy eps sweep (idprune sweep --layers 1)
#   sweep-greedy/ sweep-magnitude/ sweep-svd/   all layers: ID and the two baselines (idprune sweep)
#   pareto/              Pareto fronts of greedy, the joint strategies, magnitude and SVD (idprune pareto)
#   report/              index.html + report.md + figures (idprune report OUT_DIR)
# A previous OUT_DIR is kept as OUT_DIR.previous (an older .previous is removed).
#
# Rank counts for the engine benchmark: RANKS_LIST (default "1 2"); counts above 1 run under mpirun.
# As root, Open MPI refuses to start unless OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are exported; this script does not set them for you, and runs the
# 1-rank benchmark only when they are missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-results/main-job}
model=data/models/fashion-mnist-small.safetensors
data=data/fashion-mnist-small
say() { echo "main-job: $*" >&2; }

./jobs/setup-debian.sh
cmake --workflow --preset default
idprune=$root/build/default/drivers/idprune

if [ -e "$out" ]; then
  rm -rf -- "$out.previous"
  mv -- "$out" "$out.previous"
  say "previous results moved to $out.previous"
fi
mkdir -p "$out"
start=$(date +%s)

# Goal 3: kernel matrix, rank-k CPQR (ID) error against the optimal SVD error, k = 1..100.
say "lowrank: kernel matrix"
"$idprune" lowrank --config jobs/configs/lowrank-kernel.ini --out "$out/lowrank-kernel.csv" >/dev/null

# Goal 5: the same for the layer-1 activations relu(Xc W1) of the model.
say "lowrank: layer-1 activations"
"$idprune" lowrank --model "$model" --data "$data" --layer 1 --out "$out/lowrank-layer1.csv" >/dev/null

# Goal 2: CPQR time over growing m, n and m = n (short settings; the defaults take minutes).
say "bench cpqr (short)"
"$idprune" bench cpqr --json --reps 3 --k 20 --m-sizes 2000,4000,8000,16000 --fixed-n 250 \
  --fixed-m 4000 --n-sizes 250,500,1000,2000 --square-sizes 500,1000,2000 --full-m 2000 --full-n 500 \
  >"$out/bench-cpqr.json.part"
mv "$out/bench-cpqr.json.part" "$out/bench-cpqr.json"

# Pivot engines against the number of MPI ranks (a small activation-like matrix).
ranks_list=${RANKS_LIST:-1 2}
if [ "$(id -u)" -eq 0 ] && [ -z "${OMPI_ALLOW_RUN_AS_ROOT:-}" ]; then
  ranks_list=1
  say "running as root without OMPI_ALLOW_RUN_AS_ROOT: engine benchmark on 1 rank only (see the header)"
fi
say "bench id on ranks: $ranks_list"
ROWS=10000 COLS=128 RANKS_LIST="$ranks_list" THREADS=1 OUT_DIR="$out/bench-engines" IDPRUNE_BIN="$idprune" \
  ./jobs/local/bench-engines.sh

# Goals 6 and 7 and the baselines: one sweep each, configured by jobs/configs/*.ini.
for study in layer1 greedy magnitude svd; do
  say "sweep: $study"
  "$idprune" sweep --config "jobs/configs/sweep-$study.ini" --out "$out/sweep-$study" >/dev/null
done

# Joint strategies against greedy, magnitude and SVD at fixed parameter budgets (the small data
# subset has 3000 training images: 2000 for compression, 1000 for validation).
say "pareto"
"$idprune" pareto --config jobs/configs/pareto.ini --validation-size 1000 --out "$out/pareto" >/dev/null

say "studies done in $(($(date +%s) - start)) s; building the report"
"$idprune" report "$out"
say "open $out/report/index.html in a browser (Markdown version: $out/report/report.md)"
