#!/usr/bin/env bash
# The reference text's studies on a small trained model, one command each:
#   Goal 5  idprune lowrank --model --data --layer 1: rank-k ID error of relu(Xc W1) vs the optimal
#           SVD error for k = 1..width (the ID error is never below the optimum);
#   Goal 6  idprune sweep --layers 1 --rule eps: from an eps that removes nothing but dead neurons
#           to one that keeps a single column, accuracy falls as columns go;
#   Goal 7  idprune sweep (all layers) at a few eps: fraction of all hidden columns and parameters.
# Usage: sweep_studies.sh /path/to/idprune /path/to/source_root
set -euo pipefail
idprune="$1"
root="$2"
data="$root/data/fashion-mnist-small"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() {
  echo "sweep_studies: $*"
  exit 1
}
column() {  # column CSV NAME
  awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i; next } { print $c }' "$1"
}

"$idprune" train --data "$data" --out "$work/model.safetensors" --widths 48,24 --epochs 2 --seed 3 --threads 1 \
  >"$work/train.log"

# Goal 5.
"$idprune" lowrank --model "$work/model.safetensors" --data "$data" --layer 1 --compression-size 400 --seed 2 \
  --out "$work/goal5.csv" >"$work/goal5.log" || { cat "$work/goal5.log"; fail "lowrank --model failed"; }
[ "$(head -1 "$work/goal5.csv")" = "k,cpqr_error,svd_error,ratio" ] || fail "goal 5 header"
[ "$(tail -n +2 "$work/goal5.csv" | wc -l)" -eq 48 ] || fail "goal 5: expected k = 1..48"
grep -q "activations of hidden layer 1" "$work/goal5.log" || { cat "$work/goal5.log"; fail "goal 5 summary"; }
# ||R22||_2 >= sigma_{k+1} for every k (Eckart-Young), up to rounding.
awk -F, 'NR > 1 && $2 < $3 * (1 - 1e-10) - 1e-12 { bad = 1 } END { exit bad }' "$work/goal5.csv" ||
  fail "an ID error below the optimal error"
if "$idprune" lowrank --model "$work/model.safetensors" --data "$data" --layer 3 >"$work/err.log" 2>&1; then
  fail "layer 3 of a 2-hidden-layer model accepted"
fi
grep -q "outside \[1, 2\]" "$work/err.log" || { cat "$work/err.log"; fail "unclear --layer error"; }

# Goal 6.
"$idprune" sweep --model "$work/model.safetensors" --data "$data" --compression-size 400 --threads 1 \
  --strategy greedy --rule eps --layers 1 --grid 1e-8,1e-3,1e-2,0.1,1,100 --out "$work/goal6" >"$work/goal6.log" 2>&1 ||
  { cat "$work/goal6.log"; fail "goal 6 sweep failed"; }
kept1="$(column "$work/goal6/results.csv" kept_per_layer | cut -d';' -f1 | tr '\n' ' ')"
second="$(column "$work/goal6/results.csv" kept_per_layer | cut -d';' -f2 | sort -u)"
[ "$second" = "24" ] || fail "goal 6 changed layer 2: $second"
echo "$kept1" | awk '{ for (i = 2; i <= NF; ++i) if ($i > $(i - 1)) exit 1; exit !($NF == 1) }' ||
  fail "goal 6 kept columns not decreasing to 1: $kept1"
first_agree="$(column "$work/goal6/results.csv" agreement | head -1)"
awk -v a="$first_agree" 'BEGIN { exit !(a >= 0.999) }' || fail "eps = 1e-8 changed predictions ($first_agree)"

# Goal 7.
"$idprune" sweep --model "$work/model.safetensors" --data "$data" --compression-size 400 --threads 1 \
  --strategy greedy --rule eps --grid 1e-3,1e-2,0.1 --out "$work/goal7" >"$work/goal7.log" 2>&1 ||
  { cat "$work/goal7.log"; fail "goal 7 sweep failed"; }
fractions="$(column "$work/goal7/results.csv" hidden_kept_fraction | tr '\n' ' ')"
echo "$fractions" | awk '{ for (i = 2; i <= NF; ++i) if ($i > $(i - 1)) exit 1 }' ||
  fail "goal 7 hidden fraction grows with eps: $fractions"
echo "sweep_studies: goal 6 kept columns $kept1; goal 7 hidden fractions $fractions"
