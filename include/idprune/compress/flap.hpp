#pragma once
// FLAP (An, Zhao, Yu, Tang, Wang, "Fluctuation-based Adaptive Structured Pruning for Large Language
// Models", AAAI 2024), for the hidden neurons of an MLP. With z_j the activation of neuron j of hidden
// layer l over the compression set and W_next = W_{l+1} (n x n_next):
//
//   score_j = Var(z_j) ||W_next(j, :)||_2^2          (the paper's WIFV metric; unbiased variance),
//   standardised per layer: (score_j - mean_l) / std_l (std unbiased, as the authors' code),
//
// and one global threshold on the standardised scores picks the neurons to remove across layers
// (the adaptive structure: layers get different widths). Removing neuron j shifts the next layer's
// pre-activation z W_next + b_next by -z_j W_next(j, :); FLAP's bias compensation adds its mean back,
//
//   b_next += sum over pruned j of mean(z_j) W_next(j, :),
//
// so the mean over the compression set of the next layer's pre-activation is exactly the original's,
// and the remaining error is the fluctuation (z_j - mean z_j) W_next(j, :) the score measures.
// Statistics are those of the ORIGINAL network (the authors collect them in one pass; every
// layer's input comes from the unpruned previous layers).
#include <cstdint>
#include <span>
#include <vector>

#include "idprune/compress/dense_shape.hpp"
#include "idprune/compress/moments.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::compress {

/// score_j = variance_j ||W_next(j, :)||_2^2 for the neurons of one layer, from the moments of its
/// activations (rows >= 2) and the next layer's weight (n x n_next; its first factor times the rest
/// when factored: the caller passes the product).
[[nodiscard]] std::vector<double> flap_scores(const ActivationMoments& activations, la::ConstMatrixView w_next);

/// (s - mean(s)) / std(s), std unbiased; all zeros when std(s) = 0 or there is a single score.
[[nodiscard]] std::vector<double> standardize(std::span<const double> scores);

struct FlapOptions {
  /// Target, exactly one of: keep this many hidden neurons in total (>= number of layers), or meet a
  /// budget of parameters / FLOPs of the whole model (shape required).
  index_t keep_neurons = -1;
  double budget = -1.0;
  BudgetKind budget_kind = BudgetKind::parameters;
  /// The model's dense shape, for budgets: give bias = true for every layer that will receive a
  /// compensation bias if the budget should count it.
  DenseShape shape;
};

struct FlapResult {
  std::vector<std::vector<double>> standardized;  ///< per layer, per neuron
  std::vector<std::vector<index_t>> kept;         ///< per layer, ascending
  std::vector<index_t> widths;                    ///< kept[l].size()
  /// Removal order (layer, neuron) by increasing standardised score (ties: lower layer, lower index),
  /// the part actually removed; a layer's last neuron is never removed.
  std::vector<std::pair<index_t, index_t>> removed;
  std::int64_t cost = -1;  ///< with a budget: the cost of `widths`; else -1
  bool target_met = true;  ///< false when the target needs emptying a layer (every layer then keeps 1)
};

/// Global selection from the raw scores of every hidden layer (scores[l] has layer l's width).
/// Neurons are removed in increasing standardised score until the target is met; the removal order
/// does not depend on the target, so the kept sets are nested (monotone in the target).
[[nodiscard]] FlapResult flap_select(std::span<const std::vector<double>> scores, const FlapOptions& options);

/// The compensation sum over j not in `kept` of mean_j W_next(j, :) (n_next entries), to add to the
/// next layer's bias (creating one when it had none). `mean` has n entries (ActivationMoments::mean).
[[nodiscard]] std::vector<double> flap_bias_compensation(std::span<const double> mean, la::ConstMatrixView w_next,
                                                         std::span<const index_t> kept);

}  // namespace idprune::compress
