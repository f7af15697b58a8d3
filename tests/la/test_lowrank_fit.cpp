// Low-rank fitting F(U, V) = 1/2 ||X - U V||_F^2 and the Rayleigh quotient: analytic gradients
// against central differences with stated error bounds, the fitters against the Eckart–Young
// optimum from the SVD, and the eigenvalue iteration against LAPACK dsyevd.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <cmath>
#include <limits>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/lowrank_fit.hpp"
#include "idprune/la/svd.hpp"
#include "support/matrices.hpp"

namespace idprune::la {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

double inner(ConstMatrixView a, ConstMatrixView b) {
  double s = 0.0;
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) s += a(i, j) * b(i, j);
  return s;
}

Matrix plus(ConstMatrixView a, double t, ConstMatrixView d) {
  Matrix c(a);
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) c(i, j) += t * d(i, j);
  return c;
}

/// Rounding bound for one evaluation of F: the product U V carries |error| <= gamma_k |U||V|
/// entrywise, the subtraction and the sum of squares (m n terms) add relative eps (m n + 2); so
/// |fl(F) - F| <= eps (k + m n + 4) (||X||_F + ||U||_F ||V||_F)^2, a bound with c = 1.
double objective_rounding(ConstMatrixView x, ConstMatrixView u, ConstMatrixView v) {
  const double scale = norm_fro(x) + norm_fro(u) * norm_fro(v);
  return kEps * double(u.cols() + x.rows() * x.cols() + 4) * scale * scale;
}

// Along (dU, dV), phi(t) = F(U + t dU, V + t dV) = 1/2 ||E0 - t E1 - t^2 E2||^2 with E0 = X - U V,
// E1 = dU V + U dV, E2 = dU dV: a quartic whose central difference is EXACTLY
//   (phi(h) - phi(-h)) / 2h = phi'(0) + h^2 <E1, E2>
// (the odd part of a quartic). So after subtracting h^2 <E1, E2> only rounding remains:
// 2 * objective_rounding / 2h. A wrong gradient (sign, transpose, factor) errs by O(||E1|| ||E0||).
TEST(LowRankFit, GradientMatchesCentralDifferencesAlongRandomDirections) {
  const index_t m = 9, n = 7, k = 3;
  const Matrix x = test::gaussian(m, n, 1);
  const Matrix u = test::gaussian(m, k, 2);
  const Matrix v = test::gaussian(k, n, 3);
  const LowRankGradient g = lowrank_gradient(x, u, v);
  EXPECT_NEAR(g.value, lowrank_objective(x, u, v), 0.0);
  const double h = 1e-3;
  for (std::uint64_t trial = 0; trial < 6; ++trial) {
    const Matrix du = test::gaussian(m, k, 100 + trial);
    const Matrix dv = test::gaussian(k, n, 200 + trial);
    const Matrix up = plus(u, h, du), vp = plus(v, h, dv), um = plus(u, -h, du), vm = plus(v, -h, dv);
    const double fd = (lowrank_objective(x, up, vp) - lowrank_objective(x, um, vm)) / (2 * h);
    Matrix e1 = matmul(du, v);
    gemm(1.0, u, Op::none, dv, Op::none, 1.0, e1.view());
    const Matrix e2 = matmul(du, dv);
    const double exact_truncation = h * h * inner(e1, e2);
    const double analytic = inner(g.du, du) + inner(g.dv, dv);
    const double bound = (objective_rounding(x, up, vp) + objective_rounding(x, um, vm)) / (2 * h);
    EXPECT_LE(std::abs(fd - exact_truncation - analytic), bound) << "trial " << trial;
    // The bound is far below the derivative itself, so the comparison has teeth.
    EXPECT_LT(bound, 1e-6 * std::abs(analytic));
  }
}

