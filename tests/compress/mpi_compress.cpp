// Compression under MPI (run by CTest under mpiexec -n 1, 2, 3, 4): every pivot engine through
// compress_layer, the lockstep Compressor, the baselines, the Evaluator, sweeps, and independence
// of the results from the number of ranks, threads and batching.
#include <gtest/gtest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>

#include "fixtures.hpp"
#include "idprune/compress/compressor.hpp"
#include "idprune/compress/evaluate.hpp"
#include "idprune/compress/layer.hpp"
#include "idprune/compress/sweep.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/svd.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::LayerRule;
using compress::RankRule;
using compress::Strategy;

/// A small model with its compression and test sets, identical on every rank.
struct Problem {
  nn::Mlp model;
  Matrix xc;
  Matrix xt;
  std::vector<int> yt;
};

Problem problem(std::uint64_t seed, bool bias = false) {
  Problem p;
  p.model = random_mlp(24, {32, 24, 16}, 5, bias, seed);
  p.xc = structured_inputs(150, 24, 8, seed + 1);
  p.xt = structured_inputs(97, 24, 8, seed + 2);
  p.yt = labels_for(p.xt, 5, seed + 3);
  return p;
}

compress::Evaluator evaluator_for(const Problem& p, const dist::Comm& comm, index_t batch_rows = 16) {
  const auto r = dist::block_rows(p.xt.rows(), comm.size(), comm.rank());
  std::vector<int> y(p.yt.begin() + r.begin, p.yt.begin() + r.begin + r.count);
  return {p.model, Matrix(p.xt.block(r.begin, 0, r.count, p.xt.cols())), std::move(y), comm, batch_rows};
}

std::vector<compress::PointPlan> plans(const nn::Mlp& m, RankRule rule, const std::vector<double>& grid,
                                       std::vector<index_t> layers = {}) {
  std::vector<compress::PointPlan> out;
  for (double v : grid) out.push_back(compress::uniform_plan(m.num_hidden(), layers, LayerRule{rule, v}));
  return out;
}

std::vector<index_t> kept(const compress::CompressedModel& m) {
  std::vector<index_t> k;
  for (const auto& o : m.layers) k.push_back(o.kept);
  return k;
}

const std::vector<double> eps_grid = {1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4};

// compress_layer through every engine: the kept count follows the rule, and the compressed model's
// outputs on the compression set obey ||Y - Y_hat||_2 <= ||Z - Z(:,C) T||_2 ||W_2||_2, which for the
// exact engines equals ||R22||_2 ||W_2||_2 of a single-process CPQR (the reference text's bound).
TEST(CompressLayer, EveryEngineKeepsTheRequestedCountAndObeysTheBound) {
  const dist::Comm comm = dist::Comm::world();
  nn::Mlp model = random_mlp(20, {30}, 4, true, 101);
  const Matrix xc = structured_inputs(120, 20, 6, 102);
  const Matrix z = model.hidden_activations(xc, 0);
  const double w2 = test::norm2(model.classifier().weight());
  for (const auto engine : {dist::PivotEngine::tsqr, dist::PivotEngine::gram, dist::PivotEngine::sketch,
                            dist::PivotEngine::scalapack, dist::PivotEngine::lapack}) {
    for (const index_t k : {4, 12}) {
      compress::LayerCompressionOptions o;
      o.rule = LayerRule{RankRule::k, static_cast<double>(k)};
      o.engine.engine = engine;
      nn::Mlp c = model;
      const auto result = compress::compress_layer(c, 0, distribute(xc, comm), o);
      ASSERT_EQ(static_cast<index_t>(result.selection.kept.size()), k) << dist::to_string(engine);
      EXPECT_EQ(c.hidden(0).d_out(), k);
      Matrix e(z);
      la::gemm(-1.0, la::select_columns(z, result.selection.kept), la::Op::none, result.selection.interpolation,
               la::Op::none, 1.0, e.view());
      const double id_error = test::norm2(e);
      Matrix dy = model.logits(xc);
      const Matrix yc = c.logits(xc);
      for (index_t j = 0; j < dy.cols(); ++j)
        for (index_t i = 0; i < dy.rows(); ++i) dy(i, j) -= yc(i, j);
      const double slack = 10.0 * eps * 30 * test::norm2(z) * w2;
      EXPECT_LE(test::norm2(dy), id_error * w2 + slack) << dist::to_string(engine) << " k=" << k;
      if (engine == dist::PivotEngine::tsqr || engine == dist::PivotEngine::lapack ||
          engine == dist::PivotEngine::scalapack) {
        const la::CpqrResult f = la::cpqr(z, {});
        const double r22 = test::norm2(Matrix(f.r.block(k, k, f.rank - k, 30 - k)));
        EXPECT_NEAR(id_error, r22, 1e-10 * test::norm2(z)) << dist::to_string(engine) << " k=" << k;
      } else {
        // gram is exact up to its sqrt(eps) floor; the sketch is a randomized near-optimal choice.
        const la::CpqrResult f = la::cpqr(z, {});
        const double r22 = test::norm2(Matrix(f.r.block(k, k, f.rank - k, 30 - k)));
        EXPECT_LE(id_error, 10.0 * r22) << dist::to_string(engine) << " k=" << k;
      }
    }
  }
}

