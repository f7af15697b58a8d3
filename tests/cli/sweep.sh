#!/usr/bin/env bash
# `idprune sweep`: the result table's contract (columns, one row per grid point), layer selection,
# re-running from DIR/config.ini, several strategies in one folder, a clean stop on SIGTERM that a
# --resume completes, progress lines in a log, and clear errors.
# Usage: sweep.sh /path/to/idprune /path/to/source_root
set -euo pipefail
idprune="$1"
root="$2"
data="$root/data/fashion-mnist-small"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "sweep: $*"
  exit 1
}
column() {  # column CSV NAME: the values of column NAME, one per line
  awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i; next } { print $c }' "$1"
}

"$idprune" train --data "$data" --out "$work/model.safetensors" --widths 64,32 --epochs 2 --seed 3 --threads 1 \
  >"$work/train.log"
common=(--model "$work/model.safetensors" --data "$data" --compression-size 500 --seed 7 --threads 1)

# Greedy eps over every layer: the contract's columns, one row per point, eps tiny keeps every live
# neuron and agrees with the original model on (nearly) every test image.
"$idprune" sweep "${common[@]}" --strategy greedy --rule eps --grid 1e-12,1e-2,0.3 --out "$work/a" \
  >"$work/a.log" 2>&1 || { cat "$work/a.log"; fail "greedy sweep failed"; }
header="$(head -1 "$work/a/results.csv")"
for c in strategy rule value test_accuracy agreement params params_fraction hidden_kept_fraction kept_per_layer \
  flops wave_compress_seconds git_revision seed ranks threads engine compression_size model data; do
  echo ",$header," | grep -q ",$c," || fail "column $c missing from: $header"
done
[ "$(tail -n +2 "$work/a/results.csv" | wc -l)" -eq 3 ] || fail "expected 3 rows"
[ "$(wc -l <"$work/a/results.jsonl")" -eq 3 ] || fail "expected 3 JSON lines"
agree="$(column "$work/a/results.csv" agreement | head -1)"
awk -v a="$agree" 'BEGIN { exit !(a >= 0.99) }' || fail "eps = 1e-12 changed predictions (agreement $agree)"
# Larger eps keeps fewer parameters.
column "$work/a/results.csv" params | awk 'NR > 1 && $1 > prev { exit 1 } { prev = $1 }' ||
  fail "params grow with eps: $(column "$work/a/results.csv" params | tr '\n' ' ')"
grep -q "sweep.*3/3 points" "$work/a.log" || { cat "$work/a.log"; fail "no progress line in the log"; }

# --layers 1: only the first hidden layer shrinks.
"$idprune" sweep "${common[@]}" --strategy greedy --rule k --grid 5 --layers 1 --out "$work/b" >"$work/b.log" 2>&1 ||
  { cat "$work/b.log"; fail "layer-1 sweep failed"; }
[ "$(column "$work/b/results.csv" kept_per_layer)" = "5;32" ] || fail "kept_per_layer $(column "$work/b/results.csv" kept_per_layer)"

# The folder's config.ini repeats the run exactly (into another folder).
"$idprune" sweep --config "$work/a/config.ini" --out "$work/a2" >"$work/a2.log" 2>&1 ||
  { cat "$work/a2.log"; fail "re-run from config.ini failed"; }
strip() { cut -d, -f1-20 "$1"; }  # the metric columns (timings and provenance come later)
diff <(strip "$work/a/results.csv") <(strip "$work/a2/results.csv") || fail "config.ini did not reproduce the table"

# Several strategies into one table (the SVD-vs-ID-vs-magnitude study): --resume adds to a folder.
"$idprune" sweep "${common[@]}" --strategy svd --rule rank --grid 4,16 --out "$work/a" --resume >"$work/s.log" 2>&1 ||
  { cat "$work/s.log"; fail "svd sweep failed"; }
