// Compression under MPI (run by CTest under mpiexec -n 1, 2, 3, 4): every pivot engine through
// the compression engine with every policy, the Scorer, sweeps, and independence
// of the results from the number of ranks, threads and batching.
#include <gtest/gtest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "fixtures.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/flap.hpp"
#include "idprune/compress/layer.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/compress/sweep.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/svd.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::LayerRule;
using compress::RankRule;

using Problem = CompressionProblem;
Problem problem(std::uint64_t seed, bool bias = false) { return compression_problem(seed, bias, 97); }

compress::Scorer evaluator_for(const Problem& p, const dist::Comm& comm, index_t batch_rows = 16) {
  const auto r = dist::block_rows(p.xt.rows(), comm.size(), comm.rank());
  std::vector<int> y(p.yt.begin() + r.begin, p.yt.begin() + r.begin + r.count);
  compress::ScorerOptions o;
  o.batch_rows = batch_rows;
  return {p.model, Matrix(p.xt.block(r.begin, 0, r.count, p.xt.cols())), std::move(y), comm, o};
}

std::vector<compress::PointPlan> plans(const nn::Mlp& m, RankRule rule, const std::vector<double>& grid,
                                       std::vector<index_t> layers = {}, std::string_view policy = "id") {
  std::vector<compress::PointPlan> out;
  const auto pol = compress::make_policy(policy, compress::PolicyOptions{9, false});
  for (double v : grid) out.push_back(compress::uniform_plan(pol, m.num_hidden(), layers, LayerRule{rule, v}));
  return out;
}

/// The models of a registered strategy (eps rules of magnitude/random: greedy's counts).
std::vector<compress::CompressedModel> compress_with(compress::CompressionEngine& e, std::string_view strategy,
                                                     RankRule rule, const std::vector<double>& grid,
                                                     std::vector<index_t> layers = {}) {
  const auto& info = compress::strategy(strategy);
  const auto p = plans(e.original(), rule, grid, std::move(layers), info.policy);
  return compress::compress_points(e, info, p);
}

std::vector<index_t> kept(const compress::CompressedModel& m) {
  std::vector<index_t> k;
  for (const auto& o : m.layers) k.push_back(o.kept);
  return k;
}

const std::vector<double> eps_grid = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4};

// One layer through every pivot engine: the kept count follows the rule, the exact engines keep
// the neurons of a single-process CPQR, and the compressed model's outputs on the compression set
// obey ||Y - Y_hat||_2 <= ||R22||_2 ||W_2||_2 (the reference text's bound; 10x for the gram and
// sketch engines, which are exact to sqrt(eps) and randomized near-optimal).
TEST(Engine, EveryPivotEngineKeepsTheRequestedCountAndObeysTheBound) {
  const dist::Comm comm = dist::Comm::world();
  const nn::Mlp model = random_mlp(20, {30}, 4, true, 101);
  const Matrix xc = structured_inputs(120, 20, 6, 102);
  const Matrix z = model.hidden_activations(xc, 0);
  const double w2 = test::norm2(model.classifier().weight());
  const la::CpqrResult f = la::cpqr(z, {});
  for (const auto engine : {dist::PivotEngine::tsqr, dist::PivotEngine::gram, dist::PivotEngine::sketch,
                            dist::PivotEngine::scalapack, dist::PivotEngine::lapack}) {
    for (const index_t k : {4, 12}) {
      compress::EngineOptions o;
      o.pivot.engine = engine;
      compress::CompressionEngine e(model, distribute(xc, comm), o);
      const auto m = e.compress(plans(model, RankRule::k, {static_cast<double>(k)}));
      const nn::Mlp& c = m.front().model;
      ASSERT_EQ(c.hidden(0).d_out(), k) << dist::to_string(engine);
      const bool exact = engine == dist::PivotEngine::tsqr || engine == dist::PivotEngine::lapack ||
                         engine == dist::PivotEngine::scalapack;
      if (exact) {
        EXPECT_EQ(m.front().layers[0].kept_neurons, compress::id_selection(f, k).kept);
      }
      Matrix dy = model.logits(xc);
      const Matrix yc = c.logits(xc);
      for (index_t j = 0; j < dy.cols(); ++j)
        for (index_t i = 0; i < dy.rows(); ++i) dy(i, j) -= yc(i, j);
      const double r22 = test::norm2(Matrix(f.r.block(k, k, f.rank - k, 30 - k)));
      const double slack = 10.0 * eps * 30 * test::norm2(z) * w2;
      EXPECT_LE(test::norm2(dy), (exact ? 1.0 : 10.0) * r22 * w2 + slack) << dist::to_string(engine) << " k=" << k;
    }
  }
}

