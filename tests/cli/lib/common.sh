# Shared set-up of the command-line tests (sourced, not a test itself: tests/CMakeLists.txt registers
# only tests/cli/*.sh). Arguments of the sourcing script: /path/to/idprune /path/to/source_root.
# Defines idprune, root, data, model (the embedded defaults), work (a temporary folder removed on
# exit), pids (processes killed on exit), fail, mpiexec (empty without one), mpi, rows, now, since,
# wait_for.
set -euo pipefail
idprune="$1"
root="$2"
test_name="$(basename "$0" .sh)"
data="$root/data/fashion-mnist-small"
model="$root/data/models/fashion-mnist-small.safetensors"
work="$(mktemp -d)"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "$test_name: $*"
  exit 1
}
mpiexec="$(command -v mpiexec || true)"
# mpi N ARGS...: idprune under mpiexec -n N, or on one process where there is no mpiexec.
mpi() {
  local n="$1"
  shift
  if [ -n "$mpiexec" ]; then "$mpiexec" --oversubscribe -n "$n" "$idprune" "$@"; else "$idprune" "$@"; fi
}
# rows DIR: the lines of DIR/results.jsonl (0 when there is none).
rows() { if [ -f "$1/results.jsonl" ]; then wc -l <"$1/results.jsonl"; else echo 0; fi; }
now() { date +%s.%N; }
# since T0: seconds from T0 (a `now`) until now.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds; false after SECONDS.
wait_for() {
  local end
  end="$(awk -v a="$(now)" -v s="$1" 'BEGIN { printf "%f", a + s }')"
  shift
  while ! "$@"; do
    awk -v a="$(now)" -v e="$end" 'BEGIN { exit !(a > e) }' && return 1
    sleep 0.01
  done
}
