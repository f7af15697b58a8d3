// The data-aware strategies through the engine under MPI (run under mpiexec -n 1..4): whitened-svd,
// obs and hybrid each satisfy their defining property on the whole compression set (all ranks'
// rows), and give the same models for any number of ranks (to rounding) and threads (bitwise).
#include <gtest/gtest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/hybrid.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/svd.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::LayerRule;
using compress::RankRule;
using la::Op;

struct Problem {
  nn::Mlp model;
  Matrix xc;
};

Problem problem(std::uint64_t seed, bool bias) {
  return {random_mlp(24, {32, 24, 16}, 5, bias, seed), structured_inputs(300, 24, 12, seed + 1)};
}

double fro2(const Matrix& a) {
  double s = 0.0;
  for (double v : a.values()) s += v * v;
  return s;
}

Matrix minus(const Matrix& a, const Matrix& b) {
  Matrix d(a);
  for (index_t i = 0; i < d.size(); ++i) d.values()[uz(i)] -= b.values()[uz(i)];
  return d;
}

/// Pre-activations x W (+ b) of a layer, all of its factors.
Matrix pre_activation(const nn::DenseLayer& layer, const Matrix& x) {
  nn::DenseLayer linear(layer.factors(), layer.bias(), nn::Activation::identity);
  Matrix y;
  linear.forward(x, y);
  return y;
}

compress::PointPlan one_layer(std::string_view policy, index_t layer, const LayerRule& rule,
                              const compress::PolicyOptions& o = {}) {
  return compress::uniform_plan(compress::make_policy(policy, o), 3, std::vector<index_t>{layer}, rule);
}

// whitened-svd on layer 1 alone: ||X W - X A B||_F^2 equals the Eckart-Young optimum over rank-r
// matrices, sum_{i > r} sigma_i(X W)^2, computed from an SVD of X W on the gathered rows; and it
// is below plain weight SVD's error.
TEST(WhitenedSvdStrategy, OutputErrorIsTheOptimumOverRankRFactorizations) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(211, false);
  compress::CompressionEngine engine(p.model, distribute(p.xc, comm), {});
  for (const index_t r : {1, 3, 8}) {
    const std::vector<compress::PointPlan> plans = {one_layer("whitened-svd", 0, {RankRule::rank, double(r)}),
                                                    one_layer("svd", 0, {RankRule::rank, double(r)})};
    const auto models = engine.compress(plans);
    const nn::DenseLayer& got = models[0].model.hidden(0);
    ASSERT_EQ(got.factor_count(), 2);
    EXPECT_EQ(got.factor(0).cols(), r);
    const Matrix xw = pre_activation(p.model.hidden(0), p.xc);
    const std::vector<double> s = la::singular_values(xw);
    double optimum = 0.0;
    for (std::size_t i = uz(r); i < s.size(); ++i) optimum += s[i] * s[i];
    const double err = fro2(minus(xw, pre_activation(got, p.xc)));
    const double plain = fro2(minus(xw, pre_activation(models[1].model.hidden(0), p.xc)));
    EXPECT_NEAR(err, optimum, 1e-9 * fro2(xw)) << "r = " << r;
    EXPECT_LE(err, plain * (1.0 + 1e-12)) << "r = " << r;
  }
}