TEST(Engine, ADeadLayerKeepsOneNeuronAndChangesNothing) {
  const dist::Comm comm = dist::Comm::world();
  nn::Mlp model = random_mlp(6, {5, 4}, 3, false, 111);
  Matrix w = model.hidden(0).weight();
  for (double& v : w.values()) v = -std::abs(v) - 0.1;  // inputs are in [0, 1]: all dead
  model.layer(0) = nn::DenseLayer(w);
  const Matrix xc = structured_inputs(40, 6, 3, 112);
  compress::CompressionEngine e(model, distribute(xc, comm), {});
  const std::vector<index_t> first = {0};
  const auto m = e.compress(plans(model, RankRule::eps, {1e-3}, first));
  EXPECT_EQ(m.front().model.hidden(0).d_out(), 1);
  EXPECT_EQ(m.front().layers[0].next_ratio, 0.0);
  EXPECT_EQ(max_abs_diff(model.logits(xc), m.front().model.logits(xc)), 0.0);
}

/// Column means over the rows of the pre-activation of layer `layer + 1` (the classifier when
/// `layer` is the last hidden layer), H W + 1 b^T with H the output of hidden layer `layer`.
std::vector<double> next_preactivation_means(const nn::Mlp& m, const Matrix& x, index_t layer) {
  const Matrix h = m.hidden_activations(x, layer);
  const nn::DenseLayer& next = m.layer(layer + 1);
  const Matrix a = la::matmul(h, next.weight());
  std::vector<double> mean(uz(a.cols()), 0.0);
  for (index_t j = 0; j < a.cols(); ++j) {
    for (double v : a.col(j)) mean[uz(j)] += v;
    mean[uz(j)] = mean[uz(j)] / static_cast<double>(a.rows()) + (next.has_bias() ? next.bias()[uz(j)] : 0.0);
  }
  return mean;
}

// Mean compensation: whatever the layers before did, the mean over the compression set of every
// compressed layer's next pre-activation is the original network's (on the neurons the next layer
// keeps), for the id, corrected and random policies; without it the means differ.
TEST(MeanCompensation, NextPreactivationMeansEqualTheOriginals) {
  const dist::Comm comm = dist::Comm::world();
  for (const bool bias : {false, true}) {
    const Problem p = problem(181, bias);
    compress::CompressionEngine e(p.model, distribute(p.xc, comm), {});
    for (const char* name : {"id", "corrected", "random"}) {
      SCOPED_TRACE(std::string(name) + (bias ? " with biases" : " without biases"));
      compress::PolicyOptions on;
      on.seed = 3;
      on.mean_compensation = true;
      compress::PolicyOptions off;
      off.seed = 3;
      const auto plan_on = compress::uniform_plan(compress::make_policy(name, on), 3, {}, LayerRule{RankRule::k, 6});
      const auto plan_off = compress::uniform_plan(compress::make_policy(name, off), 3, {}, LayerRule{RankRule::k, 6});
      const auto m = e.compress(std::vector<compress::PointPlan>{plan_on, plan_off});
      EXPECT_TRUE(compress::make_policy(name, on)->adds_biases());
      double worst_off = 0.0;
      for (index_t l = 0; l < 3; ++l) {
        const std::vector<double> orig = next_preactivation_means(p.model, p.xc, l);
        // The neurons of layer l + 1 that stay (every class for the classifier).
        std::vector<index_t> cols(orig.size());
        std::iota(cols.begin(), cols.end(), index_t{0});
        if (l + 1 < 3) cols = m[0].layers[uz(l + 1)].kept_neurons;
        const std::vector<double> got = next_preactivation_means(m[0].model, p.xc, l);
        ASSERT_EQ(got.size(), cols.size());
        double scale = 1.0;
        for (double v : orig) scale = std::max(scale, std::abs(v));
        for (std::size_t j = 0; j < cols.size(); ++j)
          EXPECT_NEAR(got[j], orig[uz(cols[j])], 1e3 * eps * scale) << "layer " << l + 2 << " neuron " << cols[j];
        const std::vector<double> plain = next_preactivation_means(m[1].model, p.xc, l);
        std::vector<index_t> cols_off(orig.size());
        std::iota(cols_off.begin(), cols_off.end(), index_t{0});
        if (l + 1 < 3) cols_off = m[1].layers[uz(l + 1)].kept_neurons;
        for (std::size_t j = 0; j < cols_off.size(); ++j)
          worst_off = std::max(worst_off, std::abs(plain[j] - orig[uz(cols_off[j])]) / scale);
      }
      EXPECT_GT(worst_off, 1e-6) << "the property holds without compensation: the test cannot fail";
    }
  }
}

