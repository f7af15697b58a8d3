// The engine's searches under mpiexec -n 1..4: complete factorizations against the loosest rule, the
// corrected interpolation as a least-squares minimiser, the budget strategy's parameter counts,
// determinism across batching, caching and TBB threads, and the Pareto study's selection, which
// must not change when the test labels are scrambled. Every rank builds the same full data from
// seeds and holds its block of rows.
#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "fixtures.hpp"
#include "idprune/compress/allocation.hpp"
#include "idprune/compress/pareto.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/svd.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::CompressedModel;
using compress::CompressionEngine;
using compress::PointPlan;

using la::uz;

/// The engine as the budget and search strategies use it (complete factorizations).
CompressionEngine complete_engine(const nn::Mlp& model, const dist::DistMatrix& xc,
                                  std::size_t cache_bytes = 768u << 20) {
  compress::EngineOptions o;
  o.complete_factorizations = true;
  o.cache_bytes = cache_bytes;
  return {model, xc, o};
}

std::shared_ptr<const compress::LayerPolicy> id_policy() { return compress::make_policy("id"); }
std::shared_ptr<const compress::LayerPolicy> corrected_policy(bool intercept = false) {
  return compress::make_policy("corrected", compress::PolicyOptions{1, intercept});
}

std::vector<index_t> widths(const CompressedModel& m) {
  std::vector<index_t> k;
  for (const auto& o : m.layers) k.push_back(o.kept);
  return k;
}

double frobenius_diff(const Matrix& a, const Matrix& b) {
  Matrix d(a);
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) d(i, j) -= b(i, j);
  return la::norm_fro(d);
}

using Problem = SelectionProblem;

// The loosest-rule factorizations of a sweep and the complete ones of a search select the same
// neurons for the same eps (prefix property of CPQR).
compress::Scorer validation_scorer(const Problem& p, const dist::Comm& comm, index_t batch_rows) {
  return {p.model, Matrix(distribute(p.xv, comm).local()), block_of(p.yv, comm), comm,
          compress::ScorerOptions{batch_rows, true, false}};
}

TEST(Engine, CompleteFactorizationsSelectWhatTheLoosestRuleSelects) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(31, true);
  CompressionEngine greedy(p.model, distribute(p.xc, comm), {});
  CompressionEngine joint = complete_engine(p.model, distribute(p.xc, comm));
  std::vector<PointPlan> plans;
  for (const double e : {0.02, 0.1, 0.5, 2.0})
    plans.push_back(compress::uniform_plan(id_policy(), 3, {}, {compress::RankRule::eps, e}));
  greedy.prepare(plans);
  const auto a = greedy.compress(plans);
  const auto b = joint.compress(plans);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    SCOPED_TRACE("plan " + std::to_string(i));
    ASSERT_EQ(widths(a[i]), widths(b[i]));
    EXPECT_EQ(a[i].first_layer_columns, b[i].first_layer_columns);
    for (index_t l = 0; l < 3; ++l) {
      EXPECT_DOUBLE_EQ(a[i].layers[uz(l)].rel_tol, b[i].layers[uz(l)].rel_tol);
      // next_ratio: the same diagonal from two QR orders (rounding of ||Z||).
      EXPECT_NEAR(a[i].layers[uz(l)].next_ratio, b[i].layers[uz(l)].next_ratio, 1e3 * eps * 150);
    }
    // Same columns, same T up to the rounding of two factorizations: cond(R11) <= 1 / rel_tol.
    const Matrix la_ = a[i].model.logits(p.xc);
    const Matrix lb = b[i].model.logits(p.xc);
    double worst_tol = 0.0;
    for (const auto& o : b[i].layers) worst_tol = std::max(worst_tol, 1.0 / std::max(o.next_ratio, 1e-3));
    EXPECT_LE(frobenius_diff(la_, lb), 100.0 * eps * 150.0 * worst_tol * la::norm_fro(la_));
  }
}

