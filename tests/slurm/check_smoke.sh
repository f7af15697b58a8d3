#!/usr/bin/env bash
# Checks the smoke job's results: one file per PMIx rank (0 and 1), each naming its rank, a step of 2
# tasks, the step's PMIx namespace (set only when the PMIx plugin launched it) and the idprune version.
# Usage: check_smoke.sh WORK JOB_ID
set -uo pipefail
dir="$1/smoke-$2"
status=0
for rank in 0 1; do
  f="$dir/rank-$rank.txt"
  if [ ! -f "$f" ]; then
    echo "check_smoke: missing $f (PMIx rank $rank did not run)" >&2
    status=1
  elif ! grep -q "^pmix_rank=$rank size=2 namespace=slurm\.pmix\.$2\.0 idprune " "$f"; then
    echo "check_smoke: unexpected content of $f: $(cat "$f")" >&2
    status=1
  fi
done
n=$(find "$dir" -name 'rank-*.txt' 2>/dev/null | wc -l)
[ "$n" -eq 2 ] || { echo "check_smoke: expected 2 rank files in $dir, found $n" >&2; status=1; }
exit "$status"