// FLAP as a policy: on the first layer it keeps the neurons of largest fluctuation score and adds
// exactly FLAP's compensation sum_{j pruned} mean(z_j) W_2(j, :) to the next bias; through every
// layer the mean of each next pre-activation over the compression set stays the original's.
TEST(Flap, KeepsTheLargestScoresAndCompensatesTheMeanExactly) {
  const dist::Comm comm = dist::Comm::world();
  for (const bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "with biases" : "without biases");
    const Problem p = problem(191, bias);
    compress::CompressionEngine e(p.model, distribute(p.xc, comm), {});
    const auto flap = compress::make_policy("flap");
    const auto first = compress::uniform_plan(flap, 3, std::vector<index_t>{0}, LayerRule{RankRule::k, 10});
    const auto all = compress::uniform_plan(flap, 3, {}, LayerRule{RankRule::fraction, 0.4});
    const auto m = e.compress(std::vector<compress::PointPlan>{first, all});

    const Matrix z = p.model.hidden_activations(p.xc, 0);
    const auto mom = compress::moments(z);
    const Matrix w2 = p.model.hidden(1).weight();
    const std::vector<double> score = compress::flap_scores(mom, w2);
    const std::vector<index_t>& kept = m[0].layers[0].kept_neurons;
    ASSERT_EQ(kept.size(), 10u);
    double least_kept = std::numeric_limits<double>::infinity();
    double most_pruned = 0.0;
    for (index_t j = 0; j < 32; ++j) {
      if (std::find(kept.begin(), kept.end(), j) != kept.end())
        least_kept = std::min(least_kept, score[uz(j)]);
      else
        most_pruned = std::max(most_pruned, score[uz(j)]);
    }
    EXPECT_GE(least_kept, most_pruned);
    const std::vector<double> shift = compress::flap_bias_compensation(mom.mean(), w2, kept);
    const nn::DenseLayer& second = m[0].model.hidden(1);
    ASSERT_TRUE(second.has_bias());
    double scale = 1.0;
    for (double v : shift) scale = std::max(scale, std::abs(v));
    for (index_t c = 0; c < 24; ++c) {
      const double b0 = bias ? p.model.hidden(1).bias()[uz(c)] : 0.0;
      EXPECT_NEAR(second.bias()[uz(c)] - b0, shift[uz(c)], 1e3 * eps * scale) << "neuron " << c;
    }

    for (index_t l = 0; l < 3; ++l) {
      const std::vector<double> orig = next_preactivation_means(p.model, p.xc, l);
      std::vector<index_t> cols(orig.size());
      std::iota(cols.begin(), cols.end(), index_t{0});
      if (l + 1 < 3) cols = m[1].layers[uz(l + 1)].kept_neurons;
      const std::vector<double> got = next_preactivation_means(m[1].model, p.xc, l);
      ASSERT_EQ(got.size(), cols.size());
      double s = 1.0;
      for (double v : orig) s = std::max(s, std::abs(v));
      for (std::size_t j = 0; j < cols.size(); ++j)
        EXPECT_NEAR(got[j], orig[uz(cols[j])], 1e3 * eps * s) << "layer " << l + 2 << " neuron " << cols[j];
    }
  }
}

