// Singular values / SVD wrappers and the optimal low-rank errors (Eckart–Young).
#include <gtest/gtest.h>

#include <cmath>

#include "idprune/la/svd.hpp"
#include "la/la_checks.hpp"
#include "support/matrices.hpp"

namespace idprune::test {
namespace {

TEST(Svd, SingularValuesOfAConstructedMatrixAreRecovered) {
  for (auto [m, n] : {std::pair<index_t, index_t>{40, 25}, {25, 40}, {30, 30}}) {
    const index_t r = std::min(m, n);
    std::vector<double> sigma;
    for (index_t j = 0; j < r; ++j) sigma.push_back(std::pow(0.7, static_cast<double>(j)));
    const Matrix a = with_singular_values(m, n, sigma, 91);
    const std::vector<double> s = la::singular_values(a);
    ASSERT_EQ(s.size(), sigma.size());
    for (std::size_t j = 0; j < s.size(); ++j) EXPECT_NEAR(s[j], sigma[j], 10 * eps * std::max(m, n)) << "j=" << j;
    EXPECT_NEAR(la::norm2(a), 1.0, 10 * eps * std::max(m, n));
  }
}

TEST(Svd, ThinSvdReconstructsWithOrthonormalFactors) {
  for (auto [m, n] : {std::pair<index_t, index_t>{35, 20}, {20, 35}}) {
    const Matrix a = gaussian(m, n, 92);
    const la::Svd d = la::svd(a);
    const index_t r = std::min(m, n);
    ASSERT_EQ(d.u.rows(), m);
    ASSERT_EQ(d.u.cols(), r);
    ASSERT_EQ(d.vt.rows(), r);
    ASSERT_EQ(d.vt.cols(), n);
    EXPECT_LE(orthonormality_error(d.u), 10 * eps * m);
    EXPECT_LE(orthonormality_error(la::transpose(d.vt)), 10 * eps * n);
    Matrix us(d.u);
    for (index_t j = 0; j < r; ++j)
      for (double& v : us.col(j)) v *= d.s[static_cast<std::size_t>(j)];
    const double scale = 10 * eps * std::max(m, n) * d.s[0];
    EXPECT_LE(la::norm_fro(difference(a, la::matmul(us, d.vt))), scale * std::sqrt(static_cast<double>(r)));
    for (std::size_t j = 1; j < d.s.size(); ++j) EXPECT_LE(d.s[j], d.s[j - 1]);
  }
}

TEST(Svd, OptimalRankKErrorIsSigmaKPlus1) {
  const Matrix a = gaussian(30, 22, 93);
  const la::Svd d = la::svd(a);
  const std::vector<double> e = la::optimal_rank_k_errors(d.s);
  ASSERT_EQ(e.size(), d.s.size() + 1);
  EXPECT_EQ(e.back(), 0.0);
  for (index_t k : {0, 1, 5, 21}) {
    // The truncated SVD attains it.
    Matrix uk(d.u.block(0, 0, 30, k));
    for (index_t j = 0; j < k; ++j)
      for (double& v : uk.col(j)) v *= d.s[static_cast<std::size_t>(j)];
    const Matrix ak = la::matmul(uk, d.vt.block(0, 0, k, 22));
    EXPECT_NEAR(la::norm2(difference(a, ak)), e[static_cast<std::size_t>(k)], 10 * eps * 30 * d.s[0]) << "k=" << k;
  }
}

TEST(Svd, EmptyAndBadInput) {
  EXPECT_TRUE(la::singular_values(Matrix(0, 5)).empty());
  EXPECT_EQ(la::norm2(Matrix(3, 0)), 0.0);
  Matrix a = gaussian(5, 4, 94);
  a(0, 0) = std::numeric_limits<double>::infinity();
  EXPECT_THROW((void)la::singular_values(a), Error);
  EXPECT_THROW((void)la::svd(a), Error);
}

}  // namespace
}  // namespace idprune::test
