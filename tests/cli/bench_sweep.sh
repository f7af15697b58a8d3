#!/usr/bin/env bash
# jobs/local/bench-sweep.sh on the embedded small model and data, one run against itself as the
# baseline: the summary names the points and the OpenBLAS kernels, the JSON line parses and holds
# both medians and their ratio, and a bad REPS or a missing model is one clear error (exit 2).
# Timings are not asserted (the machine is shared). Usage: bench_sweep.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
root="$2"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export IDPRUNE_BIN="$idprune" THREADS=1
export MODEL="$root/data/models/fashion-mnist-small.safetensors" DATA="$root/data/fashion-mnist-small"

REPS=1 BASELINE_BIN="$idprune" EXTRA_ARGS="--compression-size 300 --test-size 500" \
  "$root/jobs/local/bench-sweep.sh" >"$work/out.txt" 2>"$work/err.txt" || { cat "$work/err.txt"; fail "bench-sweep.sh failed"; }
grep -q "^bench-sweep: 32 points, 1 threads, OpenBLAS " "$work/out.txt" || { cat "$work/out.txt"; fail "no summary line"; }
tail -n 1 "$work/out.txt" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["points"] == 32 and r["reps"] == 1, r
assert r["median_s"] > 0 and r["baseline_median_s"] > 0, r
assert abs(r["ratio"] - r["median_s"] / r["baseline_median_s"]) < 1e-2, r
' || fail "the JSON line"

rc=0
REPS=0 "$root/jobs/local/bench-sweep.sh" >/dev/null 2>"$work/err.txt" || rc=$?
[ "$rc" -eq 2 ] && grep -q "REPS=0" "$work/err.txt" || fail "REPS=0: exit $rc"
rc=0
MODEL="$work/none.safetensors" "$root/jobs/local/bench-sweep.sh" >/dev/null 2>"$work/err.txt" || rc=$?
[ "$rc" -eq 2 ] && grep -q "none.safetensors" "$work/err.txt" || fail "missing model: exit $rc"
echo "bench_sweep: ok"
