#include "idprune/app/bench_support.hpp"

#include <algorithm>
#include <fstream>
#include <random>

#include "idprune/la/error.hpp"

namespace idprune::app {

la::Matrix gaussian_matrix(la::index_t m, la::index_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  la::Matrix a(m, n);
  for (double& v : a.values()) v = normal(gen);
  return a;
}

double median(std::vector<double> v) {
  require(!v.empty(), "median of no values");
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

std::vector<double> load_average() {
  std::ifstream in("/proc/loadavg");
  std::vector<double> out(3, -1.0);
  for (double& v : out) in >> v;
  return out;
}

}  // namespace idprune::app