// Along a single entry of U (or of V) E2 = 0, so phi is quadratic and its central difference is
// exact up to rounding: every entry of dF/dU and dF/dV is checked.
TEST(LowRankFit, GradientMatchesCentralDifferencesEntryByEntry) {
  const index_t m = 5, n = 4, k = 2;
  const Matrix x = test::gaussian(m, n, 4);
  const Matrix u = test::gaussian(m, k, 5);
  const Matrix v = test::gaussian(k, n, 6);
  const LowRankGradient g = lowrank_gradient(x, u, v);
  const double h = 1e-4;
  for (index_t j = 0; j < k; ++j) {
    for (index_t i = 0; i < m; ++i) {
      Matrix up(u), um(u);
      up(i, j) += h;
      um(i, j) -= h;
      const double fd = (lowrank_objective(x, up, v) - lowrank_objective(x, um, v)) / (2 * h);
      const double bound = (objective_rounding(x, up, v) + objective_rounding(x, um, v)) / (2 * h);
      EXPECT_NEAR(fd, g.du(i, j), bound) << "dF/dU(" << i << ", " << j << ")";
    }
  }
  for (index_t j = 0; j < n; ++j) {
    for (index_t i = 0; i < k; ++i) {
      Matrix vp(v), vm(v);
      vp(i, j) += h;
      vm(i, j) -= h;
      const double fd = (lowrank_objective(x, u, vp) - lowrank_objective(x, u, vm)) / (2 * h);
      const double bound = (objective_rounding(x, u, vp) + objective_rounding(x, u, vm)) / (2 * h);
      EXPECT_NEAR(fd, g.dv(i, j), bound) << "dF/dV(" << i << ", " << j << ")";
    }
  }
}

TEST(LowRankFit, EckartYoungObjectiveIsTheTruncatedSvdError) {
  const Matrix x = test::gaussian(12, 9, 7);
  const Svd f = svd(x);
  for (index_t k = 0; k <= 9; ++k) {
    // X_k = U_k S_k V_k^T; 1/2 ||X - X_k||_F^2 must equal 1/2 sum_{i>k} s_i^2.
    Matrix xk(12, 9);
    if (k > 0) {
      Matrix us(f.u.view().cols_range(0, k));
      for (index_t j = 0; j < k; ++j)
        for (double& e : us.col(j)) e *= f.s[static_cast<std::size_t>(j)];
      gemm(1.0, us, Op::none, f.vt.view().rows_range(0, k), Op::none, 0.0, xk.view());
    }
    const double direct = 0.5 * std::pow(norm_fro(plus(x, -1.0, xk)), 2);
    const double ey = eckart_young_objective(f.s, k);
    EXPECT_NEAR(direct, ey, 100 * 12 * kEps * std::pow(norm_fro(x), 2)) << "k=" << k;
  }
  EXPECT_EQ(eckart_young_objective(f.s, 9), 0.0);
}

/// X = U diag(sigma) V^T (40 x 30) with a gap sigma_{k+1} / sigma_k = gap_ratio after k values.
Matrix gapped_matrix(index_t k, double gap_ratio, std::uint64_t seed) {
  std::vector<double> sigma;
  for (index_t i = 0; i < 30; ++i)
    sigma.push_back(i < k ? 10.0 - 0.5 * double(i) : gap_ratio * (10.0 - 0.5 * double(k - 1)) * std::pow(0.9, i - k));
  return test::with_singular_values(40, 30, sigma, seed);
}

TEST(LowRankFit, AlternatingLeastSquaresReachesTheEckartYoungOptimum) {
  for (const index_t k : {index_t{1}, index_t{4}, index_t{10}}) {
    for (const double gap : {0.5, 0.9}) {
      const Matrix x = gapped_matrix(k, gap, 10 + static_cast<std::uint64_t>(k));
      const double optimum = eckart_young_objective(singular_values(x), k);
      LowRankFitOptions opts;
      opts.rank = k;
      opts.seed = 3;
      const LowRankFitResult fit = fit_lowrank(x, opts);
      EXPECT_TRUE(fit.converged) << "k=" << k << " gap=" << gap;
      EXPECT_LE((fit.objective - optimum) / optimum, 1e-6) << "k=" << k << " gap=" << gap;
      // Never below the optimum (beyond rounding of F: Eckart–Young is a lower bound).
      EXPECT_GE(fit.objective, optimum * (1 - 1e-10));
      // ALS never increases F (each half-step is an exact minimization), up to rounding.
      for (std::size_t i = 1; i < fit.history.size(); ++i)
        EXPECT_LE(fit.history[i], fit.history[i - 1] * (1 + 1e-12)) << "sweep " << i;
      // At the optimum the gradient vanishes (relative to ||X||_F^2 / ||U||, to the stopping level).
      const LowRankGradient g = lowrank_gradient(x, fit.u, fit.v);
      const double gnorm = std::sqrt(std::pow(norm_fro(g.du), 2) + std::pow(norm_fro(g.dv), 2));
      EXPECT_LE(gnorm, 1e-4 * norm_fro(x) * (norm_fro(fit.u) + norm_fro(fit.v))) << "k=" << k;
    }
  }
}

