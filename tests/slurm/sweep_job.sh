#!/usr/bin/env bash
# CTest `slurm_sweep_job`: submits jobs/slurm/sweep.sbatch (2 ranks through srun --mpi=pmix) with a tiny
# grid on the embedded default model and data to a private single-node SLURM (run_job.sh), checks its
# results (check_sweep.sh), including a SIGTERM-and-requeue round.
# Usage: sweep_job.sh IDPRUNE_BIN SOURCE_ROOT       Exit: 0 pass, 1 fail, 77 skip (no SLURM here)
# SLURM_TEST_MODEL / SLURM_TEST_DATA replace the embedded default model / data.
set -uo pipefail
bin=$(readlink -f "$1")
root=$(readlink -f "$2")
here="$root/tests/slurm"

export IDPRUNE_BIN="$bin"
export MODEL="${SLURM_TEST_MODEL:-$root/data/models/fashion-mnist-small.safetensors}"
export DATA="${SLURM_TEST_DATA:-$root/data/fashion-mnist-small}"
export STRATEGY=greedy RULE=eps COMPRESSION_SIZE=200 SEED=0
export GRID=0.01,0.1,1
# Many one-point waves, so that the SIGTERM of the requeue round reaches the sweep midway.
REQUEUE_GRID=$(seq -s, 0.02 0.02 0.6)
export REQUEUE_GRID REQUEUE_EXTRA_ARGS="--wave 1"
export SWEEP_SBATCH="$root/jobs/slurm/sweep.sbatch"
[ -e "$DATA" ] || { echo "slurm_sweep_job: embedded default data '$DATA' missing" >&2; exit 1; }
[ -e "$MODEL" ] || { echo "slurm_sweep_job: embedded default model '$MODEL' missing" >&2; exit 1; }
# Bounded well inside the CTest timeout (600 s): job 180 s, requeue round 60 + 120 s, start and stop < 1 min.
SLURM_TEST_JOB_TIMEOUT=${SLURM_TEST_JOB_TIMEOUT:-180} bash "$here/run_job.sh" "$SWEEP_SBATCH" "$here/check_sweep.sh" --ntasks=2 --cpus-per-task=1 --time=10
