// Column-pivoted QR: factorization identities, greedy property, stopping rules, prefix property,
// agreement of the three methods, and rejection of bad input. Tolerances are c * eps * size * norm
// with the small c stated at each use; the norm-downdating estimates are trusted to about
// sqrt(eps) relative (LAWN 176), which bounds how far the greedy property can be off.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "idprune/la/svd.hpp"
#include "la/la_checks.hpp"
#include "support/matrices.hpp"

namespace idprune::test {
namespace {

using la::CpqrMethod;
using la::CpqrOptions;
using la::CpqrResult;

constexpr CpqrMethod kMethods[] = {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack};
// Relative accuracy of the downdated norm estimates that steer pivoting (LAWN 176): pivots are
// greedy with respect to the estimates, so |r_{j+1,j+1}| may exceed |r_jj| by about this much.
const double kEstimateTol = 10.0 * std::sqrt(eps);

CpqrOptions options(CpqrMethod method, index_t max_rank = -1, double rel_tol = 0.0, index_t block_size = 8) {
  CpqrOptions o;
  o.method = method;
  o.max_rank = max_rank;
  o.rel_tol = rel_tol;
  o.block_size = block_size;  // small panels so that several panels and their boundaries are exercised
  o.want_q = true;
  return o;
}

// Every structural property of a (partial) CPQR result of `a`.
void expect_valid_factorization(const Matrix& a, const CpqrResult& f, const std::string& what) {
  SCOPED_TRACE(what);
  const index_t m = a.rows();
  const index_t n = a.cols();
  const index_t k = f.rank;
  ASSERT_TRUE(is_permutation(f.pivots, n));
  ASSERT_EQ(f.r.rows(), k);
  ASSERT_EQ(f.r.cols(), n);
  ASSERT_EQ(static_cast<index_t>(f.diag.size()), k);
  const double scale = std::max<index_t>(m, n) * std::max(la::norm_fro(a), std::numeric_limits<double>::min());

  // R upper trapezoidal (exact zeros), |r_jj| = diag, non-increasing up to the estimate accuracy.
  for (index_t j = 0; j < k; ++j) {
    for (index_t i = j + 1; i < k; ++i) EXPECT_EQ(f.r(i, j), 0.0) << "R(" << i << "," << j << ")";
    EXPECT_EQ(std::abs(f.r(j, j)), f.diag[static_cast<std::size_t>(j)]);
    EXPECT_GT(f.diag[static_cast<std::size_t>(j)], 0.0) << "zero diagonal selected at step " << j;
    if (j > 0) {
      EXPECT_LE(f.diag[static_cast<std::size_t>(j)], f.diag[static_cast<std::size_t>(j) - 1] * (1 + kEstimateTol));
    }
  }
  if (k > 0) {
    EXPECT_LE(f.next_diag, f.diag.back() * (1 + kEstimateTol));
  }

  // A P = Q [R11 R12; 0 M]: Q orthonormal, Q^T A P reproduces R on top (c = 10).
  const Matrix q = la::cpqr_q(f);
  ASSERT_EQ(q.rows(), m);
  ASSERT_EQ(q.cols(), k);
  EXPECT_LE(orthonormality_error(q), 10 * eps * m);
  const Matrix ap = la::select_columns(a, f.pivots);
  const Matrix qr = la::matmul(q, f.r);
  const Matrix c = reduced(a, f);
  EXPECT_LE(la::norm_fro(difference(c.block(0, 0, k, n), f.r)), 10 * eps * scale);

  // The remainder: A P - Q R = Q2 M, so its Frobenius norm and largest column norm are
  // residual_fro and next_diag (c = 10).
  const Matrix e = difference(ap, qr);
  EXPECT_NEAR(la::norm_fro(e), f.residual_fro, 10 * eps * scale);
  double max_col = 0.0;
  for (index_t j = 0; j < n; ++j) max_col = std::max(max_col, la::nrm2(e.col(j)));
  EXPECT_NEAR(max_col, f.next_diag, 10 * eps * scale);
  // The first k columns of A P are reproduced: e(:, 0:k) is rounding only.
  EXPECT_LE(la::norm_fro(e.block(0, 0, m, k)), 10 * eps * scale);
}

// ---- Shapes x methods ----------------------------------------------------------------------------
class CpqrShapes : public ::testing::TestWithParam<std::tuple<CpqrMethod, index_t, index_t>> {};

TEST_P(CpqrShapes, FullFactorizationIsValidQrWithGreedyDiagonal) {
  const auto [method, m, n] = GetParam();
  const std::uint64_t seed = 11;
  const Matrix a = gaussian(m, n, seed);
  const CpqrResult f = la::cpqr(a, options(method));
  EXPECT_EQ(f.rank, std::min(m, n));
  EXPECT_EQ(f.next_diag, 0.0);
  EXPECT_EQ(f.residual_fro, 0.0);
  expect_valid_factorization(a, f, describe(m, n, method, seed));
}

TEST_P(CpqrShapes, EarlyStopAtMaxRankIsValidPartialFactorization) {
  const auto [method, m, n] = GetParam();
  const std::uint64_t seed = 12;
  const Matrix a = gaussian(m, n, seed);
  for (index_t k : {index_t{1}, std::min(m, n) / 2, std::min(m, n) - 1}) {
    const CpqrResult f = la::cpqr(a, options(method, k));
    EXPECT_EQ(f.rank, k);
    expect_valid_factorization(a, f, describe(m, n, method, seed) + " k=" + std::to_string(k));
  }
}

TEST_P(CpqrShapes, PrefixPropertyEarlyStoppedPivotsAreFirstPivotsOfFull) {
  const auto [method, m, n] = GetParam();
  const std::uint64_t seed = 13;
  const Matrix a = gaussian(m, n, seed);
  const CpqrResult full = la::cpqr(a, options(method));
  for (index_t k : {index_t{1}, index_t{3}, std::min(m, n) / 2}) {
    SCOPED_TRACE(describe(m, n, method, seed) + " k=" + std::to_string(k));
    const CpqrResult part = la::cpqr(a, options(method, k));
    ASSERT_EQ(part.rank, k);
    for (index_t j = 0; j < k; ++j)
      EXPECT_EQ(part.pivots[static_cast<std::size_t>(j)], full.pivots[static_cast<std::size_t>(j)]);
    // The same k steps: equal rows of R up to rounding (c = 10), column by column of A (the order
    // of the unselected columns depends on later steps).
    std::vector<index_t> position(static_cast<std::size_t>(n));
    for (index_t j = 0; j < n; ++j) position[static_cast<std::size_t>(full.pivots[static_cast<std::size_t>(j)])] = j;
    Matrix full_rows(k, n);
    for (index_t j = 0; j < n; ++j) {
      const index_t p = position[static_cast<std::size_t>(part.pivots[static_cast<std::size_t>(j)])];
      for (index_t i = 0; i < k; ++i) full_rows(i, j) = full.r(i, p);
    }
    EXPECT_LE(la::norm_fro(difference(part.r, full_rows)), 10 * eps * std::max(m, n) * la::norm_fro(a));
  }
}

TEST_P(CpqrShapes, R22NormBoundedBySigma1AndBelowBySigmaKPlus1) {
  const auto [method, m, n] = GetParam();
  const std::uint64_t seed = 14;
  const Matrix a = gaussian(m, n, seed);
  const std::vector<double> sigma = la::singular_values(a);
  for (index_t k = 1; k < std::min(m, n); k += 3) {
    const CpqrResult f = la::cpqr(a, options(method, k));
    const double r22 = la::norm2(remainder(a, f));
    const double tol = 10 * eps * std::max(m, n) * sigma[0];
    EXPECT_LE(r22, sigma[0] + tol) << "k=" << k;                            // Question 3
    EXPECT_GE(r22, sigma[static_cast<std::size_t>(k)] - tol) << "k=" << k;  // Eckart–Young
  }
}

INSTANTIATE_TEST_SUITE_P(TallWideSquare, CpqrShapes,
                         ::testing::Combine(::testing::ValuesIn(kMethods), ::testing::Values<index_t>(60, 33, 45),
                                            ::testing::Values<index_t>(40, 57)),
                         [](const auto& info) {
                           return std::string(la::to_string(std::get<0>(info.param))) + "_" +
                                  std::to_string(std::get<1>(info.param)) + "x" +
                                  std::to_string(std::get<2>(info.param));
                         });

// ---- Agreement of the three methods ----------------------------------------------------------------
TEST(Cpqr, AllMethodsAgreeOnPivotsAndDiagonalWithoutNearTies) {
  for (std::uint64_t seed : {21, 22, 23}) {
    for (auto [m, n] : {std::pair<index_t, index_t>{150, 90}, {90, 150}, {120, 120}}) {
      SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n) + " seed=" + std::to_string(seed));
      const Matrix a = gaussian(m, n, seed);
      const CpqrResult ref = la::cpqr(a, options(CpqrMethod::lapack));
      for (CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked}) {
        for (index_t block : {index_t{8}, index_t{32}}) {
          const CpqrResult f = la::cpqr(a, options(method, -1, 0.0, block));
          EXPECT_EQ(f.pivots, ref.pivots) << la::to_string(method);
          for (std::size_t j = 0; j < ref.diag.size(); ++j)
            EXPECT_NEAR(f.diag[j], ref.diag[j], 10 * eps * std::max(m, n) * la::norm_fro(a)) << "j=" << j;
        }
      }
    }
  }
}

