// Joint strategies, the parts that need no communicator: parameter counts, the budget allocation
// (knapsack over CPQR tails), relative tails of a CPQR, selection and interpolation of curves.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "fixtures.hpp"
#include "idprune/compress/allocation.hpp"
#include "idprune/compress/pareto.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/nn/train.hpp"

namespace idprune::test {
namespace {

using compress::allocate_budget;
using compress::parameter_count_with_widths;

using la::uz;

/// Parameters saved by removing a neuron of layer l (as the allocation counts them).
std::int64_t neuron_cost(const nn::Mlp& m, const std::vector<index_t>& k, index_t l) {
  const index_t before = l == 0 ? m.input_dim() : k[uz(l - 1)];
  const index_t after = l + 1 < m.num_hidden() ? k[uz(l + 1)] : m.num_classes();
  return before + after + (m.hidden(l).has_bias() ? 1 : 0);
}

/// Random non-increasing relative tails of length rank + 1 with tail[0] = 1.
std::vector<double> random_tail(index_t rank, std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(0.3, 0.95);
  std::vector<double> t(uz(rank + 1), 1.0);
  for (index_t k = 1; k <= rank; ++k) t[uz(k)] = t[uz(k - 1)] * u(gen);
  t.back() = 0.0;
  return t;
}

TEST(JointParameters, CountWithWidthsEqualsTheCountOfAModelOfThoseWidths) {
  for (const bool bias : {false, true}) {
    const nn::Mlp original = random_mlp(30, {24, 20, 16}, 5, bias, 7);
    const std::vector<index_t> widths = {5, 17, 1};
    const nn::Mlp small = nn::initialize_mlp(30, widths, 5, bias, 8);
    EXPECT_EQ(parameter_count_with_widths(original, widths), small.parameter_count()) << "bias " << bias;
    const std::vector<index_t> full = {24, 20, 16};
    EXPECT_EQ(parameter_count_with_widths(original, full), original.parameter_count());
  }
  const nn::Mlp original = random_mlp(30, {24, 20, 16}, 5, false, 7);
  const std::vector<index_t> too_wide = {25, 20, 16};
  EXPECT_THROW((void)parameter_count_with_widths(original, too_wide), Error);
}

TEST(BudgetAllocation, MeetsTheBudgetFromBelowAndNothingMoreFits) {
  std::mt19937_64 gen(11);
  for (const bool bias : {false, true}) {
    const nn::Mlp m = random_mlp(40, {32, 24, 24, 12}, 6, bias, 3);
    std::vector<std::vector<double>> tails;
    for (index_t l = 0; l < m.num_hidden(); ++l)
      tails.push_back(random_tail(m.hidden(l).d_out() - (l == 1 ? 4 : 0), gen));
    const std::vector<double> weights = {1.0, 2.0, 0.5, 1.0};
    const std::int64_t total = m.parameter_count();
    for (const double f : {0.04, 0.1, 0.25, 0.5, 0.9, 1.0}) {
      const auto budget = static_cast<std::int64_t>(f * static_cast<double>(total));
      SCOPED_TRACE("budget " + std::to_string(budget) + " bias " + std::to_string(bias));
      const std::vector<index_t> k = allocate_budget(m, tails, weights, budget);
      const std::int64_t params = parameter_count_with_widths(m, k);
      EXPECT_LE(params, budget);
      for (index_t l = 0; l < m.num_hidden(); ++l) {
        const auto cap = static_cast<index_t>(tails[uz(l)].size()) - 1;
        EXPECT_GE(k[uz(l)], 1);
        EXPECT_LE(k[uz(l)], cap);
        // Maximal: one more neuron in any layer that could take one exceeds the budget.
        if (k[uz(l)] < cap) {
          EXPECT_GT(params + neuron_cost(m, k, l), budget) << "layer " << l;
        }
      }
    }
  }
}

TEST(BudgetAllocation, RemovesErrorFreeNeuronsBeforeAnyOther) {
  // Layer 2 is exactly of rank 3 within a numerical rank of 20 (its tail is 0 from k = 3): a budget
  // that needs exactly its extra neurons removed must take all of them there and nothing elsewhere.
  const nn::Mlp m = random_mlp(40, {32, 20, 24}, 6, false, 5);
  std::mt19937_64 gen(13);
  std::vector<std::vector<double>> tails = {random_tail(32, gen), random_tail(20, gen), random_tail(24, gen)};
  for (index_t k = 3; k <= 20; ++k) tails[1][uz(k)] = 0.0;
  const std::vector<double> weights(3, 1.0);
  const std::vector<index_t> target = {32, 3, 24};
  const std::vector<index_t> k = allocate_budget(m, tails, weights, parameter_count_with_widths(m, target));
  EXPECT_EQ(k, target);
}

TEST(BudgetAllocation, BelowOneNeuronPerLayerIsAnError) {
  const nn::Mlp m = random_mlp(40, {32, 20}, 6, false, 5);
  std::mt19937_64 gen(17);
  const std::vector<std::vector<double>> tails = {random_tail(32, gen), random_tail(20, gen)};
  const std::vector<double> weights(2, 1.0);
  const std::vector<index_t> ones = {1, 1};
  EXPECT_NO_THROW((void)allocate_budget(m, tails, weights, parameter_count_with_widths(m, ones)));
  EXPECT_THROW((void)allocate_budget(m, tails, weights, parameter_count_with_widths(m, ones) - 1), Error);
}

TEST(RelativeTail, IsTheRelativeSquaredIdErrorAtEveryRank) {
  const Matrix z = structured_inputs(60, 25, 6, 21);
  la::CpqrOptions full;
  full.rel_tol = 60 * eps;
  const la::CpqrResult f = la::cpqr(z, full);
  const std::vector<double> tail = compress::relative_tail(f);
  ASSERT_EQ(static_cast<index_t>(tail.size()), f.rank + 1);
  EXPECT_DOUBLE_EQ(tail.front(), 1.0);
  const double zf2 = la::norm_fro(z) * la::norm_fro(z);
  for (index_t k = 1; k <= f.rank; ++k) {
    EXPECT_LE(tail[uz(k)], tail[uz(k - 1)]) << "k " << k;
    la::CpqrOptions o;
    o.max_rank = k;
    const auto id = la::interpolative_decomposition(z, o);
    Matrix e(z);
    la::gemm(-1.0, la::select_columns(z, id.skeleton), la::Op::none, id.interpolation, la::Op::none, 1.0, e.view());
    const double err2 = la::norm_fro(e) * la::norm_fro(e) / zf2;
    // ||Z - Z(:,C) T||_F = ||R22||_F: rounding of the QR and of T, relative to ||Z||_F^2.
    EXPECT_NEAR(tail[uz(k)], err2, 100.0 * eps * 60.0) << "k " << k;
  }
}

compress::ParetoModel model_at(std::int64_t params, std::int64_t correct, double test_accuracy) {
  compress::ParetoModel m;
  m.params = params;
  m.params_fraction = static_cast<double>(params) / 1000.0;
  m.validation.correct = correct;
  m.test.samples = 1000;
  m.test.correct = static_cast<std::int64_t>(std::lround(test_accuracy * 1000.0));
  return m;
}

TEST(ParetoSelection, BestValidationAccuracyWithinTheBudgetThenFewerParameters) {
  const std::vector<compress::ParetoModel> models = {model_at(500, 90, 0.1), model_at(300, 95, 0.2),
                                                     model_at(200, 95, 0.3), model_at(100, 80, 0.9)};
  EXPECT_EQ(compress::select_within(models, 1000), 2);  // tie on validation: fewer parameters
  EXPECT_EQ(compress::select_within(models, 250), 2);
  EXPECT_EQ(compress::select_within(models, 199), 3);  // the test accuracy never matters
  EXPECT_EQ(compress::select_within(models, 99), -1);
}

TEST(ParetoSelection, GreedyIsInterpolatedLinearlyAlongItsSweep) {
  const std::vector<compress::ParetoModel> models = {model_at(400, 0, 0.8), model_at(100, 0, 0.5),
                                                     model_at(200, 0, 0.7)};
  EXPECT_NEAR(compress::interpolate_test_accuracy(models, 0.15), 0.6, 1e-12);
  EXPECT_NEAR(compress::interpolate_test_accuracy(models, 0.3), 0.75, 1e-12);
  EXPECT_NEAR(compress::interpolate_test_accuracy(models, 0.9), 0.8, 1e-12);
  EXPECT_TRUE(std::isnan(compress::interpolate_test_accuracy(models, 0.05)));
}

TEST(ParetoSelection, StrategyNamesAndObjectives) {
  // Every registered strategy: a unique name, a policy the engine knows, a description.
  std::set<std::string_view> names;
  for (const auto& info : compress::strategies()) {
    EXPECT_TRUE(names.insert(info.name).second) << info.name;
    EXPECT_NO_THROW((void)compress::strategy_policy(info)) << info.name;
    EXPECT_FALSE(info.description.empty()) << info.name;
    EXPECT_EQ(&compress::strategy(info.name), &info);
    // Sweep strategies take each of their sweep rules; a policy refuses the rules it cannot run.
    for (const auto r : info.sweep_rules)
      EXPECT_NO_THROW(compress::strategy_policy(info)->check({r, 1.0})) << info.name;
  }
  EXPECT_NE(compress::strategy_help().find("descent"), std::string::npos);
  EXPECT_EQ(compress::parse_objective("cross-entropy"), compress::Objective::cross_entropy);
  EXPECT_EQ(compress::parse_objective("error-rate"), compress::Objective::error_rate);
  EXPECT_THROW((void)compress::parse_objective("loss"), Error);
}

}  // namespace
}  // namespace idprune::test
