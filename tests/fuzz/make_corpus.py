#!/usr/bin/env python3
"""Writes the seed corpus of the libFuzzer targets into tests/fuzz/corpus/<target>/: tiny valid files
(and a few near-misses) of every format. Deterministic; re-run after changing a format, commit the output.
Inputs of fuzz_idx and fuzz_cifar start with a mode byte (see fuzz_support.hpp: 0 plain, 1 gzip,
2 gzip cut short, 3 gzip with a flipped byte)."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    folder = os.path.join(OUT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def idx_images(count, h, w):
    return struct.pack(">IIII", 0x803, count, h, w) + bytes((i * 37) % 256 for i in range(count * h * w))


def idx_labels(count):
    return struct.pack(">II", 0x801, count) + bytes(i % 10 for i in range(count))


def npy(descr, fortran, shape, payload, version=1):
    shape_text = "(" + ", ".join(str(d) for d in shape) + (",)" if len(shape) == 1 else ")")
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    prefix = 10 if version == 1 else 12
    header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + payload


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, values)."""
    header, buf = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, values in tensors:
        fmt = "<%d%s" % (len(values), "f" if dtype == "F32" else "d")
        data = struct.pack(fmt, *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(data)]}
        buf += data
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + buf


def main():
    # IDX: images and labels, plain (mode 0) and gzip (mode 1), plus a gzip cut short and one flipped.
    put("fuzz_idx", "images-plain", b"\x00" + idx_images(3, 2, 3))
    put("fuzz_idx", "labels-plain", b"\x00" + idx_labels(4))
    put("fuzz_idx", "images-gzip", b"\x01" + idx_images(3, 2, 3))
    put("fuzz_idx", "labels-gzip", b"\x01" + idx_labels(4))
    put("fuzz_idx", "images-gzip-cut", b"\x02\x80" + idx_images(3, 2, 3))
    put("fuzz_idx", "labels-gzip-flipped", b"\x03\xf0" + idx_labels(4))
    put("fuzz_idx", "images-empty", b"\x00" + idx_images(0, 1, 1))
    # Found by fuzzing: zero images of 2^31 x 2^31 pixels; reading rows allocated before checking them.
    put("fuzz_idx", "found-empty-huge-images", b"\x00" + struct.pack(">IIII", 0x803, 0, 1 << 31, 1 << 31))

    # CIFAR-10: one 3073-byte record (label, 3072 pixels), gzip; the fuzzer mutates the mode byte.
    record = lambda label: bytes([label]) + bytes((i * 7) % 256 for i in range(3072))
    put("fuzz_cifar", "one-record-gzip", b"\x01" + record(3))
    put("fuzz_cifar", "short-record", b"\x00" + record(1)[:100])

    # .npy: every accepted dtype, both orders, versions 1.0-3.0, 1-D and 2-D, an empty array.
    put("fuzz_npy", "f8-c-2x3", npy("<f8", False, (2, 3), struct.pack("<6d", *range(6))))
    put("fuzz_npy", "f4-fortran-3x2", npy("<f4", True, (3, 2), struct.pack("<6f", *range(6))))
    put("fuzz_npy", "big-f8-1d-v2", npy(">f8", False, (4,), struct.pack(">4d", 1.5, -2, 0, 1e300), version=2))
    put("fuzz_npy", "big-f4-v3", npy(">f4", False, (1, 2), struct.pack(">2f", 1, 2), version=3))
    put("fuzz_npy", "empty-0x4", npy("<f8", False, (0, 4), b""))
    put("fuzz_npy", "nan", npy("<f8", False, (2,), struct.pack("<2d", float("nan"), 1)))

    # safetensors: a two-layer model with biases and metadata, a low-rank (factored) layer, F64.
    put("fuzz_safetensors", "mlp-f32",
        safetensors([("0.weight", "F32", [3, 2], [0.5] * 6), ("0.bias", "F32", [3], [0.1, 0.2, 0.3]),
                     ("2.weight", "F32", [2, 3], [1, -1, 0, 2, 0, 1])],
                    {"format": "pt", "idprune.activations": "relu,identity"}))
    put("fuzz_safetensors", "lowrank-f64",
        safetensors([("net.0.weight", "F64", [1, 2], [1, 2]), ("net.1.weight", "F64", [2, 1], [3, 4]),
                     ("net.3.weight", "F64", [2, 2], [1, 0, 0, 1])]))
    put("fuzz_safetensors", "empty-tensor", safetensors([("x", "F32", [0, 5], [])]))
    # Nested offsets: a million levels deep crashed the error message (hand-made); a few stand in here.
    nested = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[[[[0]]],4]}}'
    put("fuzz_safetensors", "found-nested-offsets", struct.pack("<Q", len(nested)) + nested + b"\0" * 4)

    # Config files in the INI syntax of `idprune COMMAND --config`.
    put("fuzz_config", "sweep.ini",
        b"# a sweep\nmodel = m.safetensors\ngrid = 0.1,0.01,1e-3\nlayers = 1,2\ncompression-size = 500\n"
        b"seed = 7\nthreads = 2\nprogress-interval = 2.5\nresume = true\n")
    put("fuzz_config", "list.ini", b"engine = tsqr\nengine = gram\n[section]\nkey = 1\n")
    put("fuzz_config", "bad-value.ini", b"seed = -x\n")
    # Found by fuzzing: Boost's error message looped forever on a key holding its own placeholder.
    put("fuzz_config", "found-placeholder-key.ini", b"m%original_token%x = 7\nseed = %value%\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
