#!/usr/bin/env bash
# idprune compress --finetune-epochs on the embedded model and a small split: the post-training file
# is the same model with the same accuracies as without fine-tuning (the two are never mixed), the
# fine-tuned model is written apart with its own *_finetuned keys and the shapes of the compressed
# one, results agree on 1 and 2 ranks, and a factored (svd) model trains its factors;
# pareto --finetune-epochs adds columns of its own and leaves the others as they are.
# Usage: compress_finetune.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

sizes=(--compression-size 300 --validation-size 500 --test-size 400 --threads 1)
point=(--strategy greedy --rule fraction --value 0.3)

"$idprune" compress --model "$model" --data "$data" "${point[@]}" "${sizes[@]}" --out "$work/plain.safetensors" \
  >/dev/null 2>&1 || fail "compress without fine-tuning"
"$idprune" compress --model "$model" --data "$data" "${point[@]}" "${sizes[@]}" --out "$work/m.safetensors" \
  --finetune-epochs 1 >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; fail "compress --finetune-epochs 1"; }
[ -f "$work/m.finetuned.safetensors" ] || fail "no fine-tuned model written"
grep -q "after fine-tuning" "$work/out.txt" || fail "no fine-tuning line printed"
mpi 2 compress --model "$model" --data "$data" "${point[@]}" "${sizes[@]}" --out "$work/np2.safetensors" \
  --finetune-epochs 1 >/dev/null 2>&1 || fail "compress --finetune-epochs 1 on 2 ranks"

python3 - "$work" <<'PY' || fail "metadata"
import json, struct, sys

def read(path):
    with open(path, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        body = f.read()
    meta = header.pop("__metadata__", {})
    shapes = {k: v["shape"] for k, v in header.items()}
    return meta, shapes, body

work = sys.argv[1]
plain, plain_shapes, plain_body = read(f"{work}/plain.safetensors")
post, post_shapes, post_body = read(f"{work}/m.safetensors")
tuned, tuned_shapes, tuned_body = read(f"{work}/m.finetuned.safetensors")
np2, _, np2_body = read(f"{work}/np2.finetuned.safetensors")
# The post-training file and its accuracies do not depend on fine-tuning.
assert post_body == plain_body, "the post-training model changed with --finetune-epochs"
for key in ("idprune.test_accuracy", "idprune.validation_accuracy"):
    assert post[key] == plain[key], (key, post[key], plain[key])
assert not any(k.endswith("_finetuned") for k in post), "fine-tuned scores mixed into the post-training file"
# The fine-tuned model: the same shapes, other values, its scores under their own keys.
assert tuned_shapes == post_shapes, (tuned_shapes, post_shapes)
assert tuned_body != post_body, "fine-tuning changed nothing"
for key in ("idprune.test_accuracy_finetuned", "idprune.validation_accuracy_finetuned"):
    assert 0.0 <= float(tuned[key]) <= 1.0, (key, tuned[key])
assert tuned["idprune.finetune_epochs"] == "1"
# Every rank fine-tunes the same copy: the same file on 2 ranks.
assert np2_body == tuned_body, "the fine-tuned model differs on 2 ranks"
PY

# A factored (svd) model trains its factors: the fine-tuned file keeps the low-rank shapes.
"$idprune" compress --model "$model" --data "$data" --strategy svd --rule fraction --value 0.3 "${sizes[@]}" \
  --out "$work/svd.safetensors" --finetune-epochs 1 >"$work/svd.txt" 2>&1 ||
  { cat "$work/svd.txt"; fail "fine-tuning an svd model"; }
python3 - "$work" <<'PY' || fail "the fine-tuned svd model"
import json, struct, sys, glob
work = sys.argv[1]
def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))
files = sorted(glob.glob(f"{work}/svd*.safetensors"))
assert len(files) == 2, files
post = header(next(p for p in files if "finetuned" not in p))
tuned = header(next(p for p in files if "finetuned" in p))
shapes = lambda h: {k: v["shape"] for k, v in h.items() if k != "__metadata__"}
assert shapes(post) == shapes(tuned), (shapes(post), shapes(tuned))
assert any(k.endswith("_finetuned") for k in tuned["__metadata__"]), tuned["__metadata__"].keys()
assert 0.0 <= float(tuned["__metadata__"]["idprune.test_accuracy_finetuned"]) <= 1.0
PY
# pareto --finetune-epochs: the fine-tuned accuracies in columns of their own (an svd model's too),
# the post-training columns the same as without fine-tuning.
psizes=(--budgets 0.3 --compression-size 300 --validation-size 500 --test-size 400 --threads 1 --no-report)
"$idprune" pareto --model "$model" --data "$data" --strategies greedy-fraction,svd "${psizes[@]}" \
  --out "$work/p0" >/dev/null 2>&1 || fail "pareto without fine-tuning"
"$idprune" pareto --model "$model" --data "$data" --strategies greedy-fraction,svd "${psizes[@]}" \
  --out "$work/p1" --finetune-epochs 1 >"$work/p1.txt" 2>&1 || { cat "$work/p1.txt"; fail "pareto --finetune-epochs"; }
python3 - "$work" <<'PY' || fail "pareto columns"
import csv, math, sys
work = sys.argv[1]
plain = {r["strategy"]: r for r in csv.DictReader(open(f"{work}/p0/pareto.csv"))}
tuned = {r["strategy"]: r for r in csv.DictReader(open(f"{work}/p1/pareto.csv"))}
assert set(plain) == set(tuned) == {"greedy-fraction", "svd"}, (plain.keys(), tuned.keys())
assert "test_accuracy_finetuned" not in next(iter(plain.values())), "fine-tuning columns without fine-tuning"
for s in plain:
    for key in ("test_accuracy", "validation_accuracy", "params", "kept_per_layer"):
        assert plain[s][key] == tuned[s][key], (s, key, plain[s][key], tuned[s][key])
assert 0.0 <= float(tuned["greedy-fraction"]["test_accuracy_finetuned"]) <= 1.0
assert 0.0 <= float(tuned["svd"]["test_accuracy_finetuned"]) <= 1.0, tuned["svd"]["test_accuracy_finetuned"]
PY
echo "$test_name: ok"
