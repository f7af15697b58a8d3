#pragma once
// What the benchmarks record beside their timings: the median of repeated runs and the machine's
// load, so that a figure taken on a shared machine can be judged.
#include <cstdint>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::app {

/// An m x n matrix of independent standard normal entries (mt19937_64 from `seed`): the inputs of
/// the kernel benchmarks, the same on every run.
[[nodiscard]] la::Matrix gaussian_matrix(la::index_t m, la::index_t n, std::uint64_t seed);

/// The median of `v` (the mean of the two middle values for an even count); `v` non-empty.
[[nodiscard]] double median(std::vector<double> v);
/// The 1, 5 and 15 minute load averages of /proc/loadavg (-1 where unreadable).
[[nodiscard]] std::vector<double> load_average();

}  // namespace idprune::app