// How points are batched into compress() calls (one wave, one point at a time, or another order
// without prepare()) does not change a single bit of the compressed models.
TEST(Engine, BatchingDoesNotChangeTheModels) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(121);
  const auto all = plans(p.model, RankRule::eps, eps_grid);
  compress::CompressionEngine a(p.model, distribute(p.xc, comm), {});
  a.prepare(all);
  const auto together = a.compress(all);
  compress::CompressionEngine b(p.model, distribute(p.xc, comm), {});
  b.prepare(all);
  compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto one = b.compress(std::span(all).subspan(i, 1));
    EXPECT_TRUE(identical_models(one.front().model, together[i].model)) << "point " << i;
    const std::size_t j = all.size() - 1 - i;  // reverse order, no prepare()
    const auto rev = c.compress(std::span(all).subspan(j, 1));
    EXPECT_TRUE(identical_models(rev.front().model, together[j].model)) << "point " << j << " (no prepare)";
  }
  // Looser eps never keeps more neurons in the first layer (prefix property).
  for (std::size_t i = 1; i < together.size(); ++i)
    EXPECT_LE(together[i - 1].layers[0].kept, together[i].layers[0].kept);
}

// The same sweep on the whole communicator and on each rank alone (its own one-process
// communicator, all the rows) gives the same kept counts and evaluation counts, and logits equal
// to rounding.
TEST(Engine, ResultsDoNotDependOnTheNumberOfRanks) {
  const dist::Comm world = dist::Comm::world();
  const dist::Comm self = world.split(world.rank(), 0);
  const Problem p = problem(131, true);
  for (const std::string s : {"greedy", "random", "magnitude", "corrected"}) {
    const std::vector<double> grid = {1e-1, 1e-2, 1e-3};
    compress::CompressionEngine cw(p.model, distribute(p.xc, world), {});
    compress::CompressionEngine cs(p.model, distribute(p.xc, self), {});
    const auto mw = compress_with(cw, s, RankRule::eps, grid);
    const auto ms = compress_with(cs, s, RankRule::eps, grid);
    const auto ew = evaluator_for(p, world);
    const auto es = evaluator_for(p, self);
    const auto countw = ew.score(mw);
    const auto counts = es.score(ms);
    for (std::size_t i = 0; i < grid.size(); ++i) {
      EXPECT_EQ(kept(mw[i]), kept(ms[i])) << s << " point " << i;
      EXPECT_EQ(countw[i].correct, counts[i].correct);
      EXPECT_EQ(countw[i].agree, counts[i].agree);
      EXPECT_EQ(countw[i].samples, static_cast<std::int64_t>(p.xt.rows()));
      const Matrix lw = mw[i].model.logits(p.xt);
      const Matrix ls = ms[i].model.logits(p.xt);
      double scale = 1.0;
      for (double v : ls.values()) scale = std::max(scale, std::abs(v));
      EXPECT_LE(max_abs_diff(lw, ls), 1e-9 * scale) << s << " point " << i;
    }
  }
}

