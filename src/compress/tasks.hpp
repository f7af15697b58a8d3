#pragma once
// Private to src/compress: the TBB task loop every lockstep phase uses (DESIGN.md, "Parallel
// model": BLAS is single-threaded inside TBB tasks, so threads never exceed the cores).
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <exception>
#include <string>
#include <vector>

#include "idprune/la/blas.hpp"

namespace idprune::compress::parallel {

/// Runs body(i) for i in [0, n). With several tasks and threads: TBB tasks, OpenBLAS set to one
/// thread for the duration. With one task (or one thread): on the calling thread, BLAS as configured
/// (a single large product then uses every core). Never calls MPI. Returns the message of the
/// failure with the lowest i (empty if none), for dist::check_collective.
template <class F>
std::string run_tasks(std::size_t n, F&& body) {
  std::vector<std::string> errors(n);
  auto guarded = [&](std::size_t i) {
    try {
      body(i);
    } catch (const std::exception& e) {
      errors[i] = e.what();
      if (errors[i].empty()) errors[i] = "unknown error";
    }
  };
  if (n <= 1 || tbb::this_task_arena::max_concurrency() <= 1) {
    for (std::size_t i = 0; i < n; ++i) guarded(i);
  } else {
    const la::ScopedBlasThreads single(1);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, n, 1), [&](const tbb::blocked_range<std::size_t>& r) {
      for (std::size_t i = r.begin(); i != r.end(); ++i) guarded(i);
    });
  }
  for (auto& e : errors)
    if (!e.empty()) return e;
  return {};
}

}  // namespace idprune::compress::parallel
