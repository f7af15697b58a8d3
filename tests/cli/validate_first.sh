#!/usr/bin/env bash
# Options are checked before expensive work: `train` refuses an --out it cannot write before it reads
# the data or trains; `pareto` refuses a bad --step, --eps-grid, --svd-grid or --tau-grid before it
# reads anything (it used to fail only on reaching that strategy), and creates no folder.
# Usage: validate_first.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# expect_early_error NAME PHRASE COMMAND...: fails within 10 s, names PHRASE, prints no progress.
expect_early_error() {
  local name="$1" phrase="$2"
  shift 2
  local rc=0 t0
  t0="$(date +%s.%N)"
  timeout 60 "$@" >"$work/$name.log" 2>&1 || rc=$?
  local secs
  secs="$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  [ "$rc" -ne 0 ] || { cat "$work/$name.log"; fail "$name: accepted"; }
  grep -q -- "$phrase" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: the error lacks '$phrase'"; }
  ! grep -q "^epoch\|^train: \|pareto: .* strategies" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: work started before the error"; }
  awk -v s="$secs" 'BEGIN { exit !(s < 10) }' || fail "$name: took $secs s"
  echo "validate_first: $name refused in $secs s"
}

touch "$work/a-file"
# A long training (the full default widths, many epochs) that would fail only when saving.
expect_early_error train-out-under-file "a-file" "$idprune" train --data "$data" --epochs 50 --out "$work/a-file/m.safetensors"
mkdir "$work/ro"
chmod 555 "$work/ro"
if [ "$(id -u)" -ne 0 ]; then  # root writes anywhere
  expect_early_error train-out-read-only "ro" "$idprune" train --data "$data" --epochs 50 --out "$work/ro/m.safetensors"
fi
expect_early_error train-npy-under-file "a-file" "$idprune" train --data "$data" --epochs 50 --out "$work/a-file/npy"
expect_early_error train-lr "--lr" "$idprune" train --data "$data" --lr -1 --out "$work/m.safetensors"

p=(pareto --model "$model" --data "$data" --budgets 0.1,0.3 --compression-size 300 --validation-size 400 --threads 1)
expect_early_error pareto-step "--step=1.5" "$idprune" "${p[@]}" --strategies greedy,svd,joint --step 1.5 --out "$work/p1"
expect_early_error pareto-eps-grid "eps" "$idprune" "${p[@]}" --strategies svd,greedy --eps-grid 0.1,-1 --out "$work/p2"
expect_early_error pareto-svd-grid "fraction" "$idprune" "${p[@]}" --strategies greedy,svd --svd-grid 0.5,2 --out "$work/p3"
expect_early_error pareto-tau-grid "tau-grid" "$idprune" "${p[@]}" --strategies greedy,spectrum --tau-grid -1 --out "$work/p4"
expect_early_error pareto-strategy "unknown strategy 'nope'" "$idprune" "${p[@]}" --strategies greedy,nope --out "$work/p5"
for d in p1 p2 p3 p4 p5; do [ ! -e "$work/$d" ] || fail "$d: a refused pareto created its folder"; done
echo "validate_first: ok"
