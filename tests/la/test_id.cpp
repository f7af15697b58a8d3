// Interpolative decomposition and the basic least-squares solution: the reference text's
// Questions 1-5 as properties, for every CPQR method and several shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "idprune/la/svd.hpp"
#include "la/la_checks.hpp"
#include "support/matrices.hpp"

namespace idprune::test {
namespace {

using la::CpqrMethod;
using la::CpqrOptions;

constexpr CpqrMethod kMethods[] = {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack};

CpqrOptions options(CpqrMethod method, index_t max_rank, double rel_tol = 0.0) {
  CpqrOptions o;
  o.method = method;
  o.max_rank = max_rank;
  o.rel_tol = rel_tol;
  o.block_size = 8;
  o.want_q = true;
  return o;
}

// Singular values decaying geometrically from 1 to 1e-8: a matrix with a meaningful low-rank structure.
Matrix decaying(index_t m, index_t n, std::uint64_t seed) {
  const index_t r = std::min(m, n);
  std::vector<double> sigma;
  for (index_t j = 0; j < r; ++j) sigma.push_back(std::pow(1e-8, static_cast<double>(j) / static_cast<double>(r - 1)));
  return with_singular_values(m, n, sigma, seed);
}

class IdShapes : public ::testing::TestWithParam<std::tuple<CpqrMethod, index_t, index_t>> {};

TEST_P(IdShapes, IdErrorEqualsR22NormAndSkeletonIsReproducedExactly) {
  const auto [method, m, n] = GetParam();
  const std::uint64_t seed = 71;
  const Matrix a = decaying(m, n, seed);
  const double norm_a = la::norm2(a);
  for (index_t k : {index_t{1}, index_t{5}, std::min(m, n) / 2, std::min(m, n) - 1}) {
    SCOPED_TRACE(describe(m, n, method, seed) + " k=" + std::to_string(k));
    const la::InterpolativeDecomposition id = la::interpolative_decomposition(a, options(method, k));
    ASSERT_EQ(static_cast<index_t>(id.skeleton.size()), k);
    const Matrix& t = id.interpolation;
    ASSERT_EQ(t.rows(), k);
    ASSERT_EQ(t.cols(), n);
    // T(:, C) = I exactly, so A(:, C) T reproduces the skeleton columns bit for bit.
    for (index_t i = 0; i < k; ++i)
      for (index_t j = 0; j < k; ++j) EXPECT_EQ(t(i, id.skeleton[static_cast<std::size_t>(j)]), i == j ? 1.0 : 0.0);
    const Matrix ac = la::select_columns(a, id.skeleton);
    const Matrix approx = la::matmul(ac, t);
    const Matrix reproduced = la::select_columns(approx, id.skeleton);
    EXPECT_EQ(la::norm_max(difference(ac, reproduced)), 0.0);

    // ||A - A(:, C) T||_2 = ||R22||_2 (Question 4). Rounding in T = R11^{-1} R12 (backward-stable
    // dtrsm) perturbs the residual by at most about eps n ||A|| ||T||: c = 10.
    const double id_error = la::norm2(difference(a, approx));
    const double r22 = la::norm2(remainder(a, id.factorization));
    EXPECT_NEAR(id_error, r22, 10 * eps * std::max(m, n) * norm_a * std::max(1.0, la::norm2(t)));
  }
}

TEST_P(IdShapes, ContinuingWithoutPivotingKeepsTheRemainderNorm) {
  // Question 5: after k pivoted steps, an unpivoted QR of the remainder M gives ||R22||_2 = ||M||_2.
  const auto [method, m, n] = GetParam();
  const Matrix a = gaussian(m, n, 72);
  for (index_t k : {index_t{2}, std::min(m, n) / 2}) {
    const la::CpqrResult f = la::cpqr(a, options(method, k));
    Matrix mrem = remainder(a, f);
    const double norm_m = la::norm2(mrem);
    (void)la::geqrf(mrem.view());
    Matrix r22(std::min(mrem.rows(), mrem.cols()), mrem.cols());
    for (index_t j = 0; j < r22.cols(); ++j)
      for (index_t i = 0; i <= std::min(j, r22.rows() - 1); ++i) r22(i, j) = mrem(i, j);
    EXPECT_NEAR(la::norm2(r22), norm_m, 10 * eps * std::max(m, n) * norm_m) << describe(m, n, method, 72);
  }
}

TEST_P(IdShapes, BasicLeastSquaresResidualObeysQuestion1Bound) {
  const auto [method, m, n] = GetParam();
  if (m < n) GTEST_SKIP() << "least squares with m >= n";
  const std::uint64_t seed = 73;
  const Matrix a = decaying(m, n, seed);
  const Matrix b = gaussian(m, 2, seed + 1);
  // Full least-squares solution x_LS from an unpivoted QR of A (full column rank).
  Matrix qr(a);
  const std::vector<double> tau = la::geqrf(qr.view());
  Matrix qtb(b);
  la::ormqr(la::Side::left, la::Op::transpose, qr, tau, qtb.view());
  Matrix x_ls(qtb.block(0, 0, n, 2));
  la::trsm_upper_left(qr.block(0, 0, n, n), la::Op::none, x_ls.view());
  for (index_t k : {index_t{3}, n / 2, n - 2}) {
    SCOPED_TRACE(describe(m, n, method, seed) + " k=" + std::to_string(k));
    const la::CpqrResult f = la::cpqr(a, options(method, k));
    const Matrix x = la::basic_least_squares(f, b);
    ASSERT_EQ(x.rows(), n);
    const double r22 = la::norm2(remainder(a, f));
    const std::vector<index_t> c = f.skeleton();
    for (index_t col = 0; col < 2; ++col) {
      // Support in C exactly.
      for (index_t j = 0; j < n; ++j)
        if (std::find(c.begin(), c.end(), j) == c.end()) {
          EXPECT_EQ(x(j, col), 0.0);
        }
      const Matrix r_sparse = difference(la::matmul(a, x.block(0, col, n, 1)), b.block(0, col, m, 1));
      const Matrix r_ls = difference(la::matmul(a, x_ls.block(0, col, n, 1)), b.block(0, col, m, 1));
      const double bound = r22 * la::nrm2(x_ls.col(col)) + la::nrm2(r_ls.col(0));
      EXPECT_LE(la::nrm2(r_sparse.col(0)), bound * (1 + 10 * eps * m));
      // z is the least-squares solution on C: A(:, C)^T r = 0 up to rounding (c = 10).
      const Matrix ac = la::select_columns(a, c);
      const Matrix normal = la::matmul(ac, r_sparse, la::Op::transpose, la::Op::none);
      const Matrix z = la::select_rows(x.block(0, col, n, 1), c);
      const double norm_ac = la::norm2(ac);
      EXPECT_LE(la::norm_fro(normal), 10 * eps * m * norm_ac * (norm_ac * la::norm_fro(z) + la::nrm2(b.col(col))));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TallWideSquare, IdShapes,
                         ::testing::Combine(::testing::ValuesIn(kMethods), ::testing::Values<index_t>(70, 30, 48),
                                            ::testing::Values<index_t>(48)),
                         [](const auto& info) {
                           return std::string(la::to_string(std::get<0>(info.param))) + "_" +
                                  std::to_string(std::get<1>(info.param)) + "x" +
                                  std::to_string(std::get<2>(info.param));
                         });

TEST(Id, R22NormReachesSigma1ForEqualNormOrthogonalColumns) {
  // Question 3's equality case: orthogonal columns of equal norm s give R = s I (up to signs and
  // order), so ||R22||_2 = s = sigma_1 for every k < n.
  const index_t m = 50;
  const index_t n = 20;
  Matrix a = random_orthonormal(m, n, 74);
  for (double& v : a.values()) v *= 3.0;
  const double sigma1 = la::norm2(a);
  for (CpqrMethod method : kMethods) {
    for (index_t k : {1, 7, 19}) {
      const la::CpqrResult f = la::cpqr(a, options(method, k));
      EXPECT_NEAR(la::norm2(remainder(a, f)), sigma1, 10 * eps * m * sigma1) << la::to_string(method) << " k=" << k;
    }
  }
}

TEST(Id, WorksWithZeroColumnsAndRankDeficiency) {
  Matrix a = low_rank(40, 30, 6, 75);
  zero_columns(a, {1, 2, 10});
  for (CpqrMethod method : kMethods) {
    SCOPED_TRACE(la::to_string(method));
    const la::InterpolativeDecomposition id = la::interpolative_decomposition(a, options(method, -1, 1e-10));
    EXPECT_EQ(static_cast<index_t>(id.skeleton.size()), 6);
    for (index_t c : id.skeleton) EXPECT_TRUE(c != 1 && c != 2 && c != 10);
    for (double v : id.interpolation.values()) EXPECT_TRUE(std::isfinite(v));
    // Zero columns are represented exactly by zero coefficients.
    for (index_t i = 0; i < 6; ++i) EXPECT_EQ(id.interpolation(i, 10), 0.0);
    const Matrix approx = la::matmul(la::select_columns(a, id.skeleton), id.interpolation);
    // Exactly rank 6: the residual is rounding, amplified at most by ||T|| (c = 10).
    EXPECT_LE(la::norm2(difference(a, approx)),
              10 * eps * 40 * la::norm2(a) * std::max(1.0, la::norm2(id.interpolation)));
  }
}

TEST(Id, RankZeroGivesEmptyInterpolation) {
  const Matrix a = gaussian(10, 7, 76);
  const la::InterpolativeDecomposition id = la::interpolative_decomposition(a, options(CpqrMethod::blocked, 0));
  EXPECT_TRUE(id.skeleton.empty());
  EXPECT_EQ(id.interpolation.rows(), 0);
  EXPECT_EQ(id.interpolation.cols(), 7);
}

TEST(Id, FullRankInterpolationIsThePermutedIdentity) {
  const Matrix a = gaussian(12, 12, 77);
  const la::InterpolativeDecomposition id = la::interpolative_decomposition(a, options(CpqrMethod::unblocked, 12));
  for (index_t i = 0; i < 12; ++i)
    for (index_t j = 0; j < 12; ++j)
      EXPECT_EQ(id.interpolation(i, id.skeleton[static_cast<std::size_t>(j)]), i == j ? 1.0 : 0.0);
}

TEST(Id, SingularR11IsRejected) {
  la::CpqrResult f = la::cpqr(gaussian(10, 6, 78), options(CpqrMethod::blocked, 3));
  f.r(1, 1) = 0.0;
  EXPECT_THROW((void)la::interpolation_matrix(f), Error);
}

TEST(Id, BasicLeastSquaresRejectsBadInput) {
  const Matrix a = gaussian(10, 6, 79);
  Matrix b = gaussian(9, 1, 80);
  EXPECT_THROW((void)la::basic_least_squares(a, b, options(CpqrMethod::blocked, 3)), Error);  // rows differ
  b = gaussian(10, 1, 80);
  b(2, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)la::basic_least_squares(a, b, options(CpqrMethod::blocked, 3)), Error);
  CpqrOptions no_q = options(CpqrMethod::blocked, 3);
  no_q.want_q = false;
  EXPECT_THROW((void)la::basic_least_squares(la::cpqr(a, no_q), gaussian(10, 1, 81)), Error);
}

}  // namespace
}  // namespace idprune::test
