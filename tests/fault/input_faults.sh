#!/usr/bin/env bash
# One MPI rank of a subcommand that reads a model and data gets a bad input: its model file is
# missing, truncated, another architecture, or the same architecture with one weight changed; its
# data folder has a truncated image file, or the same shapes with one pixel changed; or it throws
# (IDPRUNE_FAULT) while loading the model or the data. Every subcommand must end every rank by
# itself (collective checks, no MPI_Abort) with a non-zero exit within 60 s, the error printed once
# and naming rank 1 and the problem; inputs are compared across ranks by content (SHA-256), not by
# shape. Prints one line per case: the fault-injection matrix of the loading phase.
# To cover another subcommand, add it to `commands` and its arguments to fault_args.
# Usage: input_faults.sh /path/to/idprune /path/to/source_root /path/to/mpiexec
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

commands=(sweep eval pareto rank compress)

# fault_args COMMAND MODEL DATA ENGINE OUT: one rank's arguments (small and quick).
fault_args() {
  case "$1" in
  sweep)
    echo "sweep --model $2 --data $3 --strategy greedy --rule eps --grid 1e-2 --compression-size 300"
    echo "--test-size 300 --seed 7 --threads 1 --engine $4 --out $5" ;;
  eval) echo "eval --model $2 --data $3" ;;
  pareto)
    echo "pareto --model $2 --data $3 --strategies greedy --budgets 0.5 --eps-grid 0.1,1 --refine 0"
    echo "--compression-size 300 --validation-size 300 --test-size 300 --seed 7 --threads 1 --no-report"
    echo "--engine $4 --out $5" ;;
  rank) echo "rank --model $2 --layer 1 --data $3 --samples 300 --base-points 2 --seed 7" ;;
  compress)
    echo "compress --model $2 --data $3 --strategy greedy --rule eps --value 0.1 --compression-size 300"
    echo "--validation-size 300 --test-size 300"
    echo "--seed 7 --threads 1 --engine $4 --out $5.safetensors" ;;
  *) fail "fault_args: unknown command $1" ;;
  esac
}

# Per-rank inputs.
head -c 400000 "$model" >"$work/truncated.safetensors"
cp "$model" "$work/changed.safetensors"
size="$(stat -c %s "$model")"
# The last float32's lowest mantissa byte: the shapes stay, one weight changes by ~1e-7 relative.
printf '\x5a' | dd of="$work/changed.safetensors" bs=1 seek=$((size - 4)) conv=notrunc status=none
cmp -s "$model" "$work/changed.safetensors" && fail "changing a byte did not change the file"
other="$root/data/models/fashion-mnist-reference.safetensors"
# Truncated image files of both splits (eval reads the test split only).
mkdir "$work/baddata"
cp "$data"/*.gz "$work/baddata/"
for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz; do
  head -c 100000 "$data/$f" >"$work/baddata/$f"
done
# One pixel of each image file changed, a valid file of the same shape: only the content differs.
mkdir "$work/changeddata"
cp "$data"/*.gz "$work/changeddata/"
for f in train-images-idx3-ubyte t10k-images-idx3-ubyte; do
  gzip -dc "$data/$f.gz" >"$work/changeddata/$f"
  byte="$(od -An -tu1 -j 1000 -N 1 "$work/changeddata/$f" | tr -d ' ')"
  printf "\\x$(printf %02x $(((byte + 1) % 256)))" | dd of="$work/changeddata/$f" bs=1 seek=1000 conv=notrunc status=none
  rm "$work/changeddata/$f.gz"
  gzip -n "$work/changeddata/$f"
done
cmp -s "$data/train-images-idx3-ubyte.gz" "$work/changeddata/train-images-idx3-ubyte.gz" &&
  fail "changing a pixel did not change the file"

setup_fault_matrix
for command in "${commands[@]}"; do
  expect_fault collective "$command" missing-model 3 tsqr "no-such.safetensors" "$work/no-such.safetensors" "$data"
  expect_fault collective "$command" corrupt-model 3 tsqr "truncated.safetensors" "$work/truncated.safetensors" "$data"
  expect_fault collective "$command" other-model 3 tsqr "differs from rank 0's" "$other" "$data"
  expect_fault collective "$command" changed-weight 3 tsqr "differs from rank 0's" "$work/changed.safetensors" "$data"
  expect_fault collective "$command" corrupt-data 3 tsqr "images-idx3-ubyte\|the data .* differs from rank 0's" \
    "$model" "$work/baddata"
  expect_fault collective "$command" changed-data 2 tsqr "the data .* differs from rank 0's" "$model" "$work/changeddata"
  expect_fault collective "$command" throw-load-model 2 tsqr "injected fault" "$model" "$data" "rank=1,phase=load-model"
  expect_fault collective "$command" throw-load-data 2 tsqr "injected fault" "$model" "$data" "rank=1,phase=load-data"
  # The same inputs reached by other paths on rank 1 (a link): accepted, the run completes.
  mkdir -p "$work/elsewhere-$command"
  ln -sfn "$model" "$work/elsewhere-$command/m.safetensors"
  ln -sfn "$data" "$work/elsewhere-$command/d"
  # shellcheck disable=SC2046
  timeout 120 "$mpiexec" --oversubscribe -n 1 "$idprune" $(fault_args "$command" "$model" "$data" tsqr "$work/ok-$command") : \
    -n 1 "$idprune" $(fault_args "$command" "$work/elsewhere-$command/m.safetensors" "$work/elsewhere-$command/d" tsqr \
    "$work/ok-$command") >"$work/ok-$command.log" 2>&1 || { cat "$work/ok-$command.log"; fail "$command: good inputs refused"; }
  echo "input_faults: $command with the same inputs under other paths on rank 1: ok"
done
echo "input_faults: ok ($cases cases over ${commands[*]})"
