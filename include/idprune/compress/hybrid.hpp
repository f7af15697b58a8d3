#pragma once
// The hybrid strategy's allocation: per budget, neuron pruning (corrected ID) on every layer, the
// first hidden layer's kept columns W_1(:, C) also replaced by their activation-aware rank-r
// factorization (whitened_svd.hpp), the rank chosen on the VALIDATION split.
//
// Why the first layer: at small budgets W_1 (d_0 x k_1, d_0 = 784 pixels) holds most of the
// parameters, and images have a fast-decaying input spectrum, so a rank-r first layer costs
// r (d_0 + k_1) instead of d_0 k_1 and frees parameters for wider hidden layers.
// For each rank r of a grid (0: no factorization, the budget-corrected strategy), the neurons are
// allocated as the budget strategy allocates them (allocation.hpp: least estimated error per
// parameter, iterated on the network it produces) with the first layer costing r k_1 + d_0 r
// instead of d_0 k_1; every candidate is compressed and scored on the validation split, and the
// best (accuracy, then fewer parameters) is the budget's model. Budgets count parameters or FLOPs
// per sample (dense_shape.hpp; with FLOPs biases are free and a weight costs two).
#include <cstdint>
#include <span>
#include <vector>

#include "idprune/compress/allocation.hpp"
#include "idprune/compress/dense_shape.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/scorer.hpp"

namespace idprune::compress {

struct HybridOptions {
  /// Ranks tried for the first layer (0: not factored). Ranks that leave no room for one neuron per
  /// layer are skipped.
  std::vector<index_t> first_layer_ranks = {0, 16, 24, 32, 48, 64, 96, 128, 192};
  BudgetKind kind = BudgetKind::parameters;
  BudgetOptions budget;                                    ///< allocation rounds
  HybridSelection selection = HybridSelection::corrected;  ///< the neurons kept (hybrid, hybrid-obs)
  double obs_damping = 0.01;                               ///< hybrid-obs: StructuredObsOptions::damping
  bool intercept = false;  ///< T fitted with an intercept, the next layer gains a bias (make_hybrid_policy)
};

struct HybridChoice {
  std::vector<index_t> widths;  ///< hidden widths k_l
  std::vector<index_t> ranks;   ///< per hidden layer, 0: not factored (the policy's ranks)
  Scores validation;
  std::int64_t cost = 0;  ///< parameters or FLOPs per sample of the model (HybridOptions::kind)
};

/// Parameters or FLOPs per sample of `model` as it is (factored layers counted factor by factor).
[[nodiscard]] std::int64_t model_cost(const nn::Mlp& model, BudgetKind kind);

/// Collective: the hybrid model for each budget (in units of options.kind); an empty `widths` when
/// no candidate fits a budget.
[[nodiscard]] std::vector<HybridChoice> hybrid_allocation(CompressionEngine& engine, const Scorer& validation,
                                                          std::span<const std::int64_t> budgets,
                                                          const HybridOptions& options = {});

}  // namespace idprune::compress
