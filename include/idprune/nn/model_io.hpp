#pragma once
// Model files: safetensors state dicts of PyTorch `nn.Sequential` MLPs, and folders of NumPy .npy
// files as in the reference text.
//
// safetensors: keys `<prefix><i>.weight` (shape (out, in), PyTorch's nn.Linear layout, i.e. W^T for
// our d_in x d_out W) and optional `<prefix><i>.bias` (shape (out,)), where i is the module's index in
// the Sequential and <prefix> is empty or ends in '.' (e.g. "net."), the same for every key. Linear
// modules at consecutive indices (nothing between them) form ONE layer whose weight is their
// product (a low-rank layer); a gap in the indices is a parameter-free module, read as ReLU unless
// the metadata key "idprune.activations" (comma-separated, one entry per layer) says otherwise. The
// last layer is the classifier (identity). For example nn.Sequential(Linear(784, 1024, bias=False),
// ReLU(), ..., Linear(128, 10, bias=False)) saves `0.weight, 2.weight, ..., 14.weight`.
//
// .npy folder: W1.npy ... Wk.npy (hidden layers, shapes (d_{l-1}, d_l)) and Ws.npy (classifier), with
// optional biases b1.npy ... bk.npy, bs.npy (shape (d_l,), (d_l, 1) or (1, d_l)); hidden layers are
// ReLU. Other files in the folder are ignored. An optional metadata.json ({string: string}) holds the
// model's metadata (including "idprune.activations" when not all hidden layers are ReLU).
#include <string>

#include "idprune/nn/mlp.hpp"
#include "idprune/nn/safetensors.hpp"

namespace idprune::nn {

/// Metadata key listing every layer's activation, e.g. "relu,relu,identity".
inline constexpr const char* activations_key = "idprune.activations";

/// The tensors of `model` in nn.Sequential naming (factors of one layer at consecutive indices, one
/// index left for the activation module after each hidden layer), converted to `dtype` on writing.
/// The model's metadata plus "format": "pt" and "idprune.activations" become `__metadata__`.
[[nodiscard]] TensorFile to_tensor_file(const Mlp& model, Dtype dtype = Dtype::f32);
/// The model held in `file` (see above); `source` names it in error messages.
[[nodiscard]] Mlp from_tensor_file(const TensorFile& file, const std::string& source);

[[nodiscard]] Mlp read_model_safetensors(const std::string& path);
/// Atomic write (temporary file, then rename).
void write_model_safetensors(const std::string& path, const Mlp& model, Dtype dtype = Dtype::f32);

[[nodiscard]] Mlp read_model_npy(const std::string& dir);
/// Writes W1.npy ... Ws.npy (float64), biases and metadata.json into `dir` (created if missing).
/// Each file is written atomically. Factored (low-rank) layers have no .npy form: an error.
void write_model_npy(const std::string& dir, const Mlp& model);

/// A folder is read as .npy files, anything else as safetensors.
[[nodiscard]] Mlp load_model(const std::string& path);
/// A path ending in ".safetensors" is written as safetensors (`dtype`), anything else as an .npy folder.
void save_model(const std::string& path, const Mlp& model, Dtype dtype = Dtype::f32);

}  // namespace idprune::nn
