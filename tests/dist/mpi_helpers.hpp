#pragma once
// Helpers of the MPI tests of the dist layer: distributing a matrix every rank can build from a
// seed, comparing results across ranks, and the ID error on the full matrix.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "idprune/dist/dist_matrix.hpp"
#include "idprune/dist/pivot.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "support/distributed.hpp"
#include "support/matrices.hpp"

namespace idprune::test {

inline constexpr double eps = std::numeric_limits<double>::epsilon();

/// The rows [begin, begin + count) of `full` as this rank's block.
inline dist::DistMatrix slice(const Matrix& full, const dist::Comm& comm, index_t begin, index_t count) {
  return {comm, Matrix(full.block(begin, 0, count, full.cols())), begin, full.rows()};
}

/// Distribution with per-rank row counts `counts` (one per rank, summing to full.rows()).
inline dist::DistMatrix distribute_counts(const Matrix& full, const dist::Comm& comm,
                                          const std::vector<index_t>& counts) {
  index_t begin = 0;
  for (int r = 0; r < comm.rank(); ++r) begin += counts[static_cast<std::size_t>(r)];
  return slice(full, comm, begin, counts[static_cast<std::size_t>(comm.rank())]);
}

/// ||A - A(:, C) T||_2 on the full matrix (dgesdd).
inline double id_error_full(const Matrix& a, const la::InterpolativeDecomposition& id) {
  Matrix e(a);
  if (!id.skeleton.empty() && a.rows() > 0)
    la::gemm(-1.0, la::select_columns(a, id.skeleton), la::Op::none, id.interpolation, la::Op::none, 1.0, e.view());
  return norm2(e);
}

/// FNV-1a hash of the bits of everything in an ID, to compare results across ranks.
inline std::uint64_t hash_id(const la::InterpolativeDecomposition& id) {
  std::uint64_t h = 1469598103934665603ULL;
  const auto add = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  };
  const auto& f = id.factorization;
  add(&f.rank, sizeof f.rank);
  add(f.pivots.data(), f.pivots.size() * sizeof(index_t));
  add(f.r.data(), static_cast<std::size_t>(f.r.size()) * sizeof(double));
  add(f.diag.data(), f.diag.size() * sizeof(double));
  add(&f.next_diag, sizeof f.next_diag);
  add(&f.residual_fro, sizeof f.residual_fro);
  add(id.interpolation.data(), static_cast<std::size_t>(id.interpolation.size()) * sizeof(double));
  return h;
}

/// True on every rank when every rank holds a bit-identical ID.
inline bool same_on_every_rank(const dist::Comm& comm, const la::InterpolativeDecomposition& id) {
  const std::uint64_t h = hash_id(id);
  return comm.max(h) == h && comm.min(h) == h;
}

/// Gaussian columns normalised to norms d_j = decay^pi(j) for a random permutation pi: nearly
/// orthogonal columns (m >> n) with well separated norms, so greedy pivoting takes them in the
/// order of pi with a margin of about (1 - decay) at every step: no near-ties.
inline Matrix separated_columns(index_t m, index_t n, double decay, std::uint64_t seed) {
  Matrix a = gaussian(m, n, seed);
  const std::vector<index_t> order = shuffle(n, seed);
  for (index_t j = 0; j < n; ++j) {
    const double norm = la::nrm2(a.col(j));
    const double target = std::pow(decay, static_cast<double>(order[static_cast<std::size_t>(j)]));
    for (double& v : a.col(j)) v *= target / norm;
  }
  return a;
}

/// The engines that are exact in exact arithmetic (the same pivots as dgeqp3 without ties).
inline const std::vector<dist::PivotEngine>& exact_engines() {
  static const std::vector<dist::PivotEngine> e = {dist::PivotEngine::tsqr, dist::PivotEngine::gram,
                                                   dist::PivotEngine::scalapack, dist::PivotEngine::lapack};
  return e;
}
inline const std::vector<dist::PivotEngine>& all_engines() {
  static const std::vector<dist::PivotEngine> e = {dist::PivotEngine::tsqr, dist::PivotEngine::gram,
                                                   dist::PivotEngine::sketch, dist::PivotEngine::scalapack,
                                                   dist::PivotEngine::lapack};
  return e;
}

/// Engine options for tests: small ScaLAPACK blocks so that small matrices really spread over
/// the grid.
inline dist::EngineOptions engine_options(dist::PivotEngine e) {
  dist::EngineOptions o;
  o.engine = e;
  o.scalapack_block = 4;
  return o;
}

}  // namespace idprune::test
