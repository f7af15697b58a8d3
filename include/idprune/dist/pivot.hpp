#pragma once
// Distributed pivot selection: the CPQR / interpolative decomposition of a row-distributed matrix
//
//   Z P = Q R,   R = [R11 R12; 0 R22],   T = [I, R11^{-1} R12] P^T,   Z ≈ Z(:, C) T,
//
// with the stopping rules of la::cpqr (max_rank, rel_tol on |r_{k+1,k+1}| / |r_11|, zero diagonal).
// One entry point, interchangeable engines (DESIGN.md, "Pivot engines"); every rank gets the same
// la::CpqrResult (computed on rank 0 and broadcast), so code above never knows which engine ran.
//
//   tsqr      local dgeqrf of each row block, R factors combined up a binary tree by dtpqrt on
//             [R1; R2] (any number of ranks), blocked CPQR of the final R on rank 0. Exact: CPQR
//             of R and of Z choose the same pivots and have the same ||R22|| in exact arithmetic.
//   gram      reduction of the local Gram matrices Z_p^T Z_p (dsyrk), pivoted Cholesky (dpstrf)
//             of Z^T Z on rank 0 with early stop. Greedy Cholesky pivoting equals greedy column
//             pivoting of Z, but the Gram matrix squares the condition: diagonals
//             |r_kk| / |r_11| below about sqrt(n eps) are rounding noise. Hence rel_tol must be 0
//             or >= gram_min_rel_tol(n) (else CollectiveError naming the limit), and the engine
//             always stops once |r_{k+1,k+1}| <= gram_min_rel_tol(n) |r_11| (so with max_rank alone
//             it may return a smaller rank on numerically rank-deficient input, as la::cpqr does at
//             a zero diagonal). Near the limit the ID error ||Z - Z(:,C) T|| agrees with the exact
//             engines to a relative O(eps / rel_tol^2) (R from Cholesky carries errors of order
//             eps ||Z||^2 / r_kk); far above it (rel_tol >= 1e-4) to a relative 1e-7 or better.
//             Range: Z^T Z squares the entries (overflow above ~1e154, underflow below ~1e-154).
//             When the largest |entry| lies outside [2^-400, 2^400] the engine first scales Z by
//             the power of two 2^-e (exact) that brings it into [1/2, 1), and scales R, diag and
//             the remainder norms back (T is scale-free), so any finite Z works, 1e300 or 1e-300
//             entries included. The limit that remains: entries below ~2^-500 times the largest
//             square to zero, i.e. columns that small relative to the largest are treated as zero;
//             they lie far below the floor gram_min_rel_tol(n), which the engine never selects
//             below anyway.
//   sketch    randomized ID: Y = Omega Z with Omega Gaussian ((k + p) x m, scaled by 1/sqrt(k+p) so
//             that E||Y x|| = ||Z x||), one reduction of the local Omega_p Z_p, CPQR of Y. Omega's
//             entries come from a counter-based generator keyed by (seed, row of Omega, global row
//             of Z), so Y does not depend on the number of ranks. With max_rank = k the sketch has
//             k + p rows. With only rel_tol the rank is found adaptively: start at
//             k = sketch_initial_rank and double k (adding rows to Omega; earlier rows are kept)
//             until CPQR of Y stops by tolerance before k steps or k reaches min(m, n). The pivots
//             and T are those of Y; diag/next_diag/residual_fro are estimates of Z's: after j
//             steps the sketched residual keeps (l - j) / l of its squared norm on average, so
//             the tolerance is tested on |r_{j+1,j+1}(Y)| sqrt(l / (l - j)).
//   scalapack redistribution to a 2-D block-cyclic layout on a BLACS grid, ScaLAPACK pdgeqpf (full
//             factorization, unblocked norm updates), truncated afterwards by the same rule.
//   lapack    gather Z on rank 0, la::cpqr with CpqrMethod::lapack (dgeqp3). The reference.
//
// Robustness (tests/dist/mpi_adversarial.cpp, every engine, 1..4 ranks): near-tied norms, exact
// duplicate columns, columns from 1e-300 to 1e300, a single row (ranks without rows), a single
// column and the zero matrix give finite results, a valid permutation and, column by column, an
// ID residual within 8 max(m, n) eps ||z_j|| of dgeqp3's at the same rank. NaN/Inf anywhere is one
// CollectiveError on every rank naming the global (row, column) of the first bad entry; so is a
// column whose 2-norm overflows a double ("scale the input down"), checked with scaled norms
// first, and a result that overflowed on the way (norms within a small factor of 1.8e308).
//
// Dead columns (zero on every rank, e.g. dead neurons) have zero norm, so greedy pivoting never
// takes them before it stops: tsqr, gram and sketch first find them (one reduction of n flags)
// and factor only the live columns; the dead ones are put last with zero columns in R and T.
//
// Bytes communicated (EngineStats::bytes_sent, this rank, payload as counted by dist::Comm):
// tsqr/gram/sketch move O(n^2) (or O((k+p) n)) bytes per rank whatever the number of rows m;
// scalapack and lapack move O(m n / P).
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "idprune/dist/dist_matrix.hpp"
#include "idprune/la/cpqr.hpp"