TEST(CompressLayer, ADeadLayerKeepsOneNeuronAndChangesNothing) {
  const dist::Comm comm = dist::Comm::world();
  nn::Mlp model = random_mlp(6, {5, 4}, 3, false, 111);
  Matrix w = model.hidden(0).weight();
  for (double& v : w.values()) v = -std::abs(v) - 0.1;  // inputs are in [0, 1]: all dead
  model.layer(0) = nn::DenseLayer(w);
  const Matrix xc = structured_inputs(40, 6, 3, 112);
  nn::Mlp c = model;
  compress::LayerCompressionOptions o;
  o.rule = LayerRule{RankRule::eps, 1e-3};
  const auto result = compress::compress_layer(c, 0, distribute(xc, comm), o);
  EXPECT_EQ(result.factorization.rank, 0);
  EXPECT_EQ(c.hidden(0).d_out(), 1);
  EXPECT_EQ(max_abs_diff(model.logits(xc), c.logits(xc)), 0.0);
}

// How points are batched into compress() calls (one wave, one point at a time, or another order
// without prepare()) does not change a single bit of the compressed models.
TEST(Compressor, BatchingDoesNotChangeTheModels) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(121);
  const auto all = plans(p.model, RankRule::eps, eps_grid);
  compress::Compressor a(p.model, distribute(p.xc, comm), {});
  a.prepare(all);
  const auto together = a.compress(all);
  compress::Compressor b(p.model, distribute(p.xc, comm), {});
  b.prepare(all);
  compress::Compressor c(p.model, distribute(p.xc, comm), {});
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
TEST(Compressor, ResultsDoNotDependOnTheNumberOfRanks) {
  const dist::Comm world = dist::Comm::world();
  const dist::Comm self = world.split(world.rank(), 0);
  const Problem p = problem(131, true);
  for (const Strategy s : {Strategy::greedy, Strategy::random, Strategy::magnitude}) {
    compress::CompressionOptions o;
    o.strategy = s;
    o.seed = 9;
    const auto grid = plans(p.model, RankRule::eps, {1e-1, 1e-2, 1e-3});
    compress::Compressor cw(p.model, distribute(p.xc, world), o);
    compress::Compressor cs(p.model, distribute(p.xc, self), o);
    const auto mw = cw.compress(grid);
    const auto ms = cs.compress(grid);
    const auto ew = evaluator_for(p, world);
    const auto es = evaluator_for(p, self);
    const auto countw = ew.evaluate(mw);
    const auto counts = es.evaluate(ms);
    for (std::size_t i = 0; i < grid.size(); ++i) {
      EXPECT_EQ(kept(mw[i]), kept(ms[i])) << compress::to_string(s) << " point " << i;
      EXPECT_EQ(countw[i].correct, counts[i].correct);
      EXPECT_EQ(countw[i].agree, counts[i].agree);
      EXPECT_EQ(countw[i].samples, static_cast<std::int64_t>(p.xt.rows()));
      const Matrix lw = mw[i].model.logits(p.xt);
      const Matrix ls = ms[i].model.logits(p.xt);
      double scale = 1.0;
      for (double v : ls.values()) scale = std::max(scale, std::abs(v));
      EXPECT_LE(max_abs_diff(lw, ls), 1e-9 * scale) << compress::to_string(s) << " point " << i;
    }
  }
}

