#pragma once
// Local kernels of dist's collectives (pivot engines, TSQR, least squares): single-process, no
// communicator (STYLE.md: the distributed step talks through dist::Comm and calls these). Public so
// that they can be unit tested without MPI, and so that callers can build local R factors
// (streamed or threaded) for tsqr_combine.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "idprune/la/cpqr.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::dist::kernel {

/// The n x n upper-triangular R of a local row block z (m x n) from an unpivoted QR z = Q R
/// (LAPACK dgeqrt, compact-WY blocked QR with recursive BLAS-3 panels (dgeqrt3); measured about
/// 25% faster than dgeqrf on tall blocks, whose panels are BLAS-2). A block with m < n gives its
/// m x n trapezoid padded with zero rows; m = 0 gives R = 0. Entries below the diagonal are zero.
[[nodiscard]] la::Matrix local_r(la::ConstMatrixView z);
/// The same, factoring z in place (z is overwritten): no copy of the block.
[[nodiscard]] la::Matrix local_r_in_place(la::MatrixView z);

/// Rows per task of local_r_threaded when the caller gives none: max(4096, 4 n) for n columns.
/// A function of n only, never of the thread count, so that the result is the same for any number
/// of threads; at least 4 n rows so that each block's stacking QR (about 2 b n^2 flops) stays a
/// tall-block, BLAS-3-bound update.
[[nodiscard]] la::index_t threaded_row_block(la::index_t n);

/// The lanes of the row-parallel R factors (local_r_threaded, a streamed compression set): a fixed
/// number, never the thread count, so that the bits do not depend on it.
inline constexpr la::index_t r_lanes = 4;

/// First row of part i of `rows` rows cut into `parts` parts of equal height (the first rows % parts
/// parts one row taller); part i is [part_begin(i), part_begin(i + 1)).
[[nodiscard]] la::index_t part_begin(la::index_t rows, la::index_t parts, la::index_t i);

/// The R factor of the stacked rows of the lanes' R factors: combine_r in the fixed tree (0, 1),
/// (2, 3), ..., then the results likewise, pairs of a level as TBB tasks with single-threaded BLAS;
/// bit-identical for any thread count. rs is consumed.
[[nodiscard]] la::Matrix combine_r_tree(std::vector<la::Matrix> rs);

/// local_r using every thread of the calling TBB arena: the rows in consecutive blocks of at most
/// `row_block` rows (0: threaded_row_block(n)) and equal height, their number a multiple of r_lanes;
/// the lanes as TBB tasks with single-threaded BLAS, lane i factoring block i (local_r) and stacking
/// blocks i + r_lanes, i + 2 r_lanes, ... under its R (la::tpqrt_recursive); then combine_r_tree of the
/// lanes' R factors. The operations and their order do not depend on
/// the thread count: the result is bit-identical for 1, 2, ... threads. A block of at most
/// `row_block` rows is handed to local_r unchanged (BLAS threads as the caller set them).
[[nodiscard]] la::Matrix local_r_threaded(la::ConstMatrixView z, la::index_t row_block = 0);

/// Writes rows [first, first + out.rows()) of an m x n matrix into `out` (called from TBB tasks,
/// concurrently for disjoint rows, with BLAS single-threaded).
using RowBlockFill = std::function<void(la::index_t first, la::MatrixView out)>;
/// local_r_threaded of an m x n matrix Z that is never held: each row block is written by `fill`
/// into a per-thread workspace and factored there, e.g. a layer's activations computed from its
/// inputs block by block, in O(threads x row_block x n + n^2) memory instead of m n. The blocks,
/// lanes and combines are those of local_r_threaded(z); a fill that copies rows of z gives its bits.
[[nodiscard]] la::Matrix local_r_threaded(la::index_t m, la::index_t n, const RowBlockFill& fill,
                                          la::index_t row_block = 0);

/// R factor of a tall matrix fed in row blocks: after add_rows(B_1), ..., add_rows(B_t), r() is
/// the n x n upper-triangular R of [B_1; ...; B_t] (R^T R = Z^T Z to rounding; the signs of its
/// rows may differ from those of one QR of the stacked rows). Each step is R <- R of [R; B] by
/// la::tpqrt_recursive (dtpqrt with a rectangular B, L = 0, panels by recursion), so memory is O(n^2 + b n) for blocks
/// of b rows whatever the total number of rows. Blocks may have any number of rows, 0 and fewer than n included.
class StreamingR {
 public:
  explicit StreamingR(la::index_t cols, la::index_t tpqrt_block = 64);
  /// R <- R of [R; block] (block: b x cols).
  void add_rows(la::ConstMatrixView block);
  [[nodiscard]] const la::Matrix& r() const { return r_; }
  [[nodiscard]] la::index_t rows_seen() const { return rows_seen_; }

 private:
  la::Matrix r_;
  la::Matrix scratch_;  ///< the copy of a block that the QR overwrites with its Householder vectors
  la::index_t tpqrt_block_;
  la::index_t rows_seen_ = 0;
};

/// TSQR combine step: [R1; R2] = Q [R; 0] for n x n upper-triangular R1, R2 (LAPACK dtpqrt with
/// L = n). On return r1 holds R (zero below the diagonal); r2 is overwritten (Householder vectors).
void combine_r(la::MatrixView r1, la::MatrixView r2, la::index_t block_size = 32);

