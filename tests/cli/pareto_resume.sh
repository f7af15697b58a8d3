#!/usr/bin/env bash
# `idprune pareto` guards its results folder as sweep does and resumes with its finished strategies
# kept: a second run into a folder with results is refused without --resume; a run killed (SIGKILL)
# after its first strategy, or stopped by SIGINT, resumes computing only the strategies left, and the
# tables equal an uninterrupted run's (timings and parallelisation aside); two runs on one folder at
# once: the second is refused naming the first.
# Usage: pareto_resume.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

args=(pareto --model "$model" --data "$data" --strategies greedy,svd,budget,joint --budgets 0.1,0.3
  --compression-size 300 --validation-size 400 --test-size 500 --seed 4 --threads 1 --step 0.1 --no-report)
# The columns that legitimately differ between runs.
strip() {
  awk -F, -v OFS=, '
    NR == 1 { for (i = 1; i <= NF; ++i) if ($i ~ /(_seconds|^seconds|^ranks|^threads|^blas_core)$/) skip[i] = 1 }
    { line = ""; sep = ""; for (i = 1; i <= NF; ++i) if (!skip[i]) { line = line sep $i; sep = OFS }; print line }' "$1"
}
same_tables() {  # same_tables DIR WHAT
  local f
  for f in pareto.csv pareto-curves.csv pareto-summary.csv descent-path-joint.csv; do
    diff <(strip "$work/ref/$f") <(strip "$1/$f") >"$work/diff.txt" || { cat "$work/diff.txt"; fail "$2: $f differs"; }
  done
}
records() { [ -f "$1/pareto-strategies.jsonl" ] && grep -c '"strategy"' "$1/pareto-strategies.jsonl" || echo 0; }

"$idprune" "${args[@]}" --out "$work/ref" >"$work/ref.log" 2>&1 || { cat "$work/ref.log"; fail "pareto failed"; }
[ "$(records "$work/ref")" -eq 4 ] || fail "not 4 strategy records"

# The guard: results in the folder and no --resume.
rc=0
"$idprune" "${args[@]}" --out "$work/ref" >"$work/again.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a second run over a folder with results was accepted"
grep -q "already holds results: use --resume or another --out" "$work/again.log" || { cat "$work/again.log"; fail "unclear guard"; }
# --resume with everything finished: nothing computed, the tables unchanged.
"$idprune" "${args[@]}" --out "$work/ref" --resume >"$work/noop.log" 2>&1 || { cat "$work/noop.log"; fail "resume of a finished study"; }
grep -q "(4 already in" "$work/noop.log" || { cat "$work/noop.log"; fail "a finished study was computed again"; }
same_tables "$work/ref" "finished study resumed"

# Killed (SIGKILL) once the first strategy is recorded; --resume computes the rest.
"$idprune" "${args[@]}" --out "$work/k" >"$work/k.log" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 1 6000); do
  [ "$(records "$work/k")" -ge 1 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
kill -9 "$pid" 2>/dev/null || fail "the study ended before it could be killed"
wait "$pid" 2>/dev/null || true
done_before="$(records "$work/k")"
[ "$done_before" -ge 1 ] && [ "$done_before" -lt 4 ] || fail "killed with $done_before strategies recorded"
"$idprune" "${args[@]}" --out "$work/k" --resume >"$work/k2.log" 2>&1 || { cat "$work/k2.log"; fail "resume after SIGKILL"; }
grep -q "($done_before already in" "$work/k2.log" || { cat "$work/k2.log"; fail "the finished strategies were not kept"; }
[ "$(records "$work/k")" -eq 4 ] || fail "not 4 records after the resume"
same_tables "$work/k" "killed and resumed"
echo "pareto_resume: killed with $done_before of 4 strategies recorded, resumed"

# Two runs at once on one folder: the second is refused, naming the first.
"$idprune" "${args[@]}" --out "$work/c" >"$work/c1.log" 2>&1 &
pid=$!
pids+=("$pid")
for _ in $(seq 1 3000); do
  [ -e "$work/c/idprune.lock" ] && break
  sleep 0.01
done
rc=0
"$idprune" "${args[@]}" --out "$work/c" --resume >"$work/c2.log" 2>&1 || rc=$?
kill -0 "$pid" 2>/dev/null || fail "the first run ended before the second started"
[ "$rc" -ne 0 ] || fail "a second run on a locked folder was accepted"
grep -q "is in use by idprune pareto, host .*, pid $pid," "$work/c2.log" || { cat "$work/c2.log"; fail "the holder is not named"; }
wait "$pid" || { cat "$work/c1.log"; fail "the first run failed"; }
same_tables "$work/c" "beside a refused second run"
echo "pareto_resume: ok"
