#!/usr/bin/env bash
# `idprune bench cpqr` on tiny sizes: the JSON object has every timing, the slopes and the
# provenance fields; the table form runs; bad options fail. Timings themselves are not asserted
# (the machine is shared); the figures come from running the benchmark at its default sizes.
# Usage: bench_cpqr.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

small=(--m-sizes 100,200,400 --fixed-n 60 --n-sizes 60,120 --fixed-m 200 --square-sizes 50,100
       --full-m 200 --full-n 80)
"$idprune" bench cpqr "${small[@]}" --k 5 --reps 3 --lapack-reps 2 --json >"$work/bench.json"
python3 - "$work/bench.json" <<'PY' || fail "JSON check"
import json, math, sys
j = json.load(open(sys.argv[1]))
for key in ("blas_core", "blas_threads", "version", "git_revision", "k", "reps", "sweeps", "full", "early_stop",
            "load_average_before", "load_average_after"):
    assert key in j, key
assert j["k"] == 5 and j["reps"] == 3
assert isinstance(j["blas_core"], str) and j["blas_core"], j["blas_core"]
assert j["blas_threads"] >= 1
sizes = {"m": 3, "n": 2, "square": 2}
for name, count in sizes.items():
    s = j["sweeps"][name]
    assert len(s["m"]) == count and len(s["n"]) == count, name
    for clock in ("", "cpu_"):
        for method in ("unblocked", "blocked", "lapack"):
            t = s[clock + "seconds"][method]
            assert len(t) == count and all(x > 0 for x in t), (name, clock, method, t)
            assert len(s[clock + "runs"][method]) == count * (2 if method == "lapack" else 3), (name, method)
            assert math.isfinite(s[clock + "slope"][method]), (name, clock, method)
assert j["sweeps"]["m"]["n"] == [60, 60, 60] and j["sweeps"]["n"]["m"] == [200, 200]
for part in ("full", "early_stop"):
    assert j[part]["m"] == 200 and j[part]["n"] == 80
    assert j[part]["ratio_blocked_over_lapack"] > 0
    for clock in ("", "cpu_"):
        t = j[part][clock + "seconds"]
        assert all(x > 0 for x in t.values()), t
        assert math.isclose(j[part][clock + "ratio_blocked_over_lapack"], t["blocked"] / t["lapack"], rel_tol=1e-12)
assert j["full"]["seconds"]["blocked_without_qr_preprocessing"] > 0
assert j["full"]["ratio_blocked_without_qr_preprocessing_over_lapack"] > 0
assert set(j["early_stop"]["seconds"]) == {"unblocked", "blocked", "lapack"}
PY

"$idprune" bench cpqr "${small[@]}" --k 5 --reps 1 >"$work/table.txt"
grep -q "slope (cpu)" "$work/table.txt" || fail "table: $(cat "$work/table.txt")"
grep -q "blocked / lapack" "$work/table.txt" || fail "table: $(cat "$work/table.txt")"

for bad in "--k 0" "--reps 0" "--lapack-reps 0" "--k 100" "--block-size 0 --k 5" "--threads -1"; do
  # shellcheck disable=SC2086
  if "$idprune" bench cpqr "${small[@]}" $bad >/dev/null 2>"$work/err.txt"; then fail "bench cpqr $bad: exit 0"; fi
  [[ $(wc -l <"$work/err.txt") -eq 1 ]] || fail "bench cpqr $bad: $(cat "$work/err.txt")"
done
if "$idprune" bench nosuch >/dev/null 2>&1; then fail "bench nosuch: exit 0"; fi
echo "bench_cpqr.sh: OK"
