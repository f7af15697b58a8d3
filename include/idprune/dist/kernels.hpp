#pragma once
// Local kernels of the distributed pivot engines: single-process, no communicator (STYLE.md: the
// distributed step talks through dist::Comm and calls these). Public so that they can be unit
// tested without MPI.
#include <cstdint>
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

/// TSQR combine step: [R1; R2] = Q [R; 0] for n x n upper-triangular R1, R2 (LAPACK dtpqrt with
/// L = n). On return r1 holds R (zero below the diagonal); r2 is overwritten (Householder vectors).
void combine_r(la::MatrixView r1, la::MatrixView r2, la::index_t block_size = 32);

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
