"""Real PyTorch round trips with idprune on the embedded Fashion-MNIST subset.

  PyTorch -> idprune: small MLPs (with and without biases; nn.Sequential keys, named modules, a
    ModuleList that needs --layer-order, a low-rank layer as two Linear modules) are trained here,
    saved as safetensors by a short writer (torch 1.13 has no safetensors module), and evaluated
    by `idprune eval --predictions`.
  idprune -> PyTorch: a model written by `idprune train` (with and without biases) is loaded into
    an nn.Sequential built from the file's shapes, as docs/model-files.md shows.

  PyTorch -> idprune compress -> PyTorch: MLPs trained here (with biases, without biases, named
    modules) are compressed by `idprune compress` (a parameter budget, and svd and corrected rules),
    and the compressed file is loaded into an nn.Sequential built from its shapes; its predictions
    are compared with `idprune eval` of the same file, and PyTorch's CPU times of the original and
    the compressed model are printed.

Every comparison asks for predictions equal on >= 99.9% of the test images and accuracies within
0.1 point: float32 in PyTorch against idprune's float64 evaluation of the same float32 weights
differ only where two logits (nearly) tie.

Usage: python3 roundtrip.py IDPRUNE_BINARY SOURCE_ROOT
"""
import csv
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

MIN_AGREEMENT = 0.999
MAX_ACCURACY_GAP = 0.001  # 0.1 point


# ---- data -----------------------------------------------------------------------------------------

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_split(root, split):
    prefix = "train" if split == "train" else "t10k"
    folder = os.path.join(root, "data", "fashion-mnist-small")
    images = read_idx(os.path.join(folder, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(folder, prefix + "-labels-idx1-ubyte.gz"))
    # idprune scales pixels by 1/255 (in double; here in float32: rounding far below the weights').
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels.astype(np.int64))


# ---- safetensors (the format's own rules: little-endian u64 header length, JSON header, buffer) -----

def write_safetensors(path, tensors, metadata=None):
    """A short safetensors writer for float32 tensors (what safetensors.torch.save_file writes)."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    buffers, offset = [], 0
    for name in sorted(tensors):
        array = tensors[name].detach().cpu().contiguous().numpy().astype("<f4")
        raw = array.tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        buffers.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(buffers))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n, = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    buffer = data[8 + n:]
    dtypes = {"F32": "<f4", "F64": "<f8"}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(buffer[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.astype(np.float32))
    return tensors, metadata


def sequential_from_file(path):
    """The nn.Sequential an idprune file describes: index i with a weight is nn.Linear(in, out,
    bias=<i>.bias present); an index without one is the activation between layers (ReLU, or
    Identity where the metadata 'idprune.activations' says so)."""
    tensors, metadata = read_safetensors(path)
    indices = sorted({int(key.split(".")[0]) for key in tensors})
    activations = metadata.get("idprune.activations", "").split(",")
    modules, layer = [], 0
    for i in range(indices[-1] + 1):
        weight = tensors.get(f"{i}.weight")
        if weight is None:
            act = activations[layer] if layer < len(activations) and activations[0] else "relu"
            modules.append(torch.nn.ReLU() if act == "relu" else torch.nn.Identity())
            layer += 1
        else:
            modules.append(torch.nn.Linear(weight.shape[1], weight.shape[0], bias=f"{i}.bias" in tensors))
    model = torch.nn.Sequential(*modules)
    model.load_state_dict(tensors)  # strict: every key used, every shape matching
    return model.eval()


# ---- PyTorch models -------------------------------------------------------------------------------

class Named(torch.nn.Module):
    """Named modules, activations in forward(): keys fc1.*, fc2.*, out.*."""

    def __init__(self, bias):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 64, bias=bias)
        self.fc2 = torch.nn.Linear(64, 32, bias=bias)
        self.out = torch.nn.Linear(32, 10, bias=bias)

    def forward(self, x):
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class Listed(torch.nn.Module):
    """An nn.ModuleList: keys layers.0, layers.1, layers.2, whose order and grouping the keys do not
    settle (the same keys as a Sequential of three bare Linears)."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            [torch.nn.Linear(784, 48), torch.nn.Linear(48, 24), torch.nn.Linear(24, 10)])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.relu(x)
        return x


