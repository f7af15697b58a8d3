#include "idprune/compress/moments.hpp"

#include <algorithm>
#include <cstddef>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"

namespace idprune::compress {
namespace {

std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

void start(ActivationMoments& m, index_t n) {
  m.rows = 0;
  m.sum.assign(uz(n), 0.0);
  m.gram.reset(n, n, 0.0);
}

}  // namespace

std::vector<double> ActivationMoments::mean() const {
  require(rows >= 1, "ActivationMoments::mean: no rows summed");
  std::vector<double> mu(sum);
  for (double& v : mu) v /= static_cast<double>(rows);
  return mu;
}

std::vector<double> ActivationMoments::variance() const {
  require(rows >= 2, "ActivationMoments::variance: the unbiased variance needs at least 2 rows, got ", rows);
  const double m = static_cast<double>(rows);
  std::vector<double> var(sum.size());
  for (index_t j = 0; j < cols(); ++j) {
    const double s = sum[uz(j)];
    var[uz(j)] = std::max(0.0, (gram(j, j) - s * (s / m)) / (m - 1.0));
  }
  return var;
}

ActivationMoments moments(la::ConstMatrixView z) {
  ActivationMoments m;
  accumulate(m, z);
  return m;
}

void accumulate(ActivationMoments& m, la::ConstMatrixView block) {
  const std::string bad = la::non_finite_message(block, "ActivationMoments: activation block");
  require(bad.empty(), bad);
  if (m.cols() == 0 && m.rows == 0) start(m, block.cols());
  require(block.cols() == m.cols(), "accumulate: a block of ", block.cols(), " columns added to moments of ", m.cols(),
          " columns");
  const index_t n = m.cols();
  if (block.rows() == 0) return;
  if (n == 0) {
    m.rows += block.rows();
    return;
  }
  for (index_t j = 0; j < n; ++j) {
    double s = 0.0;
    for (double v : block.col(j)) s += v;
    m.sum[uz(j)] += s;
  }
  la::syrk_upper(1.0, block, 1.0, m.gram);
  // dsyrk updated the upper triangle only: mirror it, so gram is a plain symmetric matrix that any
  // reduction (an elementwise MPI sum) and any reader can use as is.
  for (index_t j = 0; j < n; ++j)
    for (index_t i = j + 1; i < n; ++i) m.gram(i, j) = m.gram(j, i);
  m.rows += block.rows();
}

void merge(ActivationMoments& m, const ActivationMoments& other) {
  if (other.cols() == 0 && other.rows == 0) return;
  if (m.cols() == 0 && m.rows == 0) {
    m = other;
    return;
  }
  require(m.cols() == other.cols(), "merge: moments of ", m.cols(), " and ", other.cols(), " columns");
  require(other.gram.rows() == other.cols() && other.gram.cols() == other.cols(), "merge: malformed moments (gram ",
          other.gram.rows(), " x ", other.gram.cols(), " for ", other.cols(), " columns)");
  m.rows += other.rows;
  for (index_t j = 0; j < m.cols(); ++j) m.sum[uz(j)] += other.sum[uz(j)];
  const auto src = other.gram.values();
  auto dst = m.gram.values();
  for (std::size_t i = 0; i < dst.size(); ++i) dst[i] += src[i];
}

}  // namespace idprune::compress
