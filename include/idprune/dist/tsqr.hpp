#pragma once
// TSQR (tall-skinny QR, Demmel, Grigori, Hoemmen, Langou 2012): the R factor of row-distributed
// matrices. Each rank factors its own rows, Z_p = Q_p R_p; the R_p are combined up a binary tree,
// [R_a; R_b] = Q [R; 0] by LAPACK dtpqrt, so that R^T R = Z^T Z and only n x n triangles cross
// the network. Several matrices share one tree: each message carries every matrix's packed R.
#include <span>
#include <vector>

#include "idprune/dist/comm.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::dist {

struct TsqrOptions {
  la::index_t tpqrt_block = 32;  ///< block size nb of dtpqrt in the combines
  bool broadcast = true;         ///< the R factors on every rank; false: on `root` only (0 x 0 elsewhere)
  int root = 0;                  ///< the rank where the tree ends
  bool threaded_local = false;   ///< local R by kernel::local_r_threaded (every thread on each matrix)
                                 ///< instead of kernel::local_r; the two differ in rounding for
                                 ///< blocks taller than kernel::threaded_row_block(n)
};

/// Collective: the n_i x n_i upper-triangular R_i of each row-distributed Z_i, Z_i = Q_i R_i
/// (rows beyond the global row count are zero). locals[i] is this rank's rows of Z_i: any number
/// of rows, none included; the same number of matrices and the same column count per matrix on
/// every rank (checked collectively, as is every local failure: CollectiveError on every rank).
/// Local QRs and combines use single-threaded BLAS (TBB tasks across matrices), so R does not
/// depend on the thread count or on the batch: on one rank R_i is kernel::local_r(Z_i) computed
/// with one BLAS thread, bit for bit. Non-finite entries of R (NaN/Inf input, or norms near
/// overflow) are a CollectiveError naming the matrix.
[[nodiscard]] std::vector<la::Matrix> tsqr_reduce(const Comm& comm, std::span<const la::ConstMatrixView> locals,
                                                  const TsqrOptions& opts = {});

/// Collective: the same reduction from R factors each rank has already computed for its rows
/// (n_i x n_i upper triangular, e.g. by kernel::StreamingR or kernel::local_r_threaded): only the
/// tree. On one rank the factors come back unchanged.
[[nodiscard]] std::vector<la::Matrix> tsqr_combine(const Comm& comm, std::vector<la::Matrix> local_r,
                                                   const TsqrOptions& opts = {});

}  // namespace idprune::dist
