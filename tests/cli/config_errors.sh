#!/usr/bin/env bash
# Malformed --config files (cases found by tests/fuzz/fuzz_config): every one fails promptly with a
# message naming the config file and the problem. Boost 1.74 alone loops forever on a key or value
# holding its own message placeholder (e.g. "%value%"), hence the timeout.
# Usage: config_errors.sh IDPRUNE_BINARY SOURCE_ROOT
set -euo pipefail
idprune="$1"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_config_error CONFIG_TEXT PATTERN: `idprune sweep --config FILE` exits non-zero within 20 s
# and its message names FILE and matches PATTERN.
n=0
expect_config_error() {
  n=$((n + 1))
  local ini="$work/bad-$n.ini" rc=0
  printf '%s\n' "$1" >"$ini"
  timeout 20 "$idprune" sweep --config "$ini" >"$work/out.txt" 2>&1 || rc=$?
  cat "$work/out.txt"
  [[ $rc -ne 124 ]] || fail "config '$1': no answer within 20 s (hang)"
  [[ $rc -ne 0 ]] || fail "config '$1' accepted"
  grep -qF "config file '$ini'" "$work/out.txt" || fail "config '$1': the message does not name $ini"
  grep -q -- "$2" "$work/out.txt" || fail "config '$1': the message does not match '$2'"
}

expect_config_error 'm%original_token%x = 7' "unrecognised option 'm%25original_token%25x'"
expect_config_error '%value% = 1' "unrecognised option '%25value%25'"
expect_config_error 'seed = %value%' "seed"
expect_config_error 'no equals sign' "invalid line"
expect_config_error 'seed = x' "seed"
expect_config_error $'seed = 1\nseed = 2' "seed"
echo "ok: $n malformed configs rejected with the file named"
