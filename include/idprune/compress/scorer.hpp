#pragma once
// Scoring compressed models on a row-distributed labelled set: the test set of a sweep, or the
// validation split a search selects on (one class for both), and the metrics every compressed
// model reports.
//
// Parallel model: each rank holds its rows of the set; TBB tasks over (model, batch of rows) with
// single-threaded BLAS compute local integer counts; ONE allreduce then sums every model's counts,
// so results are exact and do not depend on the number of ranks or threads. Predictions are the
// argmax of the logits (lowest class on ties), agreement is against the original model's.
//
// The first hidden layer's product X W_1 is the dominant cost and is shared: it is computed once
// for the original model (outside TBB, with threaded BLAS), and a model whose first layer is
// W_1(:, C), b_1(C) (CompressedModel::first_layer_columns) reads its activations as columns C.
// So is the original's second-layer product Z_1 W_2: a model whose second layer is the fold of an
// ID of the first, (T_1 W_2)(:, C_2) (CompressedModel::first_interpolation), gets that layer's
// pre-activations as (Z_1 W_2)(:, C_2) - E W_2(F, C_2) with E = Z_1(:, F) - Z_1(:, C_1) T_1(:, F)
// the ID's residual on the data, when that costs fewer flops than the product with the folded
// weight: k_1 (n_1 - k_1) + (n_1 - k_1) k_2 against k_1 k_2 per sample (the mild end of a sweep,
// which keeps most neurons, costs half). The two formulas agree to rounding, not bit for bit.
//
// Precision (ScorerOptions::precision): float64 by default; float32 scores the forward pass a
// deployed float32 model computes (nn::Float32Mlp): the set, every weight and bias rounded to
// float32 once, sgemm products and float32 bias and activation. Only the first layer is shared:
// columns C of the float32 product fl(X) fl(W_1) are the model's own product fl(X) fl(W_1)(:, C)
// up to the summation order of the BLAS kernel, within the same float32 error bound
// (nn::float32_error_bound). The second-layer shortcut is a float64 device and is not used in
// float32. Both precisions score the same compressed model: compression (activations, CPQR,
// least squares) is float64.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "idprune/compress/engine.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/nn/inference.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::compress {

/// Scores over the whole set (summed over ranks).
struct Scores {
  std::int64_t correct = 0;  ///< predictions equal to the label
  std::int64_t agree = 0;    ///< predictions equal to the original model's
  std::int64_t samples = 0;
  double loss = 0.0;  ///< sum of -log softmax(logits)_label (ScorerOptions::cross_entropy)
  /// Predictions that differ between the float32 and the float64 forward pass of the same model
  /// (ScorerOptions::compare_precision; 0 otherwise).
  std::int64_t precision_changes = 0;

  [[nodiscard]] double accuracy() const {
    return samples > 0 ? static_cast<double>(correct) / static_cast<double>(samples) : 0.0;
  }
  [[nodiscard]] double agreement() const {
    return samples > 0 ? static_cast<double>(agree) / static_cast<double>(samples) : 0.0;
  }
  [[nodiscard]] double cross_entropy() const { return samples > 0 ? loss / static_cast<double>(samples) : 0.0; }
};

struct ScorerOptions {
  index_t batch_rows = 500;    ///< rows per task
  bool cross_entropy = false;  ///< also sum the loss (a search's objective)
  /// Start a model's second layer from the original's shared product Z_1 W_2 when that saves flops
  /// (agrees with the direct product to rounding, not bit for bit).
  bool second_layer_shortcut = true;
  /// The arithmetic of the forward passes (float32: the shortcut above is not used).
  nn::Precision precision = nn::Precision::f64;
  /// Also run every model in the other precision and count the predictions that change
  /// (Scores::precision_changes): the cost of a second forward pass.
  bool compare_precision = false;
};

class Scorer {
 public:
  /// Collective. `x` (samples x features) and `labels` are this rank's rows of the set. Computes
  /// the first layer's activations and the original model's predictions and scores.
  Scorer(const nn::Mlp& original, la::Matrix x, std::vector<int> labels, dist::Comm comm, ScorerOptions options = {});

