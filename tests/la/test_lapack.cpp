// LAPACK wrappers: QR pieces, the triangle-on-triangle QR of a TSQR tree (dtpqrt), Cholesky and
// pivoted Cholesky (dpstrf), and error reporting.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <cmath>

#include "idprune/la/cpqr.hpp"
#include "idprune/la/lapack.hpp"
#include "la/la_checks.hpp"
#include "support/matrices.hpp"

namespace idprune::test {
namespace {

Matrix upper_part(la::ConstMatrixView a) {
  Matrix r(a.rows(), a.cols());
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i <= std::min(j, a.rows() - 1); ++i) r(i, j) = a(i, j);
  return r;
}

// R^T R, the Gram matrix a QR factor must reproduce.
Matrix gram(la::ConstMatrixView r) { return la::matmul(r, r, la::Op::transpose, la::Op::none); }

// A^T A + B^T B, the Gram matrix of [A; B], and ||A||_F^2 + ||B||_F^2 (its scale for tolerances).
std::pair<Matrix, double> stacked_gram(const Matrix& a, const Matrix& b) {
  Matrix g = gram(a);
  const Matrix gb = gram(b);
  for (index_t j = 0; j < g.cols(); ++j)
    for (index_t i = 0; i < g.rows(); ++i) g(i, j) += gb(i, j);
  return {g, la::norm_fro(a) * la::norm_fro(a) + la::norm_fro(b) * la::norm_fro(b)};
}

TEST(Lapack, GeqrfOrgqrOrmqrAreConsistent) {
  const index_t m = 40;
  const index_t n = 15;
  const Matrix a = gaussian(m, n, 101);
  Matrix f(a);
  const std::vector<double> tau = la::geqrf(f.view());
  ASSERT_EQ(tau.size(), 15U);
  Matrix q(f);
  la::orgqr(q.view(), tau);
  EXPECT_LE(orthonormality_error(q), 10 * eps * m);
  const Matrix r = upper_part(f.block(0, 0, n, n));
  EXPECT_LE(la::norm_fro(difference(a, la::matmul(q, r))), 10 * eps * m * la::norm_fro(a));
  // Q^T A by ormqr equals [R; 0].
  Matrix qta(a);
  la::ormqr(la::Side::left, la::Op::transpose, f, tau, qta.view());
  EXPECT_LE(la::norm_fro(difference(qta.block(0, 0, n, n), r)), 10 * eps * m * la::norm_fro(a));
  EXPECT_LE(la::norm_fro(qta.block(n, 0, m - n, n)), 10 * eps * m * la::norm_fro(a));
  // Right side: A^T Q = R^T.
  Matrix at = la::transpose(a);
  la::ormqr(la::Side::right, la::Op::none, f, tau, at.view());
  EXPECT_LE(la::norm_fro(difference(at.block(0, 0, n, n), la::transpose(r))), 10 * eps * m * la::norm_fro(a));
  EXPECT_THROW(la::ormqr(la::Side::left, la::Op::none, f, tau, Matrix(m + 1, 2).view()), Error);
  EXPECT_THROW(la::orgqr(Matrix(5, 6).view(), std::vector<double>(3)), Error);
}

TEST(Lapack, Geqp3PivotsArePermutationAndFactorizationHolds) {
  const Matrix a = gaussian(30, 20, 102);
  Matrix f(a);
  const la::Geqp3Result g = la::geqp3(f.view());
  ASSERT_TRUE(is_permutation(g.pivots, 20));
  Matrix q(f);
  la::orgqr(q.view(), g.tau);
  const Matrix ap = la::select_columns(a, g.pivots);
  EXPECT_LE(la::norm_fro(difference(ap, la::matmul(q, upper_part(f.block(0, 0, 20, 20))))),
            10 * eps * 30 * la::norm_fro(a));
}

TEST(Lapack, TpqrtOfTwoTrianglesGivesTheStackedQr) {
  for (index_t n : {1, 7, 40}) {
    const Matrix r1 = upper_part(gaussian(n, n, 103));
    const Matrix r2 = upper_part(gaussian(n, n, 104));
    Matrix r(r1);
    Matrix v(r2);
    const Matrix t = la::tpqrt_triangles(r.view(), v.view(), 16);
    EXPECT_EQ(t.cols(), n);
    const Matrix rr = upper_part(r);
    // [R1; R2] = Q [R; 0] with Q orthogonal  <=>  R^T R = R1^T R1 + R2^T R2 (c = 10).
    const auto [g, scale] = stacked_gram(r1, r2);
    EXPECT_LE(la::norm_fro(difference(gram(rr), g)), 10 * eps * 2 * n * scale) << "n=" << n;
    // V stays upper triangular (dtpqrt with l = n).
    for (index_t j = 0; j < n; ++j)
      for (index_t i = j + 1; i < n; ++i) EXPECT_EQ(v(i, j), 0.0);
    // Same R as dgeqrf of the stacked matrix, up to the signs of its rows.
    Matrix stacked(2 * n, n);
    stacked.block(0, 0, n, n).assign(r1);
    stacked.block(n, 0, n, n).assign(r2);
    (void)la::geqrf(stacked.view());
    for (index_t i = 0; i < n; ++i)
      for (index_t j = i; j < n; ++j)
        EXPECT_NEAR(std::abs(rr(i, j)), std::abs(stacked(i, j)), 10 * eps * 2 * n * std::sqrt(scale));
  }
  Matrix a(3, 3);
  Matrix b(4, 4);
  EXPECT_THROW((void)la::tpqrt_triangles(a.view(), b.view()), Error);
}

// [C1; C2] <- Q^T [C1; C2] for Q = I - V T V^T, V = [I; W] from a tpqrt with L = 0 (LAPACK's dtpmqrt).
void apply_tpqrt_transpose(const Matrix& w, const Matrix& t, la::MatrixView c1, la::MatrixView c2) {
  const auto i = [](index_t v) { return static_cast<lapack_int>(v); };
  std::vector<double> work(static_cast<std::size_t>(t.rows() * c1.cols()));
  ASSERT_EQ(LAPACKE_dtpmqrt_work(LAPACK_COL_MAJOR, 'L', 'T', i(c2.rows()), i(c2.cols()), i(w.cols()), 0, i(t.rows()),
                                 w.data(), i(w.ld()), t.data(), i(t.ld()), c1.data(), i(c1.ld()), c2.data(), i(c2.ld()),
                                 work.data()),
            0);
}

// A rectangle under a triangle, factored with recursive panels: the R of the stacked rows (its Gram
// matrix and, up to row signs, LAPACK's dtpqrt), and T such that dtpmqrt's Q is orthogonal and maps
// [A; B] to [R; 0]. Widths below, at and across the block size (odd splits of the recursion),
// fewer rows than columns, an exactly rank-deficient B and zero columns.
TEST(Lapack, TpqrtRecursiveGivesTheStackedQrOfARectangleUnderATriangle) {
  struct Case {
    index_t m, n, nb;
  };
  for (const Case c : {Case{5, 1, 64}, Case{30, 7, 64}, Case{50, 40, 16}, Case{200, 67, 32}, Case{9, 40, 8},
                       Case{120, 33, 33}, Case{0, 6, 4}}) {
    const index_t m = c.m;
    const index_t n = c.n;
    const Matrix a0 = upper_part(gaussian(n, n, 106));
    Matrix b0 = gaussian(m, n, 107);
    if (n >= 4 && m > 0) {
      for (index_t i = 0; i < m; ++i) {
        b0(i, 1) = 0.0;                            // a zero column of B
        b0(i, n - 1) = 2.0 * b0(i, 0) - b0(i, 2);  // a column dependent on two others
      }
    }
    Matrix a(a0);
    Matrix b(b0);
    const Matrix t = la::tpqrt_recursive(a.view(), b.view(), c.nb);
    ASSERT_EQ(t.rows(), std::min(c.nb, n));
    ASSERT_EQ(t.cols(), n);
    const Matrix r = upper_part(a);
    const auto [g, scale] = stacked_gram(a0, b0);
    const double tol = 10 * eps * static_cast<double>(m + n) * scale;
    EXPECT_LE(la::norm_fro(difference(gram(r), g)), tol) << "m=" << m << " n=" << n << " nb=" << c.nb;
    // The strictly lower part of A is left as it was.
    for (index_t j = 0; j < n; ++j)
      for (index_t i = j + 1; i < n; ++i) EXPECT_EQ(a(i, j), a0(i, j));
    // LAPACK's dtpqrt (L = 0) of the same input: the same R up to the signs of its rows.
    Matrix al(a0);
    Matrix bl(b0);
    (void)la::tpqrt(al.view(), bl.view(), 0, c.nb);
    for (index_t i = 0; i < n; ++i)
      for (index_t j = i; j < n; ++j)
        EXPECT_NEAR(std::abs(r(i, j)), std::abs(al(i, j)), 10 * eps * static_cast<double>(m + n) * std::sqrt(scale))
            << "m=" << m << " n=" << n << " (" << i << ", " << j << ")";
    if (m == 0) continue;
    // Q^T [A; B] = [R; 0] and Q^T Q = I, with Q applied by LAPACK's dtpmqrt from V = [I; W] and T.
    Matrix top(a0);
    Matrix bottom(b0);
    apply_tpqrt_transpose(b, t, top.view(), bottom.view());
    EXPECT_LE(la::norm_fro(difference(upper_part(top), r)), tol / std::sqrt(scale));
    EXPECT_LE(la::norm_fro(bottom), tol / std::sqrt(scale));
    for (index_t j = 0; j < n; ++j)
      for (index_t i = j + 1; i < n; ++i) EXPECT_LE(std::abs(top(i, j)), tol / std::sqrt(scale));
  }
  Matrix a(3, 3);
  Matrix b(4, 2);
  EXPECT_THROW((void)la::tpqrt_recursive(a.view(), b.view()), Error);
  EXPECT_THROW((void)la::tpqrt_recursive(a.view(), Matrix(4, 3).view(), 0), Error);
}

TEST(Lapack, PotrfFactorsSpdAndRejectsIndefinite) {
  const Matrix z = gaussian(30, 10, 105);
  const Matrix a = gram(z);
  Matrix r(a);
  la::potrf_upper(r.view());
  EXPECT_LE(la::norm_fro(difference(gram(upper_part(r)), a)), 10 * eps * 30 * la::norm_fro(a));
  Matrix bad = Matrix::identity(4);
  bad(2, 2) = -1.0;
  EXPECT_THROW(la::potrf_upper(bad.view()), Error);
  try {
    la::potrf_upper(bad.view());
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dpotrf"), std::string::npos);
  }
}

TEST(Lapack, PstrfOnGramMatrixFollowsGreedyColumnPivotingOfZ) {
  const index_t m = 80;
  const index_t n = 25;
  const Matrix z = gaussian(m, n, 106);
  const Matrix a = gram(z);
  Matrix r(a);
  const la::PivotedCholeskyResult p = la::pstrf_upper(r.view(), -1.0);
  EXPECT_EQ(p.rank, n);
  ASSERT_TRUE(is_permutation(p.pivots, n));
  // P^T A P = R^T R (c = 10).
  const Matrix pap = la::select_rows(la::select_columns(a, p.pivots), p.pivots);
  EXPECT_LE(la::norm_fro(difference(gram(upper_part(r)), pap)), 10 * eps * n * la::norm_fro(a));
  // Greedy equivalence: the same leading pivots as CPQR of Z (Gaussian: well-separated norms).
  la::CpqrOptions o;
  o.max_rank = 8;
  const la::CpqrResult f = la::cpqr(z, o);
  for (index_t j = 0; j < 8; ++j)
    EXPECT_EQ(p.pivots[static_cast<std::size_t>(j)], f.pivots[static_cast<std::size_t>(j)]) << j;
}

TEST(Lapack, PstrfReportsRankOfSemidefiniteMatrix) {
  const Matrix z = low_rank(50, 20, 6, 107);
  const Matrix a = gram(z);
  Matrix r(a);
  // Threshold far above rounding (eps ||A||) and far below the signal.
  const la::PivotedCholeskyResult p = la::pstrf_upper(r.view(), 1e-8 * la::norm_max(a));
  EXPECT_EQ(p.rank, 6);
  EXPECT_THROW((void)la::pstrf_upper(Matrix(3, 4).view(), -1.0), Error);
}

TEST(Lapack, LarfgAnnihilatesTheVector) {
  std::vector<double> x = {3.0, -4.0, 12.0};
  double alpha = 5.0;  // ||[5, 3, -4, 12]|| = sqrt(194)
  const double tau = la::larfg(alpha, x);
  EXPECT_NEAR(std::abs(alpha), std::sqrt(194.0), 10 * eps * 14);
  EXPECT_GT(tau, 0.0);
  std::vector<double> empty;
  double one = 2.0;
  EXPECT_EQ(la::larfg(one, empty), 0.0);
  EXPECT_EQ(one, 2.0);
}

}  // namespace
}  // namespace idprune::test
