# Shared set-up of the fault tests (sourced, not a test itself: tests/CMakeLists.txt registers only
# tests/fault/*.sh). Arguments of the sourcing script: /path/to/idprune /path/to/source_root
# [/path/to/mpiexec]. Defines what tests/cli/lib/common.sh does (idprune, root, data, model, work,
# pids, fail, ...), mpiexec (the one given), log_grid, still_running and the fault-injection matrix
# (setup_fault_matrix, expect_fault); exits 77 (skipped) without mpiexec.
# shellcheck source=../../cli/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../cli/lib/common.sh"
mpiexec="${3:-mpiexec}"
command -v "$mpiexec" >/dev/null 2>&1 || {
  echo "$test_name: no mpiexec, skipped"
  exit 77
}

# log_grid N FIRST PER_DECADE: N comma-separated eps values from FIRST, PER_DECADE per decade.
log_grid() {
  awk -v n="$1" -v a="$2" -v d="$3" 'BEGIN { for (i = 0; i < n; ++i) printf "%s%.6g", (i ? "," : ""), a * 10 ^ (i / d) }'
}

# still_running PATTERN: waits up to 5 s for every process whose command line contains PATTERN (e.g.
# "--out DIR") to end; prints the PIDs of those still there (empty when none is left).
still_running() {
  local left=""
  for _ in $(seq 1 50); do
    left="$(pgrep -f -- "$1" || true)"
    [ -n "$left" ] || break
    sleep 0.1
  done
  echo "$left"
}

# ---- One rank fails: the fault-injection matrix ------------------------------------------------
# Each rank runs through a wrapper that records its exit status, so "every rank exits non-zero" is
# checked per rank, not only through mpiexec's own status. Open MPI's mpiexec ends the other ranks
# as soon as one exits non-zero, which would hide a rank that never exits by itself: that is turned
# off, so each rank must find its own way out.
setup_fault_matrix() {
  cat >"$work/wrap.sh" <<'EOF'
#!/usr/bin/env bash
"$@"
rc=$?
echo "${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}} $rc" >>"$IDPRUNE_TEST_EXITS"
exit $rc
EOF
  export IDPRUNE_TEST_EXITS="$work/exits"
  export OMPI_MCA_orte_abort_on_non_zero_status=0
  cases=0
}

# expect_fault MODE COMMAND NAME RANKS ENGINE PHRASE MODEL1 DATA1 [IDPRUNE_FAULT]: runs the caller's
# `fault_args COMMAND MODEL DATA ENGINE OUT` (one rank's arguments) under mpiexec with RANKS ranks;
# rank 1 gets MODEL1 and DATA1, the others the shipped model and data (mpiexec's MPMD syntax, as a
# node with a stale copy would). Every path a rank is given lies in a folder of its own for the case
# (symbolic links to the files), so the processes of a case can be found afterwards. MODE collective:
# every rank must exit by itself with a non-zero status (a collective check caught the error); MODE
# abort: the failing rank ends the job (MPI_Abort) and mpiexec must exit non-zero. Checks the exits,
# that the error is printed once, names rank 1 and contains PHRASE, the time (60 s: a hang is a
# failure), and that no process outlives the job. Prints one line of the matrix; sets last_out, last_log.
expect_fault() {
  local mode="$1" command="$2" name="$3" ranks="$4" engine="$5" phrase="$6" model1="$7" data1="$8" fault="${9:-}"
  local id="$command-$name-$engine-$ranks"
  local case_dir="$work/case-$id"
  local out="$case_dir/out" log="$work/log-$id"
  mkdir -p "$case_dir/good" "$case_dir/rank1"
  ln -sfn "$model" "$case_dir/good/$(basename "$model")"
  ln -sfn "$data" "$case_dir/good/$(basename "$data")"
  ln -sfn "$model1" "$case_dir/rank1/$(basename "$model1")"
  ln -sfn "$data1" "$case_dir/rank1/$(basename "$data1")"
  rm -f "$IDPRUNE_TEST_EXITS"
  local cmd=("$mpiexec" --oversubscribe)
  local r
  for ((r = 0; r < ranks; ++r)); do
    [ "$r" -gt 0 ] && cmd+=(:)
    if [ "$r" -eq 1 ]; then
      # shellcheck disable=SC2207
      cmd+=(-n 1 bash "$work/wrap.sh" "$idprune" $(fault_args "$command" "$case_dir/rank1/$(basename "$model1")" \
        "$case_dir/rank1/$(basename "$data1")" "$engine" "$out"))
    else
      # shellcheck disable=SC2207
      cmd+=(-n 1 bash "$work/wrap.sh" "$idprune" $(fault_args "$command" "$case_dir/good/$(basename "$model")" \
        "$case_dir/good/$(basename "$data")" "$engine" "$out"))
    fi
  done
  local t0 t1 rc=0
  t0="$(date +%s.%N)"
  IDPRUNE_FAULT="$fault" timeout 60 "${cmd[@]}" >"$log" 2>&1 || rc=$?
  t1="$(date +%s.%N)"
  local secs
  secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  [ "$rc" -ne 124 ] || { cat "$log"; fail "$id: no exit within 60 s (hang)"; }
  # (Open MPI's mpiexec exits 0 when no rank aborted, whatever the ranks' statuses: see above.)
  [ "$mode" != abort ] || [ "$rc" -ne 0 ] || { cat "$log"; fail "$id: mpiexec exit 0"; }
  # One report, from one rank, naming the failing rank and what failed.
  local reports
  reports="$(grep -c "^idprune $command: error" "$log" || true)"
  [ -z "${VERBOSE:-}" ] || cat "$log"
  [ "$reports" -eq 1 ] || { cat "$log"; fail "$id: the error is printed $reports times"; }
  grep "^idprune $command: error" "$log" | grep -q "rank 1" || { cat "$log"; fail "$id: the error does not name rank 1"; }
  grep "^idprune $command: error" "$log" | grep -q -- "$phrase" || { cat "$log"; fail "$id: the error lacks '$phrase'"; }
  # Every rank that exited by itself did so with a non-zero status; in collective mode, every rank.
  local exited=0
  [ ! -f "$IDPRUNE_TEST_EXITS" ] || exited="$(wc -l <"$IDPRUNE_TEST_EXITS")"
  if [ "$exited" -gt 0 ]; then
    awk '$2 == 0 { bad = 1 } END { exit bad }' "$IDPRUNE_TEST_EXITS" ||
      { cat "$log" "$IDPRUNE_TEST_EXITS"; fail "$id: a rank exited 0"; }
  fi
  [ "$mode" != collective ] || [ "$exited" -eq "$ranks" ] || { cat "$log"; fail "$id: $exited of $ranks ranks exited by themselves"; }
  # No rank outlives the job (mpiexec kills the others after an MPI_Abort).
  local left
  left="$(still_running "$case_dir/")"
  [ -z "$left" ] || fail "$id: processes $left still run after mpiexec exited"
  printf '%s: %-8s %-16s engine=%-9s ranks=%s path=%-10s mpiexec_exit=%-3s seconds=%-5s ranks_exited_nonzero=%s/%s\n' \
    "$test_name" "$command" "$name" "$engine" "$ranks" "$mode" "$rc" "$secs" "$exited" "$ranks"
  cases=$((cases + 1))
  last_out="$out"
  last_log="$log"
}