// One thread or two (TBB and BLAS): bit-identical models and identical counts.
// The data-aware policies that read activation moments or compensate the mean (output-aware
// selection, FLAP, id with mean compensation) give the same models on one rank and on all of them.
TEST(Engine, MomentPoliciesDoNotDependOnTheNumberOfRanks) {
  const dist::Comm world = dist::Comm::world();
  const dist::Comm self = world.split(world.rank(), 0);
  const Problem p = problem(137, true);
  compress::PolicyOptions mean;
  mean.mean_compensation = true;
  for (const auto& [name, options] :
       {std::pair{"output", compress::PolicyOptions{}}, std::pair{"output-corrected", mean},
        std::pair{"flap", compress::PolicyOptions{}}, std::pair{"id", mean}}) {
    SCOPED_TRACE(name);
    const auto pol = compress::make_policy(name, options);
    std::vector<compress::PointPlan> pl;
    for (double f : {0.5, 0.25}) pl.push_back(compress::uniform_plan(pol, 3, {}, LayerRule{RankRule::fraction, f}));
    compress::CompressionEngine cw(p.model, distribute(p.xc, world), {});
    compress::CompressionEngine cs(p.model, distribute(p.xc, self), {});
    const auto mw = cw.compress(pl);
    const auto ms = cs.compress(pl);
    for (std::size_t i = 0; i < pl.size(); ++i) {
      for (std::size_t l = 0; l < 3; ++l) EXPECT_EQ(mw[i].layers[l].kept_neurons, ms[i].layers[l].kept_neurons);
      const Matrix lw = mw[i].model.logits(p.xt);
      const Matrix ls = ms[i].model.logits(p.xt);
      double scale = 1.0;
      for (double v : ls.values()) scale = std::max(scale, std::abs(v));
      EXPECT_LE(max_abs_diff(lw, ls), 1e-9 * scale) << "point " << i;
    }
  }
}

TEST(Engine, ResultsDoNotDependOnTheNumberOfThreads) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(141);
  const auto grid = plans(p.model, RankRule::eps, eps_grid);
  std::vector<std::vector<compress::CompressedModel>> models;
  std::vector<std::vector<compress::Scores>> counts;
  for (const int threads : {1, 2}) {
    // An explicit arena: mpiexec may bind this rank to one core, and the test must still run 2 threads.
    const tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    const la::ScopedBlasThreads blas(threads);
    arena.execute([&] {  // runs on this thread: MPI is still called from the main thread only
      ASSERT_EQ(tbb::this_task_arena::max_concurrency(), threads);
      compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
      c.prepare(grid);
      models.push_back(c.compress(grid));
      counts.push_back(evaluator_for(p, comm).score(models.back()));
    });
  }
  ASSERT_EQ(models.size(), 2u);
  for (std::size_t i = 0; i < grid.size(); ++i) {
    EXPECT_TRUE(identical_models(models[0][i].model, models[1][i].model)) << "point " << i;
    EXPECT_EQ(counts[0][i].correct, counts[1][i].correct);
    EXPECT_EQ(counts[0][i].agree, counts[1][i].agree);
  }
}

// Baselines keep the requested sizes; with the eps rule magnitude and random keep exactly the
// per-layer counts greedy keeps at that eps (equal parameter counts).
TEST(Baselines, KeepRequestedCountsAndMatchGreedyUnderEps) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(151);
  const std::vector<double> eps_values = {3e-2, 1e-3};
  compress::CompressionEngine greedy(p.model, distribute(p.xc, comm), {});
  const auto g = compress_with(greedy, "greedy", RankRule::eps, eps_values);
  for (const std::string s : {"magnitude", "random"}) {
    compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
    const auto m = compress_with(c, s, RankRule::eps, eps_values);
    for (std::size_t i = 0; i < m.size(); ++i) {
      EXPECT_EQ(kept(m[i]), kept(g[i])) << s;
      EXPECT_EQ(m[i].model.parameter_count(), g[i].model.parameter_count());
    }
    const auto f = compress_with(c, s, RankRule::fraction, {0.5});
    EXPECT_EQ(kept(f[0]), (std::vector<index_t>{16, 12, 8}));
    const std::vector<index_t> second = {1};
    const auto k = compress_with(c, s, RankRule::k, {5}, second);
    EXPECT_EQ(kept(k[0]), (std::vector<index_t>{32, 5, 16}));
  }
}