TEST(Cpqr, AllMethodsAgreeOnErrorsForDecayingSpectrum) {
  // Singular values 2^-j: the errors ||R22|| are what matters, whatever the pivots.
  std::vector<double> sigma;
  for (int j = 0; j < 40; ++j) sigma.push_back(std::ldexp(1.0, -j));
  const Matrix a = with_singular_values(100, 70, sigma, 31);
  for (index_t k : {5, 15, 30}) {
    const CpqrResult ref = la::cpqr(a, options(CpqrMethod::lapack, k));
    const double ref_err = la::norm2(remainder(a, ref));
    for (CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked}) {
      const CpqrResult f = la::cpqr(a, options(method, k));
      const double err = la::norm2(remainder(a, f));
      EXPECT_NEAR(err, ref_err, 10 * eps * 100 * sigma[0]) << la::to_string(method) << " k=" << k;
      EXPECT_NEAR(f.residual_fro, ref.residual_fro, 10 * eps * 100 * sigma[0]) << la::to_string(method) << " k=" << k;
    }
  }
}

// ---- Tall-matrix QR preprocessing of the blocked method -----------------------------------------
// [R11 R12]^T R11 = (A P)^T A(:, C): the first k columns of the Gram matrix, which any valid
// partial CPQR reproduces whatever Q is (c = 10).
void expect_gram_consistent(const Matrix& a, const CpqrResult& f) {
  const index_t k = f.rank;
  const Matrix ap = la::select_columns(a, f.pivots);
  const Matrix lhs = la::matmul(f.r, f.r.block(0, 0, k, k), la::Op::transpose, la::Op::none);
  const Matrix rhs = la::matmul(ap, ap.block(0, 0, a.rows(), k), la::Op::transpose, la::Op::none);
  const double na = la::norm_fro(a);
  EXPECT_LE(la::norm_fro(difference(lhs, rhs)), 10 * eps * a.rows() * na * na);
}

