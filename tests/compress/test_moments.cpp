// Activation moments: sums over row blocks (and over ranks, by merge) equal the one-shot moments,
// and mean / variance follow their formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/moments.hpp"

namespace idprune::test {
namespace {

using compress::ActivationMoments;

// Activations with nonzero means and different scales per column (ReLU-like: many zeros).
Matrix activations(index_t m, index_t n, std::uint64_t seed) {
  Matrix z = gaussian(m, n, seed);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < m; ++i) z(i, j) = std::max(0.0, (1.0 + 0.5 * static_cast<double>(j)) * z(i, j) + 0.3);
  return z;
}

double max_abs(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s = std::max(s, std::abs(x));
  return s;
}

void expect_close(const ActivationMoments& a, const ActivationMoments& b) {
  ASSERT_EQ(a.rows, b.rows);
  ASSERT_EQ(a.cols(), b.cols());
  const double tol = 64 * eps * static_cast<double>(a.rows) * std::max(1.0, norm_max(a.gram));
  for (index_t j = 0; j < a.cols(); ++j) {
    EXPECT_NEAR(a.sum[uz(j)], b.sum[uz(j)], tol);
    for (index_t i = 0; i < a.cols(); ++i) EXPECT_NEAR(a.gram(i, j), b.gram(i, j), tol);
  }
}

TEST(ActivationMoments, BlockwiseAccumulationEqualsOneShot) {
  const Matrix z = activations(37, 9, 101);
  const ActivationMoments once = compress::moments(z);
  ActivationMoments blocks;
  for (auto [start, rows] : {std::pair<index_t, index_t>{0, 10}, {10, 0}, {10, 13}, {23, 14}})
    compress::accumulate(blocks, z.view().rows_range(start, rows));
  expect_close(blocks, once);
  // Two "ranks" holding rows 0..19 and 20..36, merged.
  ActivationMoments left = compress::moments(z.view().rows_range(0, 20));
  compress::merge(left, compress::moments(z.view().rows_range(20, 17)));
  expect_close(left, once);
  // Merging into and from empty moments.
  ActivationMoments empty;
  compress::merge(empty, once);
  expect_close(empty, once);
  ActivationMoments copy = once;
  compress::merge(copy, ActivationMoments{});
  expect_close(copy, once);
}

TEST(ActivationMoments, GramIsZTransposeZWithBothTriangles) {
  const Matrix z = activations(25, 7, 102);
  const ActivationMoments m = compress::moments(z);
  const Matrix g = la::matmul(z, z, la::Op::transpose);
  for (index_t j = 0; j < 7; ++j)
    for (index_t i = 0; i < 7; ++i) {
      EXPECT_NEAR(m.gram(i, j), g(i, j), 64 * eps * 25 * norm_max(g));
      EXPECT_EQ(m.gram(i, j), m.gram(j, i));
    }
}

TEST(ActivationMoments, MeanAndUnbiasedVarianceMatchTwoPassFormulas) {
  const index_t m = 41;
  const index_t n = 6;
  const Matrix z = activations(m, n, 103);
  const ActivationMoments mom = compress::moments(z);
  const std::vector<double> mean = mom.mean();
  const std::vector<double> var = mom.variance();
  for (index_t j = 0; j < n; ++j) {
    double mu = 0.0;
    for (double v : z.col(j)) mu += v;
    mu /= static_cast<double>(m);
    double ss = 0.0;
    for (double v : z.col(j)) ss += (v - mu) * (v - mu);
    EXPECT_NEAR(mean[uz(j)], mu, 16 * eps * std::max(1.0, std::abs(mu)));
    EXPECT_NEAR(var[uz(j)], ss / static_cast<double>(m - 1), 1e-12 * std::max(1.0, max_abs(var)));
  }
}

TEST(ActivationMoments, ConstantAndDeadColumnsHaveZeroVariance) {
  Matrix z = activations(20, 4, 104);
  for (index_t i = 0; i < 20; ++i) {
    z(i, 1) = 0.0;
    z(i, 3) = 0.7;
  }
  const std::vector<double> var = compress::moments(z).variance();
  EXPECT_EQ(var[1], 0.0);
  EXPECT_GE(var[3], 0.0);
  EXPECT_LE(var[3], 1e-14);
}

TEST(ActivationMoments, RefusesMismatchesTooFewRowsAndNonFinite) {
  ActivationMoments m = compress::moments(activations(5, 3, 105));
  EXPECT_THROW(compress::accumulate(m, activations(4, 4, 106)), Error);
  EXPECT_THROW(compress::merge(m, compress::moments(activations(4, 2, 107))), Error);
  EXPECT_THROW((void)compress::moments(activations(1, 3, 108)).variance(), Error);
  EXPECT_THROW((void)ActivationMoments{}.mean(), Error);
  Matrix bad = activations(4, 3, 109);
  bad(2, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)compress::moments(bad), Error);
  // Rows without columns are still counted.
  const ActivationMoments none = compress::moments(Matrix(6, 0));
  EXPECT_EQ(none.rows, 6);
  EXPECT_EQ(none.cols(), 0);
}

}  // namespace
}  // namespace idprune::test
