#!/usr/bin/env bash
# The smaller safety fixes, one check each: a folder given as --config, a model too large for memory,
# terminal escapes from a binary config, file permissions of a saved model, a full disk during a
# resume, a model whose input width does not fit the data, negative seeds, `--layers all`, defaults
# shown as written, no --kmax sentinel, an example in every --help, lowrank's conflicting sources and
# its compression-set seed, the note about a dropped results line, the pareto console summary.
# Usage: small_fixes.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

refused() {  # refused NAME PHRASE COMMAND...: non-zero exit, message with PHRASE
  local name="$1" phrase="$2" rc=0
  shift 2
  timeout 60 "$@" >"$work/$name.log" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || { cat "$work/$name.log"; fail "$name: exit $rc"; }
  grep -q -- "$phrase" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: the message lacks '$phrase'"; }
}
sweep=(sweep --model "$model" --data "$data" --strategy greedy --rule eps --compression-size 300 --test-size 300
  --seed 7 --threads 1 --engine lapack)

# --config DIR is a folder, not an empty config.
refused config-dir "is a folder" "$idprune" sweep --config "$work" --model "$model" --data "$data" --grid 1 --out "$work/x"

# A model too large for this machine: the memory it needs, before reading the data.
refused train-huge "needs about .* GiB" "$idprune" train --data "$data" --widths 100000000 --out "$work/huge.safetensors"
! grep -q "bad_alloc" "$work/train-huge.log" || fail "train-huge: std::bad_alloc"

# A binary config: the bytes are shown escaped, never as terminal escape sequences.
printf '\033[31mred\033[0m = 1\n\x9b2J = 2\n' >"$work/binary.ini"
refused binary-config "config file" "$idprune" sweep --config "$work/binary.ini" --model m --data d --grid 1 --out o
! grep -q $'\033' "$work/binary-config.log" || fail "binary-config: an escape byte reached the terminal"
grep -qF '\x1b[31mred' "$work/binary-config.log" || { cat "$work/binary-config.log"; fail "binary-config: not shown escaped"; }

# A saved .npy model: every file with the same permissions (the umask's).
(umask 022 && "$idprune" train --data "$data" --widths 8 --epochs 1 --out "$work/npy" >"$work/train.log" 2>&1) ||
  { cat "$work/train.log"; fail "train .npy failed"; }
modes="$(stat -c %a "$work/npy"/* | sort -u)"
[ "$modes" = 644 ] || fail "npy folder files have modes '$modes', expected 644 for umask 022"

# A full disk (a file size limit: MPI's start-up needs files of 4 MiB, so the table is made larger
# than that) while --resume rewrites the tables: an error, the files unchanged, no temporary left.
"$idprune" "${sweep[@]}" --grid 0.01,0.1,1 --out "$work/full" >"$work/full.log" 2>&1 || { cat "$work/full.log"; fail "sweep"; }
cp -r "$work/full" "$work/big"
for _ in $(seq 1 11); do cat "$work/big/results.jsonl" "$work/big/results.jsonl" >"$work/twice" && mv "$work/twice" "$work/big/results.jsonl"; done
before="$(sha256sum "$work/big/results.jsonl")"
rc=0
(trap '' XFSZ && ulimit -f 4096 && "$idprune" "${sweep[@]}" --grid 0.01,0.1,1,2 --out "$work/big" --resume) \
  >"$work/fullres.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "full disk: the resume succeeded under a 4 MiB file size limit"
grep -q "cannot write .*results.jsonl" "$work/fullres.log" || { cat "$work/fullres.log"; fail "full disk: unclear error"; }
[ "$(sha256sum "$work/big/results.jsonl")" = "$before" ] || fail "full disk: results.jsonl changed"
left="$(find "$work/big" -name '*tmp*')"
[ -z "$left" ] || fail "full disk: temporary files left: $left"

# A report onto a full disk (small tmpfs, where one can be mounted): whichever file no longer fits,
# the message says the disk is full (it used to blame gnuplot: "gnuplot wrote no ...png").
mkdir -p "$work/small"
"$idprune" lowrank --n 40 --kmax 20 --out "$work/lr/lowrank.csv" >/dev/null
if mount -t tmpfs -o size=8k tmpfs "$work/small" 2>/dev/null; then
  umount "$work/small"
  for size in 8k 12k 16k 20k; do
    mount -t tmpfs -o size=$size tmpfs "$work/small"
    rc=0
    "$idprune" report "$work/lr" --out "$work/small/report" >"$work/report-$size.log" 2>&1 || rc=$?
    left="$(ls -A "$work/small")"
    umount "$work/small"
    [ "$rc" -ne 0 ] || continue
    grep -q "No space left on device\|is full" "$work/report-$size.log" ||
      { cat "$work/report-$size.log"; fail "report on a full $size disk: the message does not say so"; }
    [ -z "$left" ] || fail "report on a full $size disk left: $left"
  done
else
  echo "small_fixes: cannot mount a tmpfs here; the full-disk report check is skipped"
