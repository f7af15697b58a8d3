#include "idprune/la/lowrank_fit.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/lapack.hpp"

namespace idprune::la {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

Matrix gaussian_matrix(index_t m, index_t n, double scale, std::mt19937_64& rng) {
  Matrix a(m, n);
  std::normal_distribution<double> normal(0.0, scale);
  for (double& v : a.values()) v = normal(rng);
  return a;
}

std::mt19937_64 seeded_rng(std::uint64_t seed, std::uint64_t stream) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(stream)};
  return std::mt19937_64(seq);
}

/// E = X - U V.
Matrix residual(ConstMatrixView x, ConstMatrixView u, ConstMatrixView v) {
  Matrix e(x);
  gemm(-1.0, u, Op::none, v, Op::none, 1.0, e.view());
  return e;
}

void check_shapes(const char* routine, ConstMatrixView x, ConstMatrixView u, ConstMatrixView v) {
  require(u.rows() == x.rows() && v.cols() == x.cols() && u.cols() == v.rows(), routine, ": X ", x.rows(), " x ",
          x.cols(), ", U ", u.rows(), " x ", u.cols(), ", V ", v.rows(), " x ", v.cols(), " do not conform");
}

/// argmin_Z ||A Z - B||_F for A m x k of full column rank (m >= k): Householder QR of A (dgeqrf),
/// Q^T B (dormqr), then R Z = (Q^T B)(1:k, :) (dtrsm). Backward stable, unlike the normal equations.
Matrix least_squares(ConstMatrixView a, ConstMatrixView b, const char* routine) {
  const index_t m = a.rows();
  const index_t k = a.cols();
  Matrix qr(a);
  const std::vector<double> tau = geqrf(qr.view());
  double rmax = 0.0;
  double rmin = std::numeric_limits<double>::infinity();
  for (index_t i = 0; i < k; ++i) {
    rmax = std::max(rmax, std::abs(qr(i, i)));
    rmin = std::min(rmin, std::abs(qr(i, i)));
  }
  // A zero (to rounding) diagonal of R means A has lost rank: the LS solution is not unique.
  require(rmin > static_cast<double>(m) * kEps * rmax, routine, ": the ", m, " x ", k,
          " factor is rank deficient (min |r_ii| = ", rmin, ", max |r_ii| = ", rmax, ")");
  Matrix c(b);
  ormqr(Side::left, Op::transpose, qr.view(), tau, c.view());
  Matrix z(c.view().rows_range(0, k));
  trsm_upper_left(qr.view().block(0, 0, k, k), Op::none, z.view());
  return z;
}

/// ||a||_F^2 + ||b||_F^2 for two gradient blocks.
double squared_norm(ConstMatrixView a, ConstMatrixView b) {
  const double na = norm_fro(a);
  const double nb = norm_fro(b);
  return na * na + nb * nb;
}

/// a + alpha * b (same shape).
Matrix axpy(ConstMatrixView a, double alpha, ConstMatrixView b) {
  Matrix c(a);
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) c(i, j) += alpha * b(i, j);
  return c;
}

