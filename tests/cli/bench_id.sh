#!/usr/bin/env bash
# `idprune bench id` on tiny sizes under mpiexec -n 1 and -n 2: the JSON has every engine with its
# time, error and bytes; exact engines reproduce dgeqp3's ID error; the bytes of tsqr, gram and
# sketch do not depend on the number of rows (same figure for M and 10 M at a fixed k) while
# lapack's grow; the table form runs; bad options fail with one clear error. Timings are not
# asserted (the machine is shared): figures come from running the benchmark at full size.
# Usage: bench_id.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mpiexec_bin="$(command -v mpiexec || command -v mpirun)"

for np in 1 2; do
  for m in 300 3000; do
    "$mpiexec_bin" --oversubscribe -n "$np" "$idprune" bench id --rows "$m" --cols 48 --k 8 --inner 24 --reps 2 \
      --scalapack-block 8 --json >"$work/k_${np}_${m}.json"
  done
  "$mpiexec_bin" --oversubscribe -n "$np" "$idprune" bench id --rows 500 --cols 48 --tol 1e-3 --reps 1 \
    --kind relu --engine tsqr,gram --engine lapack --json >"$work/tol_${np}.json"
done

python3 - "$work" <<'PY' || fail "JSON check"
import json, math, os, sys
work = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(work, name)))
for np in (1, 2):
    small, large = load(f"k_{np}_300.json"), load(f"k_{np}_3000.json")
    for j in (small, large):
        for key in ("version", "git_revision", "blas_core", "ranks", "cores_available_per_rank",
                    "engine_blas_threads_per_rank", "reference_blas_threads", "load_average_before", "results"):
            assert key in j, key
        assert j["ranks"] == np and j["k"] == 8 and j["reps"] == 2
        assert [r["kind"] for r in j["results"]] == ["lowrank", "relu"]
        for r in j["results"]:
            assert r["reference"][0]["rank"] == 8
            names = [e["engine"] for e in r["engines"]]
            assert names == ["tsqr", "gram", "sketch", "scalapack", "lapack"], names
            for e in r["engines"]:
                assert e["rank"] == 8, e
                assert len(e["runs"]) == 2 and e["median_seconds"] > 0, e
                assert e["speedup_vs_dgeqp3"] > 0, e
                assert math.isfinite(e["id_error"]) and e["id_error"] > 0, e
                if e["engine"] == "sketch":
                    assert e["sketch_rows"] == 18, e
                    assert e["error_ratio"] < 10, e  # randomized: within 10x (see tests/dist)
                else:
                    assert abs(e["error_ratio"] - 1) < 1e-6, e  # exact engines: dgeqp3's error
    for rs, rl in zip(small["results"], large["results"]):
        for es, el in zip(rs["engines"], rl["engines"]):
            bs, bl = es["bytes_sent_max_per_rank"], el["bytes_sent_max_per_rank"]
            if np == 1:
                assert bs == 0 and bl == 0, (es, el)
            elif es["engine"] in ("tsqr", "gram", "sketch"):
                assert bs == bl and bs > 0, (es["engine"], bs, bl)  # independent of the rows
            else:
                assert bl > 5 * bs, (es["engine"], bs, bl)  # moves the rows
    t = load(f"tol_{np}.json")
    assert t["tol"] == 1e-3
    r = t["results"][0]
    assert r["kind"] == "relu"
    assert [e["engine"] for e in r["engines"]] == ["tsqr", "gram", "lapack"]
    for e in r["engines"]:
        assert e["rank"] == r["reference"][0]["rank"], e
        assert abs(e["error_ratio"] - 1) < 1e-6, e
PY

# The table form.
"$mpiexec_bin" --oversubscribe -n 2 "$idprune" bench id --rows 200 --cols 20 --engine tsqr --reps 1 >"$work/table.txt"
grep -q '^dgeqp3 (1 process)' "$work/table.txt" || fail "no reference row: $(cat "$work/table.txt")"
grep -q '^tsqr ' "$work/table.txt" || fail "no tsqr row"

# Bad options: one clear error, non-zero exit, no hang.
if "$mpiexec_bin" --oversubscribe -n 2 "$idprune" bench id --rows 100 --cols 10 --engine householder \
  >"$work/err.txt" 2>&1; then
  fail "unknown engine accepted"
fi
grep -q "unknown pivot engine 'householder'" "$work/err.txt" || fail "unclear error: $(cat "$work/err.txt")"
if "$mpiexec_bin" --oversubscribe -n 2 "$idprune" bench id --rows 100 --cols 10 --engine gram --tol 1e-12 \
  >"$work/err2.txt" 2>&1; then
  fail "gram accepted a tolerance below its accuracy limit"
fi
grep -q "accuracy limit" "$work/err2.txt" || fail "unclear error: $(cat "$work/err2.txt")"
[ "$(grep -c "accuracy limit" "$work/err2.txt")" -eq 1 ] || fail "collective error printed more than once"
if "$idprune" bench id --rows 100 --cols 10 --k 3 --tol 1e-3 >"$work/err3.txt" 2>&1; then
  fail "--k and --tol together accepted"
fi
echo "bench id: ok"
