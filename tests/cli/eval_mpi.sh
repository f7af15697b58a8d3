#!/usr/bin/env bash
# `idprune eval` under mpiexec: the test rows are split across ranks in contiguous blocks and the
# integer counts summed, so 1, 2 and 3 ranks must print identical counts (overall and per class).
# Uses the embedded data subset (1000 test rows: blocks of 334/333/333 under 3 ranks) and a small
# model trained here.
# Usage: eval_mpi.sh /path/to/idprune /path/to/source_root
set -euo pipefail
idprune="$1"
root="$2"
data="$root/data/fashion-mnist-small"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mpiexec_bin="$(command -v mpiexec || command -v mpirun)"

"$idprune" train --data "$data" --out "$work/m.safetensors" --widths 32,16 --epochs 2 --seed 3 --threads 1 \
  >"$work/train.log"

counts() {  # the lines that must not depend on the number of ranks
  grep -E '^(accuracy:|class |parameters:|architecture:)' "$1"
}
for np in 1 2 3; do
  "$mpiexec_bin" --oversubscribe -n "$np" "$idprune" eval --model "$work/m.safetensors" --data "$data" \
    >"$work/eval$np.log"
  grep -q "^ranks: $np," "$work/eval$np.log" || { echo "eval under $np ranks did not report $np ranks"; exit 1; }
  counts "$work/eval$np.log" >"$work/counts$np"
done
[ "$(grep -c '^class' "$work/counts1")" -eq 10 ] || { echo "expected 10 per-class lines"; cat "$work/eval1.log"; exit 1; }
grep -q '^accuracy: [0-9]* / 1000 = ' "$work/counts1" || { echo "expected 1000 test samples"; cat "$work/eval1.log"; exit 1; }
for np in 2 3; do
  if ! diff "$work/counts1" "$work/counts$np"; then
    echo "counts under $np ranks differ from 1 rank"
    exit 1
  fi
done

# An unreadable model is one clear error on every rank count, not a hang.
for np in 1 3; do
  if "$mpiexec_bin" --oversubscribe -n "$np" "$idprune" eval --model "$work/missing.safetensors" --data "$data" \
    >"$work/err.log" 2>&1; then
    echo "eval of a missing model succeeded under $np ranks"
    exit 1
  fi
  grep -q "missing.safetensors" "$work/err.log" || { echo "error does not name the file:"; cat "$work/err.log"; exit 1; }
done
echo "eval_mpi: identical counts under 1, 2, 3 ranks: $(grep '^accuracy' "$work/counts1")"
