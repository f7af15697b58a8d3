#!/usr/bin/env bash
# One MPI rank of an `idprune sweep` fails during the sweep: it throws (IDPRUNE_FAULT, see
# include/idprune/dist/fault.hpp) at a wave boundary, inside a pivot engine, or after a wave while the
# other ranks wait in a collective. Each case must end every rank with a non-zero exit within 60 s (a
# hang is a failure), the error printed once and naming the failing rank, and the rows of finished
# waves kept on disk. (Faults while loading: input_faults.sh.)
# Prints one line per case (fault, engine, ranks, exit, seconds): the fault-injection matrix.
# (Typical cost: about 30 s on 2 busy cores, mostly mpiexec start-up.)
# Usage: rank_faults.sh /path/to/idprune /path/to/source_root /path/to/mpiexec
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

setup_fault_matrix
# fault_args COMMAND MODEL DATA ENGINE OUT: one rank's sweep arguments (3 waves of 1 point).
fault_args() {
  echo "sweep --model $2 --data $3 --strategy greedy --rule eps --grid 1e-3,1e-2,1e-1 --wave 1"
  echo "--compression-size 300 --test-size 300 --seed 7 --threads 1 --engine $4 --out $5"
}
args() { fault_args sweep "$@"; }

# Faults while loading (missing, corrupt or different files, injected at the load phases) are
# tests/fault/input_faults.sh, for every subcommand that reads a model and data.

# Faults during the sweep, through every engine: at the boundary of wave 1 (collective check: every
# rank exits by itself, wave 0's row is on disk), and inside the 9th engine call (wave 1; 7 layers a
# wave) while the other ranks enter the engine's collectives (MPI_Abort ends the job).
for engine in tsqr gram sketch scalapack lapack; do
  expect_fault collective sweep throw-wave "3" "$engine" "injected fault" "$model" "$data" "rank=1,phase=wave,wave=1"
  [ "$(wc -l <"$last_out/results.jsonl")" -eq 1 ] || fail "throw-wave ($engine): wave 0's row is not on disk"
  expect_fault abort sweep throw-engine "3" "$engine" "injected fault" "$model" "$data" "rank=1,phase=engine,call=8"
done
# After a wave, outside any check, while the other ranks wait in the write's collective check.
expect_fault abort sweep throw-wave-abort 3 tsqr "injected fault" "$model" "$data" "rank=1,phase=wave-abort,wave=1"
# The same with 2 ranks, and a folder left by an aborted run completes with --resume (the lock file
# of the aborted rank 0 is taken over).
expect_fault collective sweep throw-wave 2 tsqr "injected fault" "$model" "$data" "rank=1,phase=wave,wave=1"
expect_fault abort sweep throw-wave-abort 2 tsqr "injected fault" "$model" "$data" "rank=1,phase=wave-abort,wave=1"
# shellcheck disable=SC2046
"$mpiexec" --oversubscribe -n 2 "$idprune" $(args "$model" "$data" tsqr "$last_out") --resume \
  >"$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "resume after an aborted run failed"; }
grep -q "took over the lock of idprune sweep" "$work/resume.log" || { cat "$work/resume.log"; fail "no takeover note"; }
[ "$(wc -l <"$last_out/results.jsonl")" -eq 3 ] || fail "resume after an aborted run: not 3 rows"

# One rank (no MPI peers): an injected fault is a plain error, exit 1, message once.
for fault in "rank=0,phase=wave,wave=1" "rank=0,phase=engine,call=8"; do
  rc=0
  rm -rf "$work/single"
  # shellcheck disable=SC2046
  IDPRUNE_FAULT="$fault" timeout 60 "$idprune" $(args "$model" "$data" lapack "$work/single") \
    >"$work/single.log" 2>&1 || rc=$?
  [ "$rc" -eq 1 ] || { cat "$work/single.log"; fail "1 rank, $fault: exit $rc, expected 1"; }
  [ "$(grep -c "^idprune sweep: error.*injected fault" "$work/single.log")" -eq 1 ] ||
    { cat "$work/single.log"; fail "1 rank, $fault: not one message"; }
  echo "rank_faults: $fault on 1 rank (lapack): exit $rc"
done
# A malformed IDPRUNE_FAULT is an error, not ignored.
rc=0
IDPRUNE_FAULT="rank=1,phase=nowhere" "$idprune" $(args "$model" "$data" lapack "$work/bad") >"$work/bad.log" 2>&1 ||
  rc=$?
[ "$rc" -ne 0 ] && grep -q "unknown phase" "$work/bad.log" || { cat "$work/bad.log"; fail "bad IDPRUNE_FAULT"; }
echo "rank_faults: ok ($cases cases)"