// obs removing one neuron (k = n - 1, no damping): its next-layer error ||Z W2 - Z(:, K) W2'||_F^2
// is the smallest over every single neuron removed with a least-squares refit (brute force), and the
// refit leaves a residual orthogonal to the kept activations (normal equations).
TEST(ObsStrategy, RemovesTheNeuronOfLeastOutputErrorAndRefits) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(221, true);
  compress::CompressionEngine engine(p.model, distribute(p.xc, comm), {});
  const index_t n = p.model.hidden(0).d_out();
  compress::PolicyOptions o;
  o.obs_damping = 0.0;
  const std::vector<compress::PointPlan> plans = {one_layer("obs", 0, {RankRule::k, double(n - 1)}, o)};
  const compress::CompressedModel m = engine.compress(plans).front();
  Matrix z;
  p.model.hidden(0).forward(p.xc, z);
  const Matrix target = la::matmul(z, p.model.hidden(1).weight());
  const auto& kept = m.layers[0].kept_neurons;
  ASSERT_EQ(static_cast<index_t>(kept.size()), n - 1);
  const Matrix zk = la::select_columns(z, kept);
  const Matrix residual = minus(target, la::matmul(zk, m.model.hidden(1).weight()));
  const double err = fro2(residual);
  const Matrix normal = la::matmul(zk, residual, Op::transpose);
  EXPECT_LE(std::sqrt(fro2(normal)), 1e-9 * std::sqrt(fro2(zk) * fro2(target)));
  double best = std::numeric_limits<double>::infinity();
  for (index_t j = 0; j < n; ++j) {
    std::vector<index_t> others;
    for (index_t i = 0; i < n; ++i)
      if (i != j) others.push_back(i);
    const Matrix a = la::select_columns(z, others);
    const Matrix fit = la::basic_least_squares(a, target);
    best = std::min(best, fro2(minus(target, la::matmul(a, fit))));
  }
  EXPECT_LE(err, best + 1e-9 * fro2(target));
}

compress::Scorer scorer_for(const nn::Mlp& model, const Matrix& x, const dist::Comm& comm) {
  const std::vector<int> y = labels_for(x, 5, 7);
  const auto r = dist::block_rows(x.rows(), comm.size(), comm.rank());
  std::vector<int> yl(y.begin() + r.begin, y.begin() + r.begin + r.count);
  return {model, Matrix(x.block(r.begin, 0, r.count, x.cols())), std::move(yl), comm, {}};
}

// hybrid with first-layer rank r: layer 1 is a rank-r factorization of W_1(:, C) with C corrected's
// neurons; T of layer 1 is the least-squares fit of the ORIGINAL activations from the factored
// layer's own (normal equations); with no rank it is exactly corrected; and hybrid_allocation's
// models stay within their budgets.
TEST(HybridStrategy, FactorsTheKeptColumnsAndFitsTToTheOriginal) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(231, true);
  compress::CompressionEngine engine(p.model, distribute(p.xc, comm), {});
  const std::vector<index_t> kept = {20, 14, 9};
  const index_t r = 6;
  const std::vector<compress::PointPlan> plans = {compress::kept_plan(compress::make_hybrid_policy({r}), kept),
                                                  compress::kept_plan(compress::make_hybrid_policy({}), kept),
                                                  compress::kept_plan(compress::make_policy("corrected"), kept)};
  const auto models = engine.compress(plans);
  const nn::DenseLayer& first = models[0].model.hidden(0);
  ASSERT_EQ(first.factor_count(), 2);
  EXPECT_EQ(first.factor(0).cols(), r);
  EXPECT_EQ(first.d_out(), kept[0]);
  EXPECT_EQ(models[0].layers[0].kept, kept[0]);
  Matrix zf;
  first.forward(p.xc, zf);
  Matrix z0;
  p.model.hidden(0).forward(p.xc, z0);
  // Layer 2's weight is (T W_2)(:, C_2) = T W_2(:, C_2) with T = argmin ||Z_orig - Zf T||_F, so
  // Zf^T (Z_orig W_2(:, C_2) - Zf T W_2(:, C_2)) = 0.
  const Matrix target =
      la::matmul(z0, la::select_columns(p.model.hidden(1).weight(), models[0].layers[1].kept_neurons));
  const Matrix residual = minus(target, la::matmul(zf, models[0].model.hidden(1).weight()));
  const Matrix normal = la::matmul(zf, residual, Op::transpose);
  EXPECT_LE(std::sqrt(fro2(normal)), 1e-9 * std::sqrt(fro2(zf) * fro2(target)));
  EXPECT_TRUE(identical_models(models[1].model, models[2].model));

  const compress::Scorer validation = scorer_for(p.model, p.xc, comm);
  const std::int64_t full = p.model.parameter_count();
  const std::vector<std::int64_t> budgets = {full / 3, full / 6};
  compress::HybridOptions ho;
  ho.first_layer_ranks = {0, 4, 8};
  for (const auto kind : {compress::BudgetKind::parameters, compress::BudgetKind::flops}) {
    ho.kind = kind;
    std::vector<std::int64_t> b;
    for (std::int64_t v : budgets) b.push_back(kind == compress::BudgetKind::flops ? 2 * v : v);
    const auto choices = compress::hybrid_allocation(engine, validation, b, ho);
    ASSERT_EQ(choices.size(), b.size());
    for (std::size_t i = 0; i < b.size(); ++i) {
      ASSERT_FALSE(choices[i].widths.empty());
      const std::vector<compress::PointPlan> pl = {
          compress::kept_plan(compress::make_hybrid_policy(choices[i].ranks), choices[i].widths)};
      const auto mm = engine.compress(pl);
      EXPECT_LE(compress::model_cost(mm[0].model, kind), b[i]);
      EXPECT_EQ(compress::model_cost(mm[0].model, kind), choices[i].cost);
    }
  }
}

