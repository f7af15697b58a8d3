#include "support/matrices.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "idprune/la/blas.hpp"

namespace idprune::test {

Matrix gaussian(index_t m, index_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  Matrix a(m, n);
  for (double& v : a.values()) v = normal(gen);
  return a;
}

Matrix random_orthonormal(index_t m, index_t n, std::uint64_t seed) {
  Matrix q = gaussian(m, n, seed);
  if (n == 0 || m == 0) return q;
  std::vector<double> tau(static_cast<std::size_t>(std::min(m, n)));
  check_lapack(LAPACKE_dgeqrf(LAPACK_COL_MAJOR, static_cast<int>(m), static_cast<int>(n), q.data(),
                              static_cast<int>(q.ld()), tau.data()),
               "dgeqrf");
  check_lapack(LAPACKE_dorgqr(LAPACK_COL_MAJOR, static_cast<int>(m), static_cast<int>(n), static_cast<int>(n), q.data(),
                              static_cast<int>(q.ld()), tau.data()),
               "dorgqr");
  return q;
}

Matrix with_singular_values(index_t m, index_t n, const std::vector<double>& sigma, std::uint64_t seed) {
  const auto r = static_cast<index_t>(sigma.size());
  Matrix u = random_orthonormal(m, r, seed);
  const Matrix v = random_orthonormal(n, r, seed + 0x9e3779b97f4a7c15ULL);
  for (index_t j = 0; j < r; ++j)
    for (double& x : u.col(j)) x *= sigma[static_cast<std::size_t>(j)];
  return la::matmul(u, v, la::Op::none, la::Op::transpose);
}

Matrix low_rank(index_t m, index_t n, index_t r, std::uint64_t seed) {
  return la::matmul(gaussian(m, r, seed), gaussian(r, n, seed + 1));
}

Matrix kahan(index_t n, double c) {
  const double s = std::sqrt(1.0 - c * c);
  Matrix k(n, n);
  double scale = 1.0;
  for (index_t i = 0; i < n; ++i) {
    k(i, i) = scale;
    for (index_t j = i + 1; j < n; ++j) k(i, j) = -c * scale;
    scale *= s;
  }
  return k;
}

void zero_columns(Matrix& a, const std::vector<index_t>& cols) {
  for (index_t j : cols)
    for (double& v : a.col(j)) v = 0.0;
}

double norm2(la::ConstMatrixView a) {
  if (a.empty()) return 0.0;
  Matrix copy(a);
  std::vector<double> s(static_cast<std::size_t>(std::min(a.rows(), a.cols())));
  check_lapack(LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', static_cast<int>(a.rows()), static_cast<int>(a.cols()),
                              copy.data(), static_cast<int>(copy.ld()), s.data(), nullptr, 1, nullptr, 1),
               "dgesdd");
  return s.front();
}

std::vector<index_t> shuffle(index_t n, std::uint64_t seed) {
  std::vector<index_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), index_t{0});
  std::uint64_t s = seed;
  for (index_t i = n - 1; i > 0; --i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>((s >> 33) % (i + 1))]);
  }
  return order;
}

Matrix near_max_norm_columns(index_t m, index_t n, double top, std::uint64_t seed) {
  Matrix a = gaussian(m, n, seed);
  for (index_t j = 0; j < n; ++j) {
    const double norm = la::nrm2(a.col(j));
    const double target = top * (1.0 - 0.15 * static_cast<double>(j));
    for (double& v : a.col(j)) v = (v / norm * target) * std::numeric_limits<double>::max();
  }
  return a;
}

}  // namespace idprune::test
