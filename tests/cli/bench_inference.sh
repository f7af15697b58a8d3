#!/usr/bin/env bash
# `idprune bench inference` on the embedded models: the JSON object and the table have one entry per
# model and batch size with positive timings, the first model is the reference (speed-up 1), the
# provenance fields are there; bad options and mismatched models are one clear error. Timings
# themselves are not asserted (the machine is shared).
# Usage: bench_inference.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
root="$2"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
small="$root/data/models/fashion-mnist-small.safetensors"
reference="$root/data/models/fashion-mnist-reference.safetensors"

"$idprune" bench inference --model "$reference" --model "$small" --batch 1,7,64 --reps 3 --json >"$work/bench.json"
python3 - "$work/bench.json" <<'PY' || fail "JSON check"
import json, sys
j = json.load(open(sys.argv[1]))
for key in ("benchmark", "version", "git_revision", "blas_core", "threads", "precision", "statistic", "models"):
    assert key in j, key
assert j["benchmark"] == "inference" and j["precision"] == "float32" and j["threads"] == 1
assert isinstance(j["blas_core"], str) and j["blas_core"], j["blas_core"]
names = [m["name"] for m in j["models"]]
assert names == ["fashion-mnist-reference.safetensors", "fashion-mnist-small.safetensors"], names
assert [m["parameters"] for m in j["models"]] == [1836288, 265536], [m["parameters"] for m in j["models"]]
assert j["models"][0]["parameters_ratio"] == 1.0
for m in j["models"]:
    assert [t["batch"] for t in m["timings"]] == [1, 7, 64], m["timings"]
    for t in m["timings"]:
        assert t["repetitions"] == 3, t
        assert 0 < t["min_seconds"] <= t["median_seconds"] <= t["max_seconds"], t
        assert abs(t["samples_per_second"] - t["batch"] / t["median_seconds"]) <= 1e-9 * t["samples_per_second"], t
        assert t["speedup"] > 0, t
for t in j["models"][0]["timings"]:
    assert t["speedup"] == 1.0, t
PY

# The table: a header, one row per model and batch size, the reference's speed-up 1.00.
"$idprune" bench inference --model "$small" --model "$small" --name a,b --batch 2,5 --reps 2 >"$work/table.txt"
grep -q '^float32 inference, 1 thread(s), OpenBLAS ' "$work/table.txt" || { cat "$work/table.txt"; fail "no title line"; }
grep -qE '^model +parameters +batch +reps +samples/s +median ms +\[min, max\] ms +speed-up$' "$work/table.txt" ||
  { cat "$work/table.txt"; fail "no header"; }
[ "$(grep -cE '^(a|b) +265536 +[25] +2 ' "$work/table.txt")" -eq 4 ] || { cat "$work/table.txt"; fail "expected 4 rows"; }
grep -qE '^a +265536 +2 +2 .* 1\.00$' "$work/table.txt" || { cat "$work/table.txt"; fail "reference speed-up not 1.00"; }

# Errors: one line naming what is wrong, non-zero exit.
expect_error() {  # expect_error NEEDLE ARGS...
  local needle="$1"
  shift
  if "$idprune" bench inference "$@" >"$work/err.log" 2>&1; then fail "accepted: $*"; fi
  grep -q -- "$needle" "$work/err.log" || { cat "$work/err.log"; fail "error for '$*' does not mention '$needle'"; }
}
expect_error "--batch" --model "$small" --batch 0
expect_error "--threads" --model "$small" --threads 0
expect_error "2 labels for 1 models" --model "$small" --name a,b
expect_error "nope.safetensors" --model "$work/nope.safetensors"
expect_error "model" --batch 1
printf 'garbage' >"$work/bad.safetensors"
expect_error "bad.safetensors" --model "$small" --model "$work/bad.safetensors"
echo "bench_inference: ok"
