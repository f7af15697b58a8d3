#pragma once
// Named collectives for the layers above dist, so that they never call Comm's collectives
// themselves: sums, a flag over ranks, values computed on one rank, and broadcasts of matrices and
// factorizations. Each is collective over `comm`: every rank calls it, in the same order.
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "idprune/dist/comm.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::dist {

/// Exact sums of integer counts over ranks, in place, the same on every rank.
void sum_in_place(const Comm& comm, std::span<std::int64_t> counts);
/// Sums of doubles over ranks, in place, with the same bits on every rank (one MPI allreduce).
void sum_in_place(const Comm& comm, std::span<double> values);
/// True on every rank when `flag` is true on at least one rank (e.g. a stop flag).
[[nodiscard]] bool any_rank(const Comm& comm, bool flag);

/// Broadcasts: on return every rank holds root's value, shapes and sizes included (other ranks'
/// values are replaced). At most three messages each (sizes, integers, doubles; an empty one is
/// not sent).
void broadcast(const Comm& comm, double& value, int root = 0);
void broadcast(const Comm& comm, std::int64_t& value, int root = 0);
void broadcast(const Comm& comm, std::vector<double>& values, int root = 0);
void broadcast(const Comm& comm, std::vector<std::int64_t>& values, int root = 0);
void broadcast(const Comm& comm, la::Matrix& a, int root = 0);
/// Every field of a CPQR result (rank, pivots, r, diag, next_diag, residual_fro, householder,
/// tau); empty results and rank 0 included.
void broadcast(const Comm& comm, la::CpqrResult& result, int root = 0);
/// Several results in the same three messages; the same number of results on every rank.
void broadcast(const Comm& comm, std::span<la::CpqrResult> results, int root = 0);
/// As the span overload, the number of results travelling too (other ranks' vectors are resized).
void broadcast(const Comm& comm, std::vector<la::CpqrResult>& results, int root = 0);
/// Skeleton, interpolation matrix and factorization.
void broadcast(const Comm& comm, la::InterpolativeDecomposition& id, int root = 0);

/// Runs compute() on `root` only and returns its value on every rank (broadcast). A failure on
/// the root is one CollectiveError on every rank (capture_error + check_collective). The value's
/// type needs a broadcast overload above.
template <class F>
[[nodiscard]] std::invoke_result_t<F&> computed_on_root(const Comm& comm, F&& compute, int root = 0) {
  std::invoke_result_t<F&> value{};
  check_collective(comm, capture_error([&] {
                     if (comm.rank() == root) value = compute();
                   }));
  broadcast(comm, value, root);
  return value;
}

}  // namespace idprune::dist