def sequential(bias, low_rank=False):
    if low_rank:  # the second layer as a rank-12 product: Linear(64, 12, bias=False), Linear(12, 32)
        return torch.nn.Sequential(torch.nn.Linear(784, 64, bias=bias), torch.nn.ReLU(),
                                   torch.nn.Linear(64, 12, bias=False), torch.nn.Linear(12, 32, bias=bias),
                                   torch.nn.ReLU(), torch.nn.Linear(32, 10, bias=bias))
    return torch.nn.Sequential(torch.nn.Linear(784, 64, bias=bias), torch.nn.ReLU(),
                               torch.nn.Linear(64, 32, bias=bias), torch.nn.ReLU(),
                               torch.nn.Linear(32, 10, bias=bias))


def train(model, x, y, epochs=6, seed=0):
    log(f"training {type(model).__name__} (seed {seed})")
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            optimizer.zero_grad()
            loss(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def predict(model, x):
    with torch.no_grad():
        return model(x).argmax(dim=1)


def cpu_time(model, x, reps=20):
    """Median seconds of one forward pass over x (informational: the machine is shared)."""
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(reps):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


# ---- idprune --------------------------------------------------------------------------------------

class Idprune:
    def __init__(self, binary, root, work):
        self.binary, self.root, self.work = binary, root, work
        self.data = os.path.join(root, "data", "fashion-mnist-small")

    def run(self, *args):
        log("idprune " + " ".join(args[:3]))
        return subprocess.run([self.binary, *args], capture_output=True, text=True)

    def predictions(self, model_path, *extra):
        """idprune eval's per-sample predictions of the test split (label, prediction)."""
        out = os.path.join(self.work, os.path.basename(model_path) + ".predictions.csv")
        r = self.run("eval", "--model", model_path, "--data", self.data, "--predictions", out, *extra)
        if r.returncode != 0:
            raise RuntimeError(f"idprune eval {model_path} failed: {r.stdout}{r.stderr}")
        with open(out) as f:
            rows = list(csv.DictReader(f))
        return (torch.tensor([int(row["label"]) for row in rows]),
                torch.tensor([int(row["prediction"]) for row in rows]))


START = time.perf_counter()


def log(text):
    print(f"[{time.perf_counter() - START:7.1f} s] {text}", flush=True)


def compare(name, torch_pred, idprune_pred, labels):
    agree = (torch_pred == idprune_pred).float().mean().item()
    acc_torch = (torch_pred == labels).float().mean().item()
    acc_idprune = (idprune_pred == labels).float().mean().item()
    ok = agree >= MIN_AGREEMENT and abs(acc_torch - acc_idprune) <= MAX_ACCURACY_GAP + 1e-12
    msg = (f"{name}: predictions equal on {100 * agree:.2f}% of {len(labels)} test images; accuracy "
           f"PyTorch {100 * acc_torch:.2f}%, idprune {100 * acc_idprune:.2f}%")
    return ok, msg


# ---- round trips (one function each) ----------------------------------------------------------------

def torch_to_idprune(idp, name, model, state_dict, x_test, y_test, *eval_args):
    path = os.path.join(idp.work, name + ".safetensors")
    write_safetensors(path, state_dict)
    labels, pred = idp.predictions(path, *eval_args)
    if not torch.equal(labels, y_test):
        return False, f"{name}: idprune's test labels differ from the IDX file's"
    return compare(f"PyTorch -> idprune, {name}", predict(model, x_test), pred, labels)


def idprune_to_torch(idp, name, train_args, x_test, y_test):
    path = os.path.join(idp.work, name + ".safetensors")
    r = idp.run("train", "--data", idp.data, "--out", path, "--widths", "48,24", "--epochs", "3", "--seed", "5",
                "--threads", "1", *train_args)
    if r.returncode != 0:
        return False, f"{name}: idprune train failed: {r.stdout}{r.stderr}"
    model = sequential_from_file(path)
    labels, pred = idp.predictions(path)
    return compare(f"idprune -> PyTorch, {name}", predict(model, x_test), pred, labels)


def compress_round_trip(idp, name, model, x_test, y_test, compress_args, read_args=()):
    """Export `model`'s state dict, `idprune compress` it, load the result into an nn.Sequential
    built from the file's shapes, and compare its predictions with `idprune eval` of the file.
    Returns ((ok, message), compressed nn.Sequential or None)."""
    source = os.path.join(idp.work, name + ".safetensors")
    write_safetensors(source, model.state_dict())
    out = os.path.join(idp.work, name + "-compressed.safetensors")
    r = idp.run("compress", "--model", source, "--data", idp.data, "--out", out, "--compression-size", "1000",
                "--validation-size", "1000", "--threads", "1", *compress_args, *read_args)
    if r.returncode != 0:
        return (False, f"{name}: idprune compress failed: {r.stdout}{r.stderr}"), None
    compressed = sequential_from_file(out)
    _, metadata = read_safetensors(out)
    labels, pred = idp.predictions(out)
    ok, msg = compare(f"PyTorch -> idprune compress -> PyTorch, {name}", predict(compressed, x_test), pred, labels)
    params = sum(p.numel() for p in compressed.parameters())
    original = sum(p.numel() for p in model.parameters())
    recorded = float(metadata["idprune.test_accuracy"])
    measured = int((pred == labels).sum()) / len(labels)
    kept = json.loads(metadata["idprune.kept_neurons"])
    # The width of each hidden layer: the Linear module right before each activation module.
    modules = list(compressed)
    widths = [modules[i - 1].out_features for i, m in enumerate(modules) if not isinstance(m, torch.nn.Linear)]
    problems = []
    if params != int(metadata["idprune.params"]) or params >= original:
        problems.append(f"{params} parameters (metadata {metadata['idprune.params']}, original {original})")
    if abs(recorded - measured) > 1e-12:
        problems.append(f"metadata test accuracy {recorded} but idprune eval gives {measured}")
    if [len(k) for k in kept] != widths:
        problems.append(f"kept neurons per layer {[len(k) for k in kept]}, hidden widths of the file {widths}")
    msg += (f"; {params} of {original} parameters ({metadata['idprune.strategy']}, {metadata['idprune.setting']}); "
            f"biases: {sum(1 for m in compressed if isinstance(m, torch.nn.Linear) and m.bias is not None)} Linear")
    if problems:
        return (False, msg + "; " + "; ".join(problems)), compressed
    return (ok, msg), compressed


def ambiguous_file_is_one_clear_error(idp, model):
    """A ModuleList's keys without --layer-order: one error naming the file and listing its keys,
    and no predictions file."""
    path = os.path.join(idp.work, "modulelist-ambiguous.safetensors")
    write_safetensors(path, model.state_dict())
    out = os.path.join(idp.work, "ambiguous.csv")
    r = idp.run("eval", "--model", path, "--data", idp.data, "--predictions", out)
    text = r.stdout + r.stderr
    ok = (r.returncode != 0 and path in text and "layers.0.weight" in text and "--layer-order" in text
          and not os.path.exists(out))
    return ok, f"ambiguous ModuleList file: exit {r.returncode}, message: {text.strip()}"


def main():
    binary, root = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    x_train, y_train = load_split(root, "train")
    x_test, y_test = load_split(root, "test")
    results = []
    with tempfile.TemporaryDirectory() as work:
        idp = Idprune(binary, root, work)
        seq_bias = train(sequential(bias=True), x_train, y_train, seed=1)
        seq_plain = train(sequential(bias=False), x_train, y_train, seed=2)
        low_rank = train(sequential(bias=True, low_rank=True), x_train, y_train, seed=3)
        named = train(Named(bias=True), x_train, y_train, seed=4)
        named_plain = train(Named(bias=False), x_train, y_train, seed=5)
        listed = train(Listed(), x_train, y_train, seed=6)
        results.append(torch_to_idprune(idp, "sequential-bias", seq_bias, seq_bias.state_dict(), x_test, y_test))
        results.append(torch_to_idprune(idp, "sequential-nobias", seq_plain, seq_plain.state_dict(), x_test, y_test))
        results.append(torch_to_idprune(idp, "sequential-lowrank", low_rank, low_rank.state_dict(), x_test, y_test))
        results.append(torch_to_idprune(idp, "named-bias", named, named.state_dict(), x_test, y_test))
        results.append(torch_to_idprune(idp, "named-nobias", named_plain, named_plain.state_dict(), x_test, y_test))
        results.append(ambiguous_file_is_one_clear_error(idp, listed))
        results.append(torch_to_idprune(idp, "modulelist", listed, listed.state_dict(), x_test, y_test,
                                        "--layer-order", "layers.0,layers.1,layers.2"))
        results.append(idprune_to_torch(idp, "train-bias", ["--bias"], x_test, y_test))
        results.append(idprune_to_torch(idp, "train-nobias", [], x_test, y_test))

        # Compression round trips: a wider MLP with biases at a 30% budget (the default candidates),
        # a bias-free one whose corrected fit with an intercept gains biases, named modules with
        # svd (a layer becomes two Linear modules).
        wide = train(torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                         torch.nn.ReLU(), torch.nn.Linear(128, 10)), x_train, y_train, seed=7)
        result, wide_compressed = compress_round_trip(idp, "wide-bias-budget", wide, x_test, y_test,
                                                      ["--budget", "0.3"])
        results.append(result)
        result, _ = compress_round_trip(idp, "sequential-nobias-corrected", seq_plain, x_test, y_test,
                                        ["--budget", "0.5", "--strategy", "budget-corrected", "--intercept"])
        results.append(result)
        result, _ = compress_round_trip(idp, "named-svd", named, x_test, y_test,
                                        ["--strategy", "svd", "--rule", "rank", "--value", "8"])
        results.append(result)
        result, _ = compress_round_trip(idp, "modulelist-greedy", listed, x_test, y_test,
                                        ["--rule", "fraction", "--value", "0.5"],
                                        ["--layer-order", "layers.0,layers.1,layers.2"])
        results.append(result)
        if wide_compressed is not None:
            for batch_size in (1, 64, 1000):
                batch = x_test[:batch_size]
                t_original = cpu_time(wide, batch, reps=50 if batch_size < 1000 else 20)
                t_compressed = cpu_time(wide_compressed, batch, reps=50 if batch_size < 1000 else 20)
                print(f"PyTorch {torch.__version__} CPU, 1 thread, batch {batch_size}: original "
                      f"({sum(p.numel() for p in wide.parameters())} parameters) {1e3 * t_original:.3f} ms, "
                      f"compressed ({sum(p.numel() for p in wide_compressed.parameters())} parameters) "
                      f"{1e3 * t_compressed:.3f} ms per pass: {t_original / t_compressed:.2f}x (informational)")

        batch = x_test[:1000]
        for name, model in [("sequential-bias", seq_bias), ("sequential-lowrank", low_rank),
                            ("idprune train-bias", sequential_from_file(os.path.join(work, "train-bias.safetensors")))]:
            params = sum(p.numel() for p in model.parameters())
            print(f"PyTorch {torch.__version__} CPU, 1 thread: {name} ({params} parameters), batch 1000: "
                  f"{1e3 * cpu_time(model, batch):.3f} ms per pass (informational)")
    failed = 0
    for ok, msg in results:
        print(("ok    " if ok else "FAIL  ") + msg)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
