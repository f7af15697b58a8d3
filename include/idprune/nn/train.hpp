#pragma once
// Training of MLP classifiers: mini-batch Adam (Kingma & Ba 2015, with PyTorch's bias-corrected
// update) on the mean softmax cross-entropy, He-initialised weights, every product a GEMM.
//
// Reproducibility: every random choice (initial weights, the per-epoch shuffles) comes from the
// seed through generators whose output is fixed by the C++ standard (std::mt19937_64, and this
// project's own normal and permutation draws), so a seed gives the same model on every platform
// for a given BLAS and BLAS thread count (threaded GEMM may sum in another order with other counts).
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "idprune/la/matrix.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::nn {

/// Learning rate per epoch: constant, or cosine annealing from lr to 0 over the run, evaluated at
/// each epoch's start (lr_e = lr * (1 + cos(pi e / epochs)) / 2, e = 0 .. epochs-1).
enum class LrSchedule { constant, cosine };
[[nodiscard]] std::string_view to_string(LrSchedule schedule);
[[nodiscard]] LrSchedule parse_lr_schedule(std::string_view name);

/// A new MLP d_in - hidden[0] - ... - hidden[L-1] - classes with ReLU hidden layers and an identity
/// classifier. Weights are drawn N(0, 2 / d_in) for ReLU layers (He et al. 2015) and N(0, 1 / d_in)
/// for the classifier; biases (when `bias`) start at zero.
[[nodiscard]] Mlp initialize_mlp(index_t d_in, std::span<const index_t> hidden, index_t classes, bool bias,
                                 std::uint64_t seed);

struct TrainOptions {
  int epochs = 15;
  index_t batch_size = 128;
  double learning_rate = 1e-3;
  LrSchedule schedule = LrSchedule::cosine;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double adam_epsilon = 1e-8;
  std::uint64_t seed = 1;  ///< seeds the per-epoch shuffles (initialisation has its own seed)
};

struct EpochReport {
  int epoch = 0;                ///< 1-based
  double learning_rate = 0.0;   ///< the rate used during this epoch
  double loss = 0.0;            ///< mean cross-entropy over the epoch's mini-batches (as they were trained)
  double train_accuracy = 0.0;  ///< fraction of the epoch's samples classified right when they were trained on
};

/// Called after each epoch with its report and the model as it stands.
using EpochCallback = std::function<void(const EpochReport&, const Mlp&)>;

/// Trains `model` in place on the rows of `x` (n x d_0, inputs scaled to [0, 1]) with labels in
/// [0, classes). A factored layer (W = F_1 ... F_q, e.g. low rank) trains its factors. Returns one
/// report per epoch.
std::vector<EpochReport> train(Mlp& model, la::ConstMatrixView x, std::span<const int> labels,
                               const TrainOptions& options, const EpochCallback& on_epoch = {});

/// Gradients of the loss with respect to every layer's weight (and bias), laid out as the model.
struct Gradients {
  /// One per weight factor, shaped as the factor: layer by layer (hidden layers, then classifier),
  /// a factored layer's factors in order; an ordinary layer has one (d_in x d_out).
  std::vector<la::Matrix> weight;
  std::vector<std::vector<double>> bias;  ///< empty for layers without a bias
};

/// Mean softmax cross-entropy of `model` on (x, labels) and its gradient (backpropagation with
/// GEMMs), factored layers included.
double loss_and_gradient(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels, Gradients& gradients);

/// Mean softmax cross-entropy only (the forward pass).
[[nodiscard]] double cross_entropy(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels);

}  // namespace idprune::nn