TEST(CorrectedPolicy, IsTheLeastSquaresFitOfTheOriginalLogits) {
  // Two hidden layers, both compressed: the classifier becomes M = T W_s with T of the second layer,
  // and both interpolations see the same H = Z_hat(:, C) (the first layer's T is the ID's in both).
  // argmin_M ||Z_orig W_s - H M||_F = (argmin_T ||Z_orig - H T||_F) W_s, so on the compression set
  // the corrected logits are at least as close to the original's as the ID's.
  const auto comm = dist::Comm::world();
  for (const std::uint64_t seed : {41ULL, 42ULL, 43ULL}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const nn::Mlp model = random_mlp(30, {28, 22}, 6, false, seed);
    const Matrix xc = structured_inputs(160, 30, 10, seed + 1);
    CompressionEngine id = complete_engine(model, distribute(xc, comm));
    CompressionEngine ls = complete_engine(model, distribute(xc, comm));
    const std::vector<index_t> k = {9, 7};
    const auto mi = id.compress(std::vector<PointPlan>{compress::kept_plan(id_policy(), k)}).front();
    const auto mc = ls.compress(std::vector<PointPlan>{compress::kept_plan(corrected_policy(), k)}).front();
    ASSERT_EQ(mi.first_layer_columns, mc.first_layer_columns);
    ASSERT_EQ(widths(mi), k);
    ASSERT_EQ(widths(mc), k);
    const Matrix l0 = model.logits(xc);
    const double err_id = frobenius_diff(l0, mi.model.logits(xc));
    const double err_ls = frobenius_diff(l0, mc.model.logits(xc));
    EXPECT_LE(err_ls, err_id * (1.0 + 100.0 * eps * 160.0)) << "id " << err_id << " corrected " << err_ls;
    // It must actually correct something here (the first layer's compression shifted Z_hat).
    EXPECT_LT(err_ls, 0.99 * err_id) << "id " << err_id << " corrected " << err_ls;
  }
}

TEST(CorrectedPolicy, AnInterceptOnlyLowersTheLeastSquaresError) {
  // Only the last hidden layer compressed: the ID's T and the fit with an intercept see the same
  // Z(:, C); [T; t] minimises over a superset of the ID's (T, 0), and the classifier absorbs it, so
  // the logits on the compression set get closer to the original's. The classifier gains a bias.
  const auto comm = dist::Comm::world();
  const nn::Mlp model = random_mlp(30, {28, 22}, 6, false, 44);
  const Matrix xc = structured_inputs(160, 30, 10, 45);
  CompressionEngine id = complete_engine(model, distribute(xc, comm));
  CompressionEngine ic = complete_engine(model, distribute(xc, comm));
  PointPlan plan;
  plan.policy = id_policy();
  plan.layers = {std::nullopt, compress::LayerRule{compress::RankRule::k, 6}};
  const auto mi = id.compress(std::vector<PointPlan>{plan}).front();
  plan.policy = corrected_policy(true);
  const auto mc = ic.compress(std::vector<PointPlan>{plan}).front();
  EXPECT_FALSE(mi.model.classifier().has_bias());
  EXPECT_TRUE(mc.model.classifier().has_bias());
  EXPECT_EQ(mc.model.parameter_count(), mi.model.parameter_count() + 6);
  const Matrix l0 = model.logits(xc);
  const double err_id = frobenius_diff(l0, mi.model.logits(xc));
  const double err_ic = frobenius_diff(l0, mc.model.logits(xc));
  EXPECT_LE(err_ic, err_id * (1.0 + 100.0 * eps * 160.0)) << "id " << err_id << " intercept " << err_ic;
  EXPECT_LT(err_ic, 0.999 * err_id) << "id " << err_id << " intercept " << err_ic;
}

TEST(Engine, ModelsDependOnlyOnThePlanNotOnBatchingOrCaching) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(61);
  for (const std::string name : {"id", "corrected", "random", "magnitude"}) {
    SCOPED_TRACE(name);
    const auto policy = compress::make_policy(name);
    std::vector<PointPlan> plans;
    plans.push_back(compress::kept_plan(policy, std::vector<index_t>{12, 9, 5}));
    plans.push_back(compress::kept_plan(policy, std::vector<index_t>{12, 9, 8}));
    plans.push_back(compress::kept_plan(policy, std::vector<index_t>{6, 9, 5}));
    if (policy->needs_factorization({compress::RankRule::eps, 0.3}) && name != "random")
      plans.push_back(compress::uniform_plan(policy, 3, {}, {compress::RankRule::eps, 0.3}));
    PointPlan partial;
    partial.policy = policy;
    partial.layers = {std::nullopt, compress::LayerRule{compress::RankRule::k, 7}, std::nullopt};
    plans.push_back(partial);
    CompressionEngine together = complete_engine(p.model, distribute(p.xc, comm));
    const auto all = together.compress(plans);
    // cache_bytes 0: every node evicted after each call.
    CompressionEngine alone = complete_engine(p.model, distribute(p.xc, comm), 0);
    for (std::size_t i = plans.size(); i-- > 0;) {
      const auto one = alone.compress(std::span<const PointPlan>(plans).subspan(i, 1)).front();
      EXPECT_TRUE(identical_models(one.model, all[i].model)) << "plan " << i;
      EXPECT_EQ(widths(one), widths(all[i]));
      EXPECT_EQ(one.first_layer_columns, all[i].first_layer_columns);
    }
    // A second call hits the cache and returns the same models.
    const auto again = together.compress(plans);
    for (std::size_t i = 0; i < plans.size(); ++i) EXPECT_TRUE(identical_models(again[i].model, all[i].model));
    EXPECT_GT(together.stats().cache_hits, 0);
    // The partial plan leaves layers 1 and 3 as they are (layer 3's input is folded, not its width).
    EXPECT_EQ(all.back().model.hidden(0).d_out(), 24);
    EXPECT_EQ(all.back().model.hidden(1).d_out(), 7);
    EXPECT_EQ(all.back().model.hidden(2).d_in(), 7);
    EXPECT_EQ(all.back().model.hidden(2).d_out(), 16);
  }
}

