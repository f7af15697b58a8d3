#!/usr/bin/env bash
# The column reference (`idprune report --help-columns`) is docs/results-columns.md, and names
# exactly the columns, in order, of a real results.csv (tiny sweep) and pareto.csv (tiny pareto).
# Usage: result_columns.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
root="$2"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
model="$root/data/models/fashion-mnist-small.safetensors"
data="$root/data/fashion-mnist-small"

"$idprune" report --help-columns >"$work/columns.md"
diff "$root/docs/results-columns.md" "$work/columns.md" ||
  fail "docs/results-columns.md differs from 'idprune report --help-columns' (regenerate it)"

# The documented columns of one section (the first column of its table), comma-joined.
documented() {  # documented SECTION_HEADING_PREFIX
  awk -v head="$1" '/^## / { on = index($0, head) == 1; next } on && /^\| `/ { split($0, f, "`"); print f[2] }' \
    "$work/columns.md" | paste -sd, -
}

"$idprune" sweep --model "$model" --data "$data" --strategy greedy --rule fraction --grid 0.5 \
  --compression-size 100 --test-size 100 --threads 1 --out "$work/sweep" >/dev/null 2>&1 || fail "sweep failed"
[ "$(head -1 "$work/sweep/results.csv")" = "$(documented '## results.csv')" ] ||
  fail "results.csv columns: $(head -1 "$work/sweep/results.csv") vs documented $(documented '## results.csv')"

"$idprune" pareto --model "$model" --data "$data" --strategies greedy --budgets 0.3 --compression-size 200 \
  --validation-size 300 --test-size 200 --threads 1 --no-report --out "$work/pareto" >/dev/null 2>&1 ||
  fail "pareto failed"
[ "$(head -1 "$work/pareto/pareto.csv")" = "$(documented '## pareto.csv')" ] ||
  fail "pareto.csv columns: $(head -1 "$work/pareto/pareto.csv") vs documented $(documented '## pareto.csv')"
echo "result_columns: ok"