// The preprocessing is used for m >= 2n, k >= n/4 and m n >= 2^19 (cpqr.cpp): these shapes qualify.
TEST(Cpqr, TallQrPreprocessingGivesTheSameFactorization) {
  for (auto [m, n] : {std::pair<index_t, index_t>{2000, 270}, {1100, 480}}) {
    const Matrix a = gaussian(m, n, 24);
    for (index_t k : {n, n / 2, index_t{5}}) {
      SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n) + " k=" + std::to_string(k));
      CpqrOptions o = options(CpqrMethod::blocked, k);
      o.want_q = false;  // preprocessing applies only without Q
      const CpqrResult pre = la::cpqr(a, o);
      o.tall_qr_preprocessing = false;
      const CpqrResult direct = la::cpqr(a, o);
      const CpqrResult ref = la::cpqr(a, options(CpqrMethod::lapack, k));
      EXPECT_EQ(pre.rank, k);
      EXPECT_EQ(pre.pivots, direct.pivots);
      for (index_t j = 0; j < k; ++j)
        EXPECT_EQ(pre.pivots[static_cast<std::size_t>(j)], ref.pivots[static_cast<std::size_t>(j)]);
      const double tol = 10 * eps * m * la::norm_fro(a);
      for (std::size_t j = 0; j < pre.diag.size(); ++j) EXPECT_NEAR(pre.diag[j], direct.diag[j], tol) << "j=" << j;
      EXPECT_NEAR(pre.residual_fro, direct.residual_fro, tol);
      EXPECT_NEAR(pre.next_diag, direct.next_diag, tol);
      // R is unique up to the signs of its rows (Householder sign choices differ on R0).
      Matrix signed_r(pre.r);
      for (index_t i = 0; i < k; ++i)
        if ((signed_r(i, i) < 0) != (direct.r(i, i) < 0))
          for (index_t j = 0; j < n; ++j) signed_r(i, j) = -signed_r(i, j);
      EXPECT_LE(la::norm_fro(difference(signed_r, direct.r)), tol);
      expect_gram_consistent(a, pre);
    }
  }
}