namespace idprune::dist {

enum class PivotEngine { tsqr, gram, sketch, scalapack, lapack };

/// Parses "tsqr" | "gram" | "sketch" | "scalapack" | "lapack"; throws idprune::Error otherwise.
PivotEngine parse_pivot_engine(std::string_view name);
std::string_view to_string(PivotEngine engine);

/// The smallest |r_kk| / |r_11| the Gram engine resolves for n columns: sqrt(n eps), i.e. LAPACK
/// dpstrf's own default stopping level n eps max(diag(Z^T Z)) (about 1.5e-8 for n = 1, 4.8e-7 for
/// n = 1024). Rounding in Z^T Z and in its Schur complements is of order n eps ||Z||^2, so a
/// squared residual norm below that is noise.
[[nodiscard]] double gram_min_rel_tol(la::index_t n);

/// Engine choice and engine-specific knobs (the stopping rule lives in la::CpqrOptions).
struct EngineOptions {
  PivotEngine engine = PivotEngine::tsqr;
  la::index_t oversampling = 10;                  ///< sketch: p, extra rows of Omega beyond k
  la::index_t sketch_initial_rank = 32;           ///< sketch with rel_tol only: first guess of k
  std::uint64_t seed = 0x1d9f'5eed'0000'0001ULL;  ///< sketch: Omega is a function of this seed
  la::index_t scalapack_block = 64;               ///< scalapack: square block size of the block-cyclic layout
  int scalapack_grid_rows = 0;                    ///< scalapack: process rows (0: chosen from the rank count)
  la::index_t tpqrt_block = 32;                   ///< tsqr: block size nb of dtpqrt
};

/// What one call communicated (this rank).
struct EngineStats {
  std::uint64_t bytes_sent = 0;  ///< payload bytes this rank sent (including the result broadcast)
  la::index_t sketch_rows = 0;   ///< sketch: rows of Omega used (k + p, after any doubling)
};

/// Collective CPQR of a row-distributed matrix. Preconditions (checked collectively first, so bad
/// input on one rank gives every rank the same CollectiveError and never a hang): the same column
/// count on every rank, contiguous row blocks, finite entries, max_rank <= min(m, n), rel_tol >= 0,
/// no want_q (Q stays distributed: not supported). opts.method is the local CPQR used by tsqr and
/// sketch on rank 0 (lapack always uses dgeqp3). If `stats` is given it receives this rank's figures.
la::CpqrResult distributed_cpqr(const DistMatrix& z, const la::CpqrOptions& opts = {}, const EngineOptions& engine = {},
                                EngineStats* stats = nullptr);

/// Collective: distributed_cpqr of each zs[i] with opts[i] (every matrix on the same ranks, the
/// same lists on every rank), with the same results as one call each. The collective steps run on
/// the calling thread, matrix after matrix; the local factorizations that follow the tsqr
/// engine's reduction (CPQR of each R on rank 0) run as TBB tasks in parallel, with
/// single-threaded BLAS. Other engines run as one call each. `stats` is empty or one per matrix.
std::vector<la::CpqrResult> distributed_cpqr_batch(std::span<const DistMatrix> zs,
                                                   std::span<const la::CpqrOptions> opts,
                                                   const EngineOptions& engine = {}, std::span<EngineStats> stats = {});

/// Collective interpolative decomposition Z ≈ Z(:, C) T. T is computed on rank 0 (dtrsm with R11)
/// and broadcast, so every rank holds bit-identical results.
la::InterpolativeDecomposition distributed_id(const DistMatrix& z, const la::CpqrOptions& opts = {},
                                              const EngineOptions& engine = {}, EngineStats* stats = nullptr);

/// ||Z - Z(:, C) T|| of a row-distributed Z (collective; the same value on every rank).
struct IdError {
  double spectral = 0.0;   ///< ||.||_2, as sqrt(lambda_max(E^T E)) of the reduced n x n E^T E
  double frobenius = 0.0;  ///< ||.||_F
};
IdError id_error(const DistMatrix& z, const la::InterpolativeDecomposition& id);

}  // namespace idprune::dist
