#pragma once
// Column-pivoted QR (Businger–Golub greedy pivoting) and the interpolative decomposition built on it.
//
//   A P = Q R,   R = [R11 R12; 0 R22],   R11 k x k upper triangular.
//
// The first k pivots C are the skeleton columns; T = [I, R11^{-1} R12] P^T (k x n) is the
// interpolation matrix with A(:,C) T ≈ A, ||A - A(:,C) T||_2 = ||R22||_2 and T(:,C) = I.
// The first k pivots do not depend on later steps, so every method stops after k steps.
#include <cstdint>
#include <string_view>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::la {

enum class CpqrMethod {
  unblocked,  ///< textbook Householder + column swaps + norm updates (the reference text), O(m n k)
  blocked,    ///< BLAS-3, LAPACK dlaqps style delayed updates, norm downdating with safe recomputation
  lapack,     ///< LAPACK dgeqp3 (always the full factorization), truncated afterwards: the reference
};

/// Parses "unblocked" | "blocked" | "lapack"; throws idprune::Error otherwise.
CpqrMethod parse_cpqr_method(std::string_view name);
std::string_view to_string(CpqrMethod method);

/// Options shared by CPQR, the ID and every pivot engine (one struct, as Elemental's QRCtrl).
/// Stopping: after k steps the next diagonal |r_{k+1,k+1}| equals the largest remaining column
/// norm. The factorization stops at the smallest k with
///   k == max_rank, or |r_{k+1,k+1}| <= rel_tol * |r_11|, or |r_{k+1,k+1}| == 0,
/// so the selected rank never includes a zero diagonal (dead neurons, rank deficiency).
/// At k = 0 the test reads |r_11| <= rel_tol |r_11|: rel_tol >= 1 (or A = 0) gives rank 0.
/// The in-house methods evaluate |r_{k+1,k+1}| as the exact norm of the candidate pivot column
/// (the one with the largest downdated norm estimate); `lapack` reads it from dgeqp3's R.
struct CpqrOptions {
  index_t max_rank = -1;  ///< at most this many steps; -1 means min(m, n)
  double rel_tol = 0.0;   ///< relative tolerance on |r_{k+1,k+1}| / |r_11|; 0 disables it
  CpqrMethod method = CpqrMethod::blocked;
  index_t block_size = 32;  ///< panel width of the blocked method
  bool want_q = false;      ///< keep the Householder vectors and tau (for Q)
  /// Blocked method, large tall A (m >= 2n), many steps, no want_q: first reduce A = Q0 R0 by an
  /// unpivoted QR (dgeqrf, BLAS-3) and factor the n x n R0 instead. CPQR of A and of R0 pick the
  /// same pivots in exact arithmetic and give the same R up to row signs, the same diag and
  /// remainder norms (orthogonal invariance), so only rounding differs; the pivoted,
  /// matrix-vector bound part then runs on n x n data instead of m x n. Used when it pays (cost
  /// model in cpqr.cpp); false: never.
  bool tall_qr_preprocessing = true;
};

struct CpqrResult {
  index_t rank = 0;             ///< k, the number of steps taken
  std::vector<index_t> pivots;  ///< permutation of 0..n-1; A(:, pivots[j]) is column j of A P
  Matrix r;                     ///< k x n, [R11 R12] in pivoted column order (upper trapezoidal)
  std::vector<double> diag;     ///< |r_11|, ..., |r_kk| (non-increasing for exact greedy pivoting)
  double next_diag = 0.0;       ///< the largest remaining column norm (exact, of R22), 0 when k = min(m, n)
  double residual_fro = 0.0;    ///< ||R22||_F (norm of the unreduced remainder), computed exactly
  /// If want_q: the first k columns of the reduced matrix in LAPACK storage (R11 on and above the
  /// diagonal, the Householder vectors v_j below it, v_j(j) = 1 implicit), m x k; else empty.
  Matrix householder;
  std::vector<double> tau;  ///< k Householder scalars, if want_q

  /// The skeleton C: the first k pivots.
  [[nodiscard]] std::vector<index_t> skeleton() const {
    return {pivots.begin(), pivots.begin() + static_cast<std::ptrdiff_t>(rank)};
  }
};

/// Column-pivoted QR of `a` (m x n), stopped by `opts`. Throws idprune::Error on NaN/Inf input
/// (naming the first bad entry), a column whose 2-norm overflows a double, a result that overflowed,
/// or bad options (max_rank > min(m, n), rel_tol < 0). Column norms above 2^1008 are factored as
/// 2^-16 A and scaled back (la/finite.hpp); 1e-300..1e300 and subnormal entries need nothing.
CpqrResult cpqr(ConstMatrixView a, const CpqrOptions& opts = {});

/// The explicit m x k orthonormal Q of a result computed with want_q (LAPACK dorgqr).
Matrix cpqr_q(const CpqrResult& f);

/// Interpolative decomposition A ≈ A(:, skeleton) * interpolation.
struct InterpolativeDecomposition {
  std::vector<index_t> skeleton;  ///< C, k column indices
  Matrix interpolation;           ///< T, k x n; T(:, C) = I exactly
  CpqrResult factorization;       ///< the CPQR it came from
};

/// T = [I, R11^{-1} R12] P^T from a (possibly distributed or sketched) CPQR result, by a triangular
/// solve with R11 (dtrsm), never an explicit inverse; the rows are divided by r_ii first, so that
/// subnormal diagonals (dtrsm's reciprocals would overflow) give a finite T.
Matrix interpolation_matrix(const CpqrResult& f);
InterpolativeDecomposition interpolative_decomposition(ConstMatrixView a, const CpqrOptions& opts = {});
InterpolativeDecomposition interpolative_decomposition(CpqrResult f);

/// The k-sparse "basic" least-squares solution (reference text, Question 1): x(C) = z with
/// z = argmin ||A(:, C) z - b||_2 = R11^{-1} Q1^T b (A(:, C) = Q1 R11), x zero off C.
/// `b` is m x nrhs; returns n x nrhs. Its residual obeys
///   ||A x - b|| <= ||R22||_2 ||x_LS|| + ||A x_LS - b||.
/// The first form needs a factorization computed with want_q.
Matrix basic_least_squares(const CpqrResult& f, ConstMatrixView b);
Matrix basic_least_squares(ConstMatrixView a, ConstMatrixView b, const CpqrOptions& opts = {});

}  // namespace idprune::la
