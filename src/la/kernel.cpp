#include "idprune/la/kernel.hpp"

#include <cmath>
#include <random>

namespace idprune::la {

Matrix uniform_points(index_t n, index_t dim, std::uint64_t seed) {
  require(n >= 0 && dim >= 1, "uniform_points: need n >= 0 and dim >= 1, got n=", n, " dim=", dim);
  std::mt19937_64 gen(seed);
  Matrix x(n, dim);
  // Row by row so that the first n points do not depend on how many are drawn.
  for (index_t i = 0; i < n; ++i)
    for (index_t d = 0; d < dim; ++d) x(i, d) = static_cast<double>(gen() >> 11) * 0x1.0p-53;
  return x;
}

Matrix gaussian_kernel(ConstMatrixView points, double gamma) {
  require(std::isfinite(gamma) && gamma > 0.0, "gaussian_kernel: gamma=", gamma, " must be finite and > 0");
  require(all_finite(points), "gaussian_kernel: points have NaN or Inf entries");
  const index_t n = points.rows();
  Matrix g(n, n);
  for (index_t j = 0; j < n; ++j) {
    g(j, j) = 1.0;
    for (index_t i = j + 1; i < n; ++i) {
      double d2 = 0.0;
      for (index_t d = 0; d < points.cols(); ++d) {
        const double diff = points(i, d) - points(j, d);
        d2 += diff * diff;
      }
      g(i, j) = g(j, i) = std::exp(-gamma * d2);
    }
  }
  return g;
}

Matrix kernel_study_matrix(index_t n, std::uint64_t seed) { return gaussian_kernel(uniform_points(n, 2, seed), 2.0); }

}  // namespace idprune::la