// hybrid (both selections) with an intercept: layer 2's weight and its new bias are the
// least-squares fit [T; t] = argmin ||Z_orig - [Zf, 1] [T; t]||_F pushed through W_2(:, C_2), so the
// residual is orthogonal to Zf and to the column of ones (the mean output on the compression set
// is exact); the biases are counted by hybrid_allocation, whose models stay within the budget.
TEST(HybridStrategy, AnInterceptFitsTheMeanAndIsCountedInTheBudget) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(233, false);
  compress::CompressionEngine engine(p.model, distribute(p.xc, comm), {});
  const std::vector<index_t> kept = {20, 14, 9};
  for (const auto selection : {compress::HybridSelection::corrected, compress::HybridSelection::obs}) {
    SCOPED_TRACE(selection == compress::HybridSelection::obs ? "hybrid-obs" : "hybrid");
    const std::vector<compress::PointPlan> plans = {
        compress::kept_plan(compress::make_hybrid_policy({6}, selection, 0.01, true), kept),
        compress::kept_plan(compress::make_hybrid_policy({6}, selection, 0.01, false), kept)};
    const auto models = engine.compress(plans);
    const nn::Mlp& m = models[0].model;
    EXPECT_FALSE(m.hidden(0).has_bias());
    ASSERT_TRUE(m.hidden(1).has_bias());
    ASSERT_TRUE(m.classifier().has_bias());
    EXPECT_FALSE(models[1].model.hidden(1).has_bias());
    EXPECT_EQ(m.parameter_count(), models[1].model.parameter_count() + kept[1] + kept[2] + p.model.num_classes());
    Matrix zf;
    m.hidden(0).forward(p.xc, zf);
    Matrix z0;
    p.model.hidden(0).forward(p.xc, z0);
    const Matrix target =
        la::matmul(z0, la::select_columns(p.model.hidden(1).weight(), models[0].layers[1].kept_neurons));
    Matrix fit = la::matmul(zf, m.hidden(1).weight());
    for (index_t j = 0; j < fit.cols(); ++j)
      for (index_t i = 0; i < fit.rows(); ++i) fit(i, j) += m.hidden(1).bias()[uz(j)];
    const Matrix residual = minus(target, fit);
    const Matrix normal = la::matmul(zf, residual, Op::transpose);
    EXPECT_LE(std::sqrt(fro2(normal)), 1e-9 * std::sqrt(fro2(zf) * fro2(target)));
    for (index_t j = 0; j < residual.cols(); ++j) {
      double mean = 0.0;
      for (double v : residual.col(j)) mean += v;
      EXPECT_LE(std::abs(mean), 1e-9 * std::sqrt(static_cast<double>(residual.rows()) * fro2(target)))
          << "column " << j;
    }
  }
  const compress::Scorer validation = scorer_for(p.model, p.xc, comm);
  compress::HybridOptions ho;
  ho.first_layer_ranks = {0, 4, 8};
  ho.intercept = true;
  ho.selection = compress::HybridSelection::obs;
  const std::vector<std::int64_t> budgets = {p.model.parameter_count() / 3, p.model.parameter_count() / 6};
  const auto choices = compress::hybrid_allocation(engine, validation, budgets, ho);
  for (std::size_t i = 0; i < budgets.size(); ++i) {
    ASSERT_FALSE(choices[i].widths.empty());
    const auto mm = engine.compress(std::vector<compress::PointPlan>{compress::kept_plan(
        compress::make_hybrid_policy(choices[i].ranks, ho.selection, ho.obs_damping, true), choices[i].widths)});
    EXPECT_TRUE(mm[0].model.classifier().has_bias());
    EXPECT_LE(mm[0].model.parameter_count(), budgets[i]);
    EXPECT_EQ(compress::model_cost(mm[0].model, compress::BudgetKind::parameters), choices[i].cost);
  }
}

