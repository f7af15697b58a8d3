#!/usr/bin/env bash
# The report's comparison figures from real runs on the embedded model and data: a small `idprune
# pareto` with every registered strategy (and one epoch of fine-tuning) gives one Pareto figure and
# one strategy x budget table listing every strategy, the fine-tuned results in a figure and table
# of their own; `--published` draws published points with their source; `idprune bench
# compress-scale --json` at 1 and 2 ranks gives the compress-scale figure; a malformed published
# CSV or bench JSON fails with one clear line, exit status 1, and no report.
# Usage: report_figures.sh /path/to/idprune /path/to/source_root
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"
command -v gnuplot >/dev/null || fail "gnuplot is needed (apt-get install gnuplot-nox)"

strategies=$("$idprune" strategies | awk 'NR > 1 { print $1 }' | paste -sd, -)
[ -n "$strategies" ] || fail "idprune strategies listed nothing"
"$idprune" pareto --model "$model" --data "$data" --strategies "$strategies" --budgets 0.1,0.3 \
  --compression-size 200 --validation-size 300 --test-size 300 --seed 2 --threads 1 --step 0.1 --tune-rounds 1 \
  --finetune-epochs 1 --out "$work/pareto" --no-report >"$work/pareto.log" 2>&1 ||
  { cat "$work/pareto.log"; fail "pareto failed"; }

cat >"$work/published.csv" <<'CSV'
method,cite,axis,x,accuracy,original_accuracy,source
quoted-method,Quoted et al. 2021,params_fraction,0.1,42.5,88.5,"Q. Uoted, ""A Quoted Method"", Workshop 2021, Table 2"
quoted-method,Quoted et al. 2021,params_fraction,0.3,47.5,88.5,"Q. Uoted, ""A Quoted Method"", Workshop 2021, Table 2"
CSV
"$idprune" report "$work/pareto" --out "$work/report" --published "$work/published.csv" >"$work/report.log" 2>&1 ||
  { cat "$work/report.log"; fail "report failed"; }
md="$work/report/report.md"
front=$(find "$work/report" -maxdepth 1 -name 'fig*-pareto.gp' | head -n 1)
tuned=$(find "$work/report" -maxdepth 1 -name 'fig*-pareto-finetuned.gp' | head -n 1)
[ -n "$front" ] || fail "no Pareto figure: $(ls "$work/report")"
[ -n "$tuned" ] || fail "no fine-tuned Pareto figure: $(ls "$work/report")"
IFS=',' read -r -a every <<<"$strategies"
for s in "${every[@]}"; do
  grep -q "title '$s'" "$front" || fail "the Pareto figure has no curve for $s"
  grep -q "title '$s'" "$tuned" || fail "the fine-tuned figure has no curve for $s"
  # A row per strategy in both strategy x budget tables (no-fine-tuning first).
  n=$(grep -c "^| $s | " "$md" || true)
  [ "$n" -ge 2 ] || fail "$s has $n table rows in report.md, expected one per table"
done
grep -q "| strategy | 10% | 30% |" "$md" || fail "no strategy x budget table"
# The fine-tuned accuracies appear only after the heading of their section.
ft_line=$(grep -n "^### After fine-tuning" "$md" | head -n 1 | cut -d: -f1)
[ -n "$ft_line" ] || fail "no fine-tuning section"
first_table=$(grep -n "^| strategy | 10% | 30% |" "$md" | head -n 1 | cut -d: -f1)
[ "$first_table" -lt "$ft_line" ] || fail "the no-fine-tuning table is not before the fine-tuned one"
# Published points: drawn as points in the no-fine-tuning figure only, listed with their source.
grep -q "with points.*title 'quoted-method (published: Quoted et al. 2021; unpruned 88.50 %)'" "$front" ||
  fail "published points not drawn: $(grep -c points "$front")"
if grep -q "quoted-method" "$tuned"; then fail "published no-fine-tuning points drawn among fine-tuned results"; fi
grep -q "A Quoted Method\", Workshop 2021, Table 2" "$md" || fail "the published source is not quoted"
grep -q "| quoted-method (published: Quoted et al. 2021; unpruned 88.50 %) | 42.50 | 47.50 |" "$md" ||
  fail "the published points are not beside ours in the table"
while read -r f; do
  [[ "$(head -c 8 "$work/report/$f" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || fail "$f is not a PNG"
done < <(grep -o 'fig[0-9]*-[a-z-]*\.png' "$md" | sort -u)

# ---- compress-scale: 1 rank and, where mpiexec exists, 2 ranks -----------------------------------
mkdir -p "$work/scale"
"$idprune" bench compress-scale --model "$model" --data "$data" --rows 150,400 --threads 1 --json \
  >"$work/scale/bench-compress-scale-np1.json" 2>"$work/scale.log" || { cat "$work/scale.log"; fail "bench failed"; }
expected=2
if [ -n "$mpiexec" ]; then
  mpi 2 bench compress-scale --model "$model" --data "$data" --rows 150,400 --threads 1 --json \
    >"$work/scale/bench-compress-scale-np2.json" 2>"$work/scale.log" || { cat "$work/scale.log"; fail "2 ranks failed"; }
  expected=4
fi
"$idprune" report "$work/scale" --out "$work/scale-report" >"$work/report.log" 2>&1 ||
  { cat "$work/report.log"; fail "compress-scale report failed"; }
gp=$(find "$work/scale-report" -maxdepth 1 -name 'fig*-compress-scale.gp' | head -n 1)
[ -n "$gp" ] || fail "no compress-scale figure: $(ls "$work/scale-report")"
grep -q "set logscale x" "$gp" || fail "compress-scale rows axis is not logarithmic"
grep -q "set logscale y" "$gp" || fail "compress-scale time axis is not logarithmic"
n=$(grep -c "title '\(measured\|GEMM bound\), " "$gp" || true)
[ "$n" -eq "$expected" ] || fail "expected $expected curves (measured and bound per file), found $n"
grep -q "time / bound" "$work/scale-report/report.md" || fail "no ratio column"
grep -q "peak RSS MiB" "$work/scale-report/report.md" || fail "no peak RSS column"

# ---- Malformed inputs: one clear line, exit 1 (not a crash), no report ---------------------------
printf 'method,source,axis,x,accuracy\nm,S,params_fraction,0.1,fast\n' >"$work/bad.csv"
status=0
"$idprune" report "$work/pareto" --out "$work/bad-report" --published "$work/bad.csv" 2>"$work/err.txt" || status=$?
[ "$status" -eq 1 ] || fail "malformed published CSV: exit $status, expected 1: $(cat "$work/err.txt")"
grep -q "bad.csv:2: column 'accuracy': 'fast' is not a number" "$work/err.txt" || fail "unclear error: $(cat "$work/err.txt")"
[ ! -e "$work/bad-report" ] || fail "a failed report left $work/bad-report"
mkdir -p "$work/bad-scale"
printf '{"benchmark": "compress-scale", "ranks": 1, "threads": 1, "gemm_gflops_per_rank": 9, "runs": [{"rows": 5}]}' \
  >"$work/bad-scale/bench-compress-scale.json"
status=0
"$idprune" report "$work/bad-scale" 2>"$work/err.txt" || status=$?
[ "$status" -eq 1 ] || fail "malformed bench JSON: exit $status, expected 1: $(cat "$work/err.txt")"
grep -q "bench-compress-scale.json: runs\[0\]: no key 'seconds'" "$work/err.txt" || fail "unclear error: $(cat "$work/err.txt")"
[ ! -e "$work/bad-scale/report" ] || fail "a failed report left a report"
echo "report_figures: ok"