"$idprune" sweep "${common[@]}" --strategy magnitude --rule eps --grid 1e-2 --out "$work/a" --resume \
  >"$work/m.log" 2>&1 || { cat "$work/m.log"; fail "magnitude sweep failed"; }
[ "$(column "$work/a/results.csv" strategy | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')" = \
  "greedy:3 magnitude:1 svd:2 " ] || fail "combined table: $(column "$work/a/results.csv" strategy | tr '\n' ' ')"
# magnitude at eps keeps greedy's per-layer counts at that eps.
g="$(awk -F, 'NR > 1 && $1 == "greedy" && $3 == "0.01" { print $0 }' "$work/a/results.csv")"
m="$(awk -F, 'NR > 1 && $1 == "magnitude" { print $0 }' "$work/a/results.csv")"
[ "$(echo "$g" | cut -d, -f10)" = "$(echo "$m" | cut -d, -f10)" ] || fail "magnitude/eps kept $m vs greedy $g"

# SIGTERM: the sweep stops after the wave in flight with exit 143 and says how to resume; --resume
# then completes the grid. A point takes about 2 ms here, so the sweep is frozen (SIGSTOP) once its
# first row is on disk and the SIGTERM is queued while it is frozen: it arrives with points left
# whatever the machine's speed (CI once saw a 30-point sweep end before the signal).
points=200
grid="$(awk -v n=$points 'BEGIN { for (i = 0; i < n; ++i) printf "%s%.6g", (i ? "," : ""), 1e-4 * 10 ^ (i / 50) }')"
"$idprune" sweep "${common[@]}" --engine lapack --strategy greedy --rule eps --grid "$grid" --wave 1 \
  --out "$work/t" >"$work/t.log" 2>&1 &
pid=$!
for _ in $(seq 1 6000); do
  if [ -f "$work/t/results.jsonl" ] && [ "$(wc -l <"$work/t/results.jsonl")" -ge 1 ]; then break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
kill -STOP "$pid" 2>/dev/null || fail "the sweep ended before SIGSTOP"
[ "$(wc -l <"$work/t/results.jsonl")" -lt $((points - 1)) ] || fail "the sweep was nearly done before SIGSTOP"
kill -TERM "$pid"
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 143 ] || { cat "$work/t.log"; fail "exit $rc after SIGTERM, expected 143"; }
grep -q "Resume with: idprune sweep --config" "$work/t.log" || { cat "$work/t.log"; fail "no resume hint"; }
n="$(wc -l <"$work/t/results.jsonl")"
[ "$n" -lt $points ] || fail "SIGTERM did not stop the sweep early"
"$idprune" sweep --config "$work/t/config.ini" --resume >"$work/t2.log" 2>&1 || { cat "$work/t2.log"; fail "resume"; }
[ "$(wc -l <"$work/t/results.jsonl")" -eq $points ] || fail "resume did not complete the grid"
[ "$(tail -n +2 "$work/t/results.csv" | wc -l)" -eq $points ] || fail "CSV rows after resume"

# Clear errors, non-zero exit.
expect_error() {  # expect_error PHRASE ARGS...
  local phrase="$1"
  shift
  if "$idprune" sweep "$@" >"$work/err.log" 2>&1; then fail "accepted: $*"; fi
  grep -q -- "$phrase" "$work/err.log" || { cat "$work/err.log"; fail "error for '$*' lacks '$phrase'"; }
}
expect_error "rank rule rank applies only to the svd strategy" "${common[@]}" --rule rank --grid 3 --out "$work/e1"
expect_error "outside \[1, 2\]" "${common[@]}" --grid 0.1 --layers 3 --out "$work/e2"
expect_error "must be in (0, 1\]" "${common[@]}" --rule fraction --grid 1.5 --out "$work/e3"
expect_error "use --resume or another --out" "${common[@]}" --grid 0.1 --out "$work/a"
expect_error "unknown pivot engine" "${common[@]}" --grid 0.1 --engine qr --out "$work/e4"
echo "sweep: ok"
