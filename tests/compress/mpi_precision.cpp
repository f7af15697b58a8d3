// The Scorer's float32 evaluation (run by CTest under mpiexec -n 1, 2, 3, 4): its predictions differ
// from float64 only where float32 rounding can reorder the two largest logits, its counts of changed
// predictions are those predictions, and nothing depends on the number of ranks or threads.
#include <gtest/gtest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/nn/inference.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::LayerRule;
using compress::RankRule;

using Problem = CompressionProblem;
Problem problem(std::uint64_t seed) { return compression_problem(seed, true, 211); }

compress::Scorer scorer_for(const Problem& p, const dist::Comm& comm, nn::Precision precision, bool compare,
                            index_t batch_rows = 16) {
  compress::ScorerOptions o;
  o.batch_rows = batch_rows;
  o.precision = precision;
  o.compare_precision = compare;
  const auto r = dist::block_rows(p.xt.rows(), comm.size(), comm.rank());
  return {p.model, Matrix(p.xt.block(r.begin, 0, r.count, p.xt.cols())), block_of(p.yt, comm), comm, o};
}

/// Greedy models from mild to severe, and the original (its identity columns and shortcut).
std::vector<compress::CompressedModel> models_of(const Problem& p, const dist::Comm& comm) {
  compress::CompressionEngine engine(p.model, distribute(p.xc, comm), {});
  const auto& info = compress::strategy("greedy");
  const auto policy = compress::make_policy(info.policy, compress::PolicyOptions{9, false});
  std::vector<compress::PointPlan> plans;
  for (double v : {1e-4, 1e-3, 1e-2, 1e-1, 3e-1})
    plans.push_back(compress::uniform_plan(policy, p.model.num_hidden(), {}, LayerRule{RankRule::eps, v}));
  return compress::compress_points(engine, info, plans);
}

std::int64_t sum_over_ranks(const dist::Comm& comm, std::int64_t v) {
  std::vector<std::int64_t> s{v};
  comm.allreduce_sum(std::span<std::int64_t>(s));
  return s[0];
}

// Float32 may change a prediction only where the float64 logits of the two classes it swaps are
// closer than the rigorous float32 rounding bound (nn::float32_error_bound, Higham's gamma_k
// propagated through the layers): L(a) - L(b) <= bound(a) + bound(b), a the float64 argmax. The
// count of changed predictions the Scorer reports is exactly the number of such rows.
TEST(Float32Scorer, PredictionsChangeOnlyWhereRoundingCanSwapTheTopTwoLogits) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(501);
  const auto models = models_of(p, comm);
  const auto f32 = scorer_for(p, comm, nn::Precision::f32, true);
  const auto f64 = scorer_for(p, comm, nn::Precision::f64, true);
  const auto s32 = f32.score(models);
  const auto s64 = f64.score(models);
  const auto r = dist::block_rows(p.xt.rows(), comm.size(), comm.rank());
  const Matrix x_local(p.xt.block(r.begin, 0, r.count, p.xt.cols()));
  for (std::size_t m = 0; m < models.size(); ++m) {
    SCOPED_TRACE("model " + std::to_string(m) + ", seed 501");
    const nn::Mlp& model = models[m].model;
    const std::vector<int> p32 = f32.predictions(models[m]);
    const std::vector<int> p64 = f64.predictions(models[m]);
    ASSERT_EQ(p32.size(), static_cast<std::size_t>(r.count));
    const Matrix logits = model.logits(x_local);
    const Matrix bound = nn::float32_error_bound(model, x_local);
    std::int64_t changed = 0;
    std::int64_t decided = 0;  // rows whose top-2 gap exceeds the bound: float32 cannot change them
    std::int64_t correct32 = 0;
    for (index_t i = 0; i < r.count; ++i) {
      const auto a = static_cast<index_t>(p64[la::uz(i)]);
      const auto b = static_cast<index_t>(p32[la::uz(i)]);
      correct32 += p32[la::uz(i)] == p.yt[la::uz(r.begin + i)] ? 1 : 0;
      double closest = std::numeric_limits<double>::infinity();
      for (index_t c = 0; c < logits.cols(); ++c)
        if (c != a) closest = std::min(closest, logits(i, a) - logits(i, c) - bound(i, a) - bound(i, c));
      decided += closest > 0.0 ? 1 : 0;
      if (a == b) continue;
      ++changed;
      EXPECT_LE(logits(i, a) - logits(i, b), bound(i, a) + bound(i, b))
          << "row " << r.begin + i << ": float32 prefers class " << b << " to " << a;
    }
    // Not vacuous: the bound decides nearly every row (the assertion above has rows to fail on).
    EXPECT_GE(sum_over_ranks(comm, decided), 9 * p.xt.rows() / 10);
    EXPECT_EQ(s32[m].precision_changes, sum_over_ranks(comm, changed));
    // The comparison is symmetric: the float64 scorer counts the same rows.
    EXPECT_EQ(s64[m].precision_changes, s32[m].precision_changes);
    EXPECT_EQ(s32[m].correct, sum_over_ranks(comm, correct32));
    EXPECT_EQ(s32[m].samples, p.xt.rows());
  }
  // The original model through the float32 path, against nn::predict's float32 model.
  const std::vector<int> direct = nn::predict(p.model, x_local, nn::Precision::f32);
  std::int64_t correct = 0;
  for (index_t i = 0; i < r.count; ++i) correct += direct[la::uz(i)] == p.yt[la::uz(r.begin + i)] ? 1 : 0;
  EXPECT_EQ(f32.original_scores().correct, sum_over_ranks(comm, correct));
}