// One thread or two (TBB and BLAS): bit-identical models and identical counts.
TEST(Compressor, ResultsDoNotDependOnTheNumberOfThreads) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(141);
  const auto grid = plans(p.model, RankRule::eps, eps_grid);
  std::vector<std::vector<compress::CompressedModel>> models;
  std::vector<std::vector<compress::EvaluationCounts>> counts;
  for (const int threads : {1, 2}) {
    // An explicit arena: mpiexec may bind this rank to one core, and the test must still run 2 threads.
    const tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    const la::ScopedBlasThreads blas(threads);
    arena.execute([&] {  // runs on this thread: MPI is still called from the main thread only
      ASSERT_EQ(tbb::this_task_arena::max_concurrency(), threads);
      compress::Compressor c(p.model, distribute(p.xc, comm), {});
      c.prepare(grid);
      models.push_back(c.compress(grid));
      counts.push_back(evaluator_for(p, comm).evaluate(models.back()));
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
  const auto eps_plans = plans(p.model, RankRule::eps, {3e-2, 1e-3});
  compress::Compressor greedy(p.model, distribute(p.xc, comm), {});
  const auto g = greedy.compress(eps_plans);
  for (const Strategy s : {Strategy::magnitude, Strategy::random}) {
    compress::CompressionOptions o;
    o.strategy = s;
    compress::Compressor c(p.model, distribute(p.xc, comm), o);
    const auto m = c.compress(eps_plans);
    for (std::size_t i = 0; i < m.size(); ++i) {
      EXPECT_EQ(kept(m[i]), kept(g[i])) << compress::to_string(s);
      EXPECT_EQ(m[i].model.parameter_count(), g[i].model.parameter_count());
    }
    const auto f = c.compress(plans(p.model, RankRule::fraction, {0.5}));
    EXPECT_EQ(kept(f[0]), (std::vector<index_t>{16, 12, 8}));
    const std::vector<index_t> second = {1};
    const auto k = c.compress(plans(p.model, RankRule::k, {5}, second));
    EXPECT_EQ(kept(k[0]), (std::vector<index_t>{32, 5, 16}));
  }
}

// The random baseline's T solves the least-squares problem: T(:, C) = I and the residual is
// orthogonal to the kept columns, Z(:, C)^T (Z - Z(:, C) T) = 0, also with a dead (zero) column in C.
TEST(Baselines, RandomCorrectionIsTheLeastSquaresSolution) {
  const dist::Comm comm = dist::Comm::world();
  Matrix z = gaussian(60, 20, 161);
  for (double& v : z.values()) v = std::max(v, 0.0);
  for (index_t i = 0; i < z.rows(); ++i) z(i, 4) = 0.0;
  for (const std::vector<index_t>& cols : {std::vector<index_t>{1, 7, 9, 15}, std::vector<index_t>{4, 2, 11}}) {
    const Matrix t = compress::least_squares_interpolation(distribute(z, comm), cols);
    ASSERT_EQ(t.rows(), static_cast<index_t>(cols.size()));
    for (std::size_t i = 0; i < cols.size(); ++i)
      for (std::size_t j = 0; j < cols.size(); ++j) EXPECT_EQ(t(static_cast<index_t>(i), cols[j]), i == j ? 1.0 : 0.0);
    const Matrix zc = la::select_columns(z, cols);
    Matrix e(z);
    la::gemm(-1.0, zc, la::Op::none, t, la::Op::none, 1.0, e.view());
    const Matrix g = la::matmul(zc, e, la::Op::transpose);
    const double zn = test::norm2(z);
    double gmax = 0.0;
    for (double v : g.values()) gmax = std::max(gmax, std::abs(v));
    EXPECT_LE(gmax, 100.0 * eps * 60 * zn * zn);
    for (double v : t.values()) EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(Svd, FullRankAgreesWithTheOriginalAndCountsParameters) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(171, true);
  compress::CompressionOptions o;
  o.strategy = Strategy::svd;
  compress::Compressor c(p.model, distribute(p.xc, comm), o);
  const auto m = c.compress(plans(p.model, RankRule::rank, {100, 4}));
  const auto counts = evaluator_for(p, comm).evaluate(m);
  EXPECT_EQ(counts[0].agree, counts[0].samples);
  EXPECT_TRUE(m[0].first_layer_columns.empty());
  // Rank 4: 4 (d_in + d_out) weights plus the biases in every hidden layer.
  const index_t expected = 4 * (24 + 32) + 32 + 4 * (32 + 24) + 24 + 4 * (24 + 16) + 16 + 16 * 5 + 5;
  EXPECT_EQ(m[1].model.parameter_count(), expected);
}

// The Evaluator's counts (shared first-layer product, TBB batches, one reduction) equal a plain
// forward pass over the whole test set on one process.
TEST(Evaluator, CountsEqualADirectForwardPass) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(181, true);
  const auto ev = evaluator_for(p, comm, 7);
  const std::vector<int> ref = p.model.predict(p.xt);
  const auto oc = nn::count_correct(ref, p.yt, 5);
  EXPECT_EQ(ev.original_counts().correct, oc.correct_total());
  EXPECT_EQ(ev.original_counts().agree, ev.original_counts().samples);
  compress::Compressor c(p.model, distribute(p.xc, comm), {});
  // Mild rules keep most first-layer neurons: their second layer goes through the shortcut
  // (Z_1 W_2)(:, C_2) - E W_2(F, C_2), which must agree with the folded weights' forward pass.
  auto m = c.compress(plans(p.model, RankRule::eps, {1e-1, 1e-2, 1e-3, 1e-4}));
  const auto counts = ev.evaluate(m);
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
    compress::Compressor c(p.model, distribute(p.xc, comm), {});
    compress::SweepHooks hooks;
    hooks.on_wave = [&](std::span<const compress::SweepRow> rows) {
      full.insert(full.end(), rows.begin(), rows.end());
    };
    const auto s = compress::run_sweep(c, ev, so, {}, hooks);
    EXPECT_EQ(s.computed, eps_grid.size());
    EXPECT_EQ(s.waves, 3u);
  }
  const std::vector<char> finished = {1, 0, 1, 1, 0, 0};
  std::vector<compress::SweepRow> rest;
  {
    compress::Compressor c(p.model, distribute(p.xc, comm), {});
    compress::SweepHooks hooks;
    hooks.on_wave = [&](std::span<const compress::SweepRow> rows) {
      rest.insert(rest.end(), rows.begin(), rows.end());
    };
    const auto s = compress::run_sweep(c, ev, so, finished, hooks);
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
    compress::Compressor c(p.model, distribute(p.xc, comm), {});
    compress::SweepHooks hooks;
    std::size_t waves = 0;
    hooks.on_wave = [&](std::span<const compress::SweepRow>) { ++waves; };
    // Only rank 0 asks to stop: every rank stops after the first wave.
    hooks.stop_requested = [&] { return waves >= 1 && comm.rank() == 0; };
    const auto s = compress::run_sweep(c, ev, so, {}, hooks);
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
  compress::Compressor c(p.model, distribute(p.xc, comm), {});
  compress::SweepHooks hooks;
  std::size_t rows = 0;
  hooks.on_wave = [&](std::span<const compress::SweepRow> r) { rows += r.size(); };
  const int failing = comm.size() - 1;
  hooks.before_wave = [&](std::size_t wave) {
    if (wave == 1 && comm.rank() == failing) throw Error("disk full");
  };
  try {
    (void)compress::run_sweep(c, ev, so, {}, hooks);
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
