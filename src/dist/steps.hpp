#pragma once
// Distributed steps of the pivot engines (private to src/dist). Each talks only through dist::Comm
// and calls the local kernels of idprune/dist/kernels.hpp; each is collective over z's communicator.
// Any rank's local failure is turned into a CollectiveError on every rank (check_collective at the
// phase boundaries), so no rank is left waiting in a collective.
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "idprune/dist/dist_matrix.hpp"
#include "idprune/dist/pivot.hpp"
#include "idprune/la/cpqr.hpp"

namespace idprune::dist::step {

/// Root of every reduction and of the pivot selection.
inline constexpr int root = 0;

/// Binary reduction tree toward `root`, for any number of ranks: with positions
/// v = (rank - root) mod P, at distance s = 1, 2, 4, ... the rank at v % 2s == s sends its payload
/// to position v - s, which folds it into its own by combine(mine, incoming). Every rank's payload
/// has the same size (one message per tree edge, log2 P levels). A combine that throws is recorded
/// and the tree completed with the (then meaningless) data, so that every rank reaches the
/// collective check at the end instead of blocking. On return the root's payload is the reduction
/// of all; the other ranks' payloads are partial.
void tree_reduce(const Comm& comm, int root, std::span<double> payload,
                 const std::function<void(std::span<double> mine, std::span<const double> incoming)>& combine);

/// Collective check that every rank passes the same `shape` (counts, column counts, options that
/// steer the communication): differing shapes would otherwise mean messages of differing sizes, an
/// MPI error or a hang. CollectiveError on every rank, naming `routine` and the first differing
/// rank's shape. Nothing to check (and no communication) on one rank.
void check_same_shape(const Comm& comm, std::span<const std::int64_t> shape, const std::string& routine);

/// body(i) for i in [0, n): TBB tasks when n > 1 (on the calling thread otherwise), BLAS
/// single-threaded in both cases, so that each result comes from the same operations whatever the
/// thread count or the batch (OpenBLAS's results change with its thread count). Returns the
/// message of the lowest failing i, empty if none (for check_collective).
std::string single_blas_tasks(std::size_t n, const std::function<void(std::size_t)>& body);

/// Gram matrix Z^T Z (n x n, upper triangle) on rank 0: local dsyrk, reduction of the packed
/// upper triangles.
la::Matrix gram_reduce(const Comm& comm, la::ConstMatrixView local);

/// Rows [i0, i0 + l) of the unscaled sketch Omega Z on rank 0 (l x n): local
/// Omega(i0:i0+l, rows of this rank) * Z_p, then a reduction.
la::Matrix sketch_reduce(const Comm& comm, la::ConstMatrixView local, la::index_t row_offset, std::uint64_t seed,
                         la::index_t i0, la::index_t l);

/// ScaLAPACK pdgeqpf on a BLACS grid over comm, truncated by opts; the result on rank 0.
la::CpqrResult scalapack_cpqr(const DistMatrix& z, const la::CpqrOptions& opts, const EngineOptions& engine);

}  // namespace idprune::dist::step
