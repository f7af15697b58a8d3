#!/usr/bin/env bash
# PyTorch state dicts with named keys through the command line: `idprune eval` infers the order of
# fc1/fc2/out from the shapes, a ModuleList file is one clear error (naming the file and listing its
# keys, no predictions written) until --layer-order says how to read it, the same model under
# Sequential keys gives the same predictions (eval --predictions), and `rank`/`lowrank` take
# --layer-order too. Under mpiexec the predictions file does not depend on the number of ranks.
# Usage: model_layouts.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
root="$2"
data="$root/data/fashion-mnist-small"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A model with biases, written by idprune, its keys renamed: Sequential 0, 2, 4 -> fc1, fc2, out and
# -> layers.0, layers.1, layers.2 (same bytes otherwise: the rename keeps every tensor).
"$idprune" train --data "$data" --out "$work/seq.safetensors" --widths 40,20 --epochs 2 --seed 4 --threads 1 --bias \
  >"$work/train.log"
python3 - "$work" <<'PY'
import json, struct, sys
work = sys.argv[1]
data = open(f"{work}/seq.safetensors", "rb").read()
n, = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n])
header.pop("__metadata__")  # a PyTorch export has no idprune metadata
def rename(mapping, path):
    out = {}
    for key, info in header.items():
        index, kind = key.split(".")
        out[mapping[index] + "." + kind] = info
    text = json.dumps(out, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + data[8 + n:])
rename({"0": "fc1", "2": "fc2", "4": "out"}, f"{work}/named.safetensors")
rename({"0": "layers.0", "2": "layers.1", "4": "layers.2"}, f"{work}/list.safetensors")
PY

"$idprune" eval --model "$work/seq.safetensors" --data "$data" --predictions "$work/seq.csv" >"$work/seq.log"
"$idprune" eval --model "$work/named.safetensors" --data "$data" --predictions "$work/named.csv" >"$work/named.log"
[ "$(wc -l <"$work/seq.csv")" -eq 1001 ] || fail "expected a header and 1000 rows in the predictions file"
head -1 "$work/seq.csv" | grep -qx 'index,label,prediction' || fail "predictions header"
cmp -s "$work/seq.csv" "$work/named.csv" || fail "fc1/fc2/out keys predict differently from Sequential keys"
grep -q '^architecture: 784-40-20-10$' "$work/named.log" || { cat "$work/named.log"; fail "named architecture"; }
# The accuracy eval prints is the one of the predictions file.
correct="$(awk -F, 'NR > 1 && $2 == $3 { c++ } END { print c + 0 }' "$work/seq.csv")"
grep -q "^accuracy: $correct / 1000 = " "$work/seq.log" || { cat "$work/seq.log"; fail "predictions file disagrees"; }

# The ModuleList keys: one error naming the file and listing the keys; nothing written.
if "$idprune" eval --model "$work/list.safetensors" --data "$data" --predictions "$work/list.csv" \
  >"$work/err.log" 2>&1; then fail "ambiguous ModuleList keys accepted"; fi
for needle in "$work/list.safetensors" "layers.0.weight (40, 784)" "layers.2.bias (10,)" "--layer-order"; do
  grep -qF -- "$needle" "$work/err.log" || { cat "$work/err.log"; fail "error does not mention '$needle'"; }
done
[ "$(wc -l <"$work/err.log")" -eq 1 ] || { cat "$work/err.log"; fail "more than one error line"; }
[ ! -e "$work/list.csv" ] || fail "a predictions file was written for an unreadable model"
"$idprune" eval --model "$work/list.safetensors" --data "$data" --predictions "$work/list.csv" \
  --layer-order layers.0,layers.1,layers.2 >/dev/null
cmp -s "$work/seq.csv" "$work/list.csv" || fail "--layer-order model predicts differently"
if "$idprune" eval --model "$work/list.safetensors" --data "$data" --layer-order layers.0,layers.2 \
  >"$work/err.log" 2>&1; then fail "an order leaving out a module was accepted"; fi
grep -q "leaves out module 'layers.1'" "$work/err.log" || { cat "$work/err.log"; fail "missing module not named"; }

# rank and lowrank read models through the same option.
"$idprune" rank --model "$work/list.safetensors" --layer 1 --layer-order layers.0,layers.1,layers.2 >/dev/null
"$idprune" lowrank --model "$work/list.safetensors" --data "$data" --layer 2 --compression-size 100 --kmax 5 \
  --layer-order layers.0,layers.1,layers.2 >/dev/null 2>&1

# Under mpiexec: the same predictions for 1 and 3 ranks (blocks of 334/333/333 rows).
mpiexec_bin="$(command -v mpiexec || command -v mpirun || true)"
if [ -n "$mpiexec_bin" ]; then
  "$mpiexec_bin" --oversubscribe -n 3 "$idprune" eval --model "$work/named.safetensors" --data "$data" \
    --predictions "$work/np3.csv" >/dev/null
  cmp -s "$work/seq.csv" "$work/np3.csv" || fail "predictions under 3 ranks differ"
fi
echo "model_layouts: ok"
