#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, IDPRUNE_FUZZ=ON) in a build folder of their own and runs each
# for a bounded time on a copy of its seed corpus (tests/fuzz/corpus/<target>/; the repository is not
# modified). Fails on any crash, sanitizer report, uncaught exception, timeout or out-of-memory; the
# reproducer is copied to BUILD_DIR/artifacts/ and its log printed.
#
# Usage: run_fuzz.sh SOURCE_DIR [BUILD_DIR] [TARGET...]
#   BUILD_DIR  default SOURCE_DIR/build/ci-fuzz
#   TARGET     default all: fuzz_idx fuzz_cifar fuzz_npy fuzz_safetensors fuzz_config
# Environment:
#   IDPRUNE_FUZZ_SECONDS   seconds per target (default 30)
#   IDPRUNE_FUZZ_JOBS      targets run at once, and build jobs (default 2)
#   CXX_FUZZ               the clang++ to use (default: clang++, else clang++-14 .. clang++-18)
# Exit status 77 (ctest: skipped) when no clang with libFuzzer is found.
set -euo pipefail
src="$(cd "$1" && pwd)"
build="${2:-$src/build/ci-fuzz}"
shift $(($# >= 2 ? 2 : 1))
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(fuzz_idx fuzz_cifar fuzz_npy fuzz_safetensors fuzz_config)
seconds="${IDPRUNE_FUZZ_SECONDS:-30}"
jobs="${IDPRUNE_FUZZ_JOBS:-2}"

cxx="${CXX_FUZZ:-}"
if [[ -z "$cxx" ]]; then
  for c in clang++ clang++-14 clang++-15 clang++-16 clang++-17 clang++-18; do
    if command -v "$c" >/dev/null; then cxx="$(command -v "$c")"; break; fi
  done
fi
if [[ -z "$cxx" ]]; then
  echo "SKIP: no clang++ found (the fuzz targets need clang with libFuzzer; jobs/setup-debian.sh installs it)"
  exit 77
fi
cc="${cxx/clang++/clang}"
[[ -x "$cc" ]] || cc="$(command -v "${cc##*/}" || true)"

work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
# libFuzzer's runtime ships separately on Debian (libclang-rt-NN-dev): probe before configuring.
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
  "$cxx" -fsanitize=fuzzer,address,undefined -x c++ - -o "$work/probe" 2>"$work/probe.log"; then
  cat "$work/probe.log"
  echo "SKIP: $cxx cannot link -fsanitize=fuzzer,address,undefined (install libclang-rt-NN-dev)"
  exit 77
fi

start=$(date +%s)
# -O1 with line tables only: quicker to build than -O2 -g, still symbolized reports; no NDEBUG,
# so assertions stay on while fuzzing.
cmake -S "$src" -B "$build" -DCMAKE_CXX_COMPILER="$cxx" ${cc:+-DCMAKE_C_COMPILER="$cc"} \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DIDPRUNE_FUZZ=ON -DIDPRUNE_BUILD_TESTS=OFF >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; echo "FAIL: configuring $build"; exit 1; }
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$work/build.log" 2>&1 ||
  { tail -n 60 "$work/build.log"; echo "FAIL: building the fuzz targets"; exit 1; }
built=$(date +%s)
echo "built ${targets[*]} in $((built - start)) s; running each for ${seconds} s, ${jobs} at a time"

# run_target NAME: fuzzes a copy of the seed corpus; the log is $work/NAME.log, the status $work/NAME.rc.
run_target() {
  local t="$1" rc=0
  mkdir -p "$work/corpus/$t" "$work/artifacts"
  cp "$src/tests/fuzz/corpus/$t/"* "$work/corpus/$t/"
  # -max_len: a CIFAR-10 record is 3073 bytes; two of them (and a mode byte) must fit.
  # detect_leaks stays on: a leak per input is a bug too. -malloc_limit_mb defaults to the RSS limit,
  # so a single allocation over 2 GB (a header believed before it was checked) is reported.
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" "$work/corpus/$t" >"$work/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$t.rc"
}

running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

status=0
for t in "${targets[@]}"; do
  rc="$(cat "$work/$t.rc" 2>/dev/null || echo missing)"
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")"
  if [[ "$rc" == 0 ]]; then
    echo "ok   $t: ${runs:-?} executions in ${seconds} s"
  else
    status=1
    echo "FAIL $t (exit $rc) after ${runs:-?} executions; log:"
    grep -v -E '^#[0-9]+ +(NEW|REDUCE|pulse|RELOAD)' "$work/$t.log" | tail -n 80
    mkdir -p "$build/artifacts"
    cp "$work/artifacts/$t-"* "$build/artifacts/" 2>/dev/null &&
      echo "reproducer(s) in $build/artifacts/ (run: $build/tests/fuzz/$t FILE)"
  fi
done
echo "fuzz total: $(($(date +%s) - start)) s (build $((built - start)) s)"
exit "$status"
