#!/usr/bin/env bash
# Several runs on one results folder at the same time, as real concurrent processes, under 1 and 2
# MPI ranks; every row is counted afterwards.
#  1. A sweep writes while 8 `--resume` runs (6 on one rank, 2 under mpiexec -n 2) start on its
#     folder: each of them fails at once naming the running sweep (host and pid); the sweep ends
#     with every point exactly once (a resume used to rewrite the files under it and lose rows).
#  2. Two sweeps started together into one new folder (other seeds; one of them under mpiexec -n 2):
#     exactly one runs, the other fails at once naming it; the table holds one seed, each point once.
#  3. A sweep killed with SIGKILL leaves its lock file; a --resume (1 rank, then 2 ranks) takes the
#     stale lock over with a note and completes the table.
# Usage: concurrent_runs.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

points=60
grid="$(awk -v n=$points 'BEGIN { for (i = 0; i < n; ++i) printf "%s%.6g", (i ? "," : ""), 1e-4 * 10 ^ (i / 15) }')"
args=(sweep --model "$model" --data "$data" --strategy greedy --rule eps --grid "$grid" --wave 1
  --compression-size 300 --test-size 300 --engine lapack --threads 1)

# check_table DIR: every point exactly once in both files, and one seed.
check_table() {
  local dir="$1"
  [ "$(rows "$dir")" -eq $points ] || fail "$dir: results.jsonl has $(rows "$dir") rows, expected $points"
  [ "$(tail -n +2 "$dir/results.csv" | wc -l)" -eq $points ] || fail "$dir: results.csv rows"
  local col
  col="$(head -1 "$dir/results.csv" | tr ',' '\n' | grep -n '^point$' | cut -d: -f1)"
  [ "$(tail -n +2 "$dir/results.csv" | cut -d, -f"$col" | sort -u | wc -l)" -eq $points ] ||
    fail "$dir: duplicated or missing points"
  col="$(head -1 "$dir/results.csv" | tr ',' '\n' | grep -n '^seed$' | cut -d: -f1)"
  [ "$(tail -n +2 "$dir/results.csv" | cut -d, -f"$col" | sort -u | wc -l)" -eq 1 ] || fail "$dir: rows of two seeds"
}
wait_rows() {  # wait_rows DIR N PID: until DIR holds N rows (or PID ended)
  for _ in $(seq 1 3000); do
    [ "$(rows "$1")" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || return 0
    sleep 0.01
  done
}

# 1. Resumes beside a running sweep.
"$idprune" "${args[@]}" --seed 7 --out "$work/a" >"$work/a.log" 2>&1 &
apid=$!
pids+=("$apid")
wait_rows "$work/a" 1 "$apid"
kill -0 "$apid" 2>/dev/null || fail "1: the sweep ended before the resumes started (make it longer)"
rpids=()
for i in 1 2 3 4 5 6 7 8; do
  if [ "$i" -le 6 ]; then
    "$idprune" "${args[@]}" --seed 7 --out "$work/a" --resume >"$work/r$i.log" 2>&1 &
  else
    mpi 2 "${args[@]}" --seed 7 --out "$work/a" --resume >"$work/r$i.log" 2>&1 &
  fi
  rpids+=($!)
  pids+=($!)
done
# A refusal names the holder: the sweep, or a resume that started after the sweep ended and then held
# the folder itself (the mpiexec resumes start last). At least one must name the sweep.
refused=0
named_sweep=0
for i in 1 2 3 4 5 6 7 8; do
  rc=0
  wait "${rpids[$((i - 1))]}" || rc=$?
  if [ "$rc" -ne 0 ]; then
    grep -Eq "is in use by idprune sweep, host .*, pid [0-9]+," "$work/r$i.log" ||
      { cat "$work/r$i.log"; fail "1: resume $i failed without naming the process that holds the folder"; }
    if grep -q "is in use by idprune sweep, host .*, pid $apid," "$work/r$i.log"; then named_sweep=$((named_sweep + 1)); fi
    [ "$(grep -c "^idprune sweep: error" "$work/r$i.log")" -eq 1 ] || { cat "$work/r$i.log"; fail "1: resume $i: not one message"; }
    refused=$((refused + 1))
  else
    # Only a resume that started after the sweep ended may run (it then finds every point done).
    grep -q "($points already in" "$work/r$i.log" || { cat "$work/r$i.log"; fail "1: resume $i ran beside the sweep"; }
  fi
done
rc=0
wait "$apid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$work/a.log"; fail "1: the sweep failed (exit $rc)"; }
[ "$named_sweep" -ge 1 ] || fail "1: no resume was refused naming the sweep (pid $apid; make it longer)"
check_table "$work/a"
[ ! -e "$work/a/idprune.lock" ] || fail "1: the lock file outlived the sweep"
echo "concurrent_runs: 1: $refused of 8 resumes refused while the sweep ran; $points rows, each point once"