  [[nodiscard]] const dist::Comm& comm() const { return comm_; }
  [[nodiscard]] std::int64_t samples() const { return original_scores_.samples; }
  [[nodiscard]] const Scores& original_scores() const { return original_scores_; }
  [[nodiscard]] const ScorerOptions& options() const { return options_; }

  /// Collective: the scores of every model (one reduction for all of them).
  [[nodiscard]] std::vector<Scores> score(std::span<const CompressedModel> models) const;
  /// This rank's predictions of one model (not collective).
  [[nodiscard]] std::vector<int> predictions(const CompressedModel& model) const;

 private:
  struct Shortcut;    // a model's second-layer shortcut (scorer.cpp)
  struct Float32Set;  // the set and the shared first layer in float32 (scorer.cpp)
  template <class T>
  struct Weights;  // a model's layers in arithmetic T (scorer.cpp)
  /// Local predictions of `model` (its layers `weights`) on batch b in arithmetic T (through
  /// `shortcut` when given, float64 only); adds the batch's loss to *loss when given.
  template <class T>
  [[nodiscard]] std::vector<int> batch_predictions(const CompressedModel& model, const Weights<T>& weights,
                                                   std::size_t b, const Shortcut* shortcut = nullptr,
                                                   double* loss = nullptr) const;
  /// batch_predictions in `precision`, with the model's weights and shortcut prepared by the caller.
  struct Prepared;
  [[nodiscard]] std::vector<int> batch_predictions(const CompressedModel& model, const Prepared& prepared,
                                                   nn::Precision precision, std::size_t b,
                                                   double* loss = nullptr) const;
  [[nodiscard]] std::unique_ptr<Prepared> prepare(const CompressedModel& model) const;
  /// score(); with `first_predictions`, also the local predictions of models[0] (in batch order).
  [[nodiscard]] std::vector<Scores> score(std::span<const CompressedModel> models,
                                          std::vector<int>* first_predictions) const;
  /// The shortcut of `model` when it has one and it saves flops (nullptr otherwise).
  [[nodiscard]] std::unique_ptr<Shortcut> shortcut(const CompressedModel& model) const;

  la::Matrix x_;
  std::vector<int> labels_;
  dist::Comm comm_;
  ScorerOptions options_;
  int classes_ = 0;
  la::Matrix first_hidden_;                ///< act(X W_1 + b_1) of the original model, local rows (float64 used)
  std::shared_ptr<const Float32Set> f32_;  ///< when float32 is used
  la::Matrix w2_;                          ///< the original W_2 (when there are two hidden layers)
  la::Matrix second_product_;              ///< first_hidden_ W_2 (no bias, no activation), local rows
  std::vector<int> reference_;             ///< the original model's predictions, local rows
  Scores original_scores_;
};

/// What a sweep reports for one compressed model.
struct ModelMetrics {
  Scores counts;
  double test_accuracy = 0.0;
  double agreement = 0.0;
  std::int64_t params = 0;
  std::int64_t original_params = 0;
  double params_fraction = 0.0;
  double flops = 0.0;  ///< per sample, 2 per weight entry (nn::Mlp::flops_per_sample)
  double original_flops = 0.0;
  std::vector<index_t> kept_per_layer;   ///< hidden widths after compression
  std::vector<index_t> ranks_per_layer;  ///< inner dimension of each hidden layer's weight (r for svd)
  index_t hidden_kept = 0;               ///< sum of kept_per_layer
  index_t hidden_total = 0;              ///< sum of the original hidden widths
  double hidden_kept_fraction = 0.0;
};

/// Structure metrics of `compressed` against `original`, with its evaluation counts.
[[nodiscard]] ModelMetrics model_metrics(const nn::Mlp& original, const CompressedModel& compressed,
                                         const Scores& counts = {});

}  // namespace idprune::compress
