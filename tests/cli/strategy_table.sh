#!/usr/bin/env bash
# README.md's strategy table is `idprune strategies --markdown` (the registry), between its two
# marker lines, so that documentation and code cannot drift apart; the plain table lists every
# strategy the registry has and that `pareto --help` describes.
# Usage: strategy_table.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

"$idprune" strategies --markdown >"$work/table.md" || fail "idprune strategies --markdown failed"
awk '/^<!-- end strategies -->/ { on = 0 } on { print } /^<!-- strategies: / { on = 1 }' "$root/README.md" >"$work/readme.md"
[ -s "$work/readme.md" ] || fail "README.md has no strategy table between its markers"
diff "$work/table.md" "$work/readme.md" >"$work/diff.txt" ||
  { cat "$work/diff.txt"; fail "README.md's strategy table differs from 'idprune strategies --markdown' (regenerate it)"; }

"$idprune" strategies >"$work/table.txt" || fail "idprune strategies failed"
"$idprune" pareto --help >"$work/help.txt"
n=0
while read -r name _; do
  n=$((n + 1))
  grep -q "^  $name " "$work/help.txt" || fail "strategy $name is missing from pareto --help"
done < <(tail -n +2 "$work/table.txt")
[ "$n" -ge 10 ] || fail "only $n strategies listed"
[ "$(grep -c '^| `' "$work/table.md")" -eq "$n" ] || fail "the Markdown and the plain table list other strategies"
echo "strategy_table: $n strategies"