TEST(Cpqr, TallQrPreprocessingKeepsTheStoppingRules) {
  Matrix a = low_rank(11000, 50, 9, 25);
  zero_columns(a, {0, 7, 49});
  CpqrOptions o = options(CpqrMethod::blocked, -1, 1e-10);
  o.want_q = false;
  const CpqrResult f = la::cpqr(a, o);
  EXPECT_EQ(f.rank, 9);
  for (index_t c : f.skeleton()) EXPECT_TRUE(c != 0 && c != 7 && c != 49) << c;
  expect_gram_consistent(a, f);
  Matrix z = gaussian(11000, 50, 26);
  zero_columns(z, {3, 4});
  o.rel_tol = 0.0;
  const CpqrResult g = la::cpqr(z, o);  // no tolerance: the exact-zero rule stops at 48
  EXPECT_EQ(g.rank, 48);
  EXPECT_EQ(g.residual_fro, 0.0);
}

// ---- Stopping rules --------------------------------------------------------------------------------
TEST(Cpqr, RelativeToleranceStopsAtFirstSmallDiagonal) {
  std::vector<double> sigma;
  for (int j = 0; j < 30; ++j) sigma.push_back(std::pow(10.0, -0.5 * j));
  const Matrix a = with_singular_values(80, 50, sigma, 41);
  for (CpqrMethod method : kMethods) {
    for (double tol : {1e-2, 1e-5, 1e-9}) {
      SCOPED_TRACE(std::string(la::to_string(method)) + " tol=" + std::to_string(tol));
      const CpqrResult f = la::cpqr(a, options(method, -1, tol));
      ASSERT_GT(f.rank, 0);
      ASSERT_LT(f.rank, 30);
      const double r11 = f.diag[0];
      EXPECT_GT(f.diag.back(), tol * r11);                     // every kept step passes the test
      EXPECT_LE(f.next_diag, tol * r11 * (1 + kEstimateTol));  // the next one fails it
      expect_valid_factorization(a, f, "rel_tol");
    }
  }
}

TEST(Cpqr, MaxRankAndToleranceTogetherTakeTheEarlierStop) {
  const Matrix a = gaussian(50, 40, 42);
  for (CpqrMethod method : kMethods) {
    const CpqrResult tol_only = la::cpqr(a, options(method, -1, 0.5));
    ASSERT_GT(tol_only.rank, 2);
    EXPECT_EQ(la::cpqr(a, options(method, 2, 0.5)).rank, 2) << la::to_string(method);
    EXPECT_EQ(la::cpqr(a, options(method, tol_only.rank + 5, 0.5)).rank, tol_only.rank) << la::to_string(method);
  }
}

TEST(Cpqr, ToleranceAtLeastOneGivesRankZero) {
  const Matrix a = gaussian(20, 10, 43);
  for (CpqrMethod method : kMethods) {
    const CpqrResult f = la::cpqr(a, options(method, -1, 1.0));
    EXPECT_EQ(f.rank, 0) << la::to_string(method);
  }
}

TEST(Cpqr, RankZeroAndFullRankRequests) {
  const Matrix a = gaussian(30, 20, 44);
  for (CpqrMethod method : kMethods) {
    SCOPED_TRACE(la::to_string(method));
    const CpqrResult f0 = la::cpqr(a, options(method, 0));
    EXPECT_EQ(f0.rank, 0);
    EXPECT_EQ(f0.r.rows(), 0);
    EXPECT_EQ(f0.r.cols(), 20);
    EXPECT_NEAR(f0.residual_fro, la::norm_fro(a), 10 * eps * 30 * la::norm_fro(a));
    double max_col = 0.0;
    for (index_t j = 0; j < 20; ++j) max_col = std::max(max_col, la::nrm2(a.col(j)));
    EXPECT_NEAR(f0.next_diag, max_col, 10 * eps * 30 * max_col);
    EXPECT_EQ(la::cpqr_q(f0).cols(), 0);
    const CpqrResult fn = la::cpqr(a, options(method, 20));
    EXPECT_EQ(fn.rank, 20);
    expect_valid_factorization(a, fn, "k=n");
  }
}

