#!/usr/bin/env bash
# `idprune bench qr`: a table and, with --json, one JSON object with positive timings and rates for
# every shape (blocks taller and shorter than wide); malformed shapes are refused with the entry named.
# Usage: bench_qr.sh /path/to/idprune /path/to/source_root
set -euo pipefail
idprune="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
  echo "bench_qr: $*"
  exit 1
}

"$idprune" bench qr --shapes 200x30,20x40 --reps 2 >"$work/table.txt" || fail "the table run failed"
grep -q "dtpqrt / recursive" "$work/table.txt" || { cat "$work/table.txt"; fail "no table header"; }
"$idprune" bench qr --shapes 200x30,20x40 --reps 2 --block-size 8 --json >"$work/out.json" || fail "the JSON run failed"
python3 - "$work/out.json" <<'PY' || fail "bad JSON"
import json, math, sys
j = json.load(open(sys.argv[1]))
assert j["benchmark"] == "qr" and j["block_size"] == 8 and j["reps"] == 2, j
shapes = [(s["m"], s["n"]) for s in j["shapes"]]
assert shapes == [(200, 30), (20, 40)], shapes
for s in j["shapes"]:
    for k in ("dgeqrt_seconds", "dtpqrt_seconds", "tpqrt_recursive_seconds", "dgeqrt_gflops", "dtpqrt_gflops",
              "tpqrt_recursive_gflops", "dtpqrt_over_recursive"):
        assert math.isfinite(s[k]) and s[k] > 0, (k, s)
PY
for bad in 3x 0x4 4x-1 axb 12; do
  if "$idprune" bench qr --shapes "$bad" --reps 1 >"$work/bad.txt" 2>&1; then fail "--shapes $bad was accepted"; fi
  grep -q "'$bad' is not ROWSxCOLS" "$work/bad.txt" || { cat "$work/bad.txt"; fail "unclear refusal of $bad"; }
done
echo "bench_qr: table, JSON and refusals as expected"
