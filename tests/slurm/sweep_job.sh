#!/usr/bin/env bash
# CTest `slurm_sweep_job`: submits jobs/slurm/sweep.sbatch (2 ranks through srun --mpi=pmix) with a tiny
# grid on the embedded default model and data to a private single-node SLURM (run_job.sh), checks its
# results (check_sweep.sh), including a SIGTERM-and-requeue round.
# Usage: sweep_job.sh IDPRUNE_BIN SOURCE_ROOT       Exit: 0 pass, 1 fail, 77 skip (no SLURM here)
set -uo pipefail
bin=$(readlink -f "$1")
root=$(readlink -f "$2")
here="$root/tests/slurm"

if ! "$bin" sweep --help >/dev/null 2>&1; then
  # Until `idprune sweep` exists, prove the SLURM machinery with the smoke job instead.
  echo "slurm_sweep_job: NOTE: '$bin' has no 'sweep' subcommand yet; running the smoke job" \
    "(srun --mpi=pmix, 2 tasks, idprune --version) instead of jobs/slurm/sweep.sbatch" >&2
  IDPRUNE_BIN="$bin" exec bash "$here/run_job.sh" "$here/smoke.sbatch" "$here/check_smoke.sh"
fi

export IDPRUNE_BIN="$bin"
export MODEL="$root/data/models/reference-small.safetensors"
export DATA="$root/data/fashion-mnist-small"
export STRATEGY=greedy RULE=eps COMPRESSION_SIZE=200 SEED=0
export GRID=0.01,0.1,1
export REQUEUE_GRID=0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.5,1,2,5
export SWEEP_SBATCH="$root/jobs/slurm/sweep.sbatch"
for f in "$MODEL" "$DATA"; do
  [ -e "$f" ] || { echo "slurm_sweep_job: embedded default '$f' missing" >&2; exit 1; }
done
exec bash "$here/run_job.sh" "$SWEEP_SBATCH" "$here/check_sweep.sh" --ntasks=2 --cpus-per-task=1 --time=10
