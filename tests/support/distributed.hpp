#pragma once
// Row distribution of a matrix every rank holds in full (test set-up for the MPI tests).
#include "idprune/dist/comm.hpp"
#include "idprune/dist/dist_matrix.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::test {

/// This rank's block of rows of `full` under the standard dist::block_rows distribution.
inline dist::DistMatrix distribute(const la::Matrix& full, const dist::Comm& comm) {
  const auto r = dist::block_rows(full.rows(), comm.size(), comm.rank());
  return {comm, la::Matrix(full.block(r.begin, 0, r.count, full.cols())), r.begin, full.rows()};
}

}  // namespace idprune::test
