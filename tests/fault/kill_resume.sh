#!/usr/bin/env bash
# A sweep killed with SIGKILL while a wave of several points is in flight, under 2 threads and under
# mpiexec -n 2 (every process of the job killed at once, as a scheduler does), then restarted with
# --resume, ends with exactly the table of an uninterrupted run (timing and parallelisation columns
# aside), with no duplicated, missing or truncated row. A last line cut mid-way (a crash during the
# append) is dropped with a note and recomputed; a damaged line before the last is refused.
# Usage: kill_resume.sh /path/to/idprune /path/to/source_root /path/to/mpiexec
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

points=24
grid="$(log_grid $points 1e-3 8)"
# Waves of 4 points whatever the thread count, so that rows (their `wave` column included) do not
# depend on where a run was cut or on how it was parallelised.
sweep_args=(sweep --model "$model" --data "$data" --strategy greedy --rule eps --grid "$grid" --wave 4
  --compression-size 1000 --test-size 500 --seed 7 --engine lapack)

# The columns that legitimately differ between runs (timings, dates, how the run was parallelised).
strip() {
  awk -F, -v OFS=, '
    NR == 1 { for (i = 1; i <= NF; ++i) if ($i ~ /^(wave_compress_seconds|wave_evaluate_seconds|finished_at|ranks|threads|blas_core)$/) skip[i] = 1 }
    { line = ""; sep = ""; for (i = 1; i <= NF; ++i) if (!skip[i]) { line = line sep $i; sep = OFS }; print line }' "$1"
}
# check_table DIR WHAT REF: DIR's table equals REF's, one well-formed row per point.
check_table() {
  local dir="$1" what="$2" ref="$3"
  [ "$(wc -l <"$dir/results.jsonl")" -eq $points ] || fail "$what: results.jsonl has $(wc -l <"$dir/results.jsonl") rows"
  awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad }' "$dir/results.csv" || fail "$what: a truncated CSV row"
  diff <(strip "$ref/results.csv") <(strip "$dir/results.csv") >"$work/diff.txt" ||
    { cat "$work/diff.txt"; fail "$what: the table differs from the uninterrupted run's"; }
}
# wait_rows DIR N PID: until DIR/results.jsonl holds >= N rows (or PID ended).
wait_rows() {
  for _ in $(seq 1 6000); do
    if [ -f "$1/results.jsonl" ] && [ "$(wc -l <"$1/results.jsonl")" -ge "$2" ]; then return 0; fi
    kill -0 "$3" 2>/dev/null || return 0
    sleep 0.01
  done
}

"$idprune" "${sweep_args[@]}" --threads 2 --out "$work/ref" >"$work/ref.log" 2>&1 ||
  { cat "$work/ref.log"; fail "the uninterrupted sweep failed"; }
[ "$(wc -l <"$work/ref/results.jsonl")" -eq $points ] || fail "the uninterrupted sweep wrote $(wc -l <"$work/ref/results.jsonl") rows"

# 1. Threads: killed once the first wave is on disk (the second, 4 points, is in flight).
"$idprune" "${sweep_args[@]}" --threads 2 --out "$work/t" >"$work/t.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_rows "$work/t" 4 "$pid"
kill -9 "$pid" 2>/dev/null || fail "threads: the sweep ended before it could be killed (make it longer)"
wait "$pid" 2>/dev/null || true
n="$(wc -l <"$work/t/results.jsonl")"
[ "$n" -lt $points ] || fail "threads: all rows were on disk before the kill"
echo "kill_resume: threads: killed with $n of $points rows on disk"
"$idprune" "${sweep_args[@]}" --threads 2 --out "$work/t" --resume >"$work/t2.log" 2>&1 ||
  { cat "$work/t2.log"; fail "threads: resume failed"; }
check_table "$work/t" "threads" "$work/ref"

# 2. MPI: mpiexec and both ranks killed at once once the first wave is on disk. The reference is an
# uninterrupted run on 2 ranks too: per-layer tolerances and ratios come from reductions whose
# rounding depends on the number of ranks (last digits), unlike the kept neurons and accuracies.
"$mpiexec" --oversubscribe -n 2 "$idprune" "${sweep_args[@]}" --threads 1 --out "$work/ref-mpi" >"$work/ref-mpi.log" 2>&1 ||
  { cat "$work/ref-mpi.log"; fail "the uninterrupted MPI sweep failed"; }
"$mpiexec" --oversubscribe -n 2 "$idprune" "${sweep_args[@]}" --threads 1 --out "$work/m" >"$work/m.log" 2>&1 &
mpid=$!
pids+=("$mpid")
wait_rows "$work/m" 4 "$mpid"
ranks="$(pgrep -P "$mpid" || true)"
[ -n "$ranks" ] || fail "mpi: the sweep ended before it could be killed (make it longer)"
# shellcheck disable=SC2086
kill -9 $ranks "$mpid" 2>/dev/null || true
pids+=($ranks)
wait "$mpid" 2>/dev/null || true
n="$(wc -l <"$work/m/results.jsonl")"
[ "$n" -lt $points ] || fail "mpi: all rows were on disk before the kill"
echo "kill_resume: mpi: killed with $n of $points rows on disk"
"$mpiexec" --oversubscribe -n 2 "$idprune" "${sweep_args[@]}" --threads 1 --out "$work/m" --resume \
  >"$work/m2.log" 2>&1 || { cat "$work/m2.log"; fail "mpi: resume failed"; }
check_table "$work/m" "mpi" "$work/ref-mpi"

# 3. A crash in the middle of an append: the last line of both files cut mid-way. The cut row is
# dropped with a note and recomputed, the rest kept.
cp -r "$work/ref" "$work/c"
for f in results.jsonl results.csv; do
  size="$(stat -c %s "$work/c/$f")"
  truncate -s $((size - 40)) "$work/c/$f"
done
[ "$(tail -c 1 "$work/c/results.jsonl" | od -An -c | tr -d ' ')" != '\n' ] || fail "the cut left a whole line"
"$idprune" "${sweep_args[@]}" --threads 2 --out "$work/c" --resume >"$work/c.log" 2>&1 ||
  { cat "$work/c.log"; fail "truncated: resume failed"; }
grep -q "dropped an incomplete last line" "$work/c.log" || { cat "$work/c.log"; fail "truncated: no note"; }
grep -q "($((points - 1)) already in" "$work/c.log" || { cat "$work/c.log"; fail "truncated: not $((points - 1)) rows kept"; }
check_table "$work/c" "truncated" "$work/ref"

# 4. A damaged line before the last is not silently dropped.
cp -r "$work/ref" "$work/d"
sed -i '3s/.*/{"strategy": "greedy", "cut/' "$work/d/results.jsonl"
rc=0
"$idprune" "${sweep_args[@]}" --threads 1 --out "$work/d" --resume >"$work/d.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "damaged: a damaged line 3 was accepted"
grep -q "line 3 is not a complete JSON object" "$work/d.log" || { cat "$work/d.log"; fail "damaged: unclear error"; }
echo "kill_resume: ok"
