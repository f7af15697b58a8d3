// The CPQR-versus-SVD error table (reference text, Goal 3) computed by la::cpqr_vs_svd_errors.
#include <gtest/gtest.h>

#include <cmath>

#include "idprune/la/kernel.hpp"
#include "idprune/la/lowrank.hpp"
#include "idprune/la/svd.hpp"
#include "la/la_checks.hpp"
#include "support/matrices.hpp"

namespace idprune::test {
namespace {

TEST(CpqrVsSvd, TableMatchesTheDefinitionsOnTheKernelMatrix) {
  const index_t n = 80;
  const Matrix g = la::kernel_study_matrix(n, 0);
  const index_t kmax = 40;
  const la::LowRankComparison t = la::cpqr_vs_svd_errors(g, kmax);
  ASSERT_EQ(static_cast<index_t>(t.rows.size()), kmax);
  const std::vector<double> sigma = la::singular_values(g);
  EXPECT_EQ(t.sigma1, sigma[0]);
  EXPECT_EQ(t.rounding_level, la::default_rounding_tol * sigma[0]);
  index_t above = 0;
  for (const la::LowRankRow& row : t.rows) {
    SCOPED_TRACE("k=" + std::to_string(row.k));
    EXPECT_EQ(row.svd_error, sigma[static_cast<std::size_t>(row.k)]);
    // No rank-k approximation beats the SVD (Eckart–Young), c = 10.
    EXPECT_GE(row.cpqr_error, row.svd_error - 10 * eps * n * sigma[0]);
    EXPECT_LE(row.cpqr_error, sigma[0] * (1 + 10 * eps * n));  // ||R22|| <= sigma_1
    if (row.svd_error > t.rounding_level) ++above;
  }
  EXPECT_EQ(above, t.rows_above_rounding);
  // The cpqr_error column is the actual ID error ||G - G(:, C) T||_2 (checked where it is above rounding).
  for (index_t k : {1, 5, 12}) {
    la::CpqrOptions o;
    o.max_rank = k;
    const la::InterpolativeDecomposition id = la::interpolative_decomposition(g, o);
    const Matrix approx = la::matmul(la::select_columns(g, id.skeleton), id.interpolation);
    const double err = la::norm2(difference(g, approx));
    EXPECT_NEAR(t.rows[static_cast<std::size_t>(k - 1)].cpqr_error, err,
                10 * eps * n * sigma[0] * std::max(1.0, la::norm2(id.interpolation)))
        << "k=" << k;
  }
}

TEST(CpqrVsSvd, RankDeficientMatrixGivesZeroErrorsBeyondItsRank) {
  Matrix a = low_rank(30, 20, 4, 111);
  zero_columns(a, {3});
  const la::LowRankComparison t = la::cpqr_vs_svd_errors(a, 20);
  ASSERT_EQ(t.rows.size(), 20U);
  EXPECT_EQ(t.rows.back().cpqr_error, 0.0);
  EXPECT_TRUE(std::isnan(t.rows.back().ratio));  // sigma_21 does not exist: svd_error = 0
  EXPECT_LE(t.rows_above_rounding, 4);
}

TEST(CpqrVsSvd, BadArgumentsAreRejected) {
  const Matrix a = gaussian(10, 8, 112);
  EXPECT_THROW((void)la::cpqr_vs_svd_errors(a, 0), Error);
  EXPECT_THROW((void)la::cpqr_vs_svd_errors(a, 9), Error);
  EXPECT_THROW((void)la::cpqr_vs_svd_errors(a, 3, {}, 0.0), Error);
  EXPECT_THROW((void)la::cpqr_vs_svd_errors(a, 3, {}, -1.0), Error);
  Matrix b(a);
  b(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)la::cpqr_vs_svd_errors(b, 3), Error);
}

}  // namespace
}  // namespace idprune::test
