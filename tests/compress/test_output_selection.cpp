// Output-aware selection: each greedy step adds the neuron that leaves the least residual
// ||Z W - Z(:, C) X||_F over all X (checked against explicit least squares for every candidate),
// the reported residuals are those, and neurons the next layer ignores are not chosen first.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "fixtures.hpp"
#include "idprune/compress/output_selection.hpp"

namespace idprune::test {
namespace {

/// ||B - Q Q^T B||_F^2 with Q an orthonormal basis of the columns `cols` of Z (two passes of
/// modified Gram-Schmidt; a dependent column adds nothing).
double ls_residual(const Matrix& z, const std::vector<index_t>& cols, const Matrix& b) {
  std::vector<std::vector<double>> q;
  for (index_t c : cols) {
    std::vector<double> v(uz(z.rows()));
    for (index_t i = 0; i < z.rows(); ++i) v[uz(i)] = z(i, c);
    const double before = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
    for (int pass = 0; pass < 2; ++pass)
      for (const auto& u : q) {
        const double d = std::inner_product(u.begin(), u.end(), v.begin(), 0.0);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] -= d * u[i];
      }
    const double norm = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
    if (norm <= 1e-10 * before || norm == 0.0) continue;
    for (double& x : v) x /= norm;
    q.push_back(v);
  }
  double r = 0.0;
  for (index_t c = 0; c < b.cols(); ++c) {
    std::vector<double> v(b.col(c).begin(), b.col(c).end());
    for (const auto& u : q) {
      const double d = std::inner_product(u.begin(), u.end(), v.begin(), 0.0);
      for (std::size_t i = 0; i < v.size(); ++i) v[i] -= d * u[i];
    }
    r += std::inner_product(v.begin(), v.end(), v.begin(), 0.0);
  }
  return r;
}

/// ReLU activations with correlated columns of different scales.
Matrix activations(index_t m, index_t n, std::uint64_t seed) {
  const Matrix a = la::matmul(gaussian(m, 4, seed), gaussian(4, n, seed + 1));
  const Matrix noise = gaussian(m, n, seed + 2);
  Matrix z(m, n);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < m; ++i)
      z(i, j) = std::max(0.0, (1.0 + 0.2 * static_cast<double>(j)) * (a(i, j) + 0.3 * noise(i, j)) + 0.1);
  return z;
}

TEST(OutputSelection, EachStepAddsTheNeuronWithTheLeastLeastSquaresResidual) {
  for (std::uint64_t seed : {501u, 511u, 521u}) {
    SCOPED_TRACE(seed);
    const Matrix z = activations(40, 10, seed);
    const Matrix w = gaussian(10, 3, seed + 7);
    const Matrix gram = la::matmul(z, z, la::Op::transpose);
    const Matrix b = la::matmul(z, w);
    const index_t k = 6;
    const auto sel = compress::output_aware_selection(gram, w, k);
    ASSERT_EQ(sel.order.size(), uz(k));
    const double scale = ls_residual(z, {}, b);
    std::vector<index_t> prefix;
    for (index_t s = 0; s < k; ++s) {
      double best = std::numeric_limits<double>::infinity();
      for (index_t j = 0; j < z.cols(); ++j) {
        if (std::find(prefix.begin(), prefix.end(), j) != prefix.end()) continue;
        std::vector<index_t> c = prefix;
        c.push_back(j);
        best = std::min(best, ls_residual(z, c, b));
      }
      prefix.push_back(sel.order[uz(s)]);
      const double chosen = ls_residual(z, prefix, b);
      // Forward selection is exact in exact arithmetic; the Gram route loses about sqrt(eps).
      EXPECT_LE(chosen, best + 1e-9 * scale) << "step " << s;
      EXPECT_NEAR(sel.residual[uz(s)], chosen, 1e-7 * scale) << "step " << s;
    }
  }
}

TEST(OutputSelection, NeuronsTheNextLayerIgnoresAreChosenLast) {
  const Matrix z = activations(40, 10, 531);
  Matrix w = gaussian(10, 3, 532);
  // The three largest activations (columns 7, 8, 9) have no outgoing weight: the ID's CPQR would
  // pivot on them first, the output-aware selection never before the others.
  for (index_t j : {7, 8, 9})
    for (index_t c = 0; c < 3; ++c) w(j, c) = 0.0;
  const Matrix gram = la::matmul(z, z, la::Op::transpose);
  const auto sel = compress::output_aware_selection(gram, w, 4);
  for (index_t j : sel.order) EXPECT_LT(j, 7);
}

TEST(OutputSelection, DeadNeuronsAndBadShapesAreHandled) {
  Matrix z = activations(30, 6, 541);
  for (index_t i = 0; i < z.rows(); ++i) z(i, 2) = 0.0;  // a dead neuron
  const Matrix w = gaussian(6, 2, 542);
  const Matrix gram = la::matmul(z, z, la::Op::transpose);
  const auto all = compress::output_aware_selection(gram, w, 6);
  EXPECT_EQ(all.order.back(), 2);  // taken only when nothing else is left
  std::vector<index_t> sorted = all.order;
  std::sort(sorted.begin(), sorted.end());
  for (index_t j = 0; j < 6; ++j) EXPECT_EQ(sorted[uz(j)], j);
  EXPECT_THROW((void)compress::output_aware_selection(gram, gaussian(5, 2, 543), 2), Error);
  EXPECT_THROW((void)compress::output_aware_selection(gram, w, 0), Error);
  EXPECT_THROW((void)compress::output_aware_selection(gram, w, 7), Error);
  Matrix bad = gram;
  bad(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)compress::output_aware_selection(bad, w, 2), Error);
}

}  // namespace
}  // namespace idprune::test
