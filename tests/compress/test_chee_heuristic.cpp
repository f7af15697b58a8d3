// Chee et al.'s per-layer allocation and the dense-shape cost it spends: costs equal nn::Mlp's own
// counts, each step shrinks the layer of least |r_kk / r_11| per unit of cost saved by 5% of its
// width, widths are monotone in the budget and never below one neuron.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/chee_heuristic.hpp"

namespace idprune::test {
namespace {

using compress::BudgetKind;
using compress::CheeAllocationOptions;
using compress::DenseShape;

// A model with the given widths (d_0, hidden..., classes) and per-layer bias flags.
nn::Mlp model_of(const std::vector<index_t>& widths, const std::vector<bool>& bias) {
  std::vector<nn::DenseLayer> hidden;
  const auto L = static_cast<index_t>(widths.size()) - 2;
  for (index_t l = 0; l <= L; ++l) {
    Matrix w(widths[uz(l)], widths[uz(l + 1)], 0.5);
    std::vector<double> b(bias[uz(l)] ? uz(widths[uz(l + 1)]) : 0, 0.1);
    if (l < L)
      hidden.emplace_back(std::move(w), std::move(b), nn::Activation::relu);
    else
      return nn::Mlp(std::move(hidden), nn::DenseLayer(std::move(w), std::move(b), nn::Activation::identity));
  }
  return {};
}

// Geometrically decaying CPQR diagonals |r_jj| = rate^j with the given length.
std::vector<double> decaying(index_t n, double rate) {
  std::vector<double> d(uz(n));
  for (index_t j = 0; j < n; ++j) d[uz(j)] = std::pow(rate, static_cast<double>(j));
  return d;
}

const std::vector<index_t> kWidths = {30, 40, 25, 20, 6};
const std::vector<bool> kBias = {true, false, true, true};

std::vector<std::vector<double>> diagonals() { return {decaying(40, 0.8), decaying(25, 0.95), decaying(12, 0.6)}; }

TEST(DenseShape, CostsAreTheModelsOwnCounts) {
  const nn::Mlp m = model_of(kWidths, kBias);
  const DenseShape s = compress::dense_shape(m);
  EXPECT_EQ(s.widths, kWidths);
  EXPECT_EQ(s.cost(BudgetKind::parameters), m.parameter_count());
  EXPECT_EQ(static_cast<double>(s.cost(BudgetKind::flops)), m.flops_per_sample());
  const std::vector<index_t> smaller = {7, 3, 1};
  const nn::Mlp ms = model_of({30, 7, 3, 1, 6}, kBias);
  EXPECT_EQ(s.cost(smaller, BudgetKind::parameters), ms.parameter_count());
  EXPECT_EQ(static_cast<double>(s.cost(smaller, BudgetKind::flops)), ms.flops_per_sample());
  EXPECT_THROW((void)s.cost(std::vector<index_t>{7, 0, 1}, BudgetKind::parameters), Error);
  EXPECT_THROW((void)s.cost(std::vector<index_t>{7, 3}, BudgetKind::parameters), Error);
  EXPECT_EQ(compress::parse_budget_kind("params"), BudgetKind::parameters);
  EXPECT_EQ(compress::parse_budget_kind("flops"), BudgetKind::flops);
  EXPECT_THROW((void)compress::parse_budget_kind("bytes"), Error);
}

TEST(DenseShape, RefusesFactoredLayers) {
  nn::Mlp m = model_of({8, 6, 3}, {false, true});
  std::vector<nn::DenseLayer> hidden = {
      nn::DenseLayer({Matrix(8, 2, 1.0), Matrix(2, 6, 1.0)}, {}, nn::Activation::relu)};
  const nn::Mlp factored(hidden, m.classifier());
  EXPECT_THROW((void)compress::dense_shape(factored), Error);
}

TEST(CheeAllocation, EachStepShrinksTheLayerOfLeastErrorPerCostSaved) {
  const DenseShape s = compress::dense_shape(model_of(kWidths, kBias));
  CheeAllocationOptions o;
  o.budget = 0.3 * static_cast<double>(s.cost(BudgetKind::parameters));
  const auto d = diagonals();
  const auto r = compress::chee_allocation(d, s, o);
  ASSERT_FALSE(r.steps.empty());
  std::vector<index_t> widths = s.hidden_widths();
  for (const auto& step : r.steps) {
    ASSERT_EQ(widths[uz(step.layer)], step.from);
    // 5% of the current width, at least one neuron.
    EXPECT_EQ(step.to, step.from - std::max<index_t>(1, static_cast<index_t>(std::floor(0.05 * step.from + 1e-9))));
    // Brute force over the layers: no other shrink has a smaller error per cost saved.
    for (index_t l = 0; l < 3; ++l) {
      const index_t n = widths[uz(l)];
      if (n == 1) continue;
      const index_t to = n - std::max<index_t>(1, static_cast<index_t>(std::floor(0.05 * n + 1e-9)));
      const double e = uz(to) < d[uz(l)].size() ? d[uz(l)][uz(to)] / d[uz(l)][0] : 0.0;
      std::vector<index_t> trial = widths;
      trial[uz(l)] = to;
      const double saved =
          static_cast<double>(s.cost(widths, BudgetKind::parameters) - s.cost(trial, BudgetKind::parameters));
      EXPECT_LE(step.score, e / saved * (1.0 + 1e-12));
    }
    widths[uz(step.layer)] = step.to;
  }
  EXPECT_EQ(widths, r.widths);
  // The third layer's diagonals stop at 12 (its CPQR rank): shrinking below 12 costs nothing, so it
  // reaches 12 before anything else (20 -> 19 -> ... -> 12 in steps of one neuron).
  EXPECT_LE(r.widths[2], 12);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(r.steps[i].layer, 2);
}

TEST(CheeAllocation, WidthsAreMonotoneInTheBudgetAndTheAccountingIsExact) {
  const nn::Mlp model = model_of(kWidths, kBias);
  const DenseShape s = compress::dense_shape(model);
  const auto d = diagonals();
  for (BudgetKind kind : {BudgetKind::parameters, BudgetKind::flops}) {
    SCOPED_TRACE(compress::to_string(kind));
    const double full = static_cast<double>(s.cost(kind));
    std::vector<index_t> previous = s.hidden_widths();
    for (double share = 1.0; share >= 0.05; share -= 0.05) {
      SCOPED_TRACE(share);
      CheeAllocationOptions o;
      o.budget = share * full;
      o.budget_kind = kind;
      const auto r = compress::chee_allocation(d, s, o);
      ASSERT_TRUE(r.budget_met);
      const nn::Mlp shrunk = model_of({30, r.widths[0], r.widths[1], r.widths[2], 6}, kBias);
      const double counted =
          kind == BudgetKind::parameters ? static_cast<double>(shrunk.parameter_count()) : shrunk.flops_per_sample();
      EXPECT_EQ(static_cast<double>(r.cost), counted);
      EXPECT_LE(counted, o.budget);
      // Stops at the first point under budget: undoing the last step exceeds it.
      if (!r.steps.empty()) {
        EXPECT_GT(static_cast<double>(r.cost + r.steps.back().saving), o.budget);
      }
      for (std::size_t l = 0; l < 3; ++l) {
        EXPECT_LE(r.widths[l], previous[l]);
        EXPECT_GE(r.widths[l], 1);
      }
      previous = r.widths;
    }
  }
}

TEST(CheeAllocation, NeverBelowOneNeuronAndSaysWhenTheBudgetIsOutOfReach) {
  const DenseShape s = compress::dense_shape(model_of(kWidths, kBias));
  CheeAllocationOptions o;
  o.budget = 1.0;
  const auto r = compress::chee_allocation(diagonals(), s, o);
  EXPECT_FALSE(r.budget_met);
  EXPECT_EQ(r.widths, (std::vector<index_t>{1, 1, 1}));
  EXPECT_EQ(r.cost, s.cost(std::vector<index_t>{1, 1, 1}, BudgetKind::parameters));
  EXPECT_FALSE(compress::chee_step(diagonals(), s, r.widths, o).has_value());
  // Dead layers (|r_11| = 0, empty diagonals) give error 0, not NaN.
  const std::vector<std::vector<double>> dead = {{}, {0.0, 0.0}, decaying(20, 0.5)};
  const auto step = compress::chee_step(dead, s, s.hidden_widths(), o);
  ASSERT_TRUE(step.has_value());
  EXPECT_EQ(step->error, 0.0);
}

TEST(CheeAllocation, RefusesBadArguments) {
  const DenseShape s = compress::dense_shape(model_of(kWidths, kBias));
  CheeAllocationOptions o;
  o.budget = 1000.0;
  const std::vector<std::vector<double>> one_layer = {decaying(40, 0.8)};
  EXPECT_THROW((void)compress::chee_allocation(one_layer, s, o), Error);
  o.step_fraction = 0.0;
  EXPECT_THROW((void)compress::chee_allocation(diagonals(), s, o), Error);
  o.step_fraction = 0.05;
  o.budget = -3.0;
  EXPECT_THROW((void)compress::chee_allocation(diagonals(), s, o), Error);
  o.budget = 1000.0;
  auto bad = diagonals();
  bad[1][3] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)compress::chee_allocation(bad, s, o), Error);
  EXPECT_THROW((void)compress::chee_step(diagonals(), s, std::vector<index_t>{41, 25, 20}, o), Error);
}

}  // namespace
}  // namespace idprune::test
