#!/usr/bin/env bash
# --precision f32 / --compare-precision: a float32 evaluation of the same (float64-compressed)
# models. Kept neurons equal the float64 sweep's; rows say precision = f32; the changed-prediction
# count equals the predictions that differ between `eval --predictions` in the two precisions; a
# resume refuses the other precision; the figures do not depend on the number of ranks.
# Usage: precision.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
root="$2"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
model="$root/data/models/fashion-mnist-small.safetensors"
data="$root/data/fashion-mnist-small"
mpiexec_bin="$(command -v mpiexec || command -v mpirun || true)"

args=(sweep --model "$model" --data "$data" --strategy greedy --rule fraction --grid 0.2,0.5,0.9
  --compression-size 300 --threads 1)
"$idprune" "${args[@]}" --out "$work/f64" >"$work/f64.log" 2>&1 || { cat "$work/f64.log"; fail "f64 sweep"; }
"$idprune" "${args[@]}" --precision f32 --compare-precision --out "$work/f32" >"$work/f32.log" 2>&1 ||
  { cat "$work/f32.log"; fail "f32 sweep"; }

# One column of a results.csv by name (kept_per_layer joins its entries with ';', no commas).
column() {  # column CSV NAME
  awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i; next } { print $c }' "$1"
}
head -1 "$work/f64/results.csv" | grep -q 'precision' && fail "a float64 row has a precision column"
[ "$(column "$work/f32/results.csv" precision | sort -u)" = "f32" ] || fail "float32 rows lack precision = f32"
[ "$(column "$work/f32/results.csv" kept_per_layer)" = "$(column "$work/f64/results.csv" kept_per_layer)" ] ||
  fail "kept neurons differ between the float32 and float64 sweeps (compression must be float64)"
changed="$(column "$work/f32/results.csv" f32_changed_predictions)"
[ "$(echo "$changed" | wc -l)" -eq 3 ] || fail "expected 3 f32_changed_predictions values, got: $changed"
echo "$changed" | grep -qvE '^[0-9]+$' && fail "f32_changed_predictions not counts: $changed"
"$idprune" sweep --help >"$work/help.txt"
grep -q -- "--precision" "$work/help.txt" || fail "sweep --help does not document --precision"

# A resume in the other precision is refused, naming the precision.
for pair in "f64 f32" "f32 f64"; do
  set -- $pair
  if "$idprune" "${args[@]}" --precision "$2" --resume --out "$work/$1" >"$work/resume.log" 2>&1; then
    fail "a resume of the $1 folder in $2 was accepted"
  fi
  grep -q 'precision' "$work/resume.log" || { cat "$work/resume.log"; fail "the refusal does not name the precision"; }
done
"$idprune" "${args[@]}" --precision f32 --resume --out "$work/f32" >"$work/resume.log" 2>&1 ||
  { cat "$work/resume.log"; fail "a resume in the same precision failed"; }

# eval: the changed count is the number of differing lines of the two predictions files.
"$idprune" eval --model "$model" --data "$data" --predictions "$work/p64.csv" >"$work/e64.log"
"$idprune" eval --model "$model" --data "$data" --precision f32 --compare-precision --predictions "$work/p32.csv" \
  >"$work/e32.log"
grep -q '^precision: f32$' "$work/e32.log" || fail "eval does not print its precision"
differ="$(paste -d, "$work/p64.csv" "$work/p32.csv" | awk -F, 'NR > 1 && $3 != $6 { n++ } END { print n + 0 }')"
grep -q "^f32 changed predictions: $differ / " "$work/e32.log" ||
  { cat "$work/e32.log"; fail "eval's changed count is not the $differ differing predictions"; }
if "$idprune" eval --model "$model" --data "$data" --precision f16 >"$work/bad.log" 2>&1; then
  fail "--precision f16 was accepted"
fi
grep -q 'precision' "$work/bad.log" || fail "--precision f16: no clear message"

# pareto and compress: a float32 study says so in pareto.csv and refuses a float64 resume; a
# float32-scored model file records it in its metadata.
pareto=(pareto --model "$model" --data "$data" --strategies greedy --budgets 0.3 --compression-size 200
  --validation-size 300 --test-size 200 --threads 1 --no-report --out "$work/pareto")
"$idprune" "${pareto[@]}" --precision f32 >"$work/pareto.log" 2>&1 || { cat "$work/pareto.log"; fail "f32 pareto"; }
[ "$(column "$work/pareto/pareto.csv" precision | sort -u)" = "f32" ] || fail "pareto.csv lacks precision = f32"
if "$idprune" "${pareto[@]}" --resume >"$work/pareto.log" 2>&1; then fail "a f64 resume of a f32 pareto was accepted"; fi
grep -q 'precision' "$work/pareto.log" || { cat "$work/pareto.log"; fail "the pareto refusal does not name the precision"; }
"$idprune" compress --model "$model" --data "$data" --budget 0.3 --compression-size 200 --validation-size 300 \
  --test-size 200 --threads 1 --precision f32 --out "$work/c.safetensors" >"$work/compress.log" 2>&1 ||
  { cat "$work/compress.log"; fail "f32 compress"; }
grep -aq '"idprune.evaluation_precision":"f32"' "$work/c.safetensors" || fail "the model file does not record f32 scores"

# Ranks divide rows, never the counts.
if [ -n "$mpiexec_bin" ]; then
  for np in 2 3; do
    "$mpiexec_bin" --oversubscribe -n "$np" "$idprune" "${args[@]}" --precision f32 --compare-precision \
      --out "$work/f32_np$np" >"$work/np.log" 2>&1 || { cat "$work/np.log"; fail "f32 sweep under $np ranks"; }
    for c in test_accuracy agreement f32_changed_predictions kept_per_layer; do
      [ "$(column "$work/f32_np$np/results.csv" $c)" = "$(column "$work/f32/results.csv" $c)" ] ||
        fail "$c under $np ranks differs from 1 rank"
    done
  done
fi
echo "precision: ok"