/// Local step of a row-distributed least-squares fit min ||Y - A X||_F: for this process's rows
/// A_p = Q_p R_p (m_p x k, LAPACK dgeqrf) the k x k upper-triangular R_p and the k x n C_p, the
/// first k rows of Q_p^T Y_p (dormqr). Rows beyond min(m_p, k) are zero (a block with fewer rows
/// than unknowns, or none). The rest of Q_p^T Y_p is orthogonal to range(A_p) and not needed.
struct TriangleAndRhs {
  la::Matrix r;  ///< k x k, upper triangular
  la::Matrix c;  ///< k x n
};
[[nodiscard]] TriangleAndRhs least_squares_block(la::ConstMatrixView a, la::ConstMatrixView y);

/// Combine step of the least-squares tree: [R1; R2] = Q [R; 0] (dtpqrt, L = k) and
/// [C1; C2] <- Q^T [C1; C2] (dtpmqrt). On return r1 holds R and c1 the first k rows of
/// Q^T [C1; C2]; r2 and c2 are overwritten. R1, R2 k x k upper triangular, C1, C2 k x n.
void combine_r_rhs(la::MatrixView r1, la::MatrixView c1, la::MatrixView r2, la::MatrixView c2,
                   la::index_t block_size = 32);

/// X = R11^{-1} R12 for k x k upper-triangular R11 and k x n R12 (dtrsm), or the minimum-norm
/// solution V S^+ U^T R12 from the SVD R11 = U S V^T when R11 is numerically singular (some
/// |r_ii| <= k eps max |r_ii|: a dead or duplicated column); singular values at or below
/// k eps s_1 count as zero, as dgelsd's rcond. X = 0 when R11 = 0.
[[nodiscard]] la::Matrix solve_upper(la::Matrix r11, la::Matrix r12);

/// Packs the upper triangle of a square matrix column by column (n (n + 1) / 2 values) and back
/// (the strictly lower part of the target is set to zero).
[[nodiscard]] std::vector<double> pack_upper(la::ConstMatrixView a);
void unpack_upper(std::span<const double> packed, la::MatrixView a);

/// The rank the la::cpqr stopping rule selects from a full sequence of pivoted diagonals
/// |r_11| >= |r_22| >= ...: the smallest k with k == max_rank (or diag.size()), or
/// |r_{k+1,k+1}| <= rel_tol |r_11|, or r_{k+1,k+1} == 0.
[[nodiscard]] la::index_t stopping_rank(std::span<const double> diag, const la::CpqrOptions& opts);

/// CPQR result from a complete pivoted triangular factor: `r` is min(m, n) x n upper trapezoidal
/// with A P = Q r (e.g. from pdgeqpf or dgeqp3) and `pivots` its 0-based permutation. Truncates
/// by stopping_rank; residual_fro = ||R22||_F, next_diag = |r_{k+1,k+1}|.
[[nodiscard]] la::CpqrResult truncate_pivoted_r(la::ConstMatrixView r, std::vector<la::index_t> pivots,
                                                const la::CpqrOptions& opts);

/// Greedy CPQR of Z from its Gram matrix G = Z^T Z (n x n, upper triangle referenced) by pivoted
/// Cholesky P^T G P = R^T R (LAPACK dpstrf, early stop). dpstrf stops when the largest remaining
/// diagonal (a squared column norm, r_{k+1,k+1}^2) is <= tol, so the relative rule
/// |r_{k+1,k+1}| <= t |r_11| becomes tol = t^2 max(diag(G)), with t = max(opts.rel_tol, floor_rel_tol).
/// Rows of R have the sign of a positive diagonal (Householder QR may flip rows: T is the same).
/// next_diag and residual_fro come from the Schur-complement diagonal
/// d_i = G_ii - sum_{l<k} r_li^2 (accurate to about eps max(diag G)). `gram` is overwritten.
[[nodiscard]] la::CpqrResult pivoted_cholesky_cpqr(la::MatrixView gram, const la::CpqrOptions& opts,
                                                   double floor_rel_tol);

/// Counter-based standard normal numbers, portable (SplitMix64 + Box–Muller, no std:: distributions):
/// value(stream, i) depends only on (seed, stream, i). Entry i of a stream pairs with entry i ^ 1
/// (one Box–Muller pair gives the cosine and sine parts).
class CounterGaussian {
 public:
  explicit CounterGaussian(std::uint64_t seed) : seed_(seed) {}
  [[nodiscard]] double value(std::uint64_t stream, std::uint64_t index) const;
  /// out[t] = value(stream, first + t).
  void fill(std::uint64_t stream, std::uint64_t first, std::span<double> out) const;

 private:
  std::uint64_t seed_;
};

/// The block Omega(i0 : i0 + l, g0 : g0 + m) of the sketching matrix (l x m, column-major):
/// Omega(i, g) = CounterGaussian(seed).value(g, i), unscaled. Column g of Omega multiplies global
/// row g of Z, so every rank builds its own columns whatever the partition.
[[nodiscard]] la::Matrix gaussian_test_block(std::uint64_t seed, la::index_t i0, la::index_t l, la::index_t g0,
                                             la::index_t m);

/// Owner process and local index of global index g in a 1-D block-cyclic layout with block nb over
/// p processes (first block on process 0), as ScaLAPACK's indxg2p / indxg2l.
[[nodiscard]] inline int cyclic_owner(la::index_t g, la::index_t nb, int p) { return static_cast<int>((g / nb) % p); }
[[nodiscard]] inline la::index_t cyclic_local(la::index_t g, la::index_t nb, int p) {
  return (g / (nb * p)) * nb + g % nb;
}

}  // namespace idprune::dist::kernel
