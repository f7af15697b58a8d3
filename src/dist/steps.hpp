#pragma once
// Distributed steps of the pivot engines (private to src/dist). Each talks only through dist::Comm
// and calls the local kernels of idprune/dist/kernels.hpp; each is collective over z's communicator.
// Any rank's local failure is turned into a CollectiveError on every rank (check_collective at the
// phase boundaries), so no rank is left waiting in a collective.
#include <cstdint>

#include "idprune/dist/dist_matrix.hpp"
#include "idprune/dist/pivot.hpp"
#include "idprune/la/cpqr.hpp"

namespace idprune::dist::step {

/// Root of every reduction and of the pivot selection.
inline constexpr int root = 0;

/// TSQR: R (n x n upper triangular) of the whole distributed matrix on rank 0 (0 x 0 elsewhere).
/// Binary tree for any number of ranks: at distance s = 1, 2, 4, ... rank r with r % 2s == s sends
/// its packed R to r - s, which combines them with dtpqrt. `local` (this rank's rows) is
/// overwritten by its QR factorization.
la::Matrix tsqr_reduce(const Comm& comm, la::MatrixView local, la::index_t tpqrt_block);

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
