#!/usr/bin/env bash
# One MPI rank of an `idprune sweep` fails: its model file is missing, corrupt or another model, its
# data file is corrupt, or it throws (IDPRUNE_FAULT, see include/idprune/dist/fault.hpp) at a load
# phase, at a wave boundary, inside a pivot engine, or after a wave while the other ranks wait in a
# collective. Each case must end every rank with a non-zero exit within 60 s (a hang is a failure),
# the error printed once and naming the failing rank, and the rows of finished waves kept on disk. Per-rank files are given
# with mpiexec's MPMD syntax (rank 1 gets other arguments), as a node with a stale copy would.
# Prints one line per case (fault, engine, ranks, exit, seconds): the fault-injection matrix.
# (Typical cost: about 45 s on 2 busy cores, mostly mpiexec start-up.)
# Usage: rank_faults.sh /path/to/idprune /path/to/source_root /path/to/mpiexec
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# Per-rank files: a missing model, a truncated model, another architecture, the same architecture
# with one weight changed (a silently different model), a data folder with a truncated image file.
head -c 400000 "$model" >"$work/truncated.safetensors"
cp "$model" "$work/changed.safetensors"
size="$(stat -c %s "$model")"
# The last float32's lowest mantissa byte: the shapes stay, one weight changes by ~1e-7 relative.
printf '\x5a' | dd of="$work/changed.safetensors" bs=1 seek=$((size - 4)) conv=notrunc status=none
cmp -s "$model" "$work/changed.safetensors" && fail "changing a byte did not change the file"
other="$root/data/models/fashion-mnist-reference.safetensors"
mkdir "$work/baddata"
cp "$data"/*.gz "$work/baddata/"
head -c 300000 "$data/train-images-idx3-ubyte.gz" >"$work/baddata/train-images-idx3-ubyte.gz"

# Each rank runs through a wrapper that records its exit status, so "every rank exits non-zero" is
# checked per rank, not only through mpiexec's own status.
cat >"$work/wrap.sh" <<'EOF'
#!/usr/bin/env bash
"$@"
rc=$?
echo "${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}} $rc" >>"$IDPRUNE_TEST_EXITS"
exit $rc
EOF
export IDPRUNE_TEST_EXITS="$work/exits"
# Open MPI's mpiexec ends the other ranks as soon as one exits non-zero, which would hide a rank
# that never exits by itself: turn that off, so each rank must find its own way out.
export OMPI_MCA_orte_abort_on_non_zero_status=0

args() {  # args MODEL DATA ENGINE OUT: one rank's sweep arguments (3 waves of 1 point)
  echo "sweep --model $1 --data $2 --strategy greedy --rule eps --grid 1e-3,1e-2,1e-1 --wave 1"
  echo "--compression-size 300 --test-size 300 --seed 7 --threads 1 --engine $3 --out $4"
}

cases=0
# expect_fault MODE NAME RANKS ENGINE PHRASE MODEL1 DATA1 [IDPRUNE_FAULT]: rank 1 gets MODEL1 and
# DATA1, the others the shipped model and data. MODE collective: every rank must exit by itself with a
# non-zero status (a collective check caught the error); MODE abort: the failing rank ends the job
# (MPI_Abort) and mpiexec must exit non-zero. Checks the exits, the message and the time.
expect_fault() {
  local mode="$1"
  shift
  local name="$1" ranks="$2" engine="$3" phrase="$4" model1="$5" data1="$6" fault="${7:-}"
  local out="$work/out-$name-$engine-$ranks" log="$work/log-$name-$engine-$ranks"
  rm -f "$IDPRUNE_TEST_EXITS"
  local cmd=("$mpiexec" --oversubscribe)
  local r
  for ((r = 0; r < ranks; ++r)); do
    [ "$r" -gt 0 ] && cmd+=(:)
    if [ "$r" -eq 1 ]; then
      # shellcheck disable=SC2207
      cmd+=(-n 1 bash "$work/wrap.sh" "$idprune" $(args "$model1" "$data1" "$engine" "$out"))
    else
      # shellcheck disable=SC2207
      cmd+=(-n 1 bash "$work/wrap.sh" "$idprune" $(args "$model" "$data" "$engine" "$out"))
    fi
  done
  local t0 t1 rc=0
  t0="$(date +%s.%N)"
  IDPRUNE_FAULT="$fault" timeout 60 "${cmd[@]}" >"$log" 2>&1 || rc=$?
  t1="$(date +%s.%N)"
  local secs
  secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  [ "$rc" -ne 124 ] || { cat "$log"; fail "$name ($engine, $ranks ranks): no exit within 60 s (hang)"; }
  # (Open MPI's mpiexec exits 0 when no rank aborted, whatever the ranks' statuses: see above.)
  [ "$mode" != abort ] || [ "$rc" -ne 0 ] || { cat "$log"; fail "$name ($engine, $ranks ranks): mpiexec exit 0"; }
  # One report, from one rank, naming the failing rank and what failed.
  local reports
  reports="$(grep -c "^idprune sweep: error" "$log" || true)"
  [ -z "${VERBOSE:-}" ] || cat "$log"
  [ "$reports" -eq 1 ] || { cat "$log"; fail "$name ($engine, $ranks ranks): the error is printed $reports times"; }
  grep "^idprune sweep: error" "$log" | grep -q "rank 1" ||
    { cat "$log"; fail "$name ($engine, $ranks ranks): the error does not name rank 1"; }
  grep "^idprune sweep: error" "$log" | grep -q -- "$phrase" ||
    { cat "$log"; fail "$name ($engine, $ranks ranks): the error lacks '$phrase'"; }
  # Every rank that exited by itself did so with a non-zero status; in collective mode, every rank.
  local exited=0
  [ ! -f "$IDPRUNE_TEST_EXITS" ] || exited="$(wc -l <"$IDPRUNE_TEST_EXITS")"
  if [ "$exited" -gt 0 ]; then
    awk '$2 == 0 { bad = 1 } END { exit bad }' "$IDPRUNE_TEST_EXITS" ||
      { cat "$log" "$IDPRUNE_TEST_EXITS"; fail "$name ($engine, $ranks ranks): a rank exited 0"; }
  fi
  [ "$mode" != collective ] || [ "$exited" -eq "$ranks" ] ||
    { cat "$log"; fail "$name ($engine, $ranks ranks): $exited of $ranks ranks exited by themselves"; }
  # No rank outlives the job (mpiexec kills the others after an MPI_Abort): the command lines name
  # this case's unique output folder.
  local left
  left="$(still_running "$out")"
  [ -z "$left" ] || fail "$name ($engine, $ranks ranks): processes $left still run after mpiexec exited"
  printf 'rank_faults: %-16s engine=%-9s ranks=%s path=%-10s mpiexec_exit=%-3s seconds=%-5s ranks_exited_nonzero=%s/%s\n' \
    "$name" "$engine" "$ranks" "$mode" "$rc" "$secs" "$exited" "$ranks"
  cases=$((cases + 1))
  last_out="$out"
  last_log="$log"
}

# Faults before any engine runs (the engine does not matter): 3 ranks.
expect_fault collective missing-model 3 tsqr "no-such.safetensors" "$work/no-such.safetensors" "$data"
# Every rank that loads finished before the check: exits are all collective, so all 3 ranks record.
expect_fault collective corrupt-model 3 tsqr "truncated.safetensors" "$work/truncated.safetensors" "$data"
expect_fault collective other-model 3 tsqr "differs from rank 0's" "$other" "$data"
expect_fault collective changed-weight 3 tsqr "differs from rank 0's" "$work/changed.safetensors" "$data"
expect_fault collective corrupt-data 3 tsqr "train-images" "$model" "$work/baddata"
expect_fault collective throw-load-model 3 tsqr "injected fault" "$model" "$data" "rank=1,phase=load-model"
expect_fault collective throw-load-data 3 tsqr "injected fault" "$model" "$data" "rank=1,phase=load-data"

# Faults during the sweep, through every engine: at the boundary of wave 1 (collective check: every
# rank exits by itself, wave 0's row is on disk), and inside the 9th engine call (wave 1; 7 layers a
# wave) while the other ranks enter the engine's collectives (MPI_Abort ends the job).
for engine in tsqr gram sketch scalapack lapack; do
  expect_fault collective throw-wave "3" "$engine" "injected fault" "$model" "$data" "rank=1,phase=wave,wave=1"
  [ "$(wc -l <"$last_out/results.jsonl")" -eq 1 ] || fail "throw-wave ($engine): wave 0's row is not on disk"
  expect_fault abort throw-engine "3" "$engine" "injected fault" "$model" "$data" "rank=1,phase=engine,call=8"
done
# After a wave, outside any check, while the other ranks wait in the write's collective check.
expect_fault abort throw-wave-abort 3 tsqr "injected fault" "$model" "$data" "rank=1,phase=wave-abort,wave=1"
# The same with 2 ranks, and a folder left by an aborted run completes with --resume.
expect_fault collective throw-wave 2 tsqr "injected fault" "$model" "$data" "rank=1,phase=wave,wave=1"
expect_fault abort throw-wave-abort 2 tsqr "injected fault" "$model" "$data" "rank=1,phase=wave-abort,wave=1"
# shellcheck disable=SC2046
"$mpiexec" --oversubscribe -n 2 "$idprune" $(args "$model" "$data" tsqr "$last_out") --resume \
  >"$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "resume after an aborted run failed"; }
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