fi

# A model whose input width does not fit the data: refused before any folder is made.
python3 - "$work/narrow" <<'PY'
import os, struct, sys
d = sys.argv[1]
os.makedirs(d)
def npy(path, rows, cols):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%dd" % (rows * cols), *[0.01 * (i % 7) for i in range(rows * cols)]))
npy(d + "/W1.npy", 12, 4)
npy(d + "/Ws.npy", 4, 10)
PY
refused width "takes 12 inputs" "$idprune" sweep --model "$work/narrow" --data "$data" --grid 1 --out "$work/w"
[ ! -e "$work/w" ] || fail "width: the refused sweep left a folder: $(ls -A "$work/w")"

# Negative values of unsigned options are refused, not wrapped around.
refused seed "seed=-1" "$idprune" "${sweep[@]}" --grid 1 --seed=-1 --out "$work/s"
printf 'seed = -3\n' >"$work/seed.ini"
refused seed-config "line 1: .*seed=-3" "$idprune" "${sweep[@]}" --grid 1 --config "$work/seed.ini" --out "$work/s"

# --layers all (the documented default) is accepted.
"$idprune" "${sweep[@]}" --grid 1 --layers all --out "$work/all" >"$work/all.log" 2>&1 || { cat "$work/all.log"; fail "--layers all"; }

# Defaults as written: no 0.050000000000000003 in help or in a saved config.
"$idprune" pareto --help >"$work/help.txt"
grep -q "(=0.05)" "$work/help.txt" || fail "pareto --help does not show --step's default as 0.05"
! grep -q "0000000" "$work/help.txt" || fail "pareto --help shows a long default"
grep -q "^progress-interval = 30$" "$work/all/config.ini" || fail "config.ini does not write 30 as 30"
# No sentinel default for --kmax.
"$idprune" lowrank --help >"$work/lowrank-help.txt"
grep -q -- "--kmax" "$work/lowrank-help.txt" || fail "lowrank --help has no --kmax"
! grep -q -- "--kmax.*(=-1)" "$work/lowrank-help.txt" || fail "lowrank --help shows a -1 sentinel for --kmax"

# Every subcommand's --help has an example.
mapfile -t commands < <("$idprune" --help | awk '/^Subcommands:/ { on = 1; next } on && NF { print $1 }')
for c in "${commands[@]}"; do
  variants=("$c")
  [ "$c" != bench ] || variants=("bench cpqr" "bench id" "bench qr")
  for v in "${variants[@]}"; do
    # shellcheck disable=SC2086
    "$idprune" $v --help >"$work/help-of-command.txt"
    grep -q "^Example" "$work/help-of-command.txt" || fail "'idprune $v --help' has no example"
  done
done

# lowrank: two matrix sources are refused; --model draws the compression set sweep draws (seed 1).
"$idprune" lowrank --n 30 --out "$work/k.csv" >/dev/null
refused lowrank-two "give one of them" "$idprune" lowrank --matrix "$work/k.csv" --model "$model" --data "$data"
lr=(lowrank --model "$model" --data "$data" --layer 2 --compression-size 200 --kmax 10)
"$idprune" "${lr[@]}" --out "$work/default.csv" >/dev/null
"$idprune" "${lr[@]}" --seed 1 --out "$work/seed1.csv" >/dev/null
"$idprune" "${lr[@]}" --seed 0 --out "$work/seed0.csv" >/dev/null
cmp -s "$work/default.csv" "$work/seed1.csv" || fail "lowrank --model does not draw with sweep's seed 1 by default"
! cmp -s "$work/default.csv" "$work/seed0.csv" || fail "lowrank --model: seeds 0 and 1 give the same table"

# The note about a dropped incomplete line does not promise a recomputation.
cp -r "$work/full" "$work/cut"
truncate -s -20 "$work/cut/results.jsonl"
"$idprune" "${sweep[@]}" --grid 5 --out "$work/cut" --resume >"$work/cut.log" 2>&1 || { cat "$work/cut.log"; fail "cut resume"; }
grep -q "dropped an incomplete last line" "$work/cut.log" || { cat "$work/cut.log"; fail "cut: no note"; }
! grep -q "computed again" "$work/cut.log" || fail "cut: the note promises a recomputation"

# pareto's console summary: greedy is the reference, a missing value is '-', never nan.
"$idprune" pareto --model "$model" --data "$data" --strategies greedy,svd,joint --budgets 0.01,0.3 --compression-size 300 \
  --validation-size 400 --test-size 300 --threads 1 --step 0.2 --no-report --out "$work/p" >"$work/p.txt" 2>"$work/p.log" ||
  { cat "$work/p.log"; fail "pareto failed"; }
! grep -qi "nan" "$work/p.txt" || { cat "$work/p.txt"; fail "pareto summary prints nan"; }
grep -q "^greedy .*(ref)" "$work/p.txt" || { cat "$work/p.txt"; fail "pareto summary: greedy is not the reference"; }
echo "small_fixes: ok"