# 2. Two sweeps into one new folder at once (1 + 2 ranks, then 1 + 1 rank).
for pair in mpi single; do
  out="$work/b-$pair"
  "$idprune" "${args[@]}" --seed 7 --out "$out" >"$work/b1-$pair.log" 2>&1 &
  p1=$!
  if [ "$pair" = mpi ]; then
    mpi 2 "${args[@]}" --seed 8 --out "$out" >"$work/b2-$pair.log" 2>&1 &
  else
    "$idprune" "${args[@]}" --seed 8 --out "$out" >"$work/b2-$pair.log" 2>&1 &
  fi
  p2=$!
  pids+=("$p1" "$p2")
  rc1=0
  rc2=0
  wait "$p1" || rc1=$?
  wait "$p2" || rc2=$?
  if [ "$rc1" -eq 0 ] && [ "$rc2" -ne 0 ]; then
    loser="$work/b2-$pair.log"
  elif [ "$rc2" -eq 0 ] && [ "$rc1" -ne 0 ]; then
    loser="$work/b1-$pair.log"
  else
    cat "$work/b1-$pair.log" "$work/b2-$pair.log"
    fail "2 ($pair): exits $rc1 and $rc2, expected exactly one success"
  fi
  grep -q "is in use by idprune sweep, host .*, pid " "$loser" || { cat "$loser"; fail "2 ($pair): the loser does not name the holder"; }
  [ "$(grep -c "^idprune sweep: error" "$loser")" -eq 1 ] || { cat "$loser"; fail "2 ($pair): not one message"; }
  check_table "$out"
  echo "concurrent_runs: 2 ($pair): one sweep ran, the other was refused; $points rows of one seed"
done

# 3. A stale lock (a sweep killed with SIGKILL) is taken over, on 1 rank and on 2.
for n in 1 2; do
  out="$work/c$n"
  "$idprune" "${args[@]}" --seed 7 --out "$out" >"$work/c$n.log" 2>&1 &
  cpid=$!
  pids+=("$cpid")
  wait_rows "$out" 2 "$cpid"
  kill -9 "$cpid" 2>/dev/null || fail "3: the sweep ended before it could be killed"
  wait "$cpid" 2>/dev/null || true
  grep -q "pid $cpid," "$out/idprune.lock" || fail "3: no lock file naming the killed sweep"
  mpi "$n" "${args[@]}" --seed 7 --out "$out" --resume >"$work/c$n-resume.log" 2>&1 ||
    { cat "$work/c$n-resume.log"; fail "3 ($n ranks): the resume did not take the stale lock over"; }
  grep -q "took over the lock of idprune sweep, host .*, pid $cpid," "$work/c$n-resume.log" ||
    { cat "$work/c$n-resume.log"; fail "3 ($n ranks): no note about the stale lock"; }
  check_table "$out"
  echo "concurrent_runs: 3 ($n ranks): stale lock of pid $cpid taken over; $points rows"
done
echo "concurrent_runs: ok"
