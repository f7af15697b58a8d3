#!/usr/bin/env bash
# The path of a validation descent is written as DIR/descent-path-STRATEGY.csv. A folder of an
# earlier idprune names it joint-path-STRATEGY.csv: --resume continues it (renaming the file, its
# content kept) and `idprune report` reads it.
# Usage: descent_path_names.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

args=(pareto --model "$model" --data "$data" --budgets 0.2 --compression-size 200 --validation-size 300
  --test-size 300 --seed 2 --threads 1 --step 0.1 --no-report)
"$idprune" "${args[@]}" --strategies descent --out "$work/run" >"$work/run.log" 2>&1 || { cat "$work/run.log"; fail "pareto failed"; }
[ -s "$work/run/descent-path-descent.csv" ] || fail "no descent-path-descent.csv"
[ ! -e "$work/run/joint-path-descent.csv" ] || fail "the old name was written too"
cp "$work/run/descent-path-descent.csv" "$work/path.csv"

# The folder as an earlier idprune left it.
mv "$work/run/descent-path-descent.csv" "$work/run/joint-path-descent.csv"
"$idprune" "${args[@]}" --strategies descent,svd --out "$work/run" --resume >"$work/resume.log" 2>&1 ||
  { cat "$work/resume.log"; fail "--resume of a folder with joint-path-descent.csv"; }
grep -q "(1 already in" "$work/resume.log" || { cat "$work/resume.log"; fail "the finished descent was computed again"; }
grep -q "renamed joint-path-descent.csv to descent-path-descent.csv" "$work/resume.log" ||
  { cat "$work/resume.log"; fail "the rename was not reported"; }
[ ! -e "$work/run/joint-path-descent.csv" ] || fail "joint-path-descent.csv kept beside its new name"
cmp -s "$work/path.csv" "$work/run/descent-path-descent.csv" || fail "the descent path changed in the rename"

# An old folder left as it was: the report reads it.
mv "$work/run/descent-path-descent.csv" "$work/run/joint-path-descent.csv"
if command -v gnuplot >/dev/null; then
  "$idprune" report "$work/run" --out "$work/report" >"$work/report.log" 2>&1 ||
    { cat "$work/report.log"; fail "report of a folder with joint-path-descent.csv"; }
  [ -s "$work/report/index.html" ] || fail "no report"
fi
echo "descent_path_names: ok"