TEST(Cpqr, TinyShapes) {
  for (CpqrMethod method : kMethods) {
    for (auto [m, n] : {std::pair<index_t, index_t>{1, 1}, {1, 6}, {6, 1}, {2, 3}}) {
      const Matrix a = gaussian(m, n, 45);
      const CpqrResult f = la::cpqr(a, options(method));
      EXPECT_EQ(f.rank, std::min(m, n));
      expect_valid_factorization(a, f, describe(m, n, method, 45));
    }
    const CpqrResult e = la::cpqr(Matrix(0, 4), options(method));
    EXPECT_EQ(e.rank, 0);
    EXPECT_TRUE(is_permutation(e.pivots, 4));
    EXPECT_EQ(la::cpqr(Matrix(4, 0), options(method)).rank, 0);
  }
}

// ---- Rank deficiency and zero columns ---------------------------------------------------------------
TEST(Cpqr, RankDeficientMatrixRevealsItsRank) {
  for (auto [m, n, r] : {std::tuple<index_t, index_t, index_t>{60, 40, 7}, {40, 60, 12}, {50, 50, 25}}) {
    const Matrix a = low_rank(m, n, r, 51);
    for (CpqrMethod method : kMethods) {
      SCOPED_TRACE(describe(m, n, method, 51) + " r=" + std::to_string(r));
      // Rounding leaves |r_{r+1,r+1}| ~ eps ||A||: a tolerance far above that and far below the
      // signal finds the rank.
      const CpqrResult f = la::cpqr(a, options(method, -1, 1e-10));
      EXPECT_EQ(f.rank, r);
      EXPECT_LE(f.residual_fro, 100 * eps * std::max(m, n) * la::norm_fro(a));
      expect_valid_factorization(a, f, "rank deficient");
    }
  }
}

TEST(Cpqr, ZeroColumnsAreNeverSelected) {
  Matrix a = gaussian(40, 30, 52);
  const std::vector<index_t> dead = {0, 3, 4, 17, 29};
  zero_columns(a, dead);
  for (CpqrMethod method : kMethods) {
    SCOPED_TRACE(la::to_string(method));
    const CpqrResult f = la::cpqr(a, options(method));  // no tolerance: the zero rule alone stops it
    EXPECT_EQ(f.rank, 25);
    EXPECT_EQ(f.next_diag, 0.0);
    EXPECT_EQ(f.residual_fro, 0.0);
    for (index_t c : f.skeleton())
      EXPECT_EQ(std::count(dead.begin(), dead.end(), c), 0) << "selected dead column " << c;
    expect_valid_factorization(a, f, "zero columns");
  }
}

TEST(Cpqr, ExactlyZeroRemainderStopsTheFactorization) {
  // Columns that are signed powers of two times e_4, e_5 or e_6: each reflector then maps the
  // multiples of its pivot column exactly (v = e_0 +- e_i, tau = 1), so after three steps the
  // remainder is exactly zero and the rule "never select a zero diagonal" stops at rank 3
  // without any tolerance.
  const index_t m = 12;
  const index_t n = 20;
  const Matrix g = gaussian(1, n, 53);
  Matrix a(m, n);
  for (index_t j = 0; j < n; ++j) a(j % 3 + 4, j) = std::ldexp(g(0, j) > 0 ? 1.0 : -1.0, static_cast<int>(j % 5) - 2);
  for (CpqrMethod method : kMethods) {
    SCOPED_TRACE(la::to_string(method));
    const CpqrResult f = la::cpqr(a, options(method));
    EXPECT_EQ(f.rank, 3);
    EXPECT_EQ(f.residual_fro, 0.0);
    expect_valid_factorization(a, f, "exact zero remainder");
  }
}

TEST(Cpqr, ZeroMatrixHasRankZero) {
  const Matrix a(15, 10);
  for (CpqrMethod method : kMethods) {
    const CpqrResult f = la::cpqr(a, options(method));
    EXPECT_EQ(f.rank, 0) << la::to_string(method);
    EXPECT_EQ(f.next_diag, 0.0);
    EXPECT_TRUE(is_permutation(f.pivots, 10));
  }
}

