#!/usr/bin/env bash
# `idprune train` then `idprune eval`: the model learns (test accuracy far above chance), the
# accuracy train reports equals what eval computes from the saved file, both file formats hold the
# same model, training is reproducible from the seed, and bad arguments are clear errors.
# Usage: train_eval.sh /path/to/idprune /path/to/source_root
set -euo pipefail
idprune="$1"
root="$2"
data="$root/data/fashion-mnist-small"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "train_eval: $*"; exit 1; }

train() {  # train OUT [extra options]
  local out="$1"
  shift
  "$idprune" train --data "$data" --out "$out" --widths 48,24 --epochs 3 --seed 5 --threads 1 "$@"
}
train "$work/a.safetensors" --dtype F64 --validation 200 >"$work/a.log"
grep -q '^epoch   3/3 .*loss .*train acc .*validation acc' "$work/a.log" || { cat "$work/a.log"; fail "no per-epoch progress"; }
train "$work/npy" --validation 200 >"$work/npy.log"
train "$work/b.safetensors" --dtype F64 --validation 200 >"$work/b.log"

eval_acc() { "$idprune" eval --model "$1" --data "$data" | grep -E '^(accuracy|class)'; }
acc_a="$(eval_acc "$work/a.safetensors")"
acc_b="$(eval_acc "$work/b.safetensors")"
acc_npy="$(eval_acc "$work/npy")"
[ "$acc_a" = "$acc_b" ] || fail "same seed, different models: '$acc_a' vs '$acc_b'"
[ "$acc_a" = "$acc_npy" ] || fail "F64 safetensors and .npy folder differ: '$acc_a' vs '$acc_npy'"

# What train reported for the saved model is what eval finds in the file.
acc_line="$(echo "$acc_a" | head -1)"
correct="$(echo "$acc_line" | sed -E 's/^accuracy: ([0-9]+) \/ ([0-9]+).*/\1/')"
total="$(echo "$acc_line" | sed -E 's/^accuracy: ([0-9]+) \/ ([0-9]+).*/\2/')"
grep -q "test accuracy $correct / $total = " "$work/a.log" || { cat "$work/a.log"; fail "train and eval disagree ($acc_line)"; }
# 10 classes: chance is 10%; a small MLP on 2800 images reaches well above 60%.
[ "$total" -eq 1000 ] || fail "expected 1000 test samples, got $total"
[ "$correct" -ge 600 ] || fail "test accuracy too low: $acc_line"

# F32 files (the default) hold the same architecture.
train "$work/c.safetensors" >"$work/c.log"
"$idprune" eval --model "$work/c.safetensors" --data "$data" | grep -q '^architecture: 784-48-24-10$' ||
  fail "unexpected architecture"

# Errors: one clear line, non-zero exit.
if "$idprune" train --out "$work/x.safetensors" >"$work/err.log" 2>&1; then fail "train without --data succeeded"; fi
grep -q "data" "$work/err.log" || fail "missing --data not reported"
if "$idprune" train --data "$data" --out "$work/x.safetensors" --widths 32,0 >"$work/err.log" 2>&1; then
  fail "zero width accepted"
fi
printf 'garbage' >"$work/bad.safetensors"
if "$idprune" eval --model "$work/bad.safetensors" --data "$data" >"$work/err.log" 2>&1; then
  fail "garbage model accepted"
fi
grep -q "bad.safetensors" "$work/err.log" || { cat "$work/err.log"; fail "error does not name the file"; }
echo "train_eval: $acc_line"