TEST(LowRankFit, GradientDescentReachesTheEckartYoungOptimum) {
  const index_t k = 3;
  const Matrix x = gapped_matrix(k, 0.3, 21);
  const double optimum = eckart_young_objective(singular_values(x), k);
  LowRankFitOptions opts;
  opts.rank = k;
  opts.method = LowRankFitMethod::gradient;
  opts.max_iterations = 20000;
  opts.seed = 4;
  const LowRankFitResult fit = fit_lowrank(x, opts);
  EXPECT_TRUE(fit.converged) << fit.iterations << " iterations";
  EXPECT_LE((fit.objective - optimum) / optimum, 1e-6) << fit.iterations << " iterations";
  // Armijo backtracking makes every accepted step a descent step.
  for (std::size_t i = 1; i < fit.history.size(); ++i) EXPECT_LE(fit.history[i], fit.history[i - 1]);
}

TEST(LowRankFit, RejectsBadArguments) {
  const Matrix x = test::gaussian(5, 4, 1);
  LowRankFitOptions opts;
  opts.rank = 5;
  EXPECT_THROW(fit_lowrank(x, opts), Error);
  opts.rank = 0;
  EXPECT_THROW(fit_lowrank(x, opts), Error);
  EXPECT_THROW(lowrank_objective(x, test::gaussian(5, 2, 2), test::gaussian(3, 4, 3)), Error);
  EXPECT_THROW(parse_lowrank_fit_method("newton"), Error);
  EXPECT_EQ(parse_lowrank_fit_method("als"), LowRankFitMethod::als);
}

// ---- Rayleigh quotient ------------------------------------------------------------------------

/// Symmetric A = Q diag(lambda) Q^T with lambda_1 = 10 and the rest in [-5, 5]: a gap of 5.
Matrix symmetric_with_gap(index_t n, std::uint64_t seed) {
  const Matrix q = test::random_orthonormal(n, n, seed);
  Matrix qd(q);
  for (index_t j = 0; j < n; ++j) {
    const double lambda = j == 0 ? 10.0 : -5.0 + 10.0 * double(j - 1) / double(n - 1);
    for (double& e : qd.col(j)) e *= lambda;
  }
  Matrix a = matmul(qd, q, Op::none, Op::transpose);
  for (index_t j = 0; j < n; ++j)  // exact symmetry
    for (index_t i = 0; i < j; ++i) a(j, i) = a(i, j);
  return a;
}

std::vector<double> unit_gaussian(index_t n, std::uint64_t seed) {
  const Matrix g = test::gaussian(n, 1, seed);
  std::vector<double> v(g.values().begin(), g.values().end());
  const double s = nrm2(v);
  for (double& e : v) e /= s;
  return v;
}

// phi(t) = R(x + t d) for unit x, d extends to complex |t| <= 1/4 with |(y, y)| >= 1 - 2|t| - |t|^2
// >= 7/16 and |(A y, y)| <= ||A||_2 (1 + |t|)^2, so |phi| <= (25/7) ||A||_2 there. Cauchy's
// estimate on discs of radius 1/8 around |t| <= 1/8 gives |phi'''| <= 6 (25/7) 8^3 ||A||_2 < 11000 ||A||_2,
// hence the central-difference truncation error is <= (h^2 / 6) 11000 ||A||_2. Rounding: R is
// evaluated with relative error about (n + 4) eps ||A||_F, so the difference adds
// (n + 4) eps ||A||_F / h. Both are stated bounds with c = 1.
TEST(RayleighQuotient, GradientMatchesCentralDifferences) {
  const index_t n = 8;
  Matrix a = test::gaussian(n, n, 61);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < j; ++i) a(j, i) = a(i, j);
  const double anorm = norm_fro(a);
  const double h = 2e-6;
  const double bound = h * h / 6 * 11000 * anorm + double(n + 4) * kEps * anorm / h;
  for (std::uint64_t trial = 0; trial < 6; ++trial) {
    const std::vector<double> x = unit_gaussian(n, 70 + trial);
    const std::vector<double> d = unit_gaussian(n, 80 + trial);
    const std::vector<double> g = rayleigh_gradient(a, x);
    std::vector<double> xp(x), xm(x);
    for (index_t i = 0; i < n; ++i) {
      xp[static_cast<std::size_t>(i)] += h * d[static_cast<std::size_t>(i)];
      xm[static_cast<std::size_t>(i)] -= h * d[static_cast<std::size_t>(i)];
    }
    const double fd = (rayleigh_quotient(a, xp) - rayleigh_quotient(a, xm)) / (2 * h);
    double analytic = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) analytic += g[i] * d[i];
    EXPECT_NEAR(fd, analytic, bound) << "trial " << trial;
    // grad R(x) is orthogonal to x (R is constant along x).
    double gx = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) gx += g[i] * x[i];
    EXPECT_LE(std::abs(gx), 10 * double(n) * kEps * anorm);
  }
  EXPECT_LT(bound, 1e-6 * anorm);
  // Scale invariance: R(c x) = R(x), grad R(c x) = grad R(x) / c.
  const std::vector<double> x = unit_gaussian(n, 90);
  std::vector<double> x3(x);
  for (double& e : x3) e *= 3.0;
  EXPECT_NEAR(rayleigh_quotient(a, x3), rayleigh_quotient(a, x), 10 * double(n) * kEps * anorm);
}

