#!/usr/bin/env bash
# `idprune sweep` killed with SIGKILL while points are in flight, then restarted with --resume: the
# final table equals the table of an uninterrupted run (timing and parallelisation columns ignored;
# numbers to rounding, see below), with no duplicated, missing or truncated row. The resumed run
# uses 2 MPI ranks when mpiexec is available, so this also checks that the rows do not depend on the
# number of ranks.
# Usage: sweep_resume.sh /path/to/idprune /path/to/source_root
set -euo pipefail
idprune="$1"
root="$2"
data="$root/data/fashion-mnist-small"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "sweep_resume: $*"
  exit 1
}

# A small trained model (seconds), then a sweep long enough to be killed midway: 40 points, one per wave.
"$idprune" train --data "$data" --out "$work/model.safetensors" --widths 96,64,32 --epochs 2 --seed 3 \
  --threads 1 >"$work/train.log"
grid="$(awk 'BEGIN { for (i = 0; i < 40; ++i) printf "%s%.6g", (i ? "," : ""), 1e-4 * 10 ^ (i / 10) }')"
sweep_args=(sweep --model "$work/model.safetensors" --data "$data" --strategy greedy --rule eps --grid "$grid"
  --compression-size 1000 --seed 7 --engine lapack --threads 1 --wave 1)
sweep() {  # sweep OUT [options]
  local out="$1"
  shift
  "$idprune" "${sweep_args[@]}" --out "$out" "$@"
}

sweep "$work/full" >"$work/full.log" 2>&1 || { cat "$work/full.log"; fail "uninterrupted sweep failed"; }

# idprune itself in the background (not the function: $! would be a subshell, and SIGKILL to it
# would leave idprune running on, writing rows beside the resumed run).
"$idprune" "${sweep_args[@]}" --out "$work/killed" >"$work/killed.log" 2>&1 &
pid=$!
# Kill as soon as two rows are on disk (several points are still to come).
for _ in $(seq 1 6000); do
  if [ -f "$work/killed/results.jsonl" ] && [ "$(wc -l <"$work/killed/results.jsonl")" -ge 2 ]; then break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
kill -9 "$pid" 2>/dev/null || fail "the sweep ended before it could be killed (make it longer)"
wait "$pid" 2>/dev/null || true
pgrep -f -- "--out $work/killed" >/dev/null && fail "idprune still runs after SIGKILL"
pid=""
rows_at_kill="$(wc -l <"$work/killed/results.jsonl")"
[ "$rows_at_kill" -lt 40 ] || fail "all 40 rows were written before the kill"
echo "sweep_resume: killed with $rows_at_kill of 40 rows on disk"

# Without --resume the folder is refused.
if sweep "$work/killed" >"$work/refused.log" 2>&1; then fail "an existing results folder was overwritten"; fi
grep -q "use --resume or another --out" "$work/refused.log" || { cat "$work/refused.log"; fail "unclear refusal"; }

# Resume from the folder's own config.ini, under 2 MPI ranks when possible.
launcher=()
if command -v mpiexec >/dev/null 2>&1; then launcher=(mpiexec --oversubscribe -n 2); fi
"${launcher[@]}" "$idprune" sweep --config "$work/killed/config.ini" --resume >"$work/resume.log" 2>&1 ||
  { cat "$work/resume.log"; fail "resume failed"; }

# Compare the tables without the columns that legitimately differ between runs.
strip() {  # strip CSV: drop run-dependent columns by name
  awk -F, -v OFS=, '
    NR == 1 { for (i = 1; i <= NF; ++i) if ($i ~ /^(wave_compress_seconds|wave_evaluate_seconds|finished_at|ranks|threads|blas_core)$/) skip[i] = 1 }
    { line = ""; sep = ""; for (i = 1; i <= NF; ++i) if (!skip[i]) { line = line sep $i; sep = OFS }; print line }' "$1"
}
strip "$work/full/results.csv" >"$work/full.csv"
strip "$work/killed/results.csv" >"$work/resumed.csv"
[ "$(wc -l <"$work/full.csv")" -eq 41 ] || fail "uninterrupted table has $(wc -l <"$work/full.csv") lines, expected 41"
# Integers (kept neurons, counts) and text exactly, other numbers to 1e-12 relative (tests/regression/
# check.py): the ranks' activations are products of fewer rows, and BLAS kernels may round a row of a
# product differently with the number of rows (OpenBLAS's AVX-512 DGEMM does; its AVX2 one does not).
python3 "$root/tests/regression/check.py" same-table "$work/full.csv" "$work/resumed.csv" >"$work/diff.txt" ||
  { cat "$work/diff.txt"; fail "tables differ"; }
[ "$(wc -l <"$work/killed/results.jsonl")" -eq 40 ] || fail "results.jsonl does not hold 40 rows"
# Every CSV line has the header's number of fields, and every point appears once.
awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad }' "$work/killed/results.csv" || fail "a truncated CSV row"
col="$(head -1 "$work/killed/results.csv" | tr ',' '\n' | grep -n '^point$' | cut -d: -f1)"
dups="$(tail -n +2 "$work/killed/results.csv" | cut -d, -f"$col" | sort | uniq -d | wc -l)"
[ "$dups" -eq 0 ] || fail "duplicated rows"
echo "sweep_resume: resumed table equals the uninterrupted one (40 rows)"
