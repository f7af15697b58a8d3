#pragma once
// Thin typed wrappers over the LAPACK routines idprune uses (LAPACKE "_work" interfaces, so no
// hidden NaN scans or allocations beyond the workspace). Shapes are checked at entry; every
// info != 0 (other than the documented rank-deficiency report of dpstrf) becomes an
// idprune::Error naming the routine. Pivots are 0-based here, 1-based only inside LAPACK.
#include <span>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::la {

/// Unpivoted QR, A = Q R (dgeqrf). On return R is in the upper triangle of `a` and the
/// Householder vectors below it; returns the min(m, n) Householder scalars tau.
std::vector<double> geqrf(MatrixView a);

/// Overwrites the m x n `a` (m >= n), holding k = tau.size() <= n reflectors in LAPACK storage,
/// with the first n columns of Q = H_1 ... H_k (dorgqr).
void orgqr(MatrixView a, std::span<const double> tau);

/// C <- op(Q) C (side left) or C op(Q) (side right), Q = H_1 ... H_k from the k = tau.size()
/// reflectors stored below the diagonal of `v` (dormqr). `v` is m x k for side left (m = C rows),
/// n x k for side right (n = C cols); only its strictly lower part is read.
void ormqr(Side side, Op op, ConstMatrixView v, std::span<const double> tau, MatrixView c);

/// Column-pivoted QR with every column free, A P = Q R (dgeqp3, the full factorization).
struct Geqp3Result {
  std::vector<index_t> pivots;  ///< A(:, pivots[j]) is column j of A P (0-based)
  std::vector<double> tau;      ///< min(m, n) Householder scalars
};
/// Overwrites `a` with R (upper triangle) and the Householder vectors (below).
Geqp3Result geqp3(MatrixView a);

/// Generates an elementary reflector H = I - tau [1; v] [1; v]^T with H [alpha; x] = [beta; 0]
/// (dlarfg). On return alpha holds beta and x holds v. Returns tau (0 when x is already zero).
double larfg(double& alpha, std::span<double> x);

/// QR of a triangle stacked on a triangle (dtpqrt with L = n):
///   [R1; R2] = Q [R; 0],   R1, R2 upper triangular n x n.
/// On return `r1` holds R (upper triangle; its strictly lower part is not referenced and left as
/// is), `r2` holds the Householder vectors V (upper triangular), and the returned nb x n matrix is
/// LAPACK's block reflector factor T (for dtpmqrt). This is the combine step of a TSQR tree.
/// Only the upper triangles of r1 and r2 are read; the strictly lower part of r2 must be zero
/// on entry only in the sense that it is ignored (dtpqrt treats B as upper trapezoidal).
Matrix tpqrt_triangles(MatrixView r1, MatrixView r2, index_t block_size = 32);

/// General dtpqrt: A (n x n upper triangular) on top of B (m x n, whose last l rows form an upper
/// trapezoid and whose first m - l rows are full). Returns T (nb x n).
Matrix tpqrt(MatrixView a, MatrixView b, index_t l, index_t block_size = 32);

/// dtpqrt with L = 0 (a full rectangle B, m x n, under the n x n upper triangle A), whose panels
/// of `block_size` columns are factored by recursion on their columns (as dgeqrt3 does for dgeqrt,
/// Elmroth and Gustavson 2000) instead of dtpqrt2's column-by-column level-2 loop; the trailing
/// columns are updated as by dtprfb, but in dlarfb's transposed form (X^T = A^T + B^T V, whose
/// dgemm runs faster than dtprfb's X = A + V^T B). The same reflectors, so R is dtpqrt's to
/// rounding; on one core of 2 measured 54-57 vs 42 GFLOP/s for 3125 x 1024 and 44-50 vs 31-33 for
/// 4096 x 512 (idprune bench qr).
/// On return A holds R (its strictly lower part untouched), B the Householder vectors, and the
/// returned nb x n matrix is T in dtpqrt's layout (for dtpmqrt with L = 0).
Matrix tpqrt_recursive(MatrixView a, MatrixView b, index_t block_size = 64);

/// Cholesky A = R^T R of a symmetric positive definite matrix, upper triangle (dpotrf).
/// The strictly lower part of `a` is not referenced. Throws when A is not positive definite.
void potrf_upper(MatrixView a);

/// Pivoted Cholesky P^T A P = R^T R of a symmetric positive semidefinite matrix (dpstrf, upper).
/// On the Gram matrix A = Z^T Z this performs greedy column pivoting of Z: the pivot at step j is
/// the column of largest remaining norm, r_jj^2 being that squared norm.
struct PivotedCholeskyResult {
  std::vector<index_t> pivots;  ///< 0-based: column j of A P is A(:, pivots[j])
  index_t rank = 0;             ///< number of steps taken before the stopping test fired
};
/// Overwrites the upper triangle of `a` with R (the first `rank` rows are meaningful; LAPACK leaves
/// the trailing block partially reduced). `tol` is dpstrf's absolute stopping threshold on the
/// remaining diagonal (a squared norm for Gram matrices); tol < 0 selects LAPACK's default
/// n * eps * max(diag(A)). dpstrf's info = 1 ("rank deficient or not positive semidefinite") is
/// not an error: it is reported through `rank` < n.
PivotedCholeskyResult pstrf_upper(MatrixView a, double tol);

}  // namespace idprune::la
