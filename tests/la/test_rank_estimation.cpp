// Black-box rank estimation: the reference text's game, maps of known rank (linear, affine,
// constant, nonlinear, badly scaled), the gap rule on synthetic spectra, query counting, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/rank_estimation.hpp"
#include "support/matrices.hpp"

namespace idprune::la {
namespace {

/// f(x) = scale * A x + b as a point query.
PointQuery linear_map(const Matrix& a, double scale, std::vector<double> b = {}) {
  return [&a, scale, b](std::span<const double> x) {
    std::vector<double> y(static_cast<std::size_t>(a.rows()));
    gemv(scale, a, Op::none, x, 0.0, y);
    for (std::size_t i = 0; i < b.size(); ++i) y[i] += b[i];
    return y;
  };
}

std::string describe(const RankEstimate& e) {
  std::string s = "rank " + std::to_string(e.rank) + ", tau " + std::to_string(e.noise_level) + ", s =";
  for (double v : e.singular_values) s += " " + std::to_string(v);
  return s;
}

TEST(RankEstimation, PlaysTwoHundredGamesAtLeast95PercentCorrect) {
  const std::uint64_t seed = 20240808;
  const RankGamesSummary s = play_rank_games(200, seed, RankGameOptions{});
  std::string failures;
  for (const auto& f : s.failures)
    failures += " game " + std::to_string(f.game) + ": r=" + std::to_string(f.true_rank) +
                " est=" + std::to_string(f.estimated_rank) + ";";
  EXPECT_GE(s.fraction_correct(), 0.95) << "seed " << seed << failures;
  EXPECT_EQ(s.games, 200);
  EXPECT_LE(s.max_queries, 2 * 2 * (100 + 4));  // K = 2 base points, 100 directions and 4 probes, +-h
  EXPECT_GT(s.mean_queries, 0.0);
}

TEST(RankEstimation, GamesAtTheEndsOfTheRankRangeAreAnsweredCorrectly) {
  // r = 95 of 100 leaves 5 noise directions; r = 1 has the most noise.
  for (const index_t r : {index_t{1}, index_t{95}}) {
    RankGameOptions game;
    game.min_rank = r;
    game.max_rank = r;
    const RankGamesSummary s = play_rank_games(20, 77 + static_cast<std::uint64_t>(r), game);
    EXPECT_EQ(s.correct, 20) << "r=" << r;
  }
}

TEST(RankEstimation, GamesAtOtherScalesAndDimensions) {
  // The estimate needs no absolute threshold: the same rule works when W1, W2 are scaled.
  for (const double scale : {0.01, 1.0 / std::sqrt(100.0), 5.0}) {
    RankGameOptions game;
    game.w1_scale = scale;
    game.w2_scale = scale;
    const RankGamesSummary s = play_rank_games(30, 5, game);
    EXPECT_GE(s.fraction_correct(), 0.95) << "scale " << scale;
  }
  RankGameOptions small;
  small.dim = 12;
  const RankGamesSummary s = play_rank_games(50, 6, small);
  EXPECT_GE(s.fraction_correct(), 0.95) << "dim 12";
}

TEST(RankEstimation, LinearMapsOfKnownRank) {
  const index_t dim = 40;
  for (const index_t out : {index_t{25}, index_t{60}}) {
    for (const index_t r : {index_t{1}, index_t{5}, index_t{24}, index_t{25}, index_t{39}, index_t{40}}) {
      if (r > std::min(out, dim)) continue;
      const Matrix a = test::low_rank(out, dim, r, 1000 + static_cast<std::uint64_t>(r + out));
      RankEstimationOptions opts;
      opts.seed = 3;
      const RankEstimate e = estimate_rank(linear_map(a, 1.0), dim, opts);
      EXPECT_EQ(e.rank, r) << "out " << out << ", " << describe(e);
    }
  }
}

TEST(RankEstimation, FullRankMapsReportDim) {
  // No gap at all: the virtual s_{p+1} = tau lets the spectrum end in one.
  const index_t dim = 30;
  const Matrix a = test::gaussian(dim, dim, 11);
  const RankEstimate e = estimate_rank(linear_map(a, 1.0), dim);
  EXPECT_EQ(e.rank, dim) << describe(e);
  EXPECT_EQ(e.directions, dim);
  // A nonlinear full-rank map: elementwise sin of a full-rank linear map.
  const PointQuery f = [&a](std::span<const double> x) {
    std::vector<double> y(static_cast<std::size_t>(a.rows()));
    gemv(1.0, a, Op::none, x, 0.0, y);
    for (double& v : y) v = std::sin(v);
    return y;
  };
  EXPECT_EQ(estimate_rank(f, dim).rank, dim);
}

TEST(RankEstimation, ConstantMapHasRankZero) {
  const index_t dim = 20;
  const PointQuery constant = [](std::span<const double>) { return std::vector<double>{1.5, -2.0, 3.25}; };
  const RankEstimate e = estimate_rank(constant, dim);
  EXPECT_EQ(e.rank, 0) << describe(e);
  EXPECT_EQ(e.gap, 0.0);
  // Values that are not exactly representable: still the same bits at every point.
  const PointQuery offset = [](std::span<const double>) { return std::vector<double>{0.1, 1.0 / 3.0, 1e10 / 7.0}; };
  EXPECT_EQ(estimate_rank(offset, dim).rank, 0);
}

TEST(RankEstimation, AffineAndBadlyScaledMapsKeepTheirRank) {
  const index_t dim = 35;
  const index_t r = 9;
  const Matrix a = test::low_rank(50, dim, r, 21);
  std::vector<double> b(50);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = 1e3 * std::cos(double(i));
  // No threshold depends on the size of f: scaling by 1e-8 or 1e8 changes nothing.
  for (const double scale : {1e-8, 1.0, 1e8}) {
    const RankEstimate e = estimate_rank(linear_map(a, scale), dim);
    EXPECT_EQ(e.rank, r) << "scale " << scale << ", " << describe(e);
  }
  // An offset of 1e3 (the differences cancel it; its rounding sets the noise floor).
  const RankEstimate e = estimate_rank(linear_map(a, 1.0, b), dim);
  EXPECT_EQ(e.rank, r) << "affine, " << describe(e);
}

TEST(RankEstimation, NonlinearMapThroughALowDimensionalBottleneck) {
  // f(x) = tanh(B tanh(C x)): out 20, dim 50, bottleneck 12. Inputs of size 3 (base_scale) put
  // tanh in its curved range.
  const index_t dim = 50;
  const index_t r = 12;
  const Matrix c = test::gaussian(r, dim, 31);
  const Matrix b = test::gaussian(20, r, 32);
  const PointQuery f = [&](std::span<const double> x) {
    std::vector<double> h(static_cast<std::size_t>(r)), y(20);
    gemv(1.0 / std::sqrt(double(dim)), c, Op::none, x, 0.0, h);
    for (double& v : h) v = std::tanh(v);
    gemv(1.0, b, Op::none, h, 0.0, y);
    for (double& v : y) v = std::tanh(v);
    return y;
  };
  RankEstimationOptions opts;
  opts.base_scale = 3.0;
  const RankEstimate e = estimate_rank(f, dim, opts);
  EXPECT_EQ(e.rank, r) << describe(e);
  // Singular values are non-increasing.
  for (std::size_t i = 1; i < e.singular_values.size(); ++i) EXPECT_LE(e.singular_values[i], e.singular_values[i - 1]);
}

TEST(RankEstimation, CountsEveryQuery) {
  const index_t dim = 24;
  const Matrix a = test::low_rank(10, dim, 3, 41);
  index_t calls = 0;
  const PointQuery counted = [&](std::span<const double> x) {
    ++calls;
    return linear_map(a, 1.0)(x);
  };
  RankEstimationOptions opts;
  opts.base_points = 3;
  const RankEstimate e = estimate_rank(counted, dim, opts);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.queries, calls);
  // 2 points (+-h) per direction and base point, plus 2 per probe and base point.
  EXPECT_EQ(e.queries, 2 * opts.base_points * (e.directions + std::min(opts.noise_probes, e.directions)));
  EXPECT_EQ(e.base_points, 3);
}

TEST(RankEstimation, IsReproducibleFromItsSeedAndUsesGivenBasePoints) {
  const index_t dim = 30;
  const Matrix a = test::low_rank(30, dim, 7, 51);
  RankEstimationOptions opts;
  opts.seed = 99;
  const RankEstimate e1 = estimate_rank(linear_map(a, 1.0), dim, opts);
  const RankEstimate e2 = estimate_rank(linear_map(a, 1.0), dim, opts);
  EXPECT_EQ(e1.singular_values, e2.singular_values);
  EXPECT_EQ(e1.rank, 7);

  const Matrix base = test::gaussian(dim, 2, 52);
  const BatchQuery batch = [&a](ConstMatrixView x) { return matmul(a, x); };
  const RankEstimate e3 = estimate_rank_at(batch, base, opts);
  EXPECT_EQ(e3.rank, 7);
  EXPECT_EQ(e3.base_points, 2);
}

TEST(RankEstimation, GapRuleOnSyntheticSpectra) {
  const double noise = 1e-9;
  // Signal 3, then noise below tau.
  const std::vector<double> s1 = {1.0, 0.5, 0.1, 3e-10, 2e-10, 1e-10};
  EXPECT_EQ(rank_from_gap(s1, noise, 10.0), 3);
  // Full rank: the largest gap is s_p / tau.
  const std::vector<double> s2 = {1.0, 0.9, 0.8};
  EXPECT_EQ(rank_from_gap(s2, 1e-12, 10.0), 3);
  // All noise.
  const std::vector<double> s3 = {5e-9, 4e-9};
  EXPECT_EQ(rank_from_gap(s3, noise, 10.0), 0);
  // Exact zeros and zero noise (a constant map).
  const std::vector<double> s4 = {0.0, 0.0, 0.0};
  EXPECT_EQ(rank_from_gap(s4, 0.0, 10.0), 0);
  // A large gap inside the signal (1 -> 1e-3) is not taken: it does not reach the noise level.
  const std::vector<double> s5 = {1.0, 1e-3, 9e-4, 1e-12, 1e-12};
  EXPECT_EQ(rank_from_gap(s5, noise, 10.0), 3);
  EXPECT_THROW(rank_from_gap(s1, -1.0, 10.0), Error);
  EXPECT_THROW(rank_from_gap(s1, noise, 0.5), Error);
}

TEST(RankEstimation, RejectsBadInputs) {
  const PointQuery id = [](std::span<const double> x) { return std::vector<double>(x.begin(), x.end()); };
  EXPECT_THROW(estimate_rank(id, 0), Error);
  RankEstimationOptions bad;
  bad.base_points = 0;
  EXPECT_THROW(estimate_rank(id, 5, bad), Error);
  bad = {};
  bad.noise_factor = 0.5;
  EXPECT_THROW(estimate_rank(id, 5, bad), Error);
  const PointQuery nan = [](std::span<const double>) {
    return std::vector<double>{std::numeric_limits<double>::quiet_NaN()};
  };
  EXPECT_THROW(estimate_rank(nan, 5), Error);
  index_t calls = 0;
  const PointQuery changing = [&calls](std::span<const double>) { return std::vector<double>(++calls % 3 + 1, 1.0); };
  EXPECT_THROW(estimate_rank(changing, 5), Error);
  EXPECT_THROW(play_rank_games(0, 1, RankGameOptions{}), Error);
  RankGameOptions game;
  game.min_rank = 50;
  game.max_rank = 10;
  EXPECT_THROW(play_rank_games(1, 1, game), Error);
}

}  // namespace
}  // namespace idprune::la
