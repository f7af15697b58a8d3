# Shared set-up of the fault tests (sourced, not a test itself: tests/CMakeLists.txt registers only
# tests/fault/*.sh). Arguments of the sourcing script: /path/to/idprune /path/to/source_root
# [/path/to/mpiexec]. Defines idprune, root, mpiexec, data, model (the embedded defaults), work (a
# temporary folder), pids (processes killed on exit), fail and log_grid; exits 77 (skipped) without
# mpiexec.
set -euo pipefail
idprune="$1"
root="$2"
mpiexec="${3:-mpiexec}"
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
command -v "$mpiexec" >/dev/null 2>&1 || {
  echo "$test_name: no mpiexec, skipped"
  exit 77
}

# log_grid N FIRST PER_DECADE: N comma-separated eps values from FIRST, PER_DECADE per decade.
log_grid() {
  awk -v n="$1" -v a="$2" -v d="$3" 'BEGIN { for (i = 0; i < n; ++i) printf "%s%.6g", (i ? "," : ""), a * 10 ^ (i / d) }'
}

# still_running OUT: waits up to 5 s for every process whose command line names `--out OUT` to end;
# prints the PIDs of those still there (empty when none is left).
still_running() {
  local left=""
  for _ in $(seq 1 50); do
    left="$(pgrep -f -- "--out $1" || true)"
    [ -n "$left" ] || break
    sleep 0.1
  done
  echo "$left"
}
