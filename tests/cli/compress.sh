#!/usr/bin/env bash
# idprune compress on the embedded model and data: a rule (safetensors and an .npy folder) and a
# budget; the file's metadata (read with Python's json) records kept neurons that match the file's
# shapes and index the original layers, accuracies that `idprune eval` of the file reproduces, and
# the provenance; the sensitivity table beside the model; pareto --save-models; and clear errors that
# write nothing.
# Usage: compress.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

sizes=(--compression-size 300 --validation-size 500 --threads 1)
original_sha="$(sha256sum "$model" | cut -d' ' -f1)"

# check_file FILE_OR_FOLDER: the metadata against the file's own shapes and the original model.
check_file() {
  python3 - "$1" "$model" "$original_sha" <<'PY' || fail "metadata of $1"
import json, os, struct, sys

def read_header(path):
    with open(path, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header.pop("__metadata__", {}), header

path, original, original_sha = sys.argv[1:]
if os.path.isdir(path):  # .npy folder: W{l}.npy or W{l}_1.npy ... (shape (d_in, d_out)), metadata.json
    meta = json.load(open(os.path.join(path, "metadata.json")))
    outs = []
    l = 1
    while True:
        names = sorted(n for n in os.listdir(path) if n == f"W{l}.npy" or n.startswith(f"W{l}_"))
        if not names:
            break
        with open(os.path.join(path, names[-1]), "rb") as f:
            magic = f.read(8)
            hlen, = struct.unpack("<H", f.read(2))
            shape = eval(f.read(hlen).decode())["shape"]  # the .npy header is a Python literal
        outs.append(shape[1])
        l += 1
else:
    meta, tensors = read_header(path)
    # nn.Sequential naming: the out dimension of the last Linear module before each activation slot.
    idx = sorted(int(k.split(".")[0]) for k in tensors if k.endswith(".weight"))
    groups, current = [], [idx[0]]
    for i in idx[1:]:
        if i == current[-1] + 1:
            current.append(i)
        else:
            groups.append(current)
            current = [i]
    groups.append(current)
    outs = [tensors[f"{g[-1]}.weight"]["shape"][0] for g in groups[:-1]]
_, original_tensors = read_header(original)
original_widths = [int(w) for w in meta["idprune.original_widths"].split(",")]
kept = json.loads(meta["idprune.kept_neurons"])
assert len(kept) == len(outs) == len(original_widths) - 2, (len(kept), outs)
for l, (k, out) in enumerate(zip(kept, outs)):
    assert len(k) == out, f"layer {l + 1}: {len(k)} kept neurons, the file's layer has {out}"
    assert k == sorted(set(k)), f"layer {l + 1}: indices not ascending and distinct"
    assert 0 <= k[0] and k[-1] < original_widths[l + 1], f"layer {l + 1}: index outside the original layer"
assert [int(w) for w in meta["idprune.widths"].split(",")][1:-1] == outs
assert meta["idprune.original_sha256"] == original_sha
for key in ["strategy", "setting", "compression_size", "validation_size", "seed", "validation_accuracy",
            "test_accuracy", "version", "git_revision", "params", "original_params"]:
    assert meta.get("idprune." + key, "") != "", key
assert meta["idprune.compression_size"] == "300" and meta["idprune.validation_size"] == "500"
print(meta["idprune.test_accuracy"], meta["idprune.params_fraction"], meta["idprune.strategy"],
      meta.get("idprune.budget", ""), meta.get("idprune.candidates", "[]"))
PY
}

# eval_accuracy FILE: the accuracy `idprune eval` measures, as a fraction.
eval_accuracy() {
  "$idprune" eval --model "$1" --data "$data" | awk '/^accuracy:/ { split($0, a, " "); print a[2] / a[4] }'
}

# 1. A rule, safetensors.
"$idprune" compress --model "$model" --data "$data" "${sizes[@]}" --rule fraction --value 0.3 \
  --out "$work/point.safetensors" >"$work/point.log" 2>&1 || { cat "$work/point.log"; fail "point mode failed"; }
read -r acc fraction strategy _ <<<"$(check_file "$work/point.safetensors")"
[ "$strategy" = greedy ] || fail "point mode strategy $strategy"
awk -v a="$acc" -v b="$(eval_accuracy "$work/point.safetensors")" 'BEGIN { exit !(a == b) }' ||
  fail "metadata test accuracy $acc differs from idprune eval of the file"
csv="$work/point.layers.csv"
[ -s "$csv" ] || fail "no sensitivity table beside the model"
head -1 "$csv" | grep -qx "layer,width_before,width_after,rank_after,params_before,params_after,relative_error" ||
  fail "sensitivity header: $(head -1 "$csv")"
[ "$(($(wc -l <"$csv") - 1))" -eq 7 ] || fail "sensitivity table: $(wc -l <"$csv") lines for 7 hidden layers"
# fraction 0.3 of 256, 128, ...: ceil(0.3 w) neurons per layer, each with a finite positive error.
awk -F, 'NR > 1 { want = int(0.3 * $2); if (want < 0.3 * $2) want++; if ($3 != want || !($7 > 0) || $7 == "inf") bad = 1 }
  END { exit bad }' "$csv" || { cat "$csv"; fail "sensitivity rows"; }
grep -q "relative error" "$work/point.log" || fail "no table printed"

# 2. An .npy folder (svd: factored layers, every neuron kept), only layers 2 and 3.
"$idprune" compress --model "$model" --data "$data" "${sizes[@]}" --strategy svd --rule rank --value 8 \
  --layers 2,3 --out "$work/svd-npy" >"$work/svd.log" 2>&1 || { cat "$work/svd.log"; fail "svd to .npy failed"; }
[ -s "$work/svd-npy/W2_1.npy" ] && [ -s "$work/svd-npy/W2_2.npy" ] && [ -s "$work/svd-npy/W1.npy" ] ||
  fail "svd layers not written as factors: $(ls "$work/svd-npy")"
read -r acc _ <<<"$(check_file "$work/svd-npy")"
awk -v a="$acc" -v b="$(eval_accuracy "$work/svd-npy")" 'BEGIN { exit !(a == b) }' ||
  fail "svd: metadata test accuracy $acc differs from idprune eval"
[ -s "$work/svd-npy.layers.csv" ] || fail "no table beside the folder"
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert m['idprune.layers'] == '2,3', m['idprune.layers']" \
  "$work/svd-npy/metadata.json" || fail "compressed layers not recorded"

# 3. A budget: within it, the candidate with the best validation accuracy.
"$idprune" compress --model "$model" --data "$data" "${sizes[@]}" --budget 0.2 \
  --strategy greedy-fraction,budget-corrected --out "$work/budget.safetensors" >"$work/budget.log" 2>&1 ||
  { cat "$work/budget.log"; fail "budget mode failed"; }
read -r acc fraction strategy budget candidates <<<"$(check_file "$work/budget.safetensors")"
awk -v f="$fraction" 'BEGIN { exit !(f <= 0.2) }' || fail "budget 0.2 exceeded: $fraction"
[ "$budget" = 0.2 ] || fail "budget recorded as '$budget'"
python3 - "$strategy" "$candidates" <<'PY' || fail "the chosen strategy is not the best on validation: $candidates"
import json, sys
chosen, candidates = sys.argv[1], json.loads(sys.argv[2])
assert sorted(c["strategy"] for c in candidates) == ["budget-corrected", "greedy-fraction"]
best = max(c["validation_accuracy"] for c in candidates)
assert [c for c in candidates if c["strategy"] == chosen][0]["validation_accuracy"] == best
PY
awk -v a="$acc" -v b="$(eval_accuracy "$work/budget.safetensors")" 'BEGIN { exit !(a == b) }' ||
  fail "budget: metadata test accuracy $acc differs from idprune eval"
grep -q "<- chosen" "$work/budget.log" || fail "candidates not printed"

# 4. pareto --save-models: one file per strategy and budget, with the same metadata.
"$idprune" pareto --model "$model" --data "$data" "${sizes[@]}" --strategies greedy,budget --budgets 0.1,0.3 \
  --no-report --out "$work/pareto" --save-models "$work/models" >"$work/pareto.log" 2>&1 ||
  { cat "$work/pareto.log"; fail "pareto --save-models failed"; }
for f in greedy_0.1 greedy_0.3 budget_0.1 budget_0.3; do
  [ -s "$work/models/$f.safetensors" ] && [ -s "$work/models/$f.layers.csv" ] || fail "no $f in $(ls "$work/models")"
  read -r acc fraction strategy budget _ <<<"$(check_file "$work/models/$f.safetensors")"
  [ "${strategy}_${budget}" = "$f" ] || fail "$f records ${strategy}_${budget}"
  awk -v f="$fraction" -v b="$budget" 'BEGIN { exit !(f <= b) }' || fail "$f exceeds its budget: $fraction"
  awk -v a="$acc" -v b="$(eval_accuracy "$work/models/$f.safetensors")" 'BEGIN { exit !(a == b) }' ||
    fail "$f: metadata test accuracy $acc differs from idprune eval"
done

# 5. Errors: one clear line, nothing written.
expect_error() {  # expect_error NAME PHRASE ARGS...
  local name="$1" phrase="$2"
  shift 2
  if "$idprune" compress "$@" --out "$work/bad-$name.safetensors" >"$work/$name.log" 2>&1; then
    fail "$name: accepted"
  fi
  grep -qF -- "$phrase" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: the error lacks '$phrase'"; }
  [ ! -e "$work/bad-$name.safetensors" ] && [ ! -e "$work/bad-$name.layers.csv" ] || fail "$name: wrote a file"
}
base=(--model "$model" --data "$data" "${sizes[@]}")
expect_error both "either --budget" "${base[@]}" --budget 0.2 --rule eps --value 0.1
expect_error neither "give --budget" "${base[@]}"
expect_error strategy "unknown strategy 'best'" "${base[@]}" --strategy best --rule eps --value 0.1
expect_error budget-strategy "unknown strategy 'nope'" "${base[@]}" --budget 0.2 --strategy budget,nope
expect_error rule "rank" "${base[@]}" --strategy greedy --rule rank --value 3
expect_error budget-range "outside (0, 1]" "${base[@]}" --budget 1.5
expect_error value-only "go together" "${base[@]}" --value 0.1
expect_error layers "outside [1, 7]" "${base[@]}" --rule k --value 4 --layers 2,9
expect_error sizes "exceed the 3000 training images" --model "$model" --data "$data" --rule k --value 4 \
  --compression-size 2000 --validation-size 1500
expect_error positional "budget" "${base[@]}" --budget 0.2 budget-corrected
printf 'not a model' >"$work/broken.safetensors"
expect_error broken-model "$work/broken.safetensors" --model "$work/broken.safetensors" --data "$data" \
  "${sizes[@]}" --budget 0.2
expect_error tiny-budget "below the smallest network" "${base[@]}" --budget 0.0001 --strategy budget
expect_error tiny-sweep "no strategy (greedy-fraction) has a model within" "${base[@]}" --budget 0.0001 \
  --strategy greedy-fraction
help="$("$idprune" compress --help)"
grep -q "Example" <<<"$help" && grep -q "kept neurons" <<<"$help" || fail "--help lacks the example or the metadata"
echo "compress: ok"
