#pragma once
// Model files: safetensors state dicts of PyTorch MLPs (nn.Sequential or named nn.Linear modules),
// and folders of NumPy .npy files as in the reference text. docs/model-files.md shows both layouts
// with the Python that writes and loads them.
//
// Reading safetensors. Every key is `<module>.weight` (shape (out, in), PyTorch's nn.Linear layout:
// W^T of our d_in x d_out W, i.e. the same values as its column-major storage) or `<module>.bias`
// (shape (out,)); a bare `weight`/`bias` pair is one nn.Linear saved alone. Any other key (a
// BatchNorm's running_mean, a convolution's 4-D weight) is an error. The modules are put in forward
// order by the first rule that applies:
//   1. ModelReadOptions::layer_order (the user's `--layer-order fc1,fc2,out`); "a+b" lists the two
//      factors of one layer.
//   2. nn.Sequential indices: every module is `<prefix><i>` with one prefix, empty or ending in '.'
//      (`0`, `2`, `net.4`). Modules at consecutive indices (nothing between them) are the factors
//      of ONE layer, whose weight is their product (a low-rank layer); a gap in the indices is a
//      parameter-free module (the activation). Without any gap the keys cannot tell a Sequential
//      of bare Linears from an nn.ModuleList whose activations live in forward(), so such a file
//      needs layer_order, unless its metadata lists the activations (idprune's own files do).
//   3. Numbered names with one stem (`fc1`, `fc2`, `fc10`, or `layer_1`, ...): by the number, one
//      layer per module.
//   4. Otherwise (`hidden`, `out`; `features.0`, `features.2`, `classifier`): the one order in which
//      every module's `in` equals the previous module's `out`, one layer per module. None or several
//      such orders, or two Sequential siblings at consecutive indices, is an error.
// Hidden layers are ReLU and the last layer (the classifier) identity, unless the metadata key
// "idprune.activations" (comma-separated, one entry per layer) says otherwise. A bias on a factor
// other than a layer's last one, (x A + c) B = x (A B) + c B, is folded into the layer's bias.
// A malformed or ambiguous file is ONE idprune::Error that names the file, says what is wrong and
// lists the file's keys with their shapes.
//
// Writing safetensors (to_tensor_file, write_model): always nn.Sequential naming, so that
// `nn.Sequential(...)` built from the file's shapes loads it with load_state_dict:
//   `<i>.weight` (out, in) and `<i>.bias` (out,) when the layer has one; a factored layer
//   W = F_1 ... F_q takes q consecutive indices (q Linear modules, only the last with the bias); one
//   index is left free after every layer but the last, for its activation module (ReLU, or Identity
//   when "idprune.activations" says so). `__metadata__` holds "format": "pt", "idprune.activations",
//   the model's metadata and the caller's (ModelWriteOptions::metadata).
//   Example: 784-64(bias)-[rank-8 factored 64->32]-10 is 0.weight (64, 784), 0.bias (64,),
//   2.weight (8, 64), 3.weight (32, 8), 3.bias (32,), 5.weight (10, 32).
//
// .npy folder: W1.npy ... Wk.npy (hidden layers, shapes (d_{l-1}, d_l): the transpose of PyTorch's)
// and Ws.npy (classifier), with optional biases b1.npy ... bk.npy, bs.npy (shape (d_l,), (d_l, 1) or
// (1, d_l)); hidden layers are ReLU. A factored layer l is W{l}_1.npy, W{l}_2.npy, ... (W_l is their
// product, in that order) in place of W{l}.npy. Other files in the folder are ignored. An optional
// metadata.json ({string: string}) holds the model's metadata (including "idprune.activations" when
// not all hidden layers are ReLU). Values are written as float64.
#include <string>
#include <vector>

#include "idprune/nn/mlp.hpp"
#include "idprune/nn/safetensors.hpp"

namespace idprune::nn {

/// Metadata key listing every layer's activation, e.g. "relu,relu,identity".
inline constexpr const char* activations_key = "idprune.activations";

/// How to read a state dict whose keys do not settle the order of its layers (see above).
struct ModelReadOptions {
  /// Module names in forward order, e.g. {"fc1", "fc2", "out"}; an entry "a+b" makes modules a and b
  /// the factors of one layer. A trailing ".weight" is ignored. Empty: inferred from the keys.
  /// Every Linear module of the file must be listed exactly once. safetensors only.
  std::vector<std::string> layer_order;
};

/// Parses the text of `--layer-order` ("fc1,fc2,out"); empty text gives an empty order.
[[nodiscard]] std::vector<std::string> parse_layer_order(const std::string& text);

/// The tensors of `model` in nn.Sequential naming (see above), converted to `dtype` on writing.
/// The model's metadata plus "format": "pt" and "idprune.activations" become `__metadata__`.
[[nodiscard]] TensorFile to_tensor_file(const Mlp& model, Dtype dtype = Dtype::f32);
/// The model held in `file` (see above); `source` names it in error messages.
[[nodiscard]] Mlp from_tensor_file(const TensorFile& file, const std::string& source,
                                   const ModelReadOptions& options = {});

[[nodiscard]] Mlp read_model_safetensors(const std::string& path, const ModelReadOptions& options = {});
/// Atomic write (temporary file, then rename).
void write_model_safetensors(const std::string& path, const Mlp& model, Dtype dtype = Dtype::f32);

[[nodiscard]] Mlp read_model_npy(const std::string& dir);
/// Writes W1.npy ... Ws.npy (float64, factored layers as W{l}_1.npy, W{l}_2.npy, ...), biases and
/// metadata.json into `dir` (created if missing; files of another model in it are an error). The
/// files are written into a temporary sibling folder first and then moved into place, so a failure
/// leaves `dir` as it was.
void write_model_npy(const std::string& dir, const Mlp& model);

/// A folder is read as .npy files, anything else as safetensors. A layer order for a folder is an
/// error (its file names fix the order).
[[nodiscard]] Mlp load_model(const std::string& path, const ModelReadOptions& options = {});
/// A path ending in ".safetensors" is written as safetensors (`dtype`), anything else as an .npy folder.
void save_model(const std::string& path, const Mlp& model, Dtype dtype = Dtype::f32);

enum class ModelFormat {
  by_path,      ///< save_model's rule: ".safetensors" suffix -> safetensors, else an .npy folder
  safetensors,  ///< one file, nn.Sequential naming
  npy,          ///< a folder of .npy files
};

/// How write_model writes a model (a compressed one, typically) and what it records with it.
struct ModelWriteOptions {
  ModelFormat format = ModelFormat::safetensors;
  Dtype dtype = Dtype::f32;  ///< safetensors values (.npy folders are always float64)
  /// Provenance recorded in `__metadata__` / metadata.json on top of the model's own metadata (an
  /// entry here wins): e.g. kept neuron indices per layer, strategy, budget, accuracies, the
  /// original model's sha256. Keys "format" and "idprune.activations" are reserved.
  Metadata metadata;
};

/// Writes `model` as `options` say, checking everything first (finite parameters, reserved keys,
/// dtype range) so that an error writes nothing. PyTorch loads the result into an nn.Sequential
/// built from the file's shapes (docs/model-files.md).
void write_model(const std::string& path, const Mlp& model, const ModelWriteOptions& options = {});

}  // namespace idprune::nn
