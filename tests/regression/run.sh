#!/usr/bin/env bash
# Regression test of the compression results on the embedded model and data: every sweep strategy
# and rank rule, every pivot engine, one and two MPI ranks, and `pareto` with all its strategies
# must give exactly the results recorded in tests/regression/golden/ (neurons kept, ranks,
# parameter counts and correct / agree counts exactly; cross-entropies and ratios to 1e-12
# relative; see check.py). The golden tables were written by an earlier idprune (the revision
# is in golden/SOURCE.txt), so a rewrite of the compression code that changes any result fails here.
#
#   run.sh /path/to/idprune /path/to/source_root                   the test (CTest label `regression`)
#   run.sh /path/to/idprune /path/to/source_root --write-golden    rewrites golden/ with this binary
set -euo pipefail
idprune="$1"
root="$2"
write_golden="${3:-}"
here="$root/tests/regression"
model="$root/data/models/fashion-mnist-small.safetensors"
data="$root/data/fashion-mnist-small"
python="$(command -v python3)" || { echo "regression: needs python3 (standard library only)"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mpiexec="$(command -v mpiexec || true)"

# sweep RUN NP ARGS...: one sweep on the embedded model into $work/runs/RUN, on NP ranks (one
# process where there is no mpiexec: the results do not depend on the number of ranks).
sweep() {
  local run="$1" np="$2"
  shift 2
  local cmd=("$idprune" sweep --model "$model" --data "$data" --threads 1 --out "$work/runs/$run" "$@")
  if [ "$np" -gt 1 ] && [ -n "$mpiexec" ]; then cmd=("$mpiexec" --oversubscribe -n "$np" "${cmd[@]}"); fi
  "${cmd[@]}" >"$work/$run.log" 2>&1 || { cat "$work/$run.log"; echo "regression: sweep $run failed"; exit 1; }
}

start=$SECONDS
eps=0.001,0.01,0.03,0.1,0.3,1
for engine in tsqr gram sketch scalapack lapack; do
  sweep "greedy-eps-$engine" 1 --strategy greedy --rule eps --grid "$eps" --engine "$engine"
done
sweep greedy-eps-tsqr-np2 2 --strategy greedy --rule eps --grid "$eps"
sweep greedy-k-tsqr 1 --strategy greedy --rule k --grid 4,16,32,300
sweep greedy-fraction-gram-np2 2 --strategy greedy --rule fraction --grid 0.05,0.25,1 --engine gram
sweep magnitude-eps-tsqr 1 --strategy magnitude --rule eps --grid 0.01,0.3
sweep magnitude-fraction 1 --strategy magnitude --rule fraction --grid 0.1,0.5
sweep random-k-np2 2 --strategy random --rule k --grid 8,40
sweep random-eps-sketch 1 --strategy random --rule eps --grid 0.03 --engine sketch
sweep svd-rank 1 --strategy svd --rule rank --grid 2,16,40
sweep svd-fraction 1 --strategy svd --rule fraction --grid 0.1,0.5

# pareto with every strategy, on small sets and short grids (the same code paths as the defaults).
"$idprune" pareto --model "$model" --data "$data" --out "$work/runs/pareto" --no-report --threads 1 \
  --strategies greedy,greedy-fraction,magnitude,random,svd,corrected,spectrum,spectrum-corrected,budget,budget-corrected,tuned,tuned-corrected,joint,joint-corrected \
  --budgets 0.1,0.3 --compression-size 500 --validation-size 500 --seed 3 --step 0.1 --tune-rounds 1 \
  --budget-iterations 2 --refine 2 --eps-grid 0.003,0.03,0.3,3 --tau-grid 0.001,0.01,0.1,1 \
  --svd-grid 0.05,0.2,0.5 >"$work/pareto.log" 2>&1 || { cat "$work/pareto.log"; echo "regression: pareto failed"; exit 1; }
echo "regression: runs took $((SECONDS - start)) s"

# The git revision the binary records in its results.
revision() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "git_revision") c = i; next } { print $c; exit }' \
    "$work/runs/greedy-eps-tsqr/results.csv"
}

if [ "$write_golden" = "--write-golden" ]; then
  "$python" "$here/check.py" collect "$work/runs" "$here/golden"
  {
    echo "Golden tables of tests/regression/run.sh, written by"
    echo "    tests/regression/run.sh IDPRUNE SOURCE_ROOT --write-golden"
    echo "with $("$idprune" --version | head -1), git revision $(revision) (as the binary records it)."
  } >"$here/golden/SOURCE.txt"
  echo "regression: wrote $here/golden"
  exit 0
fi
"$python" "$here/check.py" collect "$work/runs" "$work/now" >/dev/null
"$python" "$here/check.py" compare "$here/golden" "$work/now"
