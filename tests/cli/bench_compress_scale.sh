#!/usr/bin/env bash
# `idprune bench compress-scale`: its --json output parses, holds one run per size with the fields
# the report reads, the bound is the work over (ranks x the measured DGEMM rate), --augment shifts
# gives 9 rows per image, and it runs streamed and under two ranks.
# Usage: bench_compress_scale.sh /path/to/idprune /path/to/source_root
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
py="$(command -v python3)"

check() {  # check FILE RANKS AUGMENT_FACTOR STREAMED
  "$py" - "$@" <<'PY' || fail "bad JSON in $1: $(cat "$1")"
import json, sys
path, ranks, factor, streamed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "yes"
j = json.load(open(path))
assert j["benchmark"] == "compress-scale" and j["ranks"] == ranks, j
rate = j["gemm_gflops_per_rank"]
assert rate > 0
sizes = [r["images"] for r in j["runs"]]
assert sizes == [150, 400], sizes
for r in j["runs"]:
    assert r["rows"] == factor * r["images"], r
    assert r["streamed"] == streamed, r
    for k in ("activation_seconds", "factorization_seconds", "seconds", "gflop", "bound_seconds", "peak_rss_bytes"):
        assert r[k] > 0, (k, r)
    assert abs(r["bound_seconds"] * ranks * rate - r["gflop"]) <= 1e-9 * r["gflop"], r
    assert abs(r["ratio"] - r["seconds"] / r["bound_seconds"]) <= 1e-9 * r["ratio"], r
    compute = (r["activation_seconds"] + r["factorization_seconds"]) / r["bound_seconds"]
    assert abs(r["compute_ratio"] - compute) <= 1e-9 * compute and compute <= r["ratio"] * (1 + 1e-9), r
    assert len(r["kept_per_layer"]) >= 1 and all(k >= 1 for k in r["kept_per_layer"]), r
# More rows, more work.
assert j["runs"][1]["gflop"] > j["runs"][0]["gflop"]
PY
}

common=(bench compress-scale --model "$model" --data "$data" --rows 150,400 --threads 1 --json)
"$idprune" "${common[@]}" >"$work/a.json" 2>"$work/a.log" || { cat "$work/a.log"; fail "in memory failed"; }
check "$work/a.json" 1 1 no
"$idprune" "${common[@]}" --augment shifts --block-rows 300 >"$work/b.json" 2>"$work/b.log" ||
  { cat "$work/b.log"; fail "streamed failed"; }
check "$work/b.json" 1 9 yes
# --max-memory streams a set that would not fit and keeps the inputs of each level for the next
# pass within half the budget; --block-rows alone never does.
"$idprune" bench compress-scale --model "$model" --data "$data" --rows 400 --augment shifts --max-memory 20M \
  --threads 1 --json >"$work/m.json" 2>"$work/m.log" || { cat "$work/m.log"; fail "--max-memory failed"; }
"$py" - "$work/m.json" "$work/b.json" <<'PY' || fail "cached passes: $(cat "$work/m.json")"
import json, sys
m = json.load(open(sys.argv[1]))["runs"][0]
assert m["streamed"] and m["cached_passes"] >= 1, m
assert all(r["cached_passes"] == 0 for r in json.load(open(sys.argv[2]))["runs"])
PY
if [ -n "$mpiexec" ]; then
  mpi 2 "${common[@]}" >"$work/c.json" 2>"$work/c.log" || { cat "$work/c.log"; fail "2 ranks failed"; }
  check "$work/c.json" 2 1 no
fi
# The table names its columns.
"$idprune" bench compress-scale --model "$model" --data "$data" --rows 100 --threads 1 >"$work/t.txt" 2>&1 ||
  { cat "$work/t.txt"; fail "table failed"; }
grep -q "bound s" "$work/t.txt" || fail "no bound column: $(cat "$work/t.txt")"
grep -q "(a+f)/b" "$work/t.txt" || fail "no (a+f)/b column: $(cat "$work/t.txt")"
if "$idprune" bench compress-scale --model "$model" --data "$data" --rows 0 >"$work/e.log" 2>&1; then
  fail "--rows 0 accepted"
fi
grep -q -- "--rows entry 0" "$work/e.log" || { cat "$work/e.log"; fail "no clear error for --rows 0"; }
echo "bench_compress_scale: ok"