TEST(Engine, KeepingEveryNeuronReproducesTheOriginal) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(71, true);
  for (const std::string name : {"id", "corrected"}) {
    CompressionEngine c = complete_engine(p.model, distribute(p.xc, comm));
    const std::vector<index_t> full = {24, 20, 16};
    const auto m = c.compress(std::vector<PointPlan>{compress::kept_plan(compress::make_policy(name), full)}).front();
    const Matrix l0 = p.model.logits(p.xc);
    const Matrix l1 = m.model.logits(p.xc);
    // Kept at the numerical rank: Z(:, C) T reproduces Z to the rank threshold max(m, n) eps |r_11|,
    // amplified at most by cond(R11) <= 1 / (max(m, n) eps) -- bound the result loosely but scaled.
    EXPECT_LE(frobenius_diff(l0, l1), 1e-6 * la::norm_fro(l0)) << name;
  }
}

TEST(BudgetStrategy, CompressedModelMeetsTheBudgetFromBelow) {
  const auto comm = dist::Comm::world();
  for (const int variant : {0, 1, 2}) {
    const Problem p = selection_problem(81, variant == 1);  // biases of its own, or gained from intercepts
    // variant 2: every layer after the first gains a bias, counted by the allocation.
    const auto policy = variant == 0 ? id_policy() : corrected_policy(variant == 2);
    CompressionEngine c = complete_engine(p.model, distribute(p.xc, comm));
    const std::int64_t total = p.model.parameter_count();
    for (const double f : {0.05, 0.1, 0.3, 0.6}) {
      const auto budget = static_cast<std::int64_t>(f * static_cast<double>(total));
      const std::vector<index_t> k = compress::budget_widths(c, policy, budget);
      const auto m = c.compress(std::vector<PointPlan>{compress::kept_plan(policy, k)}).front();
      EXPECT_LE(m.model.parameter_count(), budget) << "fraction " << f;
      EXPECT_EQ(m.model.parameter_count(), compress::parameter_count_with_widths(p.model, widths(m), variant == 2));
      EXPECT_EQ(widths(m), k);  // the allocation never asks beyond a layer's numerical rank
    }
  }
}

TEST(Scorer, ValidationScoresMatchADirectComputation) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(91);
  const compress::Scorer scorer = validation_scorer(p, comm, 37);
  CompressionEngine c = complete_engine(p.model, distribute(p.xc, comm));
  const auto models =
      c.compress(std::vector<PointPlan>{compress::kept_plan(id_policy(), std::vector<index_t>{8, 6, 4})});
  const auto s = scorer.score(models).front();
  const Matrix logits = models.front().model.logits(p.xv);
  const Matrix prob = nn::softmax_rows(logits);
  const auto pred = nn::argmax_rows(logits);
  const auto ref = p.model.predict(p.xv);
  double ce = 0.0;
  std::int64_t correct = 0;
  std::int64_t agree = 0;
  for (std::size_t i = 0; i < p.yv.size(); ++i) {
    ce -= std::log(prob(static_cast<index_t>(i), p.yv[i]));
    correct += pred[i] == p.yv[i] ? 1 : 0;
    agree += pred[i] == ref[i] ? 1 : 0;
  }
  const auto n = static_cast<double>(p.yv.size());
  EXPECT_EQ(s.samples, static_cast<std::int64_t>(p.yv.size()));
  EXPECT_EQ(s.correct, correct);
  EXPECT_DOUBLE_EQ(s.agreement(), static_cast<double>(agree) / n);
  EXPECT_NEAR(s.cross_entropy(), ce / n, 100.0 * eps * std::max(1.0, ce / n));
  EXPECT_EQ(scorer.original_scores().agreement(), 1.0);
}

