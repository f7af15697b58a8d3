#!/usr/bin/env bash
# Ctrl-C and SIGTERM: the first signal is acknowledged at once ("stopping after the wave in flight
# (Ctrl-C again to stop now)") and the sweep stops after that wave with exit 130 (SIGINT) or 143
# (SIGTERM); a second signal during a long wave stops it within a second, exit 130, and the folder
# resumes to exactly the uninterrupted table. pareto stops after the strategy in flight the same way.
# Usage: stop_signals.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

has_rows() { [ "$(rows "$1")" -ge "$2" ]; }
acknowledged() { grep -q "stopping after the $2 in flight (Ctrl-C again to stop now)" "$1"; }

points=40
grid="$(awk -v n=$points 'BEGIN { for (i = 0; i < n; ++i) printf "%s%.6g", (i ? "," : ""), 1e-4 * 10 ^ (i / 10) }')"
args=(sweep --model "$model" --data "$data" --strategy greedy --rule eps --grid "$grid" --compression-size 1000
  --test-size 500 --seed 7 --engine lapack --threads 1)
"$idprune" "${args[@]}" --wave 1 --out "$work/ref" >"$work/ref.log" 2>&1 || { cat "$work/ref.log"; fail "sweep failed"; }
strip() {
  awk -F, -v OFS=, '
    NR == 1 { for (i = 1; i <= NF; ++i) if ($i ~ /^(wave|wave_points|wave_size|wave_compress_seconds|wave_evaluate_seconds|finished_at|ranks|threads|blas_core)$/) skip[i] = 1 }
    { line = ""; sep = ""; for (i = 1; i <= NF; ++i) if (!skip[i]) { line = line sep $i; sep = OFS }; print line }' "$1"
}
check_resumed() {  # check_resumed DIR WHAT [REF N]: --resume completes DIR to the uninterrupted table REF (N rows)
  local ref="${3:-$work/ref}" n="${4:-$points}"
  "$idprune" sweep --config "$1/config.ini" --resume >"$1.resume.log" 2>&1 || { cat "$1.resume.log"; fail "$2: resume failed"; }
  [ "$(rows "$1")" -eq "$n" ] || fail "$2: $(rows "$1") rows after the resume"
  diff <(strip "$ref/results.csv" | sort) <(strip "$1/results.csv" | sort) >"$work/diff.txt" ||
    { cat "$work/diff.txt"; fail "$2: the resumed table differs from the uninterrupted one"; }
}

# One signal: acknowledged at once, the sweep ends after its wave with 128 + the signal.
for sig in INT TERM; do
  out="$work/one-$sig"
  "$idprune" "${args[@]}" --wave 1 --out "$out" >"$work/one-$sig.log" 2>&1 &
  pid=$!
pids+=("$pid")
  wait_for 60 has_rows "$out" 1 || fail "$sig: no row within 60 s"
  t0="$(now)"
  kill -"$sig" "$pid"
  wait_for 2 acknowledged "$work/one-$sig.log" wave || { cat "$work/one-$sig.log"; fail "$sig: no acknowledgement within 2 s"; }
  rc=0
  wait "$pid" || rc=$?
  want=$([ "$sig" = INT ] && echo 130 || echo 143)
  [ "$rc" -eq "$want" ] || { cat "$work/one-$sig.log"; fail "$sig: exit $rc, expected $want"; }
  grep -q "Resume with: idprune sweep --config" "$work/one-$sig.log" || { cat "$work/one-$sig.log"; fail "$sig: no resume hint"; }
  [ "$(rows "$out")" -lt $points ] || fail "$sig: the sweep ran to its end"
  echo "stop_signals: SIG$sig: acknowledged, stopped with $(rows "$out") of $points rows in $(since "$t0") s, exit $rc"
  check_resumed "$out" "SIG$sig"
done

# Two signals during one long wave (all points in one wave): the second stops it within a second.
# The wave must outlast the first signal and its acknowledgement (0.5 s and up to 2 s): 40 points
# took 0.6 s in all on a 2-core machine, so this case sweeps 400 (the eps grid ten times finer).
long_points=400
long_grid="$(awk -v n=$long_points 'BEGIN { for (i = 0; i < n; ++i) printf "%s%.6g", (i ? "," : ""), 1e-4 * 10 ^ (i / 100) }')"
long_args=("${args[@]}")
for i in "${!long_args[@]}"; do [ "${long_args[$i]}" != "$grid" ] || long_args[$i]="$long_grid"; done
"$idprune" "${long_args[@]}" --wave 1 --out "$work/ref-long" >"$work/ref-long.log" 2>&1 ||
  { cat "$work/ref-long.log"; fail "long sweep failed"; }
out="$work/two"
"$idprune" "${long_args[@]}" --wave $long_points --out "$out" >"$work/two.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_for 30 grep -q "points (0 already in" "$work/two.log" || { cat "$work/two.log"; fail "two: the sweep did not start"; }
sleep 0.5
kill -INT "$pid"
wait_for 2 acknowledged "$work/two.log" wave || { cat "$work/two.log"; fail "two: no acknowledgement"; }
kill -0 "$pid" 2>/dev/null || fail "two: the wave ended before the second signal (make it longer)"
t0="$(now)"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
secs="$(since "$t0")"
[ "$rc" -eq 130 ] || { cat "$work/two.log"; fail "two: exit $rc after the second SIGINT, expected 130"; }
awk -v s="$secs" 'BEGIN { exit !(s < 1.0) }' || fail "two: the second SIGINT took $secs s to stop the sweep"
echo "stop_signals: a second SIGINT stopped a long wave in $secs s, exit $rc"
check_resumed "$out" "two signals" "$work/ref-long" $long_points

# pareto: stops after the strategy in flight.
pargs=(pareto --model "$model" --data "$data" --strategies greedy,svd,budget --budgets 0.1,0.3 --compression-size 300
  --validation-size 400 --test-size 500 --seed 4 --threads 1 --no-report --out "$work/p")
"$idprune" "${pargs[@]}" >"$work/p.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_for 60 grep -q "pareto: greedy \.\.\." "$work/p.log" || { cat "$work/p.log"; fail "pareto did not start"; }
kill -INT "$pid"
wait_for 2 acknowledged "$work/p.log" strategy || { cat "$work/p.log"; fail "pareto: no acknowledgement"; }
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 130 ] || { cat "$work/p.log"; fail "pareto: exit $rc after SIGINT, expected 130"; }
kept="$(grep -c '"strategy"' "$work/p/pareto-strategies.jsonl" || true)"
[ "$kept" -ge 1 ] && [ "$kept" -le 2 ] || fail "pareto: $kept strategies recorded after SIGINT (the one in flight, maybe one more)"
"$idprune" pareto --config "$work/p/config.ini" --resume >"$work/p2.log" 2>&1 || { cat "$work/p2.log"; fail "pareto resume"; }
[ "$(grep -c '"strategy"' "$work/p/pareto-strategies.jsonl")" -eq 3 ] || fail "pareto: not 3 strategies after the resume"
echo "stop_signals: ok"
