#pragma once
// Allocations: how many neurons each hidden layer keeps, chosen for the network as a whole rather
// than layer by layer with one eps. Every allocation works with any neuron-selecting policy (id or
// corrected in the strategy registry).
//
//   budget     a global parameter budget, allocated from the CPQR diagonals alone (no labels): the
//              estimated error of layer l truncated after k pivots is its relative squared ID
//              residual e_l(k) = ||R22^(k)||_F^2 / ||Z_l||_F^2 (exact on the compression set for the
//              plain ID); neurons are removed one at a time, always the one whose removal adds the
//              least error per parameter saved (a greedy knapsack: a neuron of layer l costs
//              k_{l-1} + k_{l+1} parameters, so wide-input layers pay more per neuron), until the
//              budget is met, then neurons that still fit are added back. The diagonals of layer l
//              depend on the layers before it, so the allocation is repeated on the network it
//              produced (a fixed-point iteration).
//   spectrum   the per-layer size heuristic of the ID-pruning literature: one relative tolerance tau
//              for every layer, k_l = the first k with |r_{k+1,k+1}| / |r_11| <= tau on that layer's
//              own spectrum (the eps rule without the ||W_{l+1}|| normalisation); swept over tau.
//   tuned      the budget allocation with per-layer error weights tuned on the VALIDATION split by
//              coordinate descent (per-layer tolerances chosen jointly, one budget at a time).
//   descent    a search on the VALIDATION split (marginal-gain descent): from the full network, every
//              step tries shrinking each layer by enough neurons to remove a fixed fraction of the
//              parameters (at most half of the layer), all candidates compressed and scored together
//              (TBB tasks), and keeps the move with the smallest increase of validation
//              cross-entropy per parameter removed. The path visits every
//              budget once; the model for a budget is the best (by validation accuracy) path point
//              within it. The searches take a validation Scorer and nothing else that holds labels:
//              they cannot select on the test set.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "idprune/compress/engine.hpp"
#include "idprune/compress/scorer.hpp"

namespace idprune::compress {

/// Relative truncation errors of one layer from its complete CPQR: tail[k] =
/// (sum_{i >= k} ||R(i, i:n)||^2 + ||R22||_F^2) / (same at k = 0), k = 0..rank; non-increasing,
/// tail[0] = 1, tail[rank] = the (relative) residual of the whole factorization.
[[nodiscard]] std::vector<double> relative_tail(const la::CpqrResult& f);

/// Greedy knapsack over neurons: hidden widths with parameter_count_with_widths(original, k) <=
/// budget minimising sum_l weights[l] tails[l][k_l] approximately (see the file comment). Starts
/// from k_l = tails[l].size() - 1 (the numerical rank, at least 1). Throws idprune::Error when even
/// one neuron per layer exceeds the budget. `intercepts`: parameters counted as
/// parameter_count_with_widths(original, k, true) counts them.
[[nodiscard]] std::vector<index_t> allocate_budget(const nn::Mlp& original, std::span<const std::vector<double>> tails,
                                                   std::span<const double> weights, std::int64_t budget,
                                                   bool intercepts = false);

struct BudgetOptions {
  int iterations = 3;  ///< allocations (the first from the network kept at its numerical ranks)
};

/// Collective: the budget strategy's hidden widths for `budget` parameters (the fixed-point
/// iteration above, stopped early when the widths repeat).
[[nodiscard]] std::vector<index_t> budget_widths(CompressionEngine& engine,
                                                 const std::shared_ptr<const LayerPolicy>& policy, std::int64_t budget,
                                                 const BudgetOptions& options = {});
/// The same for several budgets at once (each iteration compresses them as one batch).
[[nodiscard]] std::vector<std::vector<index_t>> budget_widths(CompressionEngine& engine,
                                                              const std::shared_ptr<const LayerPolicy>& policy,
                                                              std::span<const std::int64_t> budgets,
                                                              const BudgetOptions& options = {});

/// Plan of the spectrum heuristic: relative tolerance tau on every layer, i.e. the eps rule with
/// eps_l = tau ||W_{l+1}||_2 (collective: reads the norms).
[[nodiscard]] PointPlan spectrum_plan(CompressionEngine& engine, const std::shared_ptr<const LayerPolicy>& policy,
                                      double tau);

enum class Objective {
  cross_entropy,  ///< mean validation cross-entropy (smooth)
  error_rate,     ///< 1 - validation accuracy
};
[[nodiscard]] std::string_view to_string(Objective objective);
[[nodiscard]] Objective parse_objective(std::string_view name);

struct DescentOptions {
  double step = 0.05;           ///< parameters a move removes, as a fraction of the current count
  double max_shrink = 0.5;      ///< but at most this fraction of the layer's neurons (at least one)
  double stop_fraction = 0.04;  ///< stop once the parameter fraction is at or below this
  Objective objective = Objective::cross_entropy;
  std::vector<index_t> start;  ///< starting widths; empty: every layer at its numerical rank
  std::size_t max_steps = 100000;
};

/// One model of a search path.
struct SearchPoint {
  std::vector<index_t> kept;  ///< hidden widths
  std::int64_t params = 0;
  double params_fraction = 0.0;
  Scores validation;
  std::size_t step = 0;
  double seconds = 0.0;  ///< since the search started
};

/// Collective: the marginal-gain descent on the validation split (file comment). Returns the
/// path: the start, then one point per move (parameters strictly decreasing). `on_step` (if set)
/// sees every point as it is found.
[[nodiscard]] std::vector<SearchPoint> validation_descent(CompressionEngine& engine,
                                                          const std::shared_ptr<const LayerPolicy>& policy,
                                                          const Scorer& validation, const DescentOptions& options = {},
                                                          const std::function<void(const SearchPoint&)>& on_step = {});

struct TuneOptions {
  int rounds = 3;       ///< coordinate-descent rounds
  double factor = 4.0;  ///< first multiplicative change of a layer's weight (square-rooted each round)
  Objective objective = Objective::cross_entropy;
};

/// Collective: the budget allocation with per-layer error weights tuned on the VALIDATION split
/// (coordinate descent over log weights, i.e. over per-layer tolerances): every round tries, for
/// every budget and layer, the weight multiplied and divided by the current factor, reallocates the
/// budget with it (same tails), compresses and scores all candidates of all budgets as one batch,
/// and keeps the best candidate of a budget when it lowers the objective. Starts from
/// budget_widths and meets every budget from below.
[[nodiscard]] std::vector<std::vector<index_t>> tuned_budget_widths(
    CompressionEngine& engine, const std::shared_ptr<const LayerPolicy>& policy, const Scorer& validation,
    std::span<const std::int64_t> budgets, const BudgetOptions& budget = {}, const TuneOptions& options = {});

/// The best point (highest validation accuracy, then fewer parameters, then earlier) with at most
/// `budget` parameters; -1 when none.
[[nodiscard]] std::ptrdiff_t best_within(std::span<const SearchPoint> path, std::int64_t budget);

}  // namespace idprune::compress