// A constructed near tie: class 1's classifier weights are class 0's times (1 + 1e-10), with class
// 0's exactly representable in float32. In float64 class 1 wins wherever class 0's logit is
// positive and largest; in float32 the two columns round to the same weights, the logits tie and
// the lowest class (0) wins. So float32 changes those predictions, and the Scorer must count them.
TEST(Float32Scorer, CountsTheChangesOfAConstructedNearTie) {
  const dist::Comm comm = dist::Comm::world();
  Problem p = problem(504);
  nn::DenseLayer& classifier = p.model.layer(p.model.num_layers() - 1);
  const la::MatrixView w = classifier.factor_values(0);
  for (index_t i = 0; i < w.rows(); ++i) {
    w(i, 0) = static_cast<double>(static_cast<float>(8.0 * std::abs(w(i, 0)) + 0.5));
    w(i, 1) = w(i, 0) * (1.0 + 1e-10);
  }
  classifier.bias_values()[0] = 0.0;
  classifier.bias_values()[1] = 0.0;
  compress::CompressedModel whole;
  whole.model = p.model;
  const std::vector<compress::CompressedModel> models{whole};
  const auto f32 = scorer_for(p, comm, nn::Precision::f32, true);
  const auto f64 = scorer_for(p, comm, nn::Precision::f64, false);
  const std::vector<int> p32 = f32.predictions(whole);
  const std::vector<int> p64 = f64.predictions(whole);
  std::int64_t changed = 0;
  std::int64_t ones = 0;
  for (std::size_t i = 0; i < p32.size(); ++i) {
    changed += p32[i] != p64[i] ? 1 : 0;
    ones += p64[i] == 1 ? 1 : 0;
    if (p64[i] == 1) {
      EXPECT_EQ(p32[i], 0) << "row " << i << " of rank " << comm.rank();
    }
  }
  const compress::Scores s = f32.score(models).front();
  EXPECT_EQ(s.precision_changes, sum_over_ranks(comm, changed));
  // The construction works: class 1 wins most rows in float64.
  EXPECT_GE(sum_over_ranks(comm, ones), p.xt.rows() / 2);
  EXPECT_EQ(s.precision_changes, sum_over_ranks(comm, ones));
}

// The float32 counts (correct, agreement, changed predictions) on any number of ranks equal those
// of one process holding the whole set, and do not depend on the number of threads or the batch.
TEST(Float32Scorer, CountsDoNotDependOnRanksThreadsOrBatches) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(502);
  const auto models = models_of(p, comm);
  std::vector<std::vector<compress::Scores>> runs;
  for (const int threads : {1, 2}) {
    const tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    const la::ScopedBlasThreads blas(threads);
    arena.execute([&] {
      ASSERT_EQ(tbb::this_task_arena::max_concurrency(), threads);
      runs.push_back(scorer_for(p, comm, nn::Precision::f32, true, 16).score(models));
    });
  }
  runs.push_back(scorer_for(p, comm, nn::Precision::f32, true, 7).score(models));
  ASSERT_EQ(runs.size(), 3u);
  // One process with every row: the reference for every rank count.
  const auto split = comm.split(comm.rank(), 0);
  const auto whole = [&] {
    compress::ScorerOptions o;
    o.precision = nn::Precision::f32;
    o.compare_precision = true;
    return compress::Scorer(p.model, p.xt, p.yt, split, o).score(models);
  }();
  for (std::size_t m = 0; m < models.size(); ++m) {
    for (const auto& run : runs) {
      EXPECT_EQ(run[m].correct, whole[m].correct) << "model " << m;
      EXPECT_EQ(run[m].agree, whole[m].agree) << "model " << m;
      EXPECT_EQ(run[m].precision_changes, whole[m].precision_changes) << "model " << m;
      EXPECT_EQ(run[m].samples, whole[m].samples) << "model " << m;
    }
  }
}

// A float32 overflow of the evaluation set is refused on every rank with a message naming it.
TEST(Float32Scorer, RefusesInputsThatOverflowFloat32) {
  const dist::Comm comm = dist::Comm::world();
  Problem p = problem(503);
  p.xt(p.xt.rows() - 1, 0) = 1e300;
  EXPECT_THROW((void)scorer_for(p, comm, nn::Precision::f32, false), dist::CollectiveError);
  EXPECT_NO_THROW((void)scorer_for(p, comm, nn::Precision::f64, false));
}

}  // namespace
}  // namespace idprune::test