std::vector<compress::PointPlan> strategy_plans(index_t layers) {
  const std::vector<index_t> kept = {18, 12, 8};
  std::vector<compress::PointPlan> out;
  out.push_back(compress::uniform_plan(compress::make_policy("whitened-svd"), layers, {}, {RankRule::rank, 5}));
  out.push_back(compress::uniform_plan(compress::make_policy("obs"), layers, {}, {RankRule::fraction, 0.5}));
  out.push_back(compress::kept_plan(compress::make_hybrid_policy({6, 4}), kept));
  out.push_back(compress::kept_plan(compress::make_hybrid_policy({6}, compress::HybridSelection::obs), kept));
  out.push_back(
      compress::kept_plan(compress::make_hybrid_policy({6}, compress::HybridSelection::obs, 0.01, true), kept));
  return out;
}

// World vs each rank alone: the same kept neurons and logits equal to rounding.
TEST(DataAwareStrategies, ResultsDoNotDependOnTheNumberOfRanks) {
  const dist::Comm world = dist::Comm::world();
  const dist::Comm self = world.split(world.rank(), 0);
  const Problem p = problem(241, true);
  const auto plans = strategy_plans(3);
  compress::CompressionEngine cw(p.model, distribute(p.xc, world), {});
  compress::CompressionEngine cs(p.model, distribute(p.xc, self), {});
  const auto mw = cw.compress(plans);
  const auto ms = cs.compress(plans);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    for (std::size_t l = 0; l < 3; ++l) EXPECT_EQ(mw[i].layers[l].kept_neurons, ms[i].layers[l].kept_neurons);
    const Matrix lw = mw[i].model.logits(p.xc);
    const Matrix ls = ms[i].model.logits(p.xc);
    double scale = 1.0;
    for (double v : ls.values()) scale = std::max(scale, std::abs(v));
    EXPECT_TRUE(std::all_of(lw.values().begin(), lw.values().end(), [](double v) { return std::isfinite(v); }));
    EXPECT_LE(max_abs_diff(lw, ls), 1e-9 * scale) << "plan " << i;
  }
}

// One thread or two: bit-identical models.
TEST(DataAwareStrategies, ResultsDoNotDependOnTheNumberOfThreads) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(251, false);
  const auto plans = strategy_plans(3);
  std::vector<std::vector<compress::CompressedModel>> runs;
  for (const int threads : {1, 2}) {
    const tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    const la::ScopedBlasThreads blas(threads);
    arena.execute([&] {
      compress::CompressionEngine e(p.model, distribute(p.xc, comm), {});
      runs.push_back(e.compress(plans));
    });
  }
  ASSERT_EQ(runs.size(), 2u);
  for (std::size_t i = 0; i < plans.size(); ++i)
    EXPECT_TRUE(identical_models(runs[0][i].model, runs[1][i].model)) << "plan " << i;
}

}  // namespace
}  // namespace idprune::test
