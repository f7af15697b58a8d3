#!/usr/bin/env bash
# `idprune report` on fixture result folders: a real lowrank CSV and bench-cpqr JSON (tiny sizes),
# hand-written sweep and Pareto tables; checks index.html and report.md, that every figure they
# reference is a PNG, that the tables carry the inputs' numbers, and that bad input (malformed CSV,
# missing folder, gnuplot missing) fails with one clear error naming file and line, leaving no report.
# Usage: report.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
is_png() { [[ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]]; }

res="$work/results"
mkdir -p "$res/sweep-greedy" "$res/pareto"
"$idprune" lowrank --n 60 --kmax 30 --seed 0 --out "$res/lowrank-kernel.csv" >/dev/null
"$idprune" bench cpqr --json --k 4 --reps 1 --m-sizes 200,400 --fixed-n 50 --fixed-m 200 --n-sizes 25,50 \
  --square-sizes 50,100 --full-m 200 --full-n 50 >"$res/bench-cpqr.json"
cat >"$res/sweep-greedy/results.csv" <<'CSV'
strategy,rule,value,layers,test_accuracy,agreement,params,params_fraction,hidden_kept_fraction,kept_per_layer,hidden_total,original_accuracy,git_revision,seed
greedy,eps,0.01,all,0.8712,0.97,150000,0.6,0.62,160;80;40,448,0.8811,cli-fixture-rev,5
greedy,eps,0.1,all,0.8421,0.93,90000,0.36,0.4,100;50;25,448,0.8811,cli-fixture-rev,5
greedy,eps,0.01,1,0.8790,0.99,200000,0.8,0.8,96;128;64,448,0.8811,cli-fixture-rev,5
greedy,eps,0.1,1,0.8654,0.95,150000,0.6,0.7,48;128;64,448,0.8811,cli-fixture-rev,5
CSV
printf 'model = cli-model.safetensors\nseed = 5\n' >"$res/sweep-greedy/config.ini"
cat >"$res/pareto/pareto.csv" <<'CSV'
strategy,budget,params,params_fraction,validation_accuracy,test_accuracy,agreement,kept_per_layer
greedy,0.1,24000,0.1,0.80,0.7944,0.85,30;20;10
joint,0.1,23900,0.0996,0.84,0.8377,0.88,40;10;10
joint,0.2,47800,0.1992,0.87,0.8655,0.93,70;30;20
CSV

# ---- Help and the default output folder ---------------------------------------------------------
"$idprune" report --help | grep -q "bench-cpqr\*.json" || fail "--help does not describe the file names"
"$idprune" report "$res" >"$work/out.txt" || fail "report failed: $(cat "$work/out.txt")"
grep -q "open $res/report/index.html" "$work/out.txt" || fail "does not say where to open it: $(cat "$work/out.txt")"
for f in index.html report.md; do [[ -s "$res/report/$f" ]] || fail "no $f"; done
figures=$(grep -o 'src="fig[^"]*"' "$res/report/index.html" | sed 's/src="\(.*\)"/\1/')
n=$(echo "$figures" | grep -c png || true)
# lowrank 1 + cpqr 3 + layer 1 + hidden fraction + parameters + pareto = 8
[[ $n -eq 8 ]] || fail "expected 8 figures in index.html, found $n: $figures"
for f in $figures; do
  is_png "$res/report/$f" || fail "$f is not a PNG"
  grep -q "]($f)" "$res/report/report.md" || fail "report.md does not show $f"
  [[ -s "$res/report/${f%.png}.gp" && -s "$res/report/${f%.png}.dat" ]] || fail "no script/data for $f"
done
# Tables show 4 significant digits (the CSV copied under data/ keeps them all).
for v in 0.8654 0.8377 47800 cli-fixture-rev cli-model.safetensors \
  "$(LC_ALL=C printf '%.4g' "$(sed -n 2p "$res/lowrank-kernel.csv" | cut -d, -f2)")"; do
  grep -qF -- "$v" "$res/report/index.html" || fail "index.html lacks '$v'"
  grep -qF -- "$v" "$res/report/report.md" || fail "report.md lacks '$v'"
done
# A figure is re-drawn from its files alone.
first=$(echo "$figures" | head -n 1)
rm "$res/report/$first"
(cd "$res/report" && gnuplot "${first%.png}.gp") || fail "gnuplot ${first%.png}.gp failed"
is_png "$res/report/$first" || fail "re-drawn $first is not a PNG"

# ---- --out, several folders, options after the folders, SVG ------------------------------------
"$idprune" report "$res/sweep-greedy" "$res/pareto" --out "$work/two" --format svg >/dev/null
ls "$work/two"/*.svg >/dev/null 2>&1 || fail "no SVG figures with --format svg"
grep -q "<svg" "$(ls "$work/two"/*.svg | head -n 1)" || fail "SVG figure is not SVG"
# The same folder given twice is read once; rebuilding replaces the report.
"$idprune" report "$res" "$res" >/dev/null || fail "rebuild failed"

# ---- Errors: one line naming the problem, non-zero exit, no report ------------------------------
bad="$work/bad"
mkdir -p "$bad"
printf 'k,cpqr_error,svd_error,ratio\n1,0.5,0.25,2\n2,0.1,zero,5\n' >"$bad/lowrank.csv"
if "$idprune" report "$bad" 2>"$work/err.txt"; then fail "malformed CSV accepted"; fi
grep -q "$bad/lowrank.csv:3" "$work/err.txt" || fail "error does not name file and line: $(cat "$work/err.txt")"
grep -q "svd_error" "$work/err.txt" || fail "error does not name the column: $(cat "$work/err.txt")"
[[ ! -e "$bad/report" ]] || fail "a failed report left $bad/report"
[[ -z "$(ls -A "$bad" | grep -v '^lowrank.csv$' || true)" ]] || fail "a failed report left files: $(ls -A "$bad")"

if "$idprune" report "$work/absent" 2>"$work/err.txt"; then fail "missing folder accepted"; fi
grep -q "absent" "$work/err.txt" || fail "missing-folder error: $(cat "$work/err.txt")"
if "$idprune" report "$res" --out "$work/gp" --gnuplot "$work/no-gnuplot" 2>"$work/err.txt"; then fail "no gnuplot accepted"; fi
grep -q "gnuplot-nox" "$work/err.txt" || fail "missing-gnuplot error: $(cat "$work/err.txt")"
if "$idprune" report 2>"$work/err.txt"; then fail "no folders accepted"; fi
echo "report.sh: all checks passed"
