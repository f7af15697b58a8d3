// Activation-aware low rank: the factorization's output error on the compression set is the optimal
// rank-r error (the trailing singular values of X W), never above plain weight-SVD truncation's, and
// singular Grams (rank-deficient inputs) give finite optimal factors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/whitened_svd.hpp"
#include "idprune/la/svd.hpp"

namespace idprune::test {
namespace {

using compress::WhitenedSvdOptions;

double sq(double x) { return x * x; }

// ||X W - X A B||_F^2
double output_error_sq(la::ConstMatrixView x, la::ConstMatrixView w, la::ConstMatrixView a, la::ConstMatrixView b) {
  Matrix diff = la::matmul(x, w);
  const Matrix xa = la::matmul(x, a);
  la::gemm(-1.0, xa, la::Op::none, b, la::Op::none, 1.0, diff);
  return sq(norm_fro(diff));
}

double trailing_sq(const std::vector<double>& s, index_t r) {
  double t = 0.0;
  for (std::size_t i = uz(r); i < s.size(); ++i) t += s[i] * s[i];
  return t;
}

// Inputs whose columns have very different scales (as pixels and ReLU features do): whitening matters.
Matrix anisotropic_inputs(index_t m, index_t d, std::uint64_t seed) {
  Matrix x = gaussian(m, d, seed);
  for (index_t j = 0; j < d; ++j)
    for (index_t i = 0; i < m; ++i) x(i, j) *= std::pow(10.0, -2.0 * static_cast<double>(j) / static_cast<double>(d));
  return x;
}

TEST(WhitenedSvd, OutputErrorIsTheOptimalRankRErrorAndBeatsWeightSvd) {
  const index_t m = 80;
  const index_t d_in = 15;
  const index_t d_out = 10;
  const Matrix x = anisotropic_inputs(m, d_in, 201);
  const Matrix w = gaussian(d_in, d_out, 202);
  const Matrix g = la::matmul(x, x, la::Op::transpose);
  const std::vector<double> sigma = la::singular_values(la::matmul(x, w));
  const la::Svd wsvd = la::svd(w);
  const double total = trailing_sq(sigma, 0);
  for (index_t r : {1, 3, 7, 10}) {
    SCOPED_TRACE(r);
    WhitenedSvdOptions o;
    o.rank = r;
    const auto f = compress::whitened_svd(g, w, o);
    ASSERT_EQ(f.a.rows(), d_in);
    ASSERT_EQ(f.a.cols(), r);
    ASSERT_EQ(f.b.rows(), r);
    ASSERT_EQ(f.b.cols(), d_out);
    EXPECT_EQ(f.whitening_rank, d_in);
    const double e = output_error_sq(x, w, f.a, f.b);
    const double optimum = trailing_sq(sigma, r);
    EXPECT_NEAR(e, optimum, 1e-10 * total);
    EXPECT_NEAR(f.output_error_sq, optimum, 1e-10 * total);
    // Plain truncation W_r = U_r S_r V_r^T.
    Matrix us(d_in, r);
    for (index_t j = 0; j < r; ++j)
      for (index_t i = 0; i < d_in; ++i) us(i, j) = wsvd.u(i, j) * wsvd.s[uz(j)];
    const double plain = output_error_sq(x, w, us, wsvd.vt.view().rows_range(0, r));
    EXPECT_LE(e, plain * (1.0 + 1e-12) + 1e-12 * total);
    if (r < d_out) {
      EXPECT_LT(e, 0.9 * plain);  // the inputs' scales make whitening clearly better
    }
  }
}

TEST(WhitenedSvd, RankDeficientInputsGiveFiniteOptimalFactors) {
  const index_t m = 50;
  const index_t d_in = 12;
  const index_t d_out = 9;
  Matrix x = low_rank(m, d_in, 5, 203);
  zero_columns(x, {2, 7});  // dead inputs: zero rows and columns in G
  const Matrix w = gaussian(d_in, d_out, 204);
  const Matrix g = la::matmul(x, x, la::Op::transpose);
  const std::vector<double> sigma = la::singular_values(la::matmul(x, w));
  const double total = trailing_sq(sigma, 0);
  for (index_t r : {2, 4, 5, 8}) {
    SCOPED_TRACE(r);
    WhitenedSvdOptions o;
    o.rank = r;
    const auto f = compress::whitened_svd(g, w, o);
    EXPECT_TRUE(la::all_finite(f.a));
    EXPECT_TRUE(la::all_finite(f.b));
    EXPECT_LE(f.whitening_rank, 5);
    EXPECT_GE(f.whitening_rank, 4);  // rank 5 minus at most what zeroing two columns removed
    const double e = output_error_sq(x, w, f.a, f.b);
    EXPECT_NEAR(e, trailing_sq(sigma, r), 1e-9 * total);
    EXPECT_LE(f.effective_rank, std::min(r, f.whitening_rank));
    // A maps the never-excited (zero) inputs to nothing: rows 2 and 7 of A vanish.
    for (index_t j = 0; j < r; ++j) {
      EXPECT_NEAR(f.a(2, j), 0.0, 1e-8 * norm_max(f.a));
      EXPECT_NEAR(f.a(7, j), 0.0, 1e-8 * norm_max(f.a));
    }
  }
}

TEST(WhitenedSvd, ZeroInputsGiveZeroFactorsWithoutNaN) {
  const Matrix w = gaussian(6, 4, 205);
  WhitenedSvdOptions o;
  o.rank = 2;
  const auto f = compress::whitened_svd(Matrix(6, 6, 0.0), w, o);
  EXPECT_EQ(f.whitening_rank, 0);
  EXPECT_EQ(f.effective_rank, 0);
  EXPECT_EQ(norm_max(f.a), 0.0);
  EXPECT_EQ(norm_max(f.b), 0.0);
  EXPECT_EQ(f.output_error_sq, 0.0);
}

TEST(WhitenedSvd, RidgeIsTheOptimumForDataAugmentedWithScaledIdentity) {
  const index_t m = 40;
  const index_t d_in = 10;
  const index_t d_out = 7;
  const Matrix x = anisotropic_inputs(m, d_in, 206);
  const Matrix w = gaussian(d_in, d_out, 207);
  const Matrix g = la::matmul(x, x, la::Op::transpose);
  WhitenedSvdOptions o;
  o.rank = 3;
  o.ridge = 0.05;
  double trace = 0.0;
  for (index_t i = 0; i < d_in; ++i) trace += g(i, i);
  const double lambda = o.ridge * trace / static_cast<double>(d_in);
  // ||X M||^2 + lambda ||M||^2 = ||[X; sqrt(lambda) I] M||^2.
  Matrix aug(m + d_in, d_in, 0.0);
  aug.block(0, 0, m, d_in).assign(x);
  for (index_t i = 0; i < d_in; ++i) aug(m + i, i) = std::sqrt(lambda);
  const auto f = compress::whitened_svd(g, w, o);
  const std::vector<double> sigma = la::singular_values(la::matmul(aug, w));
  EXPECT_NEAR(output_error_sq(aug, w, f.a, f.b), trailing_sq(sigma, 3), 1e-10 * trailing_sq(sigma, 0));
}

TEST(WhitenedSvd, CenteringKeepsTheMeanOutputExactAndNeverIncreasesTheError) {
  const index_t m = 60;
  const index_t d_in = 12;
  const index_t d_out = 8;
  Matrix x = anisotropic_inputs(m, d_in, 208);
  for (index_t j = 0; j < d_in; ++j)
    for (index_t i = 0; i < m; ++i) x(i, j) += 1.0 + 0.2 * static_cast<double>(j);  // nonzero means
  const Matrix w = gaussian(d_in, d_out, 209);
  const auto mom = compress::moments(x);
  WhitenedSvdOptions o;
  o.rank = 3;
  const auto plain = compress::whitened_svd(mom, w, o);
  o.center = true;
  const auto c = compress::whitened_svd(mom, w, o);
  ASSERT_EQ(c.bias_shift.size(), uz(d_out));
  // Residual X (W - A B) - 1 shift^T: zero column means, and its norm is the centred optimum.
  Matrix diff = la::matmul(x, w);
  la::gemm(-1.0, la::matmul(x, c.a), la::Op::none, c.b, la::Op::none, 1.0, diff);
  for (index_t j = 0; j < d_out; ++j)
    for (index_t i = 0; i < m; ++i) diff(i, j) -= c.bias_shift[uz(j)];
  const double scale = norm_fro(la::matmul(x, w));
  for (index_t j = 0; j < d_out; ++j) {
    double mean = 0.0;
    for (double v : diff.col(j)) mean += v;
    EXPECT_NEAR(mean / static_cast<double>(m), 0.0, 1e-12 * scale);
  }
  Matrix xc(x);
  const std::vector<double> mu = mom.mean();
  for (index_t j = 0; j < d_in; ++j)
    for (index_t i = 0; i < m; ++i) xc(i, j) -= mu[uz(j)];
  const std::vector<double> sigma_c = la::singular_values(la::matmul(xc, w));
  EXPECT_NEAR(sq(norm_fro(diff)), trailing_sq(sigma_c, 3), 1e-9 * sq(scale));
  EXPECT_LE(sq(norm_fro(diff)), output_error_sq(x, w, plain.a, plain.b) * (1.0 + 1e-12));
}

TEST(WhitenedSvd, RefusesBadRanksShapesAndValues) {
  const Matrix w = gaussian(5, 4, 210);
  const Matrix g = Matrix::identity(5);
  WhitenedSvdOptions o;
  o.rank = 0;
  EXPECT_THROW((void)compress::whitened_svd(g, w, o), Error);
  o.rank = 5;
  EXPECT_THROW((void)compress::whitened_svd(g, w, o), Error);
  o.rank = 2;
  EXPECT_THROW((void)compress::whitened_svd(Matrix::identity(4), w, o), Error);
  o.ridge = -1.0;
  EXPECT_THROW((void)compress::whitened_svd(g, w, o), Error);
  o.ridge = 0.0;
  o.center = true;
  EXPECT_THROW((void)compress::whitened_svd(g, w, o), Error);
  o.center = false;
  Matrix bad(g);
  bad(1, 1) = std::numeric_limits<double>::infinity();
  EXPECT_THROW((void)compress::whitened_svd(bad, w, o), Error);
}

}  // namespace
}  // namespace idprune::test
