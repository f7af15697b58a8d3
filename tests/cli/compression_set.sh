#!/usr/bin/env bash
# Compression sets from anywhere (`--compression-size all`, `--calibration FILE`, `--augment shifts[:R]`)
# and streamed compression sets (`--block-rows`, `--max-memory`) in `idprune sweep`: a streamed set
# keeps the neurons of the same set in memory (on 1 and 2 ranks), the sources give the sets they
# describe, and what cannot be done is a clear error.
# Usage: compression_set.sh /path/to/idprune /path/to/source_root
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# kept DIR: "value kept_per_layer test_correct" per point, in grid order.
kept() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) { if ($i == "value") v = i; if ($i == "kept_per_layer") k = i;
                     if ($i == "test_correct") c = i } next } { print $v, $k, $c }' "$1/results.csv" | sort -g
}
column() { awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == name) c = i; next } { print $c }' "$1"; }
sweep() {  # sweep OUT NP ARGS...
  local out="$1" np="$2"
  shift 2
  mpi "$np" sweep --model "$model" --data "$data" --strategy greedy --rule eps --grid 1e-3,1e-2,0.1,0.5 --seed 5 \
    --threads 1 --test-size 300 --out "$work/$out" "$@" >"$work/$out.log" 2>&1 ||
    { cat "$work/$out.log"; fail "sweep $out failed"; }
}

# A training sample in memory and streamed in blocks of 37 rows (fewer than the widest layer), on
# one and two ranks, and under a memory limit that forces streaming: the same kept counts and test
# counts at every point.
sweep mem 1 --compression-size 400
sweep streamed 1 --compression-size 400 --block-rows 37
sweep streamed2 2 --compression-size 400 --block-rows 37
sweep limited 1 --compression-size 400 --max-memory 200K
for d in streamed streamed2 limited; do
  [ "$(kept "$work/mem")" = "$(kept "$work/$d")" ] ||
    fail "$d keeps other neurons than in memory: $(kept "$work/$d") vs $(kept "$work/mem")"
done

# --augment shifts: 9 rows per image; streamed or not, the same selections.
sweep aug 1 --compression-size 60 --augment shifts
sweep aug_streamed 2 --compression-size 60 --augment shifts --block-rows 50
[ "$(column "$work/aug/results.csv" compression_size | sort -u)" = "540" ] || fail "60 images with shifts are not 540 rows"
[ "$(kept "$work/aug")" = "$(kept "$work/aug_streamed")" ] || fail "augmented sets streamed and in memory differ"
# --augment shifts:2: 25 rows per image (shifts by up to 2 pixels); shifts:1 is shifts.
sweep aug2 1 --compression-size 20 --augment shifts:2 --block-rows 120
[ "$(column "$work/aug2/results.csv" compression_size | sort -u)" = "500" ] || fail "20 images with shifts:2 are not 500 rows"
sweep aug1 1 --compression-size 60 --augment shifts:1
[ "$(kept "$work/aug")" = "$(kept "$work/aug1")" ] || fail "shifts:1 keeps other neurons than shifts"

# --calibration: the training images file itself is an IDX calibration file; `all` takes every row.
images="$data/train-images-idx3-ubyte.gz"
sweep cal 1 --calibration "$images" --compression-size 250
sweep cal_streamed 2 --calibration "$images" --compression-size 250 --block-rows 40
[ "$(column "$work/cal/results.csv" compression_size | sort -u)" = "250" ] || fail "calibration set is not 250 rows"
[ "$(kept "$work/cal")" = "$(kept "$work/cal_streamed")" ] || fail "calibration sets streamed and in memory differ"
sweep cal_all 1 --calibration "$images" --compression-size all --block-rows 500
train_rows="$(column "$work/cal_all/results.csv" compression_size | sort -u)"
[ "$train_rows" -gt 250 ] || fail "--compression-size all took $train_rows rows"
sweep all 1 --compression-size all --block-rows 500
[ "$(column "$work/all/results.csv" compression_size | sort -u)" = "$train_rows" ] ||
  fail "--compression-size all is not every training image"

# Clear errors.
expect_error() {  # expect_error TEXT ARGS...
  local text="$1"
  shift
  if "$idprune" sweep --model "$model" --data "$data" --grid 0.1 --threads 1 \
    --out "$work/err" "$@" >"$work/err.log" 2>&1; then
    fail "accepted: $*"
  fi
  grep -q -- "$text" "$work/err.log" || { cat "$work/err.log"; fail "no '$text' for: $*"; }
  rm -rf "$work/err"
}
expect_error "--augment=mirror" --augment mirror
expect_error "--augment=shifts:4" --augment shifts:4
expect_error "--augment=shifts:" --augment shifts:
expect_error "--compression-size=0" --compression-size 0
expect_error "--block-rows=-1" --block-rows -1
expect_error "sketch" --engine sketch --block-rows 100
expect_error "exceeds" --calibration "$images" --compression-size 100000
expect_error "least squares" --strategy corrected --rule fraction --block-rows 100
expect_error "mean compensation averages" --strategy greedy --rule fraction --mean-compensation --block-rows 100
expect_error "reads activation moments" --strategy output --rule fraction --block-rows 100
echo "compression_set: ok"
