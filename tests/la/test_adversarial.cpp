// Every local CPQR method (unblocked, blocked, lapack) on adversarial matrices (issue 9): near-tied
// column norms, exact duplicate columns, columns scaled from 1e-300 to 1e300, entries near the
// overflow and underflow thresholds, a single row, a single column, the zero matrix.
// Properties: finite output, a valid permutation, T(:, C) = I exactly, and for every column j
//   ||a_j - A(:, C) t_j|| <= ||a_j - A(:, C_ref) t_ref_j|| + kResidualFactor * eps * ||a_j||
// against the dgeqp3 reference at the same rank (column by column: a global norm would let a 1e300
// column hide any error on a 1e-300 one). Where greedy pivoting has a clear winner at each step the
// skeleton must be the reference's exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "la/la_checks.hpp"
#include "support/adversarial.hpp"

namespace idprune::test {
namespace {

using la::CpqrMethod;
using la::CpqrOptions;

// Householder QR is column-wise backward stable, ||dA(:, j)|| <= c m eps ||A(:, j)||, and T is a
// triangular solve on it: 8 * max(m, n) covers c with room for the graded triangular solves.
double residual_tolerance(const Matrix& a, index_t j) {
  // + DBL_MIN: below it arithmetic is gradual underflow, fl(x op y) = (x op y)(1 + d) + h with
  // |h| <= 2^-1075 = eps DBL_MIN / 2 (the subnormal case gets 8 max(m, n) units of 2^-1074).
  return 8.0 * static_cast<double>(std::max(a.rows(), a.cols())) * eps *
         (la::nrm2(a.col(j)) + std::numeric_limits<double>::min());
}

std::vector<CpqrOptions> rules(const Matrix& a, CpqrMethod method) {
  std::vector<CpqrOptions> out;
  CpqrOptions o;
  o.method = method;
  o.block_size = 3;  // several panels even on these small matrices
  out.push_back(o);  // to the full rank min(m, n) (or the first zero diagonal)
  o.rel_tol = 1e-6;
  out.push_back(o);
  o.rel_tol = 0.0;
  o.max_rank = std::min(a.rows(), a.cols()) / 2;
  out.push_back(o);
  return out;
}

std::string rule_name(const CpqrOptions& o) {
  return "max_rank=" + std::to_string(o.max_rank) + " rel_tol=" + std::to_string(o.rel_tol);
}

void expect_finite(const la::InterpolativeDecomposition& id) {
  const auto& f = id.factorization;
  for (double v : f.r.values()) ASSERT_TRUE(std::isfinite(v)) << "R";
  for (double v : f.diag) ASSERT_TRUE(std::isfinite(v)) << "diag";
  ASSERT_TRUE(std::isfinite(f.next_diag));
  ASSERT_TRUE(std::isfinite(f.residual_fro));
  for (double v : id.interpolation.values()) ASSERT_TRUE(std::isfinite(v)) << "T";
}

TEST(AdversarialCpqr, EveryMethodGivesAFiniteValidIdAsAccurateAsDgeqp3) {
  for (const auto& c : adversarial::cases()) {
    const Matrix& a = c.a;
    for (const CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack}) {
      for (const CpqrOptions& opts : rules(a, method)) {
        SCOPED_TRACE(c.name + ", " + std::string(la::to_string(method)) + ", " + rule_name(opts));
        la::InterpolativeDecomposition id;
        ASSERT_NO_THROW(id = la::interpolative_decomposition(a, opts));
        const auto& f = id.factorization;
        expect_finite(id);
        ASSERT_TRUE(is_permutation(f.pivots, a.cols()));
        ASSERT_EQ(id.interpolation.rows(), f.rank);
        for (index_t i = 0; i < f.rank; ++i)
          for (index_t l = 0; l < f.rank; ++l)
            ASSERT_EQ(id.interpolation(l, id.skeleton[std::size_t(i)]), l == i ? 1.0 : 0.0);
        for (std::size_t i = 0; i < f.diag.size(); ++i) EXPECT_GT(f.diag[i], 0.0);

        // The reference at the same rank (dgeqp3 truncated to f.rank).
        CpqrOptions ro;
        ro.method = CpqrMethod::lapack;
        ro.max_rank = f.rank;
        const auto ref = la::interpolative_decomposition(a, ro);
        ASSERT_EQ(ref.factorization.rank, f.rank);
        if (c.separated) {
          EXPECT_EQ(id.skeleton, ref.skeleton);
        }
        const auto res = adversarial::column_residuals(a, id);
        const auto ref_res = adversarial::column_residuals(a, ref);
        for (index_t j = 0; j < a.cols(); ++j)
          EXPECT_LE(res[std::size_t(j)], ref_res[std::size_t(j)] + residual_tolerance(a, j))
              << "column " << j << " norm " << la::nrm2(a.col(j)) << " reference " << ref_res[std::size_t(j)];
      }
    }
  }
}

// Orthogonal columns scaled from 1e-300 to 1e300: the greedy diagonal is exactly the column norms
// in decreasing order, which every method must reproduce to rounding, including the 1e-300 and
// 1e300 ones (no overflow in squared norms, no underflow to a zero diagonal).
TEST(AdversarialCpqr, GradedOrthogonalColumnsGiveTheirNormsAsTheDiagonal) {
  Matrix a = random_orthonormal(30, 12, 13);
  const auto order = shuffle(12, 14);
  for (index_t j = 0; j < 12; ++j)
    for (double& v : a.col(j)) v *= std::pow(10.0, -300.0 + 600.0 * static_cast<double>(order[std::size_t(j)]) / 11.0);
  std::vector<double> norms;
  for (index_t j = 0; j < a.cols(); ++j) norms.push_back(la::nrm2(a.col(j)));
  std::sort(norms.rbegin(), norms.rend());
  for (const CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack}) {
    SCOPED_TRACE(std::string(la::to_string(method)));
    CpqrOptions o;
    o.method = method;
    o.block_size = 3;
    const auto f = la::cpqr(a, o);
    ASSERT_EQ(f.rank, 12);
    for (std::size_t i = 0; i < norms.size(); ++i)
      EXPECT_NEAR(f.diag[i], norms[i], 30.0 * eps * norms[i]) << "step " << i;
  }
}

