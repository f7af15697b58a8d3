# shellcheck shell=bash
# Shared by jobs/local/*.sh (sourced, not run): finds idprune and starts it with threads only or under
# mpirun. Variables it reads (all optional):
#   IDPRUNE_BIN  idprune executable (default: `idprune` on PATH, else build/default/drivers/idprune of
#                this checkout)
#   RANKS        MPI ranks (default 1: no mpirun, one process)
#   THREADS      TBB threads per rank (default: cores / RANKS, at least 1)
#   MPIRUN       the launcher (default: mpirun)
#   MPIRUN_ARGS  extra launcher options, word-split, e.g. "--oversubscribe" when RANKS x THREADS exceeds
#                the cores, or "--hostfile hosts"
# Binding: Open MPI binds each rank to one core when there are at most 2 ranks (to a socket above that),
# so a rank's TBB threads would share a single core. When THREADS > 1, ranks are therefore started with
# --bind-to none and the operating system spreads the threads; with THREADS = 1 the default binding is kept.
# Running as root: Open MPI refuses unless you export OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 yourself (these scripts deliberately do not).

idprune_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${IDPRUNE_BIN:-}" ]; then
  IDPRUNE_BIN=$(command -v idprune || echo "$idprune_root/build/default/drivers/idprune")
fi
if [ ! -x "$IDPRUNE_BIN" ]; then
  echo "$(basename "$0"): idprune executable '$IDPRUNE_BIN' not found (build it, or set IDPRUNE_BIN)" >&2
  exit 2
fi
RANKS=${RANKS:-1}
cores=$(nproc)
THREADS=${THREADS:-$((cores / RANKS > 0 ? cores / RANKS : 1))}
# OpenBLAS would otherwise start one thread per core in every rank.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$THREADS}

# Runs `$IDPRUNE_BIN "$@"`, directly when RANKS = 1, else under $MPIRUN -n $RANKS.
launch() {
  local launcher=()
  if [ "$RANKS" -gt 1 ]; then
    launcher=("${MPIRUN:-mpirun}" -n "$RANKS")
    if [ "$THREADS" -gt 1 ]; then launcher+=(--bind-to none); fi
    # shellcheck disable=SC2206  # MPIRUN_ARGS is a word list on purpose
    launcher+=(${MPIRUN_ARGS:-})
  fi
  echo "$(basename "$0"): ${launcher[*]}${launcher[*]:+ }$IDPRUNE_BIN $*" >&2
  "${launcher[@]}" "$IDPRUNE_BIN" "$@"
}

# Appends "OPTION VALUE" to the array `args` when VALUE is not empty.
add() { if [ -n "$2" ]; then args+=("$1" "$2"); fi; }