double dot(std::span<const double> a, std::span<const double> b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

double lowrank_objective(ConstMatrixView x, ConstMatrixView u, ConstMatrixView v) {
  check_shapes("lowrank_objective", x, u, v);
  const double e = norm_fro(residual(x, u, v));
  return 0.5 * e * e;
}

LowRankGradient lowrank_gradient(ConstMatrixView x, ConstMatrixView u, ConstMatrixView v) {
  check_shapes("lowrank_gradient", x, u, v);
  const Matrix e = residual(x, u, v);
  LowRankGradient g;
  const double ne = norm_fro(e);
  g.value = 0.5 * ne * ne;
  g.du = Matrix(u.rows(), u.cols());
  g.dv = Matrix(v.rows(), v.cols());
  gemm(-1.0, e, Op::none, v, Op::transpose, 0.0, g.du.view());  // -E V^T
  gemm(-1.0, u, Op::transpose, e, Op::none, 0.0, g.dv.view());  // -U^T E
  return g;
}

double eckart_young_objective(std::span<const double> sigma, index_t k) {
  require(k >= 0, "eckart_young_objective: k=", k, " (needs >= 0)");
  double tail = 0.0;
  // Sum the tail from its smallest term up (the values are non-increasing): less rounding.
  for (auto i = static_cast<index_t>(sigma.size()) - 1; i >= k; --i) {
    const double s = sigma[static_cast<std::size_t>(i)];
    tail += s * s;
  }
  return 0.5 * tail;
}

LowRankFitMethod parse_lowrank_fit_method(std::string_view name) {
  if (name == "als") return LowRankFitMethod::als;
  if (name == "gradient") return LowRankFitMethod::gradient;
  throw Error(detail::concat("unknown low-rank fit method '", name, "' (expected als or gradient)"));
}

LowRankFitResult fit_lowrank(ConstMatrixView x, const LowRankFitOptions& opts) {
  const index_t m = x.rows();
  const index_t n = x.cols();
  const index_t k = opts.rank;
  require(k >= 1 && k <= std::min(m, n), "fit_lowrank: rank=", k, " must be in [1, min(m, n)] for X ", m, " x ", n);
  require(opts.max_iterations >= 1 && opts.rel_tol >= 0.0, "fit_lowrank: max_iterations=", opts.max_iterations,
          " (needs >= 1), rel_tol=", opts.rel_tol, " (needs >= 0)");
  require(all_finite(x), "fit_lowrank: X has NaN or Inf entries");

  auto rng = seeded_rng(opts.seed, 0x666974ULL);  // stream "fit"
  LowRankFitResult res;
  const double xnorm = norm_fro(x);
  if (opts.method == LowRankFitMethod::als) {
    res.u = gaussian_matrix(m, k, 1.0, rng);
    res.v = least_squares(res.u, x, "fit_lowrank (V step)");
  } else {
    // Balanced start with entries of U V of the size of rms(X): c^2 sqrt(k) = ||X||_F / sqrt(m n).
    const double c = std::sqrt(xnorm / std::sqrt(static_cast<double>(m) * static_cast<double>(n) * double(k)));
    res.u = gaussian_matrix(m, k, c > 0.0 ? c : 1.0, rng);
    res.v = gaussian_matrix(k, n, c > 0.0 ? c : 1.0, rng);
  }
  double f = lowrank_objective(x, res.u, res.v);
  double step = 0.0;  // gradient method: the last accepted step length
  const Matrix xt = transpose(x);

  for (index_t it = 0; it < opts.max_iterations; ++it) {
    double f_new = f;
    if (opts.method == LowRankFitMethod::als) {
      // U = argmin ||X - U V||: transposed, V^T U^T = X^T in the least-squares sense.
      res.u = transpose(least_squares(transpose(res.v), xt, "fit_lowrank (U step)"));
      res.v = least_squares(res.u, x, "fit_lowrank (V step)");
      f_new = lowrank_objective(x, res.u, res.v);
    } else {
      const LowRankGradient g = lowrank_gradient(x, res.u, res.v);
      const double g2 = squared_norm(g.du, g.dv);
      if (g2 == 0.0) {
        res.converged = true;
        break;
      }
      // The gradient in U is Lipschitz with constant ||V||_2^2 <= ||V||_F^2 (and in V with
      // ||U||_F^2): 1 / (their sum) is a safe first trial; later trials start from twice the
      // last accepted step, and halve until Armijo's sufficient decrease holds.
      const double nu = norm_fro(res.u);
      const double nv = norm_fro(res.v);
      double alpha = step > 0.0 ? 2.0 * step : 1.0 / (nu * nu + nv * nv);
      bool accepted = false;
      for (int trial = 0; trial < 60; ++trial) {
        Matrix u_try = axpy(res.u, -alpha, g.du);
        Matrix v_try = axpy(res.v, -alpha, g.dv);
        const double f_try = lowrank_objective(x, u_try, v_try);
        if (f_try <= f - 1e-4 * alpha * g2) {
          res.u = std::move(u_try);
          res.v = std::move(v_try);
          f_new = f_try;
          step = alpha;
          accepted = true;
          break;
        }
        alpha *= 0.5;
      }
      if (!accepted) {  // no decrease representable: the rounding level of F is reached
        res.converged = true;
        res.iterations = it + 1;
        res.history.push_back(f);
        break;
      }
    }
    res.iterations = it + 1;
    res.history.push_back(f_new);
    const double decrease = f - f_new;
    f = std::min(f, f_new);
    if (decrease <= opts.rel_tol * f_new) {
      res.converged = true;
      break;
    }
  }
  res.objective = lowrank_objective(x, res.u, res.v);
  return res;
}

double rayleigh_quotient(ConstMatrixView a, std::span<const double> x) {
  require(a.rows() == a.cols() && static_cast<index_t>(x.size()) == a.rows(), "rayleigh_quotient: A ", a.rows(), " x ",
          a.cols(), ", x of length ", x.size());
  const double xx = dot(x, x);
  require(xx > 0.0, "rayleigh_quotient: x = 0");
  std::vector<double> ax(x.size());
  gemv(1.0, a, Op::none, x, 0.0, ax);
  return dot(ax, x) / xx;
}

std::vector<double> rayleigh_gradient(ConstMatrixView a, std::span<const double> x) {
  require(a.rows() == a.cols() && static_cast<index_t>(x.size()) == a.rows(), "rayleigh_gradient: A ", a.rows(), " x ",
          a.cols(), ", x of length ", x.size());
  const double xx = dot(x, x);
  require(xx > 0.0, "rayleigh_gradient: x = 0");
  std::vector<double> g(x.size());
  gemv(1.0, a, Op::none, x, 0.0, g);
  const double r = dot(g, x) / xx;
  for (std::size_t i = 0; i < g.size(); ++i) g[i] = 2.0 * (g[i] - r * x[i]) / xx;
  return g;
}

EigenIterationResult largest_eigenpair(ConstMatrixView a, const EigenIterationOptions& opts) {
  const index_t n = a.rows();
  require(n >= 1 && a.cols() == n, "largest_eigenpair: A is ", a.rows(), " x ", a.cols(), " (needs square, n >= 1)");
  require(all_finite(a), "largest_eigenpair: A has NaN or Inf entries");
  require(opts.max_iterations >= 1 && opts.tol > 0.0 && opts.switch_tol > 0.0,
          "largest_eigenpair: max_iterations=", opts.max_iterations, ", tol=", opts.tol,
          ", switch_tol=", opts.switch_tol, " (need >= 1, > 0, > 0)");
  const double anorm = norm_fro(a);
  double asym = 0.0;
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < j; ++i) asym = std::max(asym, std::abs(a(i, j) - a(j, i)));
  require(asym <= 100.0 * static_cast<double>(n) * kEps * anorm,
          "largest_eigenpair: A is not symmetric (max |a_ij - a_ji| = ", asym, ", ||A||_F = ", anorm, ")");

  const auto nu = static_cast<std::size_t>(n);
  auto rng = seeded_rng(opts.seed, 0x6569676eULL);  // stream "eign"
  std::vector<double> x(nu);
  std::normal_distribution<double> normal;
  for (double& v : x) v = normal(rng);
  auto normalize = [](std::vector<double>& v) {
    const double s = nrm2(v);
    for (double& e : v) e /= s;
  };
  normalize(x);

  EigenIterationResult res;
  std::vector<double> ax(nu), r(nu), aq(nu);
  bool rqi = false;
  for (index_t it = 0;; ++it) {
    gemv(1.0, a, Op::none, x, 0.0, ax);
    const double lambda = dot(ax, x);
    for (std::size_t i = 0; i < nu; ++i) r[i] = ax[i] - lambda * x[i];
    const double rnorm = nrm2(r);
    res.eigenvalue = lambda;
    res.residual = rnorm;
    res.iterations = it;
    if (rnorm <= opts.tol * anorm || anorm == 0.0) {
      res.converged = true;
      break;
    }
    if (it == opts.max_iterations) break;
    if (opts.method == EigenIterationMethod::rayleigh_iteration && rnorm <= opts.switch_tol * anorm) rqi = true;
    if (rqi) {
      // Rayleigh quotient iteration: (A - R(x) I) z = x (LU with partial pivoting, dgesv).
      Matrix shifted(a);
      for (index_t i = 0; i < n; ++i) shifted(i, i) -= lambda;
      std::vector<double> z = x;
      std::vector<lapack_int> ipiv(nu);
      const lapack_int info =
          LAPACKE_dgesv_work(LAPACK_COL_MAJOR, static_cast<lapack_int>(n), 1, shifted.data(),
                             static_cast<lapack_int>(shifted.ld()), ipiv.data(), z.data(), static_cast<lapack_int>(n));
      if (info > 0) {  // A - R(x) I exactly singular: R(x) is an eigenvalue and x its eigenvector
        res.converged = true;
        break;
      }
      check_lapack(info, "dgesv");
      x = std::move(z);
      normalize(x);
      ++res.rqi_iterations;
      continue;
    }
    // Steepest ascent with the exact line search: the gradient 2 (A x - R x) is orthogonal to the
    // unit x, so max R on span{x, q}, q = r / ||r||, is the larger eigenvalue of the 2 x 2
    // Rayleigh–Ritz matrix [R, x^T A q; q^T A x, q^T A q].
    // q = r / ||r||, re-orthogonalized against x: rounding leaves x^T r ~ eps ||A||, which enters
    // h12 = x^T A q as lambda x^T q ~ eps ||A||^2 / ||r|| and would stall the iteration near
    // ||r|| ~ sqrt(eps) ||A|| without this Gram–Schmidt step.
    std::vector<double> q = r;
    const double xr = dot(x, q);
    for (std::size_t i = 0; i < nu; ++i) q[i] -= xr * x[i];
    const double qnorm = nrm2(q);
    for (double& e : q) e /= qnorm;
    gemv(1.0, a, Op::none, q, 0.0, aq);
    const double h11 = lambda;
    const double h12 = dot(x, aq);
    const double h22 = dot(q, aq);
    // Eigenvector of the 2 x 2 for its larger eigenvalue mu = (h11 + h22) / 2 + rad, without the
    // cancellation in mu - h11 (= h12^2 / (rad + d), which is tiny near convergence): (1, t) with
    // t = h12 / (rad + d) when d = (h11 - h22) / 2 >= 0, else (h12 / (rad - d), 1).
    const double d = 0.5 * (h11 - h22);
    const double rad = std::hypot(d, h12);
    double c1 = 1.0;
    double c2 = 0.0;
    if (d >= 0.0) {
      c2 = rad + d > 0.0 ? h12 / (rad + d) : 0.0;
    } else {
      c1 = h12 / (rad - d);
      c2 = 1.0;
    }
    for (std::size_t i = 0; i < nu; ++i) x[i] = c1 * x[i] + c2 * q[i];
    normalize(x);
  }
  res.eigenvector = x;
  return res;
}

}  // namespace idprune::la
