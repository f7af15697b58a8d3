#!/usr/bin/env bash
# Results record their inputs by content: `--resume` refuses a model or data set whose content
# changed under the same path (rows of two models in one table), and accepts the same files under
# another path. For sweep and pareto. The hashes are SHA-256 of the files (sha256sum's), recorded in
# every row and in config.ini.
# Usage: input_hashes.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

cp "$root/data/models/fashion-mnist-small.safetensors" "$work/model.safetensors"
cp -r "$root/data/fashion-mnist-small" "$work/data"
column() {  # column CSV NAME
  awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i; next } { print $c }' "$1"
}

sweep=(sweep --strategy greedy --rule eps --compression-size 300 --test-size 300 --seed 7 --threads 1 --engine lapack)
"$idprune" "${sweep[@]}" --model "$work/model.safetensors" --data "$work/data" --grid 0.01,0.1 --out "$work/s" \
  >"$work/s.log" 2>&1 || { cat "$work/s.log"; fail "sweep failed"; }
want="$(sha256sum "$work/model.safetensors" | cut -d' ' -f1)"
[ "$(column "$work/s/results.csv" model_sha256 | sort -u)" = "$want" ] || fail "rows do not record the model's sha256"
grep -q "^# model_sha256: $want" "$work/s/config.ini" || fail "config.ini does not record the model's sha256"
grep -q "^# data_sha256: [0-9a-f]\{64\}" "$work/s/config.ini" || fail "config.ini does not record the data's sha256"

# The same files under other paths: accepted, and only the new point is computed.
mkdir "$work/moved"
cp "$work/model.safetensors" "$work/moved/m.safetensors"
cp -r "$work/data" "$work/moved/d"
"$idprune" "${sweep[@]}" --model "$work/moved/m.safetensors" --data "$work/moved/d" --grid 0.01,0.1,1 --out "$work/s" \
  --resume >"$work/moved.log" 2>&1 || { cat "$work/moved.log"; fail "the same files under other paths were refused"; }
grep -q "(2 already in" "$work/moved.log" || { cat "$work/moved.log"; fail "the moved files did not resume"; }
[ "$(wc -l <"$work/s/results.jsonl")" -eq 3 ] || fail "not 3 rows after the resume"

# Another model under the same path: refused, nothing written.
cp "$root/data/models/fashion-mnist-reference.safetensors" "$work/model.safetensors"
if "$idprune" "${sweep[@]}" --model "$work/model.safetensors" --data "$work/data" --grid 0.01,0.1,1,2 --out "$work/s" \
  --resume >"$work/other.log" 2>&1; then
  fail "a resume with another model under the same path was accepted"
fi
grep -q "model_sha256" "$work/other.log" || { cat "$work/other.log"; fail "the refusal does not name model_sha256"; }
[ "$(wc -l <"$work/s/results.jsonl")" -eq 3 ] || fail "the refused resume changed the table"
cp "$root/data/models/fashion-mnist-small.safetensors" "$work/model.safetensors"

# Data with one pixel changed (same shapes) under the same path: refused.
f="$work/data/t10k-images-idx3-ubyte"
gzip -dc "$f.gz" >"$f"
printf '\x07' | dd of="$f" bs=1 seek=5000 conv=notrunc status=none
rm "$f.gz"
gzip -n "$f"
if "$idprune" "${sweep[@]}" --model "$work/model.safetensors" --data "$work/data" --grid 0.01,0.1,1,2 --out "$work/s" \
  --resume >"$work/data.log" 2>&1; then
  fail "a resume with changed data under the same path was accepted"
fi
grep -q "data_sha256" "$work/data.log" || { cat "$work/data.log"; fail "the refusal does not name data_sha256"; }
rm -rf "$work/data"
cp -r "$root/data/fashion-mnist-small" "$work/data"

# pareto: the same checks through its strategy records.
pareto=(pareto --strategies greedy,svd --budgets 0.3 --eps-grid 0.1,1 --svd-grid 0.2,0.5 --refine 0 --compression-size 300
  --validation-size 300 --test-size 300 --seed 7 --threads 1 --no-report)
"$idprune" "${pareto[@]}" --model "$work/model.safetensors" --data "$work/data" --out "$work/p" >"$work/p.log" 2>&1 ||
  { cat "$work/p.log"; fail "pareto failed"; }
"$idprune" "${pareto[@]}" --model "$work/moved/m.safetensors" --data "$work/moved/d" --out "$work/p" --resume \
  >"$work/p-moved.log" 2>&1 || { cat "$work/p-moved.log"; fail "pareto: the same files under other paths were refused"; }
grep -q "(2 already in" "$work/p-moved.log" || { cat "$work/p-moved.log"; fail "pareto: the moved files did not resume"; }
cp "$root/data/models/fashion-mnist-reference.safetensors" "$work/model.safetensors"
if "$idprune" "${pareto[@]}" --model "$work/model.safetensors" --data "$work/data" --out "$work/p" --resume \
  >"$work/p-other.log" 2>&1; then
  fail "pareto: a resume with another model under the same path was accepted"
fi
grep -q "model_sha256" "$work/p-other.log" || { cat "$work/p-other.log"; fail "pareto: the refusal does not name model_sha256"; }
echo "input_hashes: ok"
