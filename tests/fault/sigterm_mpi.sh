#!/usr/bin/env bash
# SIGTERM to a sweep under mpiexec -n 2 (what a scheduler sends at a job's time limit): every rank
# stops after the same wave, the rows so far are on disk, the resume hint is printed once, and
# --resume completes the grid with each point once. Two ways the signal arrives: to mpiexec only
# (Open MPI's mpiexec passes SIGTERM on to the ranks, then SIGKILLs them after
# odls_base_sigkill_timeout, 1 s by default: enough for this test's short waves, not for long ones,
# which then end as a crash that --resume repairs), and to the ranks only (as `scancel --signal=TERM`
# or a time limit reaches the tasks of an `srun` step, how jobs/slurm/*.sbatch run). The ranks are frozen (SIGSTOP) once the first row is on disk and the signal is
# queued while they are frozen, so it arrives with points left whatever the machine's speed.
# Usage: sigterm_mpi.sh /path/to/idprune /path/to/source_root /path/to/mpiexec
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

points=20
grid="$(log_grid $points 1e-4 5)"
sweep_args=(sweep --model "$model" --data "$data" --strategy greedy --rule eps --grid "$grid" --wave 1
  --compression-size 300 --test-size 200 --seed 7 --engine lapack --threads 1)

# pending SIGNUM PID: true when the (frozen) process has the signal pending (/proc ShdPnd mask).
pending() {
  local mask
  mask="$(awk '/^ShdPnd:/ { print $2 }' "/proc/$2/status" 2>/dev/null)" || return 1
  [ -n "$mask" ] && (((16#$mask >> ($1 - 1)) & 1))
}

# stop_case NAME TARGETS: TARGETS is "mpiexec" or "ranks" (SIGTERM), or "usr1" (SIGUSR1 to mpiexec,
# which forwards it without killing the ranks: the stop must be clean).
stop_case() {
  local name="$1" targets="$2" out="$work/$1"
  "$mpiexec" --oversubscribe -n 2 "$idprune" "${sweep_args[@]}" --out "$out" >"$work/$name.log" 2>&1 &
  local mpid=$!
  pids+=("$mpid")
  for _ in $(seq 1 6000); do
    if [ -f "$out/results.jsonl" ] && [ "$(wc -l <"$out/results.jsonl")" -ge 1 ]; then break; fi
    kill -0 "$mpid" 2>/dev/null || break
    sleep 0.01
  done
  local ranks
  ranks="$(pgrep -P "$mpid" || true)"
  [ "$(echo "$ranks" | wc -w)" -eq 2 ] || fail "$name: expected 2 rank processes, found '$ranks'"
  pids+=($ranks)
  # shellcheck disable=SC2086
  kill -STOP $ranks
  local frozen
  frozen="$(wc -l <"$out/results.jsonl")"
  [ "$frozen" -lt $((points - 1)) ] || fail "$name: nearly done before SIGSTOP"
  local t0 rc=0
  t0="$(date +%s.%N)"
  if [ "$targets" = ranks ]; then
    # shellcheck disable=SC2086
    kill -TERM $ranks
  elif [ "$targets" = usr1 ]; then
    kill -USR1 "$mpid"
    # Until mpiexec has forwarded it to both frozen ranks (bounded), so that it arrives mid-sweep.
    local r ok
    for _ in $(seq 1 200); do
      ok=1
      for r in $ranks; do pending 10 "$r" || ok=0; done
      [ "$ok" = 0 ] || break
      sleep 0.05
    done
    [ "$ok" = 1 ] || fail "$name: mpiexec did not forward SIGUSR1 to the ranks within 10 s"
  else
    kill -TERM "$mpid"
  fi
  # Through mpiexec, the ranks are left frozen: mpiexec itself sends them SIGCONT with the SIGTERM
  # (they would otherwise run on until it gets round to forwarding, over a second when loaded).
  if [ "$targets" != mpiexec ]; then
    sleep 0.2
    # shellcheck disable=SC2086
    kill -CONT $ranks 2>/dev/null || true
  fi
  wait "$mpid" || rc=$?
  local secs
  secs="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  [ "$rc" -ne 0 ] || { cat "$work/$name.log"; fail "$name: mpiexec exited 0 after SIGTERM"; }
  # No rank outlives mpiexec (it would race the resumed run for the folder).
  local left
  left="$(still_running "--out $out")"
  [ -z "$left" ] || fail "$name: processes $left still run after mpiexec exited"
  # Each rank stopped cleanly: the hint once (rank 0), no error. Through mpiexec the ranks may instead
  # be SIGKILLed by it before their wave ends (a loaded machine): that run is a crash, still resumable.
  local hints how=clean
  hints="$(grep -c "Resume with: idprune sweep --config" "$work/$name.log" || true)"
  if [ "$targets" = mpiexec ] && [ "$hints" -eq 0 ]; then
    how="killed by mpiexec before the wave ended"
  else
    [ "$hints" -eq 1 ] || { cat "$work/$name.log"; fail "$name: the resume hint is printed $hints times"; }
  fi
  if grep -q "error" "$work/$name.log"; then cat "$work/$name.log"; fail "$name: an error after SIGTERM"; fi
  local n
  n="$(wc -l <"$out/results.jsonl")"
  # Only the wave in flight when the signal came (1 point) may be added.
  [ -z "${VERBOSE:-}" ] || cat "$work/$name.log"
  # Through mpiexec with SIGTERM, mpiexec sends SIGCONT before it forwards the SIGTERM, and on a loaded
  # machine waves run in between: that case only needs a resumable stop (checked below).
  if [ "$targets" != mpiexec ]; then
    [ "$n" -le $((frozen + 1)) ] || fail "$name: $n rows after the signal, $frozen when it was sent"
  fi
  awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad }' "$out/results.csv" || fail "$name: a truncated CSV row"
  [ -z "${VERBOSE:-}" ] || cat "$work/$name.log"
  echo "sigterm_mpi: $name: stopped ($how) with $n of $points rows in ${secs} s (mpiexec exit $rc)"

  "$mpiexec" --oversubscribe -n 2 "$idprune" sweep --config "$out/config.ini" --resume >"$work/$name-2.log" 2>&1 ||
    { cat "$work/$name-2.log"; fail "$name: resume failed"; }
  [ "$(wc -l <"$out/results.jsonl")" -eq $points ] || fail "$name: resume did not complete the grid"
  [ "$(tail -n +2 "$out/results.csv" | wc -l)" -eq $points ] || fail "$name: CSV rows after resume"
  local col dups
  col="$(head -1 "$out/results.csv" | tr ',' '\n' | grep -n '^point$' | cut -d: -f1)"
  dups="$(tail -n +2 "$out/results.csv" | cut -d, -f"$col" | sort | uniq -d | wc -l)"
  [ "$dups" -eq 0 ] || fail "$name: duplicated rows after resume"
}

stop_case to-mpiexec mpiexec
stop_case to-ranks ranks
stop_case usr1-to-mpiexec usr1
echo "sigterm_mpi: ok"
