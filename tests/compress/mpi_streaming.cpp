// Streamed compression sets (run by CTest under mpiexec -n 1, 2, 3, 4): a compression set read,
// forwarded and reduced block by block selects the same neurons as the same set in memory, for any
// block size and thread count; what cannot stream is refused with a clear error.
#include <gtest/gtest.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <string>
#include <tuple>

#include "fixtures.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/data/row_source.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/kernels.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::LayerRule;
using compress::RankRule;

struct Problem {
  nn::Mlp model;
  Matrix xc;
};

Problem problem(std::uint64_t seed) {
  Problem p;
  p.model = random_mlp(24, {32, 24, 16}, 5, true, seed);
  p.xc = structured_inputs(150, 24, 8, seed + 1);
  return p;
}

compress::StreamedRows streamed_rows(const Matrix& x, const dist::Comm& comm, index_t block_rows) {
  const auto share = dist::block_rows(x.rows(), comm.size(), comm.rank());
  return {data::rank_rows(data::matrix_rows(x.view()), comm.rank(), comm.size()), share.begin, x.rows(), block_rows};
}

std::vector<compress::CompressedModel> greedy(compress::CompressionEngine& e, RankRule rule,
                                              const std::vector<double>& grid) {
  const auto& info = compress::strategy("greedy");
  const auto pol = compress::make_policy(info.policy, compress::PolicyOptions{9, false});
  std::vector<compress::PointPlan> plans;
  for (double v : grid) plans.push_back(compress::uniform_plan(pol, e.original().num_hidden(), {}, LayerRule{rule, v}));
  return compress::compress_points(e, info, plans);
}

void expect_same_selections(const std::vector<compress::CompressedModel>& a,
                            const std::vector<compress::CompressedModel>& b, const Matrix& x, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].layers.size(), b[i].layers.size());
    for (std::size_t l = 0; l < a[i].layers.size(); ++l)
      EXPECT_EQ(a[i].layers[l].kept_neurons, b[i].layers[l].kept_neurons) << what << " point " << i << " layer " << l;
    // The interpolation matrices come from R factors equal to rounding: so do the outputs.
    const Matrix la = a[i].model.logits(x);
    const Matrix lb = b[i].model.logits(x);
    double scale = 1.0;
    for (double v : la.values()) scale = std::max(scale, std::abs(v));
    EXPECT_LE(max_abs_diff(la, lb), 1e-9 * scale) << what << " point " << i;
  }
}

TEST(Streaming, StreamedSetsSelectTheNeuronsOfTheSetInMemory) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(171);
  const std::vector<double> eps = {1e-1, 1e-2, 1e-3, 1e-4};
  const std::vector<double> fractions = {0.25, 0.5, 0.8};
  for (const auto engine : {dist::PivotEngine::tsqr, dist::PivotEngine::gram}) {
    compress::EngineOptions o;
    o.pivot.engine = engine;
    compress::CompressionEngine memory(p.model, distribute(p.xc, comm), o);
    const auto me = greedy(memory, RankRule::eps, eps);
    const auto mf = greedy(memory, RankRule::fraction, fractions);
    // Blocks of one row, of fewer rows than the widest layer, and of more than a rank holds.
    for (const index_t block : {1, 7, 1000}) {
      compress::CompressionEngine streamed(p.model, comm, streamed_rows(p.xc, comm, block), o);
      ASSERT_TRUE(streamed.streamed());
      EXPECT_EQ(streamed.compression_rows(), p.xc.rows());
      const std::string what = std::string(dist::to_string(engine)) + " block " + std::to_string(block);
      expect_same_selections(me, greedy(streamed, RankRule::eps, eps), p.xc, what + " eps");
      expect_same_selections(mf, greedy(streamed, RankRule::fraction, fractions), p.xc, what + " fraction");
    }
  }
}

// One thread or two: bit-identical models from a streamed set.
TEST(Streaming, StreamedResultsDoNotDependOnTheNumberOfThreads) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(181);
  std::vector<std::vector<compress::CompressedModel>> models;
  for (const int threads : {1, 2}) {
    const tbb::global_control gc(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    tbb::task_arena arena(threads);
    const la::ScopedBlasThreads blas(threads);
    arena.execute([&] {
      compress::CompressionEngine e(p.model, comm, streamed_rows(p.xc, comm, 16), {});
      models.push_back(greedy(e, RankRule::eps, {1e-1, 1e-2, 1e-3}));
    });
  }
  ASSERT_EQ(models.size(), 2u);
  for (std::size_t i = 0; i < models[0].size(); ++i)
    EXPECT_TRUE(identical_models(models[0][i].model, models[1][i].model)) << "point " << i;
}

