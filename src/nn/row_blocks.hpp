#pragma once
// Private to the nn layer: the row-block task loop of the forward passes (DESIGN.md, "Parallel
// model": BLAS is single-threaded inside TBB tasks, so threads never exceed the cores).
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <optional>

#include "idprune/la/blas.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::nn::parallel {

/// Calls body(first, count) for the row blocks [first, first + count) of rows [0, rows) cut at the
/// multiples of block_rows, as TBB tasks when there are several blocks and threads, with OpenBLAS
/// set to one thread throughout (also when the blocks run on the calling thread, so a block's
/// product is the same computation whatever the thread count).
template <class Body>
void for_each_row_block(la::index_t rows, la::index_t block_rows, const Body& body) {
  const la::index_t blocks = (rows + block_rows - 1) / block_rows;
  // Set only when needed: OpenBLAS's thread count is process-wide, and tasks may already run.
  std::optional<la::ScopedBlasThreads> single;
  if (la::blas_threads() != 1) single.emplace(1);
  const auto run = [&](la::index_t b) {
    const la::index_t first = b * block_rows;
    body(first, std::min(block_rows, rows - first));
  };
  if (blocks > 1 && tbb::this_task_arena::max_concurrency() > 1) {
    tbb::parallel_for(la::index_t{0}, blocks, run);
  } else {
    for (la::index_t b = 0; b < blocks; ++b) run(b);
  }
}

}  // namespace idprune::nn::parallel
