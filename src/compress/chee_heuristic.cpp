#include "idprune/compress/chee_heuristic.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace idprune::compress {
namespace {

std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

void check(std::span<const std::vector<double>> diagonals, const DenseShape& shape,
           const CheeAllocationOptions& options) {
  shape.validate();
  const index_t L = shape.num_hidden();
  require(static_cast<index_t>(diagonals.size()) == L, "chee_allocation: ", diagonals.size(), " CPQR diagonals for ", L,
          " hidden layers");
  for (index_t l = 0; l < L; ++l)
    for (double d : diagonals[uz(l)])
      require(std::isfinite(d), "chee_allocation: layer ", l + 1, " has a non-finite CPQR diagonal ", d);
  require(options.step_fraction > 0.0 && options.step_fraction < 1.0,
          "chee_allocation: step_fraction=", options.step_fraction, " outside (0, 1)");
  require(std::isfinite(options.budget) && options.budget > 0.0, "chee_allocation: budget=", options.budget,
          " must be positive");
}

}  // namespace

std::optional<CheeStep> chee_step(std::span<const std::vector<double>> diagonals, const DenseShape& shape,
                                  std::span<const index_t> widths, const CheeAllocationOptions& options) {
  check(diagonals, shape, options);
  const index_t L = shape.num_hidden();
  require(static_cast<index_t>(widths.size()) == L, "chee_step: ", widths.size(), " widths for ", L, " hidden layers");
  const std::int64_t now = shape.cost(widths, options.budget_kind);
  std::optional<CheeStep> best;
  std::vector<index_t> trial(widths.begin(), widths.end());
  for (index_t l = 0; l < L; ++l) {
    const index_t n = widths[uz(l)];
    require(n >= 1 && n <= shape.widths[uz(l + 1)], "chee_step: layer ", l + 1, " width ", n, " outside [1, ",
            shape.widths[uz(l + 1)], "]");
    if (n == 1) continue;
    // floor(f n), guarded against f n landing just below an integer (0.05 * 20 = 1 - 1 ulp).
    const auto cut = static_cast<index_t>(std::floor(options.step_fraction * static_cast<double>(n) * (1.0 + 1e-12)));
    const index_t to = std::max<index_t>(1, n - std::max<index_t>(1, cut));
    const std::vector<double>& diag = diagonals[uz(l)];
    const double r11 = diag.empty() ? 0.0 : std::abs(diag.front());
    const double rkk = uz(to) < diag.size() ? std::abs(diag[uz(to)]) : 0.0;
    const double error = r11 > 0.0 ? rkk / r11 : 0.0;
    trial[uz(l)] = to;
    const std::int64_t saving = now - shape.cost(trial, options.budget_kind);
    trial[uz(l)] = n;
    const double score = error / static_cast<double>(saving);
    if (!best || score < best->score) best = CheeStep{l, n, to, error, saving, score};
  }
  return best;
}

CheeAllocationResult chee_allocation(std::span<const std::vector<double>> diagonals, const DenseShape& shape,
                                     const CheeAllocationOptions& options) {
  check(diagonals, shape, options);
  CheeAllocationResult out;
  out.widths = shape.hidden_widths();
  out.cost = shape.cost(out.widths, options.budget_kind);
  while (static_cast<double>(out.cost) > options.budget) {
    const std::optional<CheeStep> step = chee_step(diagonals, shape, out.widths, options);
    if (!step) break;
    out.widths[uz(step->layer)] = step->to;
    out.cost -= step->saving;
    out.steps.push_back(*step);
  }
  out.budget_met = static_cast<double>(out.cost) <= options.budget;
  return out;
}

}  // namespace idprune::compress