// A streamed set whose passes start from the inputs the previous level kept
// (StreamedRows::cache_bytes) instead of reading the set: bit-identical models to passes over the
// set, with every level kept, with a budget that keeps only the narrower inputs, and for blocks of
// 7 and 16 rows; several points per wave share parents (each parent's inputs serve all children).
TEST(Streaming, KeptInputsGiveTheBitsOfPassesOverTheSet) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(191);
  const std::vector<double> eps = {1e-1, 1e-2, 1e-3};
  const std::vector<double> fractions = {0.3, 0.6};
  const auto local_rows = static_cast<std::size_t>(dist::block_rows(p.xc.rows(), comm.size(), comm.rank()).count);
  for (const index_t block : {7, 16}) {
    compress::CompressionEngine plain(p.model, comm, streamed_rows(p.xc, comm, block), {});
    const auto pe = greedy(plain, RankRule::eps, eps);
    const auto pf = greedy(plain, RankRule::fraction, fractions);
    EXPECT_EQ(plain.stats().cached_passes, 0);
    // Unlimited, then room for inputs of at most 20 columns (the 24- and 32-wide ones are not kept).
    std::int64_t all_kept = 0;
    for (const std::size_t budget : {std::numeric_limits<std::size_t>::max(), local_rows * 20 * sizeof(double)}) {
      compress::StreamedRows rows = streamed_rows(p.xc, comm, block);
      rows.cache_bytes = budget;
      compress::CompressionEngine kept(p.model, comm, std::move(rows), {});
      const auto ke = greedy(kept, RankRule::eps, eps);
      const auto kf = greedy(kept, RankRule::fraction, fractions);
      const std::string what = "block " + std::to_string(block) + " budget " + std::to_string(budget);
      for (std::size_t i = 0; i < pe.size(); ++i)
        EXPECT_TRUE(identical_models(pe[i].model, ke[i].model)) << what << " eps point " << i;
      for (std::size_t i = 0; i < pf.size(); ++i)
        EXPECT_TRUE(identical_models(pf[i].model, kf[i].model)) << what << " fraction point " << i;
      // Every rank holds rows here, so every rank kept some inputs and read them in a later pass.
      EXPECT_GT(kept.stats().cached_passes, 0) << what;
      if (budget == std::numeric_limits<std::size_t>::max())
        all_kept = kept.stats().cached_passes;
      else
        EXPECT_LT(kept.stats().cached_passes, all_kept) << what;
    }
  }
}

// Fewer rows than ranks: a rank without rows keeps nothing, the others keep theirs; the same bits.
TEST(Streaming, KeptInputsServeARankWithoutRows) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(193);
  const Matrix x(p.xc.block(0, 0, 3, p.xc.cols()));
  compress::CompressionEngine plain(p.model, comm, streamed_rows(x, comm, 2), {});
  compress::StreamedRows rows = streamed_rows(x, comm, 2);
  rows.cache_bytes = std::numeric_limits<std::size_t>::max();
  compress::CompressionEngine kept(p.model, comm, std::move(rows), {});
  const auto a = greedy(plain, RankRule::fraction, {0.3, 0.6});
  const auto b = greedy(kept, RankRule::fraction, {0.3, 0.6});
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(identical_models(a[i].model, b[i].model)) << "point " << i;
}