TEST(ValidationDescent, IsIdenticalForOneAndTwoThreadsAndShrinksEveryStep) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(101);
  const compress::Scorer scorer = validation_scorer(p, comm, 50);
  compress::DescentOptions o;
  o.step = 0.25;
  o.stop_fraction = 0.1;
  std::vector<std::vector<compress::SearchPoint>> paths;
  for (const std::size_t threads : {1U, 2U}) {
    const tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    CompressionEngine c = complete_engine(p.model, distribute(p.xc, comm));
    paths.push_back(compress::validation_descent(c, corrected_policy(), scorer, o));
  }
  ASSERT_EQ(paths[0].size(), paths[1].size());
  ASSERT_GE(paths[0].size(), 5U);
  for (std::size_t i = 0; i < paths[0].size(); ++i) {
    EXPECT_EQ(paths[0][i].kept, paths[1][i].kept) << "step " << i;
    EXPECT_EQ(paths[0][i].validation.correct, paths[1][i].validation.correct);
    EXPECT_EQ(paths[0][i].validation.loss, paths[1][i].validation.loss);  // bitwise
    if (i > 0) {
      EXPECT_LT(paths[0][i].params, paths[0][i - 1].params);
    }
  }
  EXPECT_LE(paths[0].back().params_fraction, o.stop_fraction);
}

TEST(ParetoStudy, SelectionNeverDependsOnTheTestLabels) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(111);
  compress::ParetoOptions o;
  o.strategies = {"greedy", "svd", "corrected", "spectrum", "budget-corrected", "tuned-corrected", "descent-corrected"};
  o.tune.rounds = 2;
  o.budgets = {0.1, 0.3, 0.6};
  o.eps_grid = {0.01, 0.05, 0.2, 1.0, 5.0};
  o.tau_grid = {1e-3, 1e-2, 0.1, 0.5};
  o.svd_grid = {0.1, 0.3, 0.6};
  o.descent.step = 0.25;
  o.descent.stop_fraction = 0.08;
  const compress::Scorer scorer = validation_scorer(p, comm, 64);
  const auto xc = distribute(p.xc, comm);
  std::vector<compress::ParetoResult> results;
  std::vector<int> scrambled = p.yt;
  std::mt19937_64 gen(5);
  std::shuffle(scrambled.begin(), scrambled.end(), gen);
  for (const std::vector<int>* labels : {&p.yt, static_cast<const std::vector<int>*>(&scrambled)}) {
    const compress::Scorer test(p.model, Matrix(distribute(p.xt, comm).local()), block_of(*labels, comm), comm,
                                compress::ScorerOptions{64, false, true});
    results.push_back(compress::run_pareto(p.model, xc, scorer, test, o));
  }
  const auto& a = results[0].rows;
  const auto& b = results[1].rows;
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  bool test_differs = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].strategy + " budget " + std::to_string(a[i].budget));
    EXPECT_EQ(a[i].strategy, b[i].strategy);
    EXPECT_EQ(a[i].budget, b[i].budget);
    EXPECT_EQ(a[i].model.kept_per_layer, b[i].model.kept_per_layer);
    EXPECT_EQ(a[i].model.params, b[i].model.params);
    EXPECT_EQ(a[i].model.setting, b[i].model.setting);
    EXPECT_EQ(a[i].model.validation.correct, b[i].model.validation.correct);
    EXPECT_LE(a[i].model.params,
              static_cast<std::int64_t>(a[i].budget * static_cast<double>(p.model.parameter_count())));
    test_differs = test_differs || a[i].model.test.correct != b[i].model.test.correct;
  }
  EXPECT_TRUE(test_differs);  // the scrambled labels did reach the test evaluation
  // Every strategy reports a row at the largest budget, budget-driven ones at every budget.
  for (const auto& s : o.strategies) {
    const auto n = std::count_if(a.begin(), a.end(), [&](const auto& r) { return r.strategy == s; });
    if (s == "budget-corrected" || s == "tuned-corrected" || s == "descent-corrected") {
      EXPECT_EQ(n, 3) << s;
    }
    EXPECT_GE(n, 1) << s;
  }
  const auto cmp = compress::compare_with_greedy(results[0]);
  EXPECT_EQ(cmp.size(), o.strategies.size());
}

}  // namespace
}  // namespace idprune::test
