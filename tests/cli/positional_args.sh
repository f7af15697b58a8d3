#!/usr/bin/env bash
# Words that are not options are refused by every subcommand (they used to be ignored: `sweep --grid
# 0.1 0.2 0.5` computed 0.1 only), with a hint to write a list as one comma-separated value; report
# takes its result folders as words. The subcommands are read from `idprune --help`, so a new one
# is covered too.
# Usage: positional_args.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# Every subcommand (bench: each benchmark) with a stray word before its options.
mapfile -t commands < <("$idprune" --help | awk '/^Subcommands:/ { on = 1; next } on && NF { print $1 }')
[ "${#commands[@]}" -ge 8 ] || fail "found ${#commands[@]} subcommands in idprune --help"
checked=0
for c in "${commands[@]}"; do
  [ "$c" != report ] || continue
  variants=("$c")
  [ "$c" != bench ] || variants=("bench cpqr" "bench id")
  for v in "${variants[@]}"; do
    rc=0
    # shellcheck disable=SC2086
    timeout 60 "$idprune" $v stray-word >"$work/out.txt" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || { cat "$work/out.txt"; fail "'$v stray-word' accepted"; }
    grep -q "unexpected argument 'stray-word'" "$work/out.txt" || { cat "$work/out.txt"; fail "'$v': unclear message"; }
    checked=$((checked + 1))
  done
done

# The list case: the hint shows the list as one value, and nothing runs.
rc=0
"$idprune" sweep --model "$model" --data "$data" --grid 0.1 0.2 0.5 --out "$work/s" >"$work/out.txt" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "sweep --grid 0.1 0.2 0.5 accepted"
grep -q -- "--grid 0.1,0.2,0.5" "$work/out.txt" || { cat "$work/out.txt"; fail "no --grid 0.1,0.2,0.5 hint"; }
[ ! -e "$work/s" ] || fail "the refused sweep created its folder"
# Words after a switch (no value to extend): a plain refusal.
rc=0
"$idprune" sweep --model "$model" --data "$data" --grid 0.1 --resume extra --out "$work/s" >"$work/out.txt" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "unexpected argument 'extra'" "$work/out.txt" || { cat "$work/out.txt"; fail "word after a switch"; }
# report: words are result folders.
"$idprune" lowrank --n 20 --kmax 5 --out "$work/results/lowrank.csv" >/dev/null
"$idprune" report "$work/results" --out "$work/report" >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; fail "report DIR failed"; }
[ -s "$work/report/index.html" ] || fail "report DIR wrote no report"
echo "positional_args: ok ($checked subcommands refuse stray words)"