// Greedy points whose activations exceed EngineOptions::unheld_bytes per rank, on a set larger
// than the threaded R's row blocks: every layer's R comes from row blocks of its inputs and the
// activations are never held; each next layer's inputs are recomputed from the kept neurons. The
// same bits alone or batched with another point and for 1 and 2 threads, the same neurons as the
// path that holds the activations (below the threshold); a policy that fits to the activations
// holds them (corrected: all but the first layer, where its T is the ID's; mean compensation: all).
TEST(LargeSets, LargeLayersAreFactoredFromTheirInputs) {
  const dist::Comm comm = dist::Comm::world();
  const nn::Mlp model = random_mlp(24, {32, 24, 16}, 5, true, 181);
  const index_t rows = static_cast<index_t>(comm.size()) * dist::kernel::threaded_row_block(32) + 777;
  const Matrix xc = structured_inputs(rows, 24, 8, 182);
  const auto& info = compress::strategy("greedy");
  const auto pol = compress::make_policy(info.policy, compress::PolicyOptions{9, false});
  const compress::PointPlan one = compress::uniform_plan(pol, 3, {}, LayerRule{RankRule::fraction, 0.5});
  const compress::PointPlan other = compress::uniform_plan(pol, 3, {}, LayerRule{RankRule::fraction, 0.25});
  // Per rank at least 4,290 rows: the narrowest layer's activations take 549 KiB.
  compress::EngineOptions small;
  small.unheld_bytes = std::size_t{256} << 10;
  const auto run = [&](std::vector<compress::PointPlan> plans, int threads, std::int64_t* from_inputs,
                       const compress::EngineOptions& options) {
    tbb::task_arena arena(threads);
    std::vector<compress::CompressedModel> out;
    arena.execute([&] {
      compress::CompressionEngine e(model, distribute(xc, comm), options);
      out = compress::compress_points(e, info, plans);
      *from_inputs = e.stats().unheld_factorizations;
    });
    return out;
  };
  std::int64_t fused = 0;
  std::int64_t batched = 0;
  std::int64_t below = 0;
  const auto a = run({one}, 2, &fused, small);
  const auto b = run({one, other}, 2, &batched, small);
  const auto c = run({one}, 2, &below, compress::EngineOptions{});
  EXPECT_EQ(fused, 3);
  EXPECT_EQ(batched, 5);  // the original's first layer is shared
  EXPECT_EQ(below, 0);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_TRUE(identical_models(a.front().model, b.front().model)) << "alone vs batched";
  expect_same_selections(a, c, xc, "unheld vs held below the threshold");
  std::int64_t fused1 = 0;
  const auto a1 = run({one}, 1, &fused1, small);
  EXPECT_EQ(fused1, 3);
  ASSERT_EQ(a1.size(), 1u);
  const nn::Mlp& m2 = a.front().model;
  const nn::Mlp& m1 = a1.front().model;
  for (index_t l = 0; l <= m2.num_hidden(); ++l) {
    const nn::DenseLayer& l2 = l < m2.num_hidden() ? m2.hidden(l) : m2.classifier();
    const nn::DenseLayer& l1 = l < m1.num_hidden() ? m1.hidden(l) : m1.classifier();
    EXPECT_EQ(max_abs_diff(l2.weight(), l1.weight()), 0.0) << "1 vs 2 threads, layer " << l;
  }
  const auto& corrected_info = compress::strategy("corrected");
  const auto corrected = compress::make_policy(corrected_info.policy, compress::PolicyOptions{9, false});
  const compress::PointPlan corrected_plan =
      compress::uniform_plan(corrected, 3, {}, LayerRule{RankRule::fraction, 0.5});
  std::int64_t corrected_unheld = 0;
  std::vector<compress::CompressedModel> cu;
  std::vector<compress::CompressedModel> ch;
  for (const auto& [options, count, out] :
       {std::tuple{small, &corrected_unheld, &cu}, std::tuple{compress::EngineOptions{}, &below, &ch}}) {
    tbb::task_arena arena(2);
    arena.execute([&] {
      compress::CompressionEngine e(model, distribute(xc, comm), options);
      *out = compress::compress_points(e, corrected_info, std::span<const compress::PointPlan>(&corrected_plan, 1));
      *count = e.stats().unheld_factorizations;
    });
  }
  EXPECT_EQ(corrected_unheld, 1);
  expect_same_selections(cu, ch, xc, "corrected, first layer unheld vs held");
  compress::PolicyOptions with_mean_options;
  with_mean_options.mean_compensation = true;
  const auto mean = compress::make_policy(info.policy, with_mean_options);
  std::int64_t with_mean = 0;
  (void)run({compress::uniform_plan(mean, 3, {}, LayerRule{RankRule::fraction, 0.5})}, 2, &with_mean, small);
  EXPECT_EQ(with_mean, 0);
}

// Every layer unheld (a threshold of 0 bytes) on fewer rows than ranks: a rank without rows adds a
// zero R factor and computes empty inputs, and the neurons are those of the path that holds them.
TEST(LargeSets, UnheldLayersServeARankWithoutRows) {
  const dist::Comm comm = dist::Comm::world();
  const nn::Mlp model = random_mlp(12, {10, 8, 6}, 4, true, 191);
  const Matrix xc = structured_inputs(3, 12, 3, 192);
  const auto& info = compress::strategy("greedy");
  const auto pol = compress::make_policy(info.policy, compress::PolicyOptions{9, false});
  const compress::PointPlan plan = compress::uniform_plan(pol, 3, {}, LayerRule{RankRule::fraction, 0.5});
  compress::EngineOptions every;
  every.unheld_bytes = 0;
  std::vector<std::vector<compress::CompressedModel>> out;
  std::vector<std::int64_t> unheld;
  for (const auto& options : {every, compress::EngineOptions{}}) {
    compress::CompressionEngine e(model, distribute(xc, comm), options);
    out.push_back(compress::compress_points(e, info, std::span<const compress::PointPlan>(&plan, 1)));
    unheld.push_back(e.stats().unheld_factorizations);
  }
  EXPECT_EQ(unheld[0], 3);
  EXPECT_EQ(unheld[1], 0);
  expect_same_selections(out[0], out[1], xc, "every layer unheld vs held, 3 rows");
}

TEST(Streaming, WhatNeedsTheActivationsInMemoryIsRefused) {
  const dist::Comm comm = dist::Comm::world();
  const Problem p = problem(191);
  compress::EngineOptions sketch;
  sketch.pivot.engine = dist::PivotEngine::sketch;
  try {
    compress::CompressionEngine e(p.model, comm, streamed_rows(p.xc, comm, 16), sketch);
    ADD_FAILURE() << "the sketch engine was accepted for a streamed set";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sketch"), std::string::npos) << e.what();
  }
  // Least squares against the activations (corrected): refused on every rank, no hang.
  compress::CompressionEngine e(p.model, comm, streamed_rows(p.xc, comm, 16), {});
  const auto& info = compress::strategy("corrected");
  const auto pol = compress::make_policy(info.policy, compress::PolicyOptions{9, false});
  const std::vector<compress::PointPlan> plans = {
      compress::uniform_plan(pol, p.model.num_hidden(), {}, LayerRule{RankRule::fraction, 0.5})};
  try {
    (void)compress::compress_points(e, info, plans);
    ADD_FAILURE() << "corrected was accepted for a streamed set";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("streamed"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace idprune::test