// The random baseline's correction is the least-squares fit of the layer's activations by its
// kept columns: the kept columns are reproduced exactly (T(:, C) = I) and the residual of the
// compressed network's next-layer pre-activations is orthogonal to the kept columns.
TEST(Baselines, RandomCorrectionIsTheLeastSquaresSolution) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(161);
  compress::CompressionEngine e(p.model, distribute(p.xc, comm), {});
  const std::vector<index_t> first = {0};
  const auto m = compress_with(e, "random", RankRule::k, {10}, first);
  const std::vector<index_t>& c = m.front().layers[0].kept_neurons;
  ASSERT_EQ(c.size(), 10u);
  const Matrix z = p.model.hidden_activations(p.xc, 0);
  const Matrix zc = la::select_columns(z, c);
  // Z(:, C) (T W_2) against Z W_2: the residual is orthogonal to range(Z(:, C)).
  const Matrix w2 = p.model.hidden(1).weight();
  Matrix e2 = la::matmul(z, w2);
  la::gemm(-1.0, zc, la::Op::none, m.front().model.hidden(1).weight(), la::Op::none, 1.0, e2.view());
  const Matrix g = la::matmul(zc, e2, la::Op::transpose);
  const double scale = test::norm2(z) * test::norm2(z) * test::norm2(w2);
  double gmax = 0.0;
  for (double v : g.values()) gmax = std::max(gmax, std::abs(v));
  EXPECT_LE(gmax, 1000.0 * eps * static_cast<double>(z.rows()) * scale);
  // Skeleton columns exactly: the folded rows of kept neurons are W_2(C, :) plus the fit's rows.
  for (double v : m.front().model.hidden(1).weight().values()) EXPECT_TRUE(std::isfinite(v));
}

TEST(Svd, FullRankAgreesWithTheOriginalAndCountsParameters) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(171, true);
  compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
  const auto m = compress_with(c, "svd", RankRule::rank, {100, 4});
  const auto counts = evaluator_for(p, comm).score(m);
  EXPECT_EQ(counts[0].agree, counts[0].samples);
  EXPECT_TRUE(m[0].first_layer_columns.empty());
  // Rank 4: 4 (d_in + d_out) weights plus the biases in every hidden layer.
  const index_t expected = 4 * (24 + 32) + 32 + 4 * (32 + 24) + 24 + 4 * (24 + 16) + 16 + 16 * 5 + 5;
  EXPECT_EQ(m[1].model.parameter_count(), expected);
}

// The Scorer's counts (shared first-layer product, TBB batches, one reduction) equal a plain
// forward pass over the whole test set on one process.
TEST(Scorer, CountsEqualADirectForwardPass) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(181, true);
  const auto ev = evaluator_for(p, comm, 7);
  const std::vector<int> ref = p.model.predict(p.xt);
  const auto oc = nn::count_correct(ref, p.yt, 5);
  EXPECT_EQ(ev.original_scores().correct, oc.correct_total());
  EXPECT_EQ(ev.original_scores().agree, ev.original_scores().samples);
  compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
  // Mild rules keep most first-layer neurons: their second layer goes through the shortcut
  // (Z_1 W_2)(:, C_2) - E W_2(F, C_2), which must agree with the folded weights' forward pass.
  auto m = c.compress(plans(p.model, RankRule::eps, {1e-1, 1e-2, 1e-3, 1e-4}));
  const auto counts = ev.score(m);
  for (std::size_t i = 0; i < m.size(); ++i) {
    EXPECT_NE(m[i].first_interpolation, nullptr);
    const std::vector<int> pred = m[i].model.predict(p.xt);
    EXPECT_EQ(counts[i].correct, nn::count_correct(pred, p.yt, 5).correct_total());
    EXPECT_EQ(counts[i].agree, nn::count_agreement(pred, ref));
    const std::vector<int> local = ev.predictions(m[i]);
    compress::CompressedModel plain = m[i];
    plain.first_interpolation.reset();
    EXPECT_EQ(local, ev.predictions(plain));
    // A model that breaks the shortcut's contract (an interpolation of another shape) is
    // evaluated through its own weights.
    plain.first_interpolation = std::make_shared<const Matrix>(3, 3);
    EXPECT_EQ(local, ev.predictions(plain));
  }
}