// ---- Norm downdating -------------------------------------------------------------------------------
TEST(Cpqr, NormDowndatingRecomputesAfterCancellation) {
  // Columns x + 10^-(6+j/2) g_j nearly parallel to a leading column x: after the first step their
  // remaining norms are ~1e-6..1e-11 of the original, below what the downdating formula
  // sqrt(1 - (r/vn)^2) vn can resolve (~sqrt(eps) vn). Only the LAWN 176 recomputation keeps the
  // estimates, and so the greedy order, right.
  const index_t m = 80;
  const index_t n = 12;
  const Matrix g = gaussian(m, n, 27);
  Matrix a(m, n);
  for (index_t i = 0; i < m; ++i) a(i, 0) = g(i, 0);
  for (index_t j = 1; j < n; ++j)
    for (index_t i = 0; i < m; ++i) a(i, j) = g(i, 0) + std::pow(10.0, -6.0 - 0.5 * static_cast<double>(j)) * g(i, j);
  for (CpqrMethod method : kMethods) {
    const CpqrResult f = la::cpqr(a, options(method));
    expect_valid_factorization(a, f, std::string(la::to_string(method)));
    // Greedy order of the tiny remainders: each step takes the largest remaining column.
    for (std::size_t j = 2; j < f.diag.size(); ++j) EXPECT_LE(f.diag[j], f.diag[j - 1] * (1 + kEstimateTol)) << j;
  }
}

// ---- Kahan's matrix ------------------------------------------------------------------------------
TEST(Cpqr, KahanMatrixFactorsCorrectlyYetHidesItsNearRankDeficiency) {
  // Kahan's matrix with its columns scaled by (1 - 1e-6)^j so that greedy pivoting has no exact
  // ties: every column then has (nearly) unit remaining norm at each step, pivoting keeps the
  // order, and |r_nn| stays far above sigma_min (the classic failure of CPQR rank revealing).
  const index_t n = 40;
  Matrix a = kahan(n, 0.285);
  for (index_t j = 0; j < n; ++j)
    for (double& v : a.col(j)) v *= std::pow(1.0 - 1e-6, static_cast<double>(j));
  const std::vector<double> sigma = la::singular_values(a);
  for (CpqrMethod method : kMethods) {
    SCOPED_TRACE(la::to_string(method));
    const CpqrResult f = la::cpqr(a, options(method));
    expect_valid_factorization(a, f, "kahan");
    EXPECT_GT(f.diag.back(), 1e3 * sigma.back());
    // Still a valid bound: ||R22||_2 <= sigma_1 at every k.
    for (index_t k = 1; k < n; k += 7)
      EXPECT_LE(la::norm2(f.r.block(k, k, n - k, n - k)), sigma[0] * (1 + 10 * eps * n));
  }
}

// ---- Bad input -----------------------------------------------------------------------------------
TEST(Cpqr, NanAndInfInputAreRejected) {
  for (CpqrMethod method : kMethods) {
    Matrix a = gaussian(10, 8, 61);
    a(3, 5) = std::numeric_limits<double>::quiet_NaN();
    EXPECT_THROW((void)la::cpqr(a, options(method)), Error);
    a(3, 5) = std::numeric_limits<double>::infinity();
    EXPECT_THROW((void)la::cpqr(a, options(method)), Error);
  }
}

TEST(Cpqr, BadOptionsAreRejected) {
  const Matrix a = gaussian(10, 8, 62);
  EXPECT_THROW((void)la::cpqr(a, options(CpqrMethod::blocked, 9)), Error);  // > min(m, n)
  EXPECT_THROW((void)la::cpqr(a, options(CpqrMethod::blocked, -2)), Error);
  EXPECT_THROW((void)la::cpqr(a, options(CpqrMethod::blocked, -1, -1e-3)), Error);
  EXPECT_THROW((void)la::cpqr(a, options(CpqrMethod::blocked, -1, std::numeric_limits<double>::quiet_NaN())), Error);
  EXPECT_THROW((void)la::cpqr(a, options(CpqrMethod::blocked, -1, 0.0, 0)), Error);
  try {
    (void)la::cpqr(a, options(CpqrMethod::blocked, 9));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_rank=9"), std::string::npos) << e.what();
  }
}

TEST(Cpqr, MethodNamesRoundTrip) {
  for (CpqrMethod method : kMethods) EXPECT_EQ(la::parse_cpqr_method(la::to_string(method)), method);
  EXPECT_THROW((void)la::parse_cpqr_method("householder"), Error);
}

TEST(Cpqr, QRequiresWantQ) {
  CpqrOptions o;
  o.want_q = false;
  const CpqrResult f = la::cpqr(gaussian(10, 5, 63), o);
  EXPECT_THROW((void)la::cpqr_q(f), Error);
}

}  // namespace
}  // namespace idprune::test
