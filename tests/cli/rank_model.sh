#!/usr/bin/env bash
# `idprune rank --model M --layer L [--data D]` on a model of known rank: a 784-6-15-3 ReLU MLP
# (.npy folder written here) whose biases of +10 keep every neuron active on inputs in [0, 1] and
# on N(0, 1) inputs, so it is affine through a 6-wide bottleneck:
#   h_1(x) = x W1 + b1, h_2(x) = h_1(x) W2 + b2  -> both depend on exactly 6 input directions,
# and the activation matrix of layer 2 over data, Z = X W1 W2 + 1 (b1 W2 + b2)^T, has rank 7
# (6 directions plus the constant offset).
# Usage: rank_model.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
src="$2"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$work/model" <<'PY'
import os, random, struct, sys
d = sys.argv[1]
os.makedirs(d)
rng = random.Random(12345)

def write_npy(name, rows, cols, values):
    shape = f"({rows}, {cols})" if cols is not None else f"({rows},)"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % shape
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    with open(os.path.join(d, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%dd" % len(values), *values))

def gauss(n, scale):
    return [rng.gauss(0.0, scale) for _ in range(n)]

write_npy("W1.npy", 784, 6, gauss(784 * 6, 0.01))   # C order: row i = input i
write_npy("b1.npy", 6, None, [10.0] * 6)
write_npy("W2.npy", 6, 15, gauss(6 * 15, 0.1))
write_npy("b2.npy", 15, None, [10.0] * 15)
write_npy("Ws.npy", 15, 3, gauss(15 * 3, 0.1))
PY

for layer in 1 2; do
  "$idprune" rank --model "$work/model" --layer "$layer" --seed 3 >"$work/out$layer.txt" ||
    fail "rank --model --layer $layer exited with $?"
  cat "$work/out$layer.txt"
  grep -q "^black-box rank of x -> h_$layer(x): 6 " "$work/out$layer.txt" || fail "layer $layer: black-box rank is not 6"
done

"$idprune" rank --model "$work/model" --layer 2 --data "$src/data/fashion-mnist-small" --samples 200 >"$work/data.txt" ||
  fail "rank --model --layer 2 --data exited with $?"
cat "$work/data.txt"
grep -q "^black-box rank of x -> h_2(x): 6 " "$work/data.txt" || fail "with --data: black-box rank is not 6"
grep -q "^activation matrix: 200 samples x 15 neurons" "$work/data.txt" || fail "no activation matrix line"
grep -q "^  numerical rank (.*): 7$" "$work/data.txt" || fail "activation matrix rank is not 7"

expect_error() {
  local pattern="$1"
  shift
  if "$idprune" rank "$@" >"$work/bad.out" 2>"$work/bad.err"; then
    fail "rank $* succeeded"
  fi
  grep -q -- "$pattern" "$work/bad.err" || { cat "$work/bad.err" >&2; fail "rank $*: message lacks '$pattern'"; }
}
expect_error '--layer=3' --model "$work/model" --layer 3
expect_error '--layer=0' --model "$work/model" --layer 0
expect_error '--model and --layer' --model "$work/model"
expect_error '--data needs --model' --data "$src/data/fashion-mnist-small"
expect_error 'samples' --model "$work/model" --layer 1 --data "$src/data/fashion-mnist-small" --samples 1
echo "rank_model.sh: OK"
