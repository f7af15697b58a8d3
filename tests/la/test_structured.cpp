// The second reference text's rank-one matrix
//   A = u v^T,  u = [1, sqrt 3, sqrt 5, ..., sqrt(2n-1)]^T,  v = [-1, 1, -1, ..., (-1)^n]^T,
// whose norms and singular values are known in closed form, against the library's SVD, LAPACK's
// norms (dlange) and CPQR / the ID.
//
// Closed forms: sum_{i=1}^n (2i - 1) = n^2, so ||u||_2 = n and ||v||_2 = sqrt n; for a rank-one
// matrix ||u v^T||_2 = ||u v^T||_F = ||u||_2 ||v||_2 = n^{3/2}, the singular values are
// (n^{3/2}, 0, ..., 0), ||u v^T||_1 = ||u||_1 ||v||_inf = sum_i sqrt(2i - 1) and
// ||u v^T||_inf = ||u||_inf ||v||_1 = n sqrt(2n - 1); every column is +-u, of norm n.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <cmath>
#include <limits>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/svd.hpp"

namespace idprune::la {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

Matrix reference_rank_one(index_t n) {
  Matrix a(n, n);
  for (index_t j = 0; j < n; ++j) {
    const double vj = (j + 1) % 2 == 1 ? -1.0 : 1.0;  // v_j = (-1)^j, 1-based j
    for (index_t i = 0; i < n; ++i) a(i, j) = std::sqrt(2.0 * double(i + 1) - 1.0) * vj;
  }
  return a;
}

double lange(char norm, ConstMatrixView a) {
  return LAPACKE_dlange(LAPACK_COL_MAJOR, norm, static_cast<lapack_int>(a.rows()), static_cast<lapack_int>(a.cols()),
                        a.data(), static_cast<lapack_int>(a.ld()));
}

const std::vector<index_t> kSizes = {1, 2, 3, 4, 7, 16, 50, 128};

// The entries are sqrt(2i-1) rounded (relative error <= eps / 2, times +-1 exactly), so every
// computed norm carries the representation error eps plus its own summation error (n^2 terms for
// the Frobenius norm, n for a column or row sum): tolerances (n^2 + 2) eps and (n + 2) eps, c = 1.
TEST(StructuredRankOne, NormsMatchTheirClosedForms) {
  for (const index_t n : kSizes) {
    const Matrix a = reference_rank_one(n);
    const double nn = double(n);
    const double n32 = nn * std::sqrt(nn);
    EXPECT_NEAR(norm_fro(a), n32, (nn * nn + 2) * kEps * n32) << "n=" << n;
    EXPECT_NEAR(lange('F', a), n32, (nn * nn + 2) * kEps * n32) << "n=" << n;
    double u1 = 0.0;  // ||u||_1, summed from the smallest term
    for (index_t i = 1; i <= n; ++i) u1 += std::sqrt(2.0 * double(i) - 1.0);
    EXPECT_NEAR(lange('1', a), u1, (nn + 2) * kEps * u1) << "n=" << n;
    const double inf_norm = nn * std::sqrt(2.0 * nn - 1.0);
    EXPECT_NEAR(lange('I', a), inf_norm, (nn + 2) * kEps * inf_norm) << "n=" << n;
    EXPECT_NEAR(lange('M', a), std::sqrt(2.0 * nn - 1.0), kEps * std::sqrt(2.0 * nn - 1.0)) << "n=" << n;
    // Every column has norm n.
    for (index_t j = 0; j < n; ++j) EXPECT_NEAR(nrm2(a.col(j)), nn, (nn + 2) * kEps * nn) << "n=" << n << " j=" << j;
  }
}

// dgesdd is backward stable: each computed singular value is within p(n) eps ||A||_2 of the exact
// one of a matrix within eps of A; with p(n) = 10 n (c = 10) and the exact values (n^{3/2}, 0, ...).
TEST(StructuredRankOne, SingularValuesAreNToTheThreeHalvesThenZeros) {
  for (const index_t n : kSizes) {
    const Matrix a = reference_rank_one(n);
    const double n32 = double(n) * std::sqrt(double(n));
    const double tol = 10.0 * double(n) * kEps * n32;
    const std::vector<double> s = singular_values(a);
    ASSERT_EQ(static_cast<index_t>(s.size()), n);
    EXPECT_NEAR(s[0], n32, tol) << "n=" << n;
    for (index_t i = 1; i < n; ++i) EXPECT_LE(s[static_cast<std::size_t>(i)], tol) << "n=" << n << " i=" << i;
    EXPECT_NEAR(norm2(a), n32, tol) << "n=" << n;
    // The singular vectors of the thin SVD are u / n and v / sqrt(n) up to a common sign.
    const Svd f = svd(a);
    const double sign = f.u(0, 0) > 0 ? 1.0 : -1.0;
    for (index_t i = 0; i < n; ++i) {
      EXPECT_NEAR(f.u(i, 0), sign * std::sqrt(2.0 * double(i + 1) - 1.0) / double(n), tol / n32) << "n=" << n;
      const double vi = (i + 1) % 2 == 1 ? -1.0 : 1.0;
      EXPECT_NEAR(f.vt(0, i), sign * vi / std::sqrt(double(n)), tol / n32) << "n=" << n;
    }
  }
}

// CPQR: after one step the remainder is (in exact arithmetic) zero, so rel_tol = 1e-12 stops it at
// rank one. Every column is +-u with norm n, so every column is a largest-norm column and any
// first pivot is right; what makes it right is that the ID built on it reproduces A: T(0, j) =
// v_j / v_c = (-1)^(j - c) and A(:, c) T = A to rounding.
TEST(StructuredRankOne, CpqrFindsRankOneAndItsPivotReproducesA) {
  for (const CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack}) {
    for (const index_t n : kSizes) {
      const Matrix a = reference_rank_one(n);
      const double nn = double(n);
      const double anorm = nn * std::sqrt(nn);
      CpqrOptions opts;
      opts.rel_tol = 1e-12;
      opts.method = method;
      const InterpolativeDecomposition id = interpolative_decomposition(a, opts);
      const std::string what = std::string(to_string(method)) + ", n=" + std::to_string(n);
      ASSERT_EQ(id.factorization.rank, 1) << what;
      ASSERT_EQ(id.skeleton.size(), 1u) << what;
      const index_t c = id.skeleton[0];
      // |r_11| = ||A(:, c)||_2 = n, the largest column norm; the next diagonal is rounding.
      EXPECT_NEAR(id.factorization.diag[0], nn, 10 * (nn + 2) * kEps * nn) << what;
      EXPECT_LE(id.factorization.next_diag, 10 * nn * kEps * anorm) << what;
      double max_col = 0.0;
      for (index_t j = 0; j < n; ++j) max_col = std::max(max_col, nrm2(a.col(j)));
      EXPECT_GE(nrm2(a.col(c)), max_col * (1 - 10 * nn * kEps)) << what;
      // T(0, j) = (-1)^(j - c), T(0, c) = 1 exactly.
      ASSERT_EQ(id.interpolation.rows(), 1);
      EXPECT_EQ(id.interpolation(0, c), 1.0) << what;
      for (index_t j = 0; j < n; ++j) {
        const double expected = (j - c) % 2 == 0 ? 1.0 : -1.0;
        EXPECT_NEAR(id.interpolation(0, j), expected, 10 * nn * kEps) << what << " j=" << j;
      }
      // A(:, c) T reproduces A.
      Matrix rebuilt = matmul(a.view().cols_range(c, 1), id.interpolation);
      for (index_t j = 0; j < n; ++j)
        for (index_t i = 0; i < n; ++i) rebuilt(i, j) -= a(i, j);
      EXPECT_LE(norm_fro(rebuilt), 10 * nn * kEps * anorm) << what;
    }
  }
}

}  // namespace
}  // namespace idprune::la
