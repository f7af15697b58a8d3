#!/usr/bin/env bash
# Checks a finished jobs/slurm/sweep.sbatch job (run by run_job.sh, with SLURM_CONF set), then, unless
# SLURM_TEST_REQUEUE=0, exercises the graceful stop: a second sweep job gets SIGTERM midway, must
# requeue itself and end COMPLETED with every grid point exactly once.
# Usage: check_sweep.sh WORK JOB_ID
# Environment: GRID (the grid the job was given), SWEEP_SBATCH, REQUEUE_GRID, REQUEUE_EXTRA_ARGS.
set -uo pipefail
work=$1
job_id=$2
say() { echo "check_sweep: $*" >&2; }

# check_results DIR GRID: DIR/results.csv and DIR/results.jsonl hold exactly one row per grid value,
# with the columns of the sweep's command-line contract and metrics in range.
check_results() {
  python3 - "$1" "$2" <<'EOF'
import csv, json, math, sys
folder, grid = sys.argv[1], [float(v) for v in sys.argv[2].split(",")]
def fail(msg):
    print(f"check_sweep: {folder}: {msg}", file=sys.stderr)
    sys.exit(1)
try:
    with open(f"{folder}/results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
        header = rows[0].keys() if rows else []
    with open(f"{folder}/results.jsonl") as f:
        lines = [json.loads(line) for line in f if line.strip()]
except (OSError, ValueError) as e:
    fail(f"unreadable results: {e}")
need = ["strategy", "rule", "value", "test_accuracy", "agreement", "params", "params_fraction",
        "hidden_kept_fraction", "kept_per_layer"]
missing = [c for c in need if c not in header]
if missing:
    fail(f"results.csv lacks columns {missing} (has {list(header)})")
for name, table in (("results.csv", rows), ("results.jsonl", lines)):
    values = sorted(float(r["value"]) for r in table)
    if len(values) != len(grid) or any(not math.isclose(a, b, rel_tol=1e-9) for a, b in zip(values, sorted(grid))):
        fail(f"{name} has values {values}, expected each of {sorted(grid)} once")
for r in rows:
    for col in ("test_accuracy", "agreement", "params_fraction", "hidden_kept_fraction"):
        x = float(r[col])
        if not 0.0 <= x <= 1.0:
            fail(f"{col} = {x} outside [0, 1] in row {r}")
print(f"check_sweep: {folder}: {len(rows)} rows, one per grid point, columns and ranges fine", file=sys.stderr)
EOF
}

check_results "$work/results/sweep-$job_id" "${GRID:?GRID not set}" || exit 1
grep -q "sweep.sbatch: finished at" "$work/job-$job_id.out" ||
  { say "job log lacks the 'finished' line"; exit 1; }

[ "${SLURM_TEST_REQUEUE:-1}" = 0 ] && exit 0

# --- graceful stop and requeue -----------------------------------------------------------------------
grid=${REQUEUE_GRID:?REQUEUE_GRID not set}
out="$work/results/requeue"
cd "$work" || exit 1
id=$(OUT_DIR="$out" GRID="$grid" EXTRA_ARGS="${REQUEUE_EXTRA_ARGS:-}" timeout 10 sbatch --parsable --output="$work/requeue-%j.out" \
  "${SWEEP_SBATCH:?SWEEP_SBATCH not set}") || { say "sbatch of the requeue job failed"; exit 1; }
state() { timeout 10 scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
# Wait until the sweep has written its first row (bounded), then signal the batch shell, as SLURM does
# before the time limit with --signal=B:TERM.
signalled=0
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  s=$(state)
  case $s in RUNNING | PENDING | CONFIGURING) ;; *) break ;; esac
  if [ "$s" = RUNNING ] && [ "$(tail -n +2 "$out/results.csv" 2>/dev/null | wc -l)" -ge 1 ]; then
    timeout 10 scancel --batch --signal=TERM "$id" && signalled=1
    break
  fi
  sleep 0.1
done
[ "$signalled" = 1 ] || say "note: the sweep ended before it could be signalled (state '$(state)'); the stop and requeue path was not exercised"
# A requeued job waits for its begin time (about 2 minutes); release it at once.
deadline=$((SECONDS + 120))
while ((SECONDS < deadline)); do
  info=$(timeout 10 scontrol show job "$id" 2>/dev/null)
  s=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info")
  case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
  if [ "$s" = PENDING ] && grep -q "Reason=BeginTime" <<<"$info"; then
    timeout 10 scontrol update JobId="$id" StartTime=now >/dev/null 2>&1
  fi
  sleep 0.5
done
restarts=$(sed -n 's/.*Restarts=\([0-9]*\).*/\1/p' <<<"$info")
say "requeue job $id ended $s after $restarts restart(s)"
if [ "$s" != COMPLETED ]; then
  say "requeue job $id did not complete; its log:"
  tail -n 40 "$work/requeue-$id.out" >&2
  exit 1
fi
if [ "$signalled" = 1 ]; then
  if [ "$restarts" -lt 1 ] && ! grep -q "SIGTERM" "$work/requeue-$id.out"; then
    say "job $id was signalled but neither saw the SIGTERM nor requeued"
    exit 1
  fi
  grep -q "requeueing job $id" "$work/requeue-$id.out" && [ "$restarts" -lt 1 ] &&
    { say "job $id said it requeued but Restarts=$restarts"; exit 1; }
fi
check_results "$out" "$grid" || { tail -n 40 "$work/requeue-$id.out" >&2; exit 1; }
