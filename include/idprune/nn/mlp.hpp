#pragma once
// Fully connected classifiers (multilayer perceptrons) on row samples, as in the reference text's
// eq. (10):  M(x) = softmax(f_L(... f_1(x) ...) W_s),  f_l(h) = act(h W_l + b_l).
//
// Samples are ROWS: for a batch X (n x d_0) hidden layer l computes H_l = act(H_{l-1} W_l + 1 b_l^T)
// with W_l d_{l-1} x d_l, so every layer is one GEMM. A layer's weight may be stored as a chain of
// linear factors W = F_1 F_2 ... F_q with the activation applied only after the last one: q = 1 is an
// ordinary dense layer, q = 2 a low-rank layer U (S V^T) as in the SVD baseline.
//
// Conventions: parameter count = every weight entry of every factor plus every bias entry;
// FLOPs per sample = 2 * (sum over factors of rows * cols), one multiply and one add per weight entry
// (biases, activations and the softmax are not counted).
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::nn {

using la::index_t;

enum class Activation { identity, relu };

/// "identity" | "relu".
[[nodiscard]] std::string_view to_string(Activation activation);
/// Parses "identity" | "relu" (also "linear" / "none" for identity); throws idprune::Error otherwise.
[[nodiscard]] Activation parse_activation(std::string_view name);

/// How a forward pass uses the threads of the process (DESIGN.md, "Parallel model").
struct ForwardOptions {
  /// A batch of more than block_rows rows is cut at the multiples of block_rows; each row block is
  /// one single-threaded product, run as a TBB task in the current task arena (as many threads as it
  /// allows). The blocks do not depend on the number of threads, so neither do the results: they are
  /// bitwise identical for any thread count. A batch of at most block_rows rows is one product with
  /// BLAS as configured (a caller inside a TBB task has set BLAS to one thread).
  index_t block_rows = 1024;
};

/// y = act(x F_1 ... F_q + b): weight factors F_j (d_{j-1} x d_j), an optional bias (d_out) added
/// after the last factor, and an activation. Shapes are checked on construction.
class DenseLayer {
 public:
  DenseLayer() = default;
  /// An ordinary dense layer with weight `weight` (d_in x d_out); `bias` empty means no bias.
  explicit DenseLayer(la::Matrix weight, std::vector<double> bias = {}, Activation activation = Activation::relu);
  /// A factored layer W = factors[0] * factors[1] * ...; at least one factor.
  DenseLayer(std::vector<la::Matrix> factors, std::vector<double> bias, Activation activation);

  [[nodiscard]] index_t d_in() const { return factors_.front().rows(); }
  [[nodiscard]] index_t d_out() const { return factors_.back().cols(); }
  [[nodiscard]] Activation activation() const { return activation_; }
  [[nodiscard]] bool has_bias() const { return !bias_.empty(); }
  [[nodiscard]] const std::vector<double>& bias() const { return bias_; }
  [[nodiscard]] index_t factor_count() const { return static_cast<index_t>(factors_.size()); }
  [[nodiscard]] const std::vector<la::Matrix>& factors() const { return factors_; }
  [[nodiscard]] const la::Matrix& factor(index_t j) const { return factors_.at(static_cast<std::size_t>(j)); }
  /// The factor's entries, writable in place (its shape cannot change): for trainers.
  [[nodiscard]] la::MatrixView factor_values(index_t j) { return factors_.at(static_cast<std::size_t>(j)).view(); }
  [[nodiscard]] std::span<double> bias_values() { return bias_; }

  /// The d_in x d_out weight: the factor itself for a dense layer, their product otherwise.
  [[nodiscard]] la::Matrix weight() const;
  [[nodiscard]] index_t parameter_count() const;
  [[nodiscard]] double flops_per_sample() const;

  /// y = act(x W + 1 b^T) for a batch x (n x d_in); y is resized to n x d_out.
  void forward(la::ConstMatrixView x, la::Matrix& y, const ForwardOptions& options = {}) const;
  /// forward() of one row block into storage of the caller's (y: the rows of x, d_out columns),
  /// one call of each product, BLAS threads as the caller set them.
  void forward_block(la::ConstMatrixView x, la::MatrixView y) const;

 private:
  void validate() const;

  std::vector<la::Matrix> factors_{la::Matrix()};
  std::vector<double> bias_;
  Activation activation_ = Activation::relu;
};

/// Free-form provenance recorded with a model (safetensors `__metadata__`: string to string).
using Metadata = std::map<std::string, std::string>;

/// Hidden layers (any activation) followed by a classifier layer whose outputs are the logits
/// (softmax probabilities are monotone in them, so predictions are the argmax of the logits).
class Mlp {
 public:
  Mlp() = default;
  /// Checks d_out of each layer against d_in of the next; the classifier must be identity-activated
  /// and have at least one output.
  Mlp(std::vector<DenseLayer> hidden, DenseLayer classifier, Metadata metadata = {});

  [[nodiscard]] index_t input_dim() const;
  [[nodiscard]] index_t num_classes() const { return classifier_.d_out(); }
  [[nodiscard]] index_t num_hidden() const { return static_cast<index_t>(hidden_.size()); }
  /// d_0 (inputs), d_1, ..., d_L (hidden widths), classes.
  [[nodiscard]] std::vector<index_t> widths() const;

  [[nodiscard]] const std::vector<DenseLayer>& hidden_layers() const { return hidden_; }
  [[nodiscard]] const DenseLayer& hidden(index_t l) const;
  [[nodiscard]] const DenseLayer& classifier() const { return classifier_; }
  /// Layer l for l < num_hidden(), the classifier for l == num_hidden() (values writable in place).
  [[nodiscard]] DenseLayer& layer(index_t l);
  [[nodiscard]] const DenseLayer& layer(index_t l) const;
  [[nodiscard]] index_t num_layers() const { return num_hidden() + 1; }

  [[nodiscard]] const Metadata& metadata() const { return metadata_; }
  [[nodiscard]] Metadata& metadata() { return metadata_; }

  /// Parameters of every layer, hidden layers first, the classifier last.
  [[nodiscard]] std::vector<index_t> layer_parameter_counts() const;
  [[nodiscard]] index_t parameter_count() const;
  [[nodiscard]] double flops_per_sample() const;

  /// Logits (n x classes) of a batch x (n x d_0).
  [[nodiscard]] la::Matrix logits(la::ConstMatrixView x, const ForwardOptions& options = {}) const;
  /// Hidden layer `layer` (0-based) applied to its input h: act(h W_layer + b), where h is the output
  /// of hidden layer layer - 1 (the model's input for layer 0). One step of the forward pass.
  [[nodiscard]] la::Matrix forward_hidden(la::ConstMatrixView h, index_t layer,
                                          const ForwardOptions& options = {}) const;
  /// Output of hidden layer `layer` (0-based, after its activation) for a batch x: n x d_{layer+1},
  /// computed from the input. To get several layers, all_hidden_activations() (activations.hpp)
  /// computes each layer once.
  [[nodiscard]] la::Matrix hidden_activations(la::ConstMatrixView x, index_t layer,
                                              const ForwardOptions& options = {}) const;
  /// Logits from the output h of hidden layer `layer` (layer = -1: h is the input), i.e. the
  /// rest of the forward pass.
  [[nodiscard]] la::Matrix logits_from_hidden(la::ConstMatrixView h, index_t layer,
                                              const ForwardOptions& options = {}) const;
  /// argmax of the logits per sample (lowest index on ties), computed in batches of `batch_rows`.
  [[nodiscard]] std::vector<int> predict(la::ConstMatrixView x, index_t batch_rows = 2048) const;

 private:
  std::vector<DenseLayer> hidden_;
  DenseLayer classifier_;
  Metadata metadata_;
};

/// "" when every weight and bias of `model` is finite, else a message naming the first NaN/Inf
/// parameter: the layer (1-based hidden layer or "classifier"), the tensor (weight factor or bias)
/// and its index. Entry points that take an in-memory model check it with this once, before work.
[[nodiscard]] std::string non_finite_parameter(const Mlp& model);

/// Row-wise argmax (lowest index on ties) of an n x c matrix.
[[nodiscard]] std::vector<int> argmax_rows(la::ConstMatrixView scores);
/// Row-wise softmax exp(z_i - max z) / sum_j exp(z_j - max z) (shifted: no overflow).
[[nodiscard]] la::Matrix softmax_rows(la::ConstMatrixView logits);

/// Correct predictions per class: integer counts, so sums over MPI ranks are exact.
struct ClassCounts {
  std::vector<std::int64_t> correct;  ///< correct[c]: samples of label c predicted as c
  std::vector<std::int64_t> total;    ///< total[c]: samples of label c

  [[nodiscard]] std::int64_t correct_total() const;
  [[nodiscard]] std::int64_t samples() const;
  /// correct_total / samples (0 when there are no samples).
  [[nodiscard]] double accuracy() const;
  /// correct[c] / total[c] (0 when there are no samples of c).
  [[nodiscard]] double class_accuracy(int c) const;
};

/// Counts predictions against labels in [0, classes); throws on a label or prediction out of range
/// or a length mismatch.
[[nodiscard]] ClassCounts count_correct(std::span<const int> predictions, std::span<const int> labels, int classes);
/// Number of positions where two prediction vectors agree (same length required).
[[nodiscard]] std::int64_t count_agreement(std::span<const int> a, std::span<const int> b);

}  // namespace idprune::nn
