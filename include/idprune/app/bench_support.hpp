#pragma once
// What the benchmarks record beside their timings: the median of repeated runs and the machine's
// load, so that a figure taken on a shared machine can be judged.
#include <vector>

namespace idprune::app {

/// The median of `v` (the mean of the two middle values for an even count); `v` non-empty.
[[nodiscard]] double median(std::vector<double> v);
/// The 1, 5 and 15 minute load averages of /proc/loadavg (-1 where unreadable).
[[nodiscard]] std::vector<double> load_average();

}  // namespace idprune::app
