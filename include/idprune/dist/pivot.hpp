#pragma once
// Distributed pivot selection: the CPQR / interpolative decomposition of a row-distributed matrix
//
//   Z P = Q R,   R = [R11 R12; 0 R22],   T = [I, R11^{-1} R12] P^T,   Z ≈ Z(:, C) T,
//
// with the stopping rules of la::cpqr (max_rank, rel_tol on |r_{k+1,k+1}| / |r_11|, zero diagonal).
// One entry point, interchangeable engines (DESIGN.md, "Pivot engines"; each is described at its
// code in src/dist/pivot.cpp); every rank gets the same la::CpqrResult (computed on rank 0 and
// broadcast), so code above never knows which engine ran.
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
/// tsqr, gram and sketch send O(n^2) (or O((k + p) n)) bytes per rank whatever the number of rows m;
/// scalapack and lapack O(m n / P).
struct EngineStats {
  std::uint64_t bytes_sent = 0;  ///< payload bytes this rank sent (including the result broadcast)
  la::index_t sketch_rows = 0;   ///< sketch: rows of Omega used (k + p, after any doubling)
};

/// Collective CPQR of a row-distributed matrix. Preconditions (checked collectively first, so bad
/// input on one rank gives every rank the same CollectiveError and never a hang): the same column
/// count on every rank, contiguous row blocks, finite entries (else the global (row, column) of the
/// first bad entry is named), column norms representable as doubles, max_rank <= min(m, n),
/// rel_tol >= 0 (gram: 0 or >= gram_min_rel_tol(n)), no want_q (Q stays distributed: not
/// supported). opts.method is the local CPQR used by tsqr and sketch on rank 0 (lapack always uses
/// dgeqp3). Columns that are zero on every rank (dead neurons) are put last and never factored.
/// If `stats` is given it receives this rank's figures.
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
