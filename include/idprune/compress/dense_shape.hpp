#pragma once
// The widths of a dense MLP and what they cost, for the budget-driven selections (FLAP's global
// threshold, Chee et al.'s per-layer allocation). Counted as nn::Mlp counts them:
//   parameters = sum over layers of d_{l-1} d_l (+ d_l when layer l has a bias),
//   FLOPs per sample = 2 sum over layers of d_{l-1} d_l   (one multiply and one add per weight).
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "idprune/la/matrix.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::compress {

using la::index_t;

/// What a budget counts.
enum class BudgetKind { parameters, flops };
/// Parses "params" | "parameters" | "flops"; throws idprune::Error otherwise.
[[nodiscard]] BudgetKind parse_budget_kind(std::string_view name);
[[nodiscard]] std::string_view to_string(BudgetKind kind);

/// Layer sizes of a dense MLP: widths = d_0 (inputs), d_1..d_L (hidden), classes; bias[l] for the
/// L hidden layers and the classifier (L + 1 flags).
struct DenseShape {
  std::vector<index_t> widths;
  std::vector<bool> bias;

  [[nodiscard]] index_t num_hidden() const { return static_cast<index_t>(widths.size()) - 2; }
  /// The hidden widths d_1..d_L.
  [[nodiscard]] std::vector<index_t> hidden_widths() const;
  /// Parameters or FLOPs per sample of this shape with hidden widths `hidden` (L entries, each >= 1).
  [[nodiscard]] std::int64_t cost(std::span<const index_t> hidden, BudgetKind kind) const;
  /// Parameters or FLOPs per sample of this shape as it is.
  [[nodiscard]] std::int64_t cost(BudgetKind kind) const { return cost(hidden_widths(), kind); }
  /// Throws idprune::Error unless there are >= 1 hidden layers, positive widths and L + 1 bias flags.
  void validate() const;
};

/// The shape of `model`. Every layer must be a single dense factor (a factored, low-rank layer has
/// no cost that is a function of the widths alone): throws idprune::Error naming the layer otherwise.
[[nodiscard]] DenseShape dense_shape(const nn::Mlp& model);

}  // namespace idprune::compress
