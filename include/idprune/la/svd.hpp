#pragma once
// Singular values and the singular value decomposition (LAPACK dgesdd), and the optimal low-rank
// errors they give (Eckart–Young): the yardstick for CPQR / ID approximation errors.
#include <span>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::la {

/// Singular values of `a` (dgesdd, values only), non-increasing; min(m, n) of them.
/// Throws idprune::Error on NaN/Inf entries.
std::vector<double> singular_values(ConstMatrixView a);

/// Thin SVD A = U diag(s) Vt: U m x r, s r values (non-increasing), Vt r x n, r = min(m, n).
struct Svd {
  Matrix u;
  std::vector<double> s;
  Matrix vt;
};
Svd svd(ConstMatrixView a);

/// Spectral norm ||A||_2 = sigma_1(A); 0 for an empty matrix.
double norm2(ConstMatrixView a);

/// Optimal spectral-norm errors of rank-k approximations (Eckart–Young–Mirsky):
/// e[k] = min_{rank B <= k} ||A - B||_2 = sigma_{k+1}, for k = 0..r (e[r] = 0), from the
/// non-increasing singular values `sigma` (r of them).
std::vector<double> optimal_rank_k_errors(std::span<const double> sigma);

}  // namespace idprune::la
