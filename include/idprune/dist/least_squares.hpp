#pragma once
// Least squares over row-distributed data: T = argmin ||Y - A T||_F for A (m x k) and Y (m x n)
// whose rows are spread over the ranks. Only k x k triangles and k x n blocks cross the network.
#include <span>
#include <vector>

#include "idprune/dist/comm.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::dist {

/// This rank's rows of A (m_p x k) and of Y (m_p x n); m_p may be 0.
struct LeastSquaresProblem {
  la::ConstMatrixView a;
  la::ConstMatrixView y;
};

struct LeastSquaresOptions {
  la::index_t tpqrt_block = 32;  ///< block size nb of dtpqrt/dtpmqrt in the tree combines
};

/// Collective: T_i = argmin ||Y_i - A_i T_i||_F (k_i x n_i) for each problem, on every rank,
/// bit-identical across ranks. Each rank factors A_p = Q_p R_p (dgeqrf) and forms the first k rows
/// of Q_p^T Y_p (dormqr); the blocks [R_p, Q_p^T Y_p] are combined up a binary tree (dtpqrt on the
/// triangles, dtpmqrt on the right-hand sides; one message per tree edge for every problem) into
/// R11 and R12 = Q^T Y; on the root T = R11^{-1} R12, or, when R11 is numerically singular (some
/// |r_ii| <= k eps max |r_ii|: a dead or duplicated column of A, fewer global rows than unknowns),
/// the minimum-norm solution V S^+ U^T R12 with singular values at or below k eps s_1 taken as
/// zero (kernel::solve_upper); T = 0 when A = 0. Then one broadcast of every T.
/// BLAS runs single-threaded (TBB tasks across problems), so T does not depend on the thread count
/// or the batch. On one rank there is no tree: T comes from R_p and Q_p^T Y_p directly.
/// Checked collectively (CollectiveError on every rank): a_i.rows() == y_i.rows() on each rank, the
/// same number of problems and the same k_i, n_i on every rank, finite entries.
[[nodiscard]] std::vector<la::Matrix> least_squares(const Comm& comm, std::span<const LeastSquaresProblem> problems,
                                                    const LeastSquaresOptions& opts = {});

}  // namespace idprune::dist
