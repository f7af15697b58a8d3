#!/usr/bin/env bash
# `idprune lowrank` on a small kernel study and on a hand-written .npy: CSV header and row count,
# the CPQR/SVD error ratio below 10 wherever the optimal error is above rounding level, and bad
# input (NaN .npy, malformed .npy, missing file, k out of range, tol <= 0) failing with one error
# line, a non-zero exit and no output file.
# Usage: lowrank.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- The kernel study, small -------------------------------------------------------------------
"$idprune" lowrank --n 60 --kmax 30 --seed 0 --out "$work/kernel.csv" >"$work/summary.txt"
[[ "$(head -n 1 "$work/kernel.csv")" == "k,cpqr_error,svd_error,ratio" ]] || fail "header: $(head -n 1 "$work/kernel.csv")"
rows=$(($(wc -l <"$work/kernel.csv") - 1))
[[ $rows -eq 30 ]] || fail "expected 30 rows, got $rows"
grep -q "wrote $work/kernel.csv" "$work/summary.txt" || fail "summary: $(cat "$work/summary.txt")"
sigma1=$(sed -n 's/.*sigma_1 = \([^,]*\),.*/\1/p' "$work/summary.txt")
[[ -n "$sigma1" ]] || fail "no sigma_1 in the summary: $(cat "$work/summary.txt")"
# Rounding level: sigma_{k+1} > 100 eps sigma_1 (eps = 2^-52); below it the ratio is noise.
awk -F, -v s1="$sigma1" -v eps=2.220446049250313e-16 '
  NR == 1 { next }
  { if ($1 != NR - 1) { print "row " NR ": k = " $1; bad = 1 }
    if ($2 < 0 || $3 < 0) { print "negative error at k = " $1; bad = 1 }
    if ($3 > 100 * eps * s1) { checked++; if (!($4 < 10)) { print "ratio " $4 " >= 10 at k = " $1; bad = 1 } } }
  END { if (checked < 10) { print "only " checked " rows above rounding level"; bad = 1 }; exit bad }' \
  "$work/kernel.csv" || fail "ratio check"

# Same seed, same table (seeded points); stdout form without --out carries the same CSV.
"$idprune" lowrank --n 60 --kmax 30 --seed 0 >"$work/stdout.csv" 2>"$work/stderr.txt"
cmp -s "$work/kernel.csv" "$work/stdout.csv" || fail "stdout CSV differs from --out CSV"

# ---- A .npy matrix (float64, C order, 8 x 6), written by hand -------------------------------------
write_npy() {  # write_npy FILE VALUES... (8 x 6 float64, row-major), or "garbage"
  python3 - "$@" <<'PY'
import struct, sys
path, vals = sys.argv[1], sys.argv[2:]
if vals == ["garbage"]:
    open(path, "wb").write(b"not a numpy file at all")
    sys.exit(0)
header = "{'descr': '<f8', 'fortran_order': False, 'shape': (8, 6), }"
header += " " * (64 - 10 - len(header) - 1) + "\n"
data = struct.pack("<48d", *[float(v) for v in vals])
open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
PY
}
vals=()
for i in $(seq 0 47); do vals+=("$(( (i * 37) % 11 - 5 )).$(( (i * 13) % 7 ))"); done
write_npy "$work/a.npy" "${vals[@]}"
"$idprune" lowrank --matrix "$work/a.npy" --kmax 6 --out "$work/a.csv" >/dev/null
[[ $(($(wc -l <"$work/a.csv") - 1)) -eq 6 ]] || fail ".npy table rows"

# ---- Bad input: one error line, non-zero exit, no output file --------------------------------------
nan_vals=("${vals[@]}")
nan_vals[7]=nan
write_npy "$work/nan.npy" "${nan_vals[@]}"
write_npy "$work/bad.npy" garbage
expect_failure() {  # expect_failure WHAT ARGS...
  local what="$1"
  shift
  if "$idprune" lowrank "$@" --out "$work/out.csv" >"$work/fail.out" 2>"$work/fail.err"; then
    fail "$what: exit status 0"
  fi
  [[ ! -e "$work/out.csv" ]] || fail "$what: output file left behind"
  [[ $(wc -l <"$work/fail.err") -eq 1 ]] || fail "$what: expected one error line, got: $(cat "$work/fail.err")"
  grep -q "error" "$work/fail.err" || fail "$what: no error message"
}
expect_failure "NaN entry" --matrix "$work/nan.npy" --kmax 3
grep -qi "nan\|finite" "$work/fail.err" || fail "NaN message does not name the problem: $(cat "$work/fail.err")"
expect_failure "malformed .npy" --matrix "$work/bad.npy" --kmax 3
expect_failure "missing .npy" --matrix "$work/does-not-exist.npy" --kmax 3
expect_failure "k too large" --n 20 --kmax 21
grep -q "kmax" "$work/fail.err" || fail "k message does not name --kmax: $(cat "$work/fail.err")"
expect_failure "k zero" --n 20 --kmax 0
expect_failure "tol zero" --n 20 --kmax 5 --tol 0
expect_failure "tol negative" --n 20 --kmax 5 --tol -1
expect_failure "bad method" --n 20 --kmax 5 --method householder
# No temporary files were left behind either.
leftovers=$(find "$work" -name 'out.csv*' | wc -l)
[[ $leftovers -eq 0 ]] || fail "temporary files left: $(find "$work" -name 'out.csv*')"
echo "lowrank.sh: OK"
