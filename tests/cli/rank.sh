#!/usr/bin/env bash
# `idprune rank`: 50 games of the reference text's game answer >= 95% correctly, the output
# reports the queries, the run is reproducible from its seed, and bad options fail clearly.
# Usage: rank.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$idprune" rank --trials 50 --seed 1 >"$work/out.txt" || fail "rank --trials 50 --seed 1 exited with $?"
cat "$work/out.txt"
fraction="$(sed -n 's/^fraction correct: \([0-9.]*\)$/\1/p' "$work/out.txt")"
[[ -n "$fraction" ]] || fail "no 'fraction correct:' line"
awk -v f="$fraction" 'BEGIN { exit !(f >= 0.95) }' || fail "fraction correct $fraction < 0.95"
grep -q '^queries per game: mean [0-9.]*, max [0-9]*$' "$work/out.txt" || fail "no queries line"
grep -q '^games: 50 ' "$work/out.txt" || fail "not 50 games"

# Same seed, same answers (the time line aside).
"$idprune" rank --trials 50 --seed 1 >"$work/again.txt"
diff <(grep -v '^time:' "$work/out.txt") <(grep -v '^time:' "$work/again.txt") || fail "not reproducible"

# --help documents the method and the scale of the game.
"$idprune" rank --help >"$work/help.txt" || fail "--help exited non-zero"
grep -q 'central differences' "$work/help.txt" || fail "--help does not describe the method"
grep -q 'N(0, 1)' "$work/help.txt" || fail "--help does not state the scale of W1, W2"

# Bad options: a clear message naming the option, and a non-zero exit.
expect_error() {
  local pattern="$1"
  shift
  if "$idprune" rank "$@" >"$work/bad.out" 2>"$work/bad.err"; then
    fail "rank $* succeeded"
  fi
  grep -q -- "$pattern" "$work/bad.err" || { cat "$work/bad.err" >&2; fail "rank $*: message lacks '$pattern'"; }
}
expect_error '--trials=0' --trials 0
expect_error '--dim=0' --dim 0
expect_error '--trials=-3' --trials -3
expect_error 'unrecognised\|unknown\|unrecognized' --no-such-option
expect_error 'w1-scale' --trials 1 --w1-scale 0
echo "rank.sh: OK"