struct SyevdReference {
  double lambda_max;
  double second;
  std::vector<double> v;
};

SyevdReference syevd_largest(ConstMatrixView a) {
  const index_t n = a.rows();
  Matrix z(a);
  std::vector<double> w(static_cast<std::size_t>(n));
  check_lapack(LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', static_cast<lapack_int>(n), z.data(),
                              static_cast<lapack_int>(z.ld()), w.data()),
               "dsyevd");
  const auto col = z.col(n - 1);  // ascending eigenvalues: the last is the largest
  return {w.back(), w[w.size() - 2], std::vector<double>(col.begin(), col.end())};
}

void expect_matches_syevd(ConstMatrixView a, const EigenIterationResult& res, const char* what) {
  const index_t n = a.rows();
  const SyevdReference ref = syevd_largest(a);
  const double anorm = norm_fro(a);
  ASSERT_TRUE(res.converged) << what;
  // Both are backward stable; lambda_max is well conditioned (Weyl): c = 10.
  EXPECT_NEAR(res.eigenvalue, ref.lambda_max, 10 * double(n) * kEps * anorm) << what;
  // Davis–Kahan: sin angle <= residual / gap, plus rounding of both vectors; measured as the
  // distance to +-v (sqrt(1 - cos^2) would lose half the digits to cancellation).
  const double gap = ref.lambda_max - ref.second;
  double cosine = 0.0;
  for (std::size_t i = 0; i < ref.v.size(); ++i) cosine += res.eigenvector[i] * ref.v[i];
  std::vector<double> diff(ref.v);
  for (std::size_t i = 0; i < diff.size(); ++i) diff[i] = res.eigenvector[i] - (cosine > 0 ? 1 : -1) * ref.v[i];
  EXPECT_LE(nrm2(diff), 2 * (res.residual + 10 * double(n) * kEps * anorm) / gap) << what;
}

TEST(RayleighQuotient, GradientAscentFindsTheLargestEigenvalueOfDsyevd) {
  for (const index_t n : {index_t{2}, index_t{10}, index_t{60}}) {
    const Matrix a = symmetric_with_gap(n, 100 + static_cast<std::uint64_t>(n));
    EigenIterationOptions opts;
    opts.seed = 5;
    const EigenIterationResult res = largest_eigenpair(a, opts);
    expect_matches_syevd(a, res, "gradient ascent");
    EXPECT_EQ(res.rqi_iterations, 0);
    EXPECT_LE(res.residual, opts.tol * norm_fro(a));
  }
}

TEST(RayleighQuotient, RayleighQuotientIterationPolishesCubically) {
  const index_t n = 60;
  const Matrix a = symmetric_with_gap(n, 7);
  EigenIterationOptions opts;
  opts.method = EigenIterationMethod::rayleigh_iteration;
  opts.tol = 1e-14;
  const EigenIterationResult rqi = largest_eigenpair(a, opts);
  expect_matches_syevd(a, rqi, "rayleigh_iteration");
  EXPECT_GE(rqi.rqi_iterations, 1);
  // Cubic convergence from residual 1e-3 ||A||_F to 1e-14 ||A||_F takes a handful of steps.
  EXPECT_LE(rqi.rqi_iterations, 4);
  // And the same answer from plain gradient ascent takes more iterations.
  opts.method = EigenIterationMethod::gradient_ascent;
  opts.tol = 1e-12;
  const EigenIterationResult ga = largest_eigenpair(a, opts);
  EXPECT_GT(ga.iterations, rqi.iterations);
}

TEST(RayleighQuotient, RejectsNonSymmetricAndBadInput) {
  Matrix a = test::gaussian(4, 4, 1);
  EXPECT_THROW(largest_eigenpair(a), Error);
  EXPECT_THROW(largest_eigenpair(test::gaussian(4, 3, 1)), Error);
  const std::vector<double> zero(4, 0.0);
  EXPECT_THROW(rayleigh_quotient(a, zero), Error);
  const std::vector<double> short_x(3, 1.0);
  EXPECT_THROW(rayleigh_gradient(a, short_x), Error);
}

}  // namespace
}  // namespace idprune::la
