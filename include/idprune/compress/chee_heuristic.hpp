#pragma once
// Per-layer widths by the iterative heuristic of Chee, Flynn (née Renz), Damle, De Sa, "Model
// Preserving Compression for Neural Networks", NeurIPS 2022 (its "iditer" procedure in the authors'
// code). From full widths, repeat until the model's cost is within the budget:
//
//   for every hidden layer l of current width n_l, a candidate shrink to
//     k_l = n_l - max(1, floor(step_fraction n_l))                  (5% of the CURRENT width),
//   its error proxy  e_l = |r_{k_l+1, k_l+1}| / |r_11|                (the first CPQR diagonal dropped),
//   its saving       p_l = cost(widths) - cost(widths with n_l -> k_l)   (exact, this model's convention),
//   and shrink the layer with the least e_l / p_l (ties: the lower layer).
//
// Differences from the authors' code, on purpose: (1) the saving is the exact parameter (or FLOP)
// difference of this shape; their code uses 0.1 (params_l + params_{l+1}), a proportional proxy;
// (2) the diagonals are those of each layer's activations in the ORIGINAL network, fixed for the
// whole run, whereas their code re-runs the CPQR of the layers after the one just shrunk (their
// inputs changed). A pruned layer's own diagonals are unchanged by its pruning (the first k steps
// of CPQR on the kept columns repeat those of the full factorization), so only the downstream
// effect is ignored; an engine that wants the authors' loop calls chee_step with refreshed
// diagonals after each shrink. With fixed diagonals the sequence of shrinks does not depend on the
// budget, so smaller budgets give elementwise smaller widths (monotone), and every layer keeps >= 1.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "idprune/compress/dense_shape.hpp"

namespace idprune::compress {

struct CheeAllocationOptions {
  double budget = 0.0;  ///< the model's cost to reach (parameters or FLOPs per sample), > 0
  BudgetKind budget_kind = BudgetKind::parameters;
  double step_fraction = 0.05;  ///< shrink by this share of the current width (at least one neuron), in (0, 1)
};

/// One shrink: layer (0-based hidden layer), its width before and after, and the criterion.
struct CheeStep {
  index_t layer = 0;
  index_t from = 0;
  index_t to = 0;
  double error = 0.0;       ///< |r_{to+1,to+1}| / |r_11|
  std::int64_t saving = 0;  ///< cost decrease
  double score = 0.0;       ///< error / saving
};

struct CheeAllocationResult {
  std::vector<index_t> widths;  ///< hidden widths
  std::int64_t cost = 0;        ///< the shape's cost with these widths (DenseShape::cost)
  bool budget_met = false;      ///< false when every layer is at width 1 and the cost still exceeds the budget
  std::vector<CheeStep> steps;  ///< the shrinks in order
};

/// The next shrink for hidden widths `widths` (each <= the shape's), or nothing when every layer is
/// at width 1. `diagonals[l]` holds |r_11|, |r_22|, ... of hidden layer l's activations (a CPQR of
/// the original width; entries past its end count as 0, as for a factorization stopped at its
/// numerical rank; |r_11| = 0, a dead layer, gives error 0).
[[nodiscard]] std::optional<CheeStep> chee_step(std::span<const std::vector<double>> diagonals, const DenseShape& shape,
                                                std::span<const index_t> widths, const CheeAllocationOptions& options);

/// Shrinks from the shape's widths by chee_step until shape.cost(widths) <= options.budget.
[[nodiscard]] CheeAllocationResult chee_allocation(std::span<const std::vector<double>> diagonals,
                                                   const DenseShape& shape, const CheeAllocationOptions& options);

}  // namespace idprune::compress
