// The kernel-matrix test problem: seeded points, exact formula, symmetry, positive semidefiniteness.
#include <gtest/gtest.h>

#include <cmath>

#include "idprune/la/kernel.hpp"
#include "idprune/la/lapack.hpp"
#include "la/la_checks.hpp"

namespace idprune::test {
namespace {

TEST(Kernel, PointsAreSeededUniformAndPrefixStable) {
  const Matrix x = la::uniform_points(50, 2, 7);
  const Matrix y = la::uniform_points(80, 2, 7);
  const Matrix z = la::uniform_points(50, 2, 8);
  double mean = 0.0;
  for (index_t i = 0; i < 50; ++i) {
    for (index_t d = 0; d < 2; ++d) {
      EXPECT_GE(x(i, d), 0.0);
      EXPECT_LT(x(i, d), 1.0);
      EXPECT_EQ(x(i, d), y(i, d));  // the first n points do not depend on how many are drawn
      mean += x(i, d) / 100.0;
    }
  }
  EXPECT_NE(la::norm_max(difference(x, z)), 0.0);
  EXPECT_NEAR(mean, 0.5, 0.15);  // 100 uniforms: standard deviation of the mean ~0.03
}

TEST(Kernel, MatrixFollowsTheFormulaAndIsSymmetricPositiveSemidefinite) {
  const index_t n = 60;
  const Matrix x = la::uniform_points(n, 2, 0);
  const Matrix g = la::kernel_study_matrix(n, 0);
  ASSERT_EQ(g.rows(), n);
  ASSERT_EQ(g.cols(), n);
  for (index_t j = 0; j < n; ++j) {
    EXPECT_EQ(g(j, j), 1.0);
    for (index_t i = 0; i < n; ++i) {
      EXPECT_EQ(g(i, j), g(j, i));
      const double dx = x(i, 0) - x(j, 0);
      const double dy = x(i, 1) - x(j, 1);
      EXPECT_NEAR(g(i, j), std::exp(-2.0 * (dx * dx + dy * dy)), 4 * eps);
    }
  }
  // Positive semidefinite (Gaussian kernel): pivoted Cholesky runs through without a negative
  // pivot above rounding; with a shift of c eps n ||G|| (c = 10) the full Cholesky succeeds.
  Matrix shifted(g);
  for (index_t j = 0; j < n; ++j) shifted(j, j) += 10 * eps * n * n;
  EXPECT_NO_THROW(la::potrf_upper(shifted.view()));
}

TEST(Kernel, BadParametersAreRejected) {
  EXPECT_THROW((void)la::uniform_points(-1, 2, 0), Error);
  EXPECT_THROW((void)la::uniform_points(3, 0, 0), Error);
  EXPECT_THROW((void)la::gaussian_kernel(Matrix(3, 2), 0.0), Error);
}

}  // namespace
}  // namespace idprune::test
