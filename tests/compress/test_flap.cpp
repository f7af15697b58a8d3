// FLAP: the fluctuation score, per-layer standardisation, one global threshold across layers (by a
// neuron count or a parameter / FLOP budget, nested in the target), and the bias compensation that
// keeps the next layer's mean pre-activation over the compression set exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/flap.hpp"

namespace idprune::test {
namespace {

using compress::BudgetKind;
using compress::FlapOptions;

Matrix relu_activations(index_t m, index_t n, std::uint64_t seed) {
  Matrix z = gaussian(m, n, seed);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < m; ++i) z(i, j) = std::max(0.0, (0.5 + 0.3 * static_cast<double>(j)) * z(i, j) + 0.2);
  return z;
}

std::vector<std::vector<double>> random_scores(const std::vector<index_t>& widths, std::uint64_t seed) {
  std::vector<std::vector<double>> s;
  for (std::size_t l = 0; l < widths.size(); ++l) {
    const Matrix g = gaussian(widths[l], 1, seed + l);
    std::vector<double> v(uz(widths[l]));
    // Layers on different scales: standardisation is what makes one threshold fair.
    for (index_t j = 0; j < widths[l]; ++j) v[uz(j)] = std::pow(10.0, static_cast<double>(l)) * std::exp(g(j, 0));
    s.push_back(v);
  }
  return s;
}

TEST(Flap, ScoreIsVarianceTimesSquaredOutgoingNorm) {
  const Matrix z = relu_activations(40, 6, 401);
  const Matrix w_next = gaussian(6, 4, 402);
  const auto mom = compress::moments(z);
  const std::vector<double> s = compress::flap_scores(mom, w_next);
  const std::vector<double> var = mom.variance();
  for (index_t j = 0; j < 6; ++j) {
    double r = 0.0;
    for (index_t c = 0; c < 4; ++c) r += w_next(j, c) * w_next(j, c);
    EXPECT_NEAR(s[uz(j)], var[uz(j)] * r, 1e-14 * var[uz(j)] * r);
  }
  EXPECT_THROW((void)compress::flap_scores(mom, gaussian(5, 4, 403)), Error);
}

TEST(Flap, BiasCompensationMakesTheMeanNextPreactivationExact) {
  const index_t m = 50;
  const index_t n = 8;
  const index_t n_next = 5;
  const Matrix z = relu_activations(m, n, 404);
  const Matrix w_next = gaussian(n, n_next, 405);
  const std::vector<double> b_next = {0.1, -0.3, 0.0, 0.7, 0.2};
  const auto mom = compress::moments(z);
  const std::vector<index_t> kept = {1, 3, 4};
  const std::vector<double> shift = compress::flap_bias_compensation(mom.mean(), w_next, kept);
  ASSERT_EQ(shift.size(), uz(n_next));
  const Matrix original = la::matmul(z, w_next);
  const Matrix pruned = la::matmul(la::select_columns(z, kept), la::select_rows(w_next, kept));
  const double scale = norm_max(original);
  double gap_without = 0.0;
  for (index_t c = 0; c < n_next; ++c) {
    double mean_original = 0.0;
    double mean_pruned = 0.0;
    for (index_t i = 0; i < m; ++i) {
      mean_original += original(i, c) + b_next[uz(c)];
      mean_pruned += pruned(i, c) + b_next[uz(c)];
    }
    mean_original /= static_cast<double>(m);
    mean_pruned /= static_cast<double>(m);
    EXPECT_NEAR(mean_pruned + shift[uz(c)], mean_original, 1e-13 * scale);
    gap_without = std::max(gap_without, std::abs(mean_pruned - mean_original));
  }
  EXPECT_GT(gap_without, 1e-2 * scale);  // the compensation is doing something
  // Keeping everything compensates nothing.
  const std::vector<double> none =
      compress::flap_bias_compensation(mom.mean(), w_next, std::vector<index_t>{0, 1, 2, 3, 4, 5, 6, 7});
  for (double v : none) EXPECT_EQ(v, 0.0);
}

TEST(Flap, StandardizedScoresHaveZeroMeanAndUnitStd) {
  const std::vector<double> s = {3.0, 1.0, 4.0, 1.0, 5.0, 9.0};
  const std::vector<double> z = compress::standardize(s);
  double mean = 0.0;
  double ss = 0.0;
  for (double v : z) mean += v;
  for (double v : z) ss += v * v;
  EXPECT_NEAR(mean, 0.0, 1e-14);
  EXPECT_NEAR(ss / 5.0, 1.0, 1e-14);
  for (double v : compress::standardize(std::vector<double>{2.0, 2.0, 2.0})) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(compress::standardize(std::vector<double>{7.0}), std::vector<double>{0.0});
}

TEST(Flap, GlobalCountKeepsTheHighestStandardizedScoresNestedAndAtLeastOnePerLayer) {
  const std::vector<index_t> widths = {12, 9, 7};
  const auto scores = random_scores(widths, 406);
  std::vector<std::vector<index_t>> previous;
  for (index_t keep = 28; keep >= 3; --keep) {
    SCOPED_TRACE(keep);
    FlapOptions o;
    o.keep_neurons = keep;
    const auto r = compress::flap_select(scores, o);
    ASSERT_TRUE(r.target_met);
    index_t total = 0;
    double lowest_kept = std::numeric_limits<double>::infinity();
    for (std::size_t l = 0; l < widths.size(); ++l) {
      EXPECT_GE(r.widths[l], 1);
      EXPECT_EQ(static_cast<index_t>(r.kept[l].size()), r.widths[l]);
      total += r.widths[l];
      for (index_t j : r.kept[l])
        if (r.widths[l] > 1) lowest_kept = std::min(lowest_kept, r.standardized[l][uz(j)]);
      // Nested: every neuron kept now was kept for the larger target.
      if (!previous.empty()) {
        for (index_t j : r.kept[l]) EXPECT_TRUE(std::binary_search(previous[l].begin(), previous[l].end(), j));
      }
    }
    EXPECT_EQ(total, keep);
    // One threshold: every removed neuron scores at most every kept one (layers kept at 1 aside).
    for (const auto& [l, j] : r.removed) EXPECT_LE(r.standardized[uz(l)][uz(j)], lowest_kept);
    previous = r.kept;
  }
}

TEST(Flap, ParameterBudgetIsMetExactlyAsTheModelCountsIt) {
  const nn::Mlp model = random_mlp(20, {12, 9, 7}, 4, true, 407);
  FlapOptions o;
  o.shape = compress::dense_shape(model);
  const auto scores = random_scores({12, 9, 7}, 408);
  const double full = static_cast<double>(model.parameter_count());
  for (BudgetKind kind : {BudgetKind::parameters, BudgetKind::flops}) {
    o.budget_kind = kind;
    const double top = kind == BudgetKind::parameters ? full : model.flops_per_sample();
    for (double share : {0.9, 0.6, 0.35}) {
      SCOPED_TRACE(share);
      o.budget = share * top;
      const auto r = compress::flap_select(scores, o);
      ASSERT_TRUE(r.target_met);
      const nn::Mlp shrunk = random_mlp(20, r.widths, 4, true, 409);
      const double counted =
          kind == BudgetKind::parameters ? static_cast<double>(shrunk.parameter_count()) : shrunk.flops_per_sample();
      EXPECT_EQ(static_cast<double>(r.cost), counted);
      EXPECT_LE(counted, o.budget);
      // The selection stops at the first point under budget: one neuron fewer removed exceeds it.
      ASSERT_FALSE(r.removed.empty());
      std::vector<index_t> back = r.widths;
      ++back[uz(r.removed.back().first)];
      EXPECT_GT(static_cast<double>(o.shape.cost(back, kind)), o.budget);
    }
  }
  // A budget below the one-neuron-per-layer model: every layer keeps one, target not met.
  o.budget_kind = BudgetKind::parameters;
  o.budget = 10.0;
  const auto r = compress::flap_select(scores, o);
  EXPECT_FALSE(r.target_met);
  EXPECT_EQ(r.widths, (std::vector<index_t>{1, 1, 1}));
}

TEST(Flap, RefusesAmbiguousOrImpossibleTargets) {
  const auto scores = random_scores({5, 4}, 410);
  FlapOptions o;
  EXPECT_THROW((void)compress::flap_select(scores, o), Error);  // no target
  o.keep_neurons = 4;
  o.budget = 100.0;
  EXPECT_THROW((void)compress::flap_select(scores, o), Error);  // two targets
  o.budget = -1.0;
  o.keep_neurons = 1;
  EXPECT_THROW((void)compress::flap_select(scores, o), Error);  // below one per layer
  o.keep_neurons = -1;
  o.budget = 100.0;
  EXPECT_THROW((void)compress::flap_select(scores, o), Error);  // budget without a shape
  auto bad = scores;
  bad[1][2] = std::numeric_limits<double>::quiet_NaN();
  o.budget = -1.0;
  o.keep_neurons = 5;
  EXPECT_THROW((void)compress::flap_select(bad, o), Error);
}

}  // namespace
}  // namespace idprune::test
