#pragma once
// Matrix calculus of the second reference text (Problem 2): low-rank fitting by its gradient, and
// the Rayleigh quotient with its gradient, each driving a small iteration whose answer LAPACK
// knows exactly (the truncated SVD, dsyevd).
//
// Low-rank fitting:  F(U, V) = 1/2 ||X - U V||_F^2,  X m x n, U m x k, V k x n. With the residual
// E = X - U V,  dF = -<E, dU V + U dV>, so
//   dF/dU = -E V^T,   dF/dV = -U^T E.
// Its minimum over U, V is the Eckart–Young–Mirsky optimum 1/2 sum_{i>k} sigma_i(X)^2.
//
// Rayleigh quotient:  R(x) = (A x, x) / (x, x) for symmetric A, with
//   grad R(x) = 2 (A x - R(x) x) / (x, x),
// orthogonal to x; its stationary points are the eigenvectors, its maximum is lambda_max(A).
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::la {

// ---- F(U, V) = 1/2 ||X - U V||_F^2 -------------------------------------------------------------

/// F(U, V) = 1/2 ||X - U V||_F^2 (the product by dgemm, the norm scaled against overflow).
double lowrank_objective(ConstMatrixView x, ConstMatrixView u, ConstMatrixView v);

struct LowRankGradient {
  double value = 0.0;  ///< F(U, V)
  Matrix du;           ///< dF/dU = -(X - U V) V^T, m x k
  Matrix dv;           ///< dF/dV = -U^T (X - U V), k x n
};
/// F and its gradient: one GEMM for the residual, one each for dU and dV.
LowRankGradient lowrank_gradient(ConstMatrixView x, ConstMatrixView u, ConstMatrixView v);

/// The Eckart–Young–Mirsky optimum min_{rank B <= k} 1/2 ||X - B||_F^2 = 1/2 sum_{i>k} sigma_i^2
/// from the non-increasing singular values of X.
double eckart_young_objective(std::span<const double> sigma, index_t k);

enum class LowRankFitMethod {
  als,       ///< alternating least squares: V = argmin_V F (QR of U), then U = argmin_U F (QR of V^T)
  gradient,  ///< gradient descent on (U, V) with Armijo backtracking
};
/// Parses "als" | "gradient"; throws idprune::Error otherwise.
LowRankFitMethod parse_lowrank_fit_method(std::string_view name);

struct LowRankFitOptions {
  index_t rank = 1;  ///< k, 1 <= k <= min(m, n)
  LowRankFitMethod method = LowRankFitMethod::als;
  index_t max_iterations = 1000;  ///< sweeps (ALS) or steps (gradient)
  /// Stop when F_old - F_new <= rel_tol * F_new (also when it is negative: rounding level). For a
  /// linear rate rho per iteration the remaining excess is then <= rel_tol F / (1 - rho).
  double rel_tol = 1e-14;
  std::uint64_t seed = 0;  ///< the random starting point comes from this seed only
};

struct LowRankFitResult {
  Matrix u;  ///< m x k
  Matrix v;  ///< k x n
  double objective = 0.0;
  index_t iterations = 0;
  bool converged = false;       ///< the rel_tol test fired before max_iterations
  std::vector<double> history;  ///< F after each iteration
};

/// Fits X ~ U V of rank k from a random start (see LowRankFitMethod). ALS is subspace iteration
/// in disguise: each sweep multiplies span(U) by X X^T, so with a gap sigma_{k+1} < sigma_k it
/// converges linearly (subspace angle by (sigma_{k+1}/sigma_k)^2 per sweep) to the optimum.
/// Throws idprune::Error on bad k, non-finite X, or a rank-deficient factor in an ALS solve.
LowRankFitResult fit_lowrank(ConstMatrixView x, const LowRankFitOptions& opts = {});

// ---- Rayleigh quotient ------------------------------------------------------------------------

/// R(x) = (A x, x) / (x, x) for symmetric A (only A as given is used: dgemv); x != 0.
double rayleigh_quotient(ConstMatrixView a, std::span<const double> x);
/// grad R(x) = 2 (A x - R(x) x) / (x, x).
std::vector<double> rayleigh_gradient(ConstMatrixView a, std::span<const double> x);

enum class EigenIterationMethod {
  gradient_ascent,     ///< steepest ascent on R with the exact line search: Rayleigh–Ritz on span{x, grad R(x)}
  rayleigh_iteration,  ///< gradient ascent until the residual is small, then Rayleigh quotient iteration
};

struct EigenIterationOptions {
  EigenIterationMethod method = EigenIterationMethod::gradient_ascent;
  index_t max_iterations = 20000;
  double tol = 1e-12;  ///< stop when ||A x - R(x) x|| <= tol * ||A||_F (x unit)
  /// rayleigh_iteration: switch to RQI once the residual is <= switch_tol * ||A||_F. RQI converges
  /// to the eigenvalue nearest R(x), which is lambda_max once the residual is below half the gap.
  double switch_tol = 1e-3;
  std::uint64_t seed = 0;  ///< the random starting vector comes from this seed only
};

struct EigenIterationResult {
  double eigenvalue = 0.0;          ///< R(x) at the final x
  std::vector<double> eigenvector;  ///< unit x
  double residual = 0.0;            ///< ||A x - R(x) x||_2
  index_t iterations = 0;
  index_t rqi_iterations = 0;  ///< of which Rayleigh quotient iterations
  bool converged = false;
};

/// The largest eigenvalue of a symmetric matrix by maximizing the Rayleigh quotient. Steepest
/// ascent converges linearly with a rate set by (lambda_1 - lambda_2) / (lambda_1 - lambda_n);
/// RQI converges cubically. Throws idprune::Error on a non-square, non-symmetric (beyond
/// 100 n eps ||A||_F) or non-finite A.
EigenIterationResult largest_eigenpair(ConstMatrixView a, const EigenIterationOptions& opts = {});

}  // namespace idprune::la