// A sweep resumed with some points finished computes only the others, with the same rows; a stop
// request ends it after a wave on every rank.
TEST(Sweep, ResumeComputesOnlyMissingPointsAndStopRequestsEndBetweenWaves) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(191);
  const auto ev = evaluator_for(p, comm);
  compress::SweepOptions so;
  so.grid = eps_grid;
  so.wave_size = 2;
  std::vector<compress::SweepRow> full;
  {
    compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
    compress::SweepHooks hooks;
    hooks.on_wave = [&](std::span<const compress::SweepRow> rows) {
      full.insert(full.end(), rows.begin(), rows.end());
    };
    const auto s = compress::run_sweep(c, compress::strategy("greedy"), {}, ev, so, {}, hooks);
    EXPECT_EQ(s.computed, eps_grid.size());
    EXPECT_EQ(s.waves, 3u);
  }
  const std::vector<char> finished = {1, 0, 1, 1, 0, 0};
  std::vector<compress::SweepRow> rest;
  {
    compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
    compress::SweepHooks hooks;
    hooks.on_wave = [&](std::span<const compress::SweepRow> rows) {
      rest.insert(rest.end(), rows.begin(), rows.end());
    };
    const auto s = compress::run_sweep(c, compress::strategy("greedy"), {}, ev, so, finished, hooks);
    EXPECT_EQ(s.skipped, 3u);
    EXPECT_EQ(s.computed, 3u);
  }
  ASSERT_EQ(rest.size(), 3u);
  for (const auto& r : rest) {
    EXPECT_EQ(finished[r.point], 0);
    const auto& f = full[r.point];
    EXPECT_EQ(r.metrics.counts.correct, f.metrics.counts.correct);
    EXPECT_EQ(r.metrics.kept_per_layer, f.metrics.kept_per_layer);
    EXPECT_EQ(r.metrics.params, f.metrics.params);
  }
  {
    compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
    compress::SweepHooks hooks;
    std::size_t waves = 0;
    hooks.on_wave = [&](std::span<const compress::SweepRow>) { ++waves; };
    // Only rank 0 asks to stop: every rank stops after the first wave.
    hooks.stop_requested = [&] { return waves >= 1 && comm.rank() == 0; };
    const auto s = compress::run_sweep(c, compress::strategy("greedy"), {}, ev, so, {}, hooks);
    EXPECT_TRUE(s.stopped);
    EXPECT_EQ(s.waves, 1u);
    EXPECT_EQ(s.computed, 2u);
  }
}

// A hook failing on one rank before a wave ends run_sweep on every rank with the same CollectiveError
// after the same number of finished waves (none waits in a collective for the failed rank).
TEST(Sweep, AFailureBeforeAWaveOnOneRankEndsEveryRankAfterTheSameWave) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(193);
  const auto ev = evaluator_for(p, comm);
  compress::SweepOptions so;
  so.grid = eps_grid;
  so.wave_size = 2;
  compress::CompressionEngine c(p.model, distribute(p.xc, comm), {});
  compress::SweepHooks hooks;
  std::size_t rows = 0;
  hooks.on_wave = [&](std::span<const compress::SweepRow> r) { rows += r.size(); };
  const int failing = comm.size() - 1;
  hooks.before_wave = [&](std::size_t wave) {
    if (wave == 1 && comm.rank() == failing) throw Error("disk full");
  };
  try {
    (void)compress::run_sweep(c, compress::strategy("greedy"), {}, ev, so, {}, hooks);
    ADD_FAILURE() << "rank " << comm.rank() << ": no error";
  } catch (const dist::CollectiveError& e) {
    EXPECT_EQ(e.failing_rank(), failing);
    EXPECT_EQ(std::string(e.what()), "rank " + std::to_string(failing) + ": disk full");
  }
  EXPECT_EQ(rows, 2u);  // wave 0 only
  EXPECT_EQ(comm.sum(1), comm.size());
}

}  // namespace
}  // namespace idprune::test
