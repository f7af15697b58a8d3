#!/usr/bin/env bash
# idprune pareto on the embedded model and data: one row per strategy and budget within the budget,
# budget-driven strategies at every budget, the summary against greedy, the resolved config that
# repeats the run exactly, the report with the fronts' plot, and clear errors for bad options.
# Usage: pareto.sh /path/to/idprune /path/to/source_root
set -euo pipefail
idprune="$1"
root="$2"
data="$root/data/fashion-mnist-small"
model="$root/data/models/fashion-mnist-small.safetensors"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
  echo "pareto: $*"
  exit 1
}
column() {  # column CSV NAME
  awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i; next } { print $c }' "$1"
}

strategies="greedy,greedy-fraction,svd,corrected,spectrum,budget,budget-corrected,tuned-corrected,joint-corrected"
"$idprune" pareto --model "$model" --data "$data" --strategies "$strategies" --budgets 0.1,0.3 \
  --compression-size 300 --validation-size 500 --seed 4 --threads 1 --step 0.1 --tune-rounds 1 \
  --out "$work/run" >"$work/run.log" 2>&1 || { cat "$work/run.log"; fail "pareto failed"; }
csv="$work/run/pareto.csv"
head -1 "$csv" | grep -q "^strategy,budget,params,params_fraction,validation_accuracy,test_accuracy,agreement,kept_per_layer," ||
  fail "header: $(head -1 "$csv")"
# Every row within its budget (rounded down to whole parameters).
paste -d, <(column "$csv" budget) <(column "$csv" params_fraction) |
  awk -F, '$2 > $1 + 1e-12 { bad = 1 } END { exit bad }' || fail "a row exceeds its budget"
for s in budget budget-corrected tuned-corrected joint-corrected; do
  n="$(column "$csv" strategy | grep -cx "$s" || true)"
  [ "$n" -eq 2 ] || fail "$s has $n rows, expected one per budget"
done
for s in greedy greedy-fraction svd corrected spectrum; do
  column "$csv" strategy | grep -qx "$s" || fail "no row for $s"
done
# The test split decides nothing: validation accuracies are those of held-out training images.
column "$csv" validation_size | sort -u | grep -qx 500 || fail "validation size not recorded"
[ -s "$work/run/pareto-summary.csv" ] || fail "no pareto-summary.csv"
column "$work/run/pareto-summary.csv" greedy_interpolated | grep -qv nan || fail "greedy never interpolated"
[ -s "$work/run/descent-path-joint-corrected.csv" ] || fail "no descent path"
[ -s "$work/run/config.ini" ] || fail "no config.ini"
if command -v gnuplot >/dev/null; then
  [ -s "$work/run/report/index.html" ] || { cat "$work/run.log"; fail "no report"; }
  [ -n "$(find "$work/run/report" -maxdepth 1 \( -name '*pareto*.png' -o -name '*pareto*.svg' \))" ] ||
    fail "no Pareto figure"
fi

# The resolved configuration repeats the run: same selections and accuracies.
"$idprune" pareto --config "$work/run/config.ini" --out "$work/again" --no-report >"$work/again.log" 2>&1 ||
  { cat "$work/again.log"; fail "rerun from config.ini failed"; }
for c in strategy budget params kept_per_layer validation_accuracy test_accuracy; do
  cmp -s <(column "$csv" "$c") <(column "$work/again/pareto.csv" "$c") || fail "rerun differs in $c"
done

# Errors name the offending values.
if "$idprune" pareto --model "$model" --data "$data" --strategies greedy,best --out "$work/bad" >"$work/err.log" 2>&1; then
  fail "unknown strategy accepted"
fi
grep -q "unknown strategy 'best'" "$work/err.log" || { cat "$work/err.log"; fail "unclear strategy error"; }
if "$idprune" pareto --model "$model" --data "$data" --validation-size 2900 --compression-size 200 \
  --out "$work/bad2" >"$work/err2.log" 2>&1; then
  fail "validation + compression beyond the training images accepted"
fi
grep -q "exceed the 3000 training images" "$work/err2.log" || { cat "$work/err2.log"; fail "unclear size error"; }
help="$("$idprune" pareto --help)"
grep -q "VALIDATION split" <<<"$help" || fail "--help does not explain the validation split"
echo "pareto: $(($(wc -l <"$csv") - 1)) rows"