// Column norms at the top of the double range: a column whose norm overflows is refused up front.
TEST(AdversarialCpqr, ColumnNormsNearTheLargestDoubleAreScaledOrAClearError) {
  Matrix a = gaussian(16, 5, 31);
  for (double& v : a.col(2)) v = 1e308;  // norm 4e308: not representable
  for (const CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack}) {
    CpqrOptions o;
    o.method = method;
    try {
      (void)la::cpqr(a, o);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("column 2 has a 2-norm above the largest double"), std::string::npos)
          << e.what();
    }
  }
  // Below it, the result is that of the same matrix scaled into the middle of the range (cpqr
  // factors 2^-16 A there): the same pivots, R and the norms scaled back, T finite.
  for (const double top : {0.2, 0.5, 0.9, 0.99}) {
    const Matrix b = near_max_norm_columns(16, 5, top, 32);
    Matrix mid(b);
    for (double& v : mid.values()) v = std::ldexp(v, -100);
    for (const CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack}) {
      SCOPED_TRACE(std::string(la::to_string(method)) + ", norms " + std::to_string(top) + " DBL_MAX");
      CpqrOptions o;
      o.method = method;
      o.want_q = true;
      la::InterpolativeDecomposition id;
      ASSERT_NO_THROW(id = la::interpolative_decomposition(b, o));
      expect_finite(id);
      const auto ref = la::interpolative_decomposition(mid, o);
      EXPECT_EQ(id.skeleton, ref.skeleton);
      for (std::size_t i = 0; i < id.factorization.diag.size(); ++i)
        EXPECT_NEAR(id.factorization.diag[i], std::ldexp(ref.factorization.diag[i], 100),
                    1e-12 * id.factorization.diag[i]);
      // Q from the Householder vectors is scale-free: orthonormal columns.
      EXPECT_LE(orthonormality_error(la::cpqr_q(id.factorization)), 100.0 * eps);
    }
  }
}

// Non-finite input is refused before any work with the position of the first bad entry.
TEST(AdversarialCpqr, NonFiniteEntryIsRejectedWithItsPosition) {
  Matrix a = gaussian(6, 5, 3);
  a(4, 2) = std::numeric_limits<double>::infinity();
  a(1, 3) = std::nan("");
  for (const CpqrMethod method : {CpqrMethod::unblocked, CpqrMethod::blocked, CpqrMethod::lapack}) {
    CpqrOptions o;
    o.method = method;
    try {
      (void)la::cpqr(a, o);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      // Column-major scan: (4, 2) comes before (1, 3).
      EXPECT_NE(std::string(e.what()).find("entry (4, 2)"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("inf"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace idprune::test
