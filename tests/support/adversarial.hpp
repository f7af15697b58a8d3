#pragma once
// Adversarial inputs for CPQR and the pivot engines (issue 9, numerical robustness), shared by the
// la unit tests and the dist MPI tests, plus the checks every engine's result must pass on them.
// Every case is a deterministic function of its seed, so every rank (and every np) builds the same.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/matrix.hpp"
#include "support/matrices.hpp"

namespace idprune::test::adversarial {

struct Case {
  std::string name;
  Matrix a;
  /// True when greedy pivoting has a clear winner at every step (no near-ties): every exact
  /// method must then return the reference skeleton itself.
  bool separated = false;
};

/// Orthonormal columns with norms 1 + 4 j eps (j shuffled): the greedy choice at every step is
/// decided by a few ulps, so methods may legitimately differ, but every choice of k columns leaves
/// the same residual to rounding (the columns are orthogonal).
inline Matrix near_tied(index_t m, index_t n, std::uint64_t seed) {
  Matrix q = random_orthonormal(m, n, seed);
  const auto order = shuffle(n, seed + 1);
  for (index_t j = 0; j < n; ++j) {
    const double s = 1.0 + 4.0 * std::numeric_limits<double>::epsilon() * static_cast<double>(order[std::size_t(j)]);
    for (double& v : q.col(j)) v *= s;
  }
  return q;
}

/// Gaussian columns with exact copies: column dup[i].first is a copy of column dup[i].second.
inline Matrix with_duplicates(index_t m, index_t n, const std::vector<std::pair<index_t, index_t>>& dup,
                              std::uint64_t seed) {
  Matrix a = gaussian(m, n, seed);
  for (const auto& [to, from] : dup)
    la::MatrixView(a.col(to).data(), m, 1).assign(la::ConstMatrixView(a.col(from).data(), m, 1));
  return a;
}

/// Gaussian columns scaled by 10^e_j, the exponents e_j evenly spread over [lo, hi] and shuffled:
/// with a spread of 600 decades over a dozen columns, consecutive scales differ by ~1e50, so
/// greedy pivoting takes the columns in decreasing scale with an enormous margin.
inline Matrix graded(index_t m, index_t n, double lo, double hi, std::uint64_t seed) {
  Matrix a = gaussian(m, n, seed);
  const auto order = shuffle(n, seed + 7);
  for (index_t j = 0; j < n; ++j) {
    const double t = n > 1 ? static_cast<double>(order[std::size_t(j)]) / static_cast<double>(n - 1) : 1.0;
    const double s = std::pow(10.0, lo + (hi - lo) * t);
    for (double& v : a.col(j)) v *= s;
  }
  return a;
}

/// The cases of the issue: near-tied norms, exact duplicates, 1e-300..1e300 (tall and wide),
/// entries near the overflow threshold and near the underflow threshold, a single row, a single
/// column, a 1 x 1 matrix, and the zero matrix.
inline std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"near_tied_norms", near_tied(40, 12, 11), false});
  c.push_back({"duplicate_columns", with_duplicates(30, 10, {{3, 1}, {7, 1}, {9, 4}}, 12), false});
  c.push_back({"graded_1e-300_1e300_tall", graded(30, 12, -300.0, 300.0, 13), true});
  c.push_back({"graded_1e-300_1e300_wide", graded(6, 12, -300.0, 300.0, 14), true});
  c.push_back({"huge_1e300", graded(25, 8, 299.0, 300.0, 15), false});
  c.push_back({"tiny_1e-300", graded(25, 8, -300.0, -299.0, 16), false});
  // Column norms near the largest double (sums of ~30 products of 1e307 overflow).
  c.push_back({"near_overflow_1e307", graded(30, 8, 306.0, 307.0, 22), false});
  // Entries in the subnormal range (below 2.2e-308).
  c.push_back({"subnormal_1e-310", graded(25, 8, -311.0, -310.0, 23), false});
  c.push_back({"single_row", graded(1, 9, -5.0, 5.0, 17), true});
  c.push_back({"single_row_graded", graded(1, 9, -300.0, 300.0, 18), true});
  c.push_back({"single_column", gaussian(17, 1, 19), true});
  c.push_back({"single_column_huge", graded(17, 1, 300.0, 300.0, 20), true});
  c.push_back({"one_by_one", graded(1, 1, -300.0, -300.0, 21), true});
  c.push_back({"all_zero", Matrix(12, 7), true});
  return c;
}

/// ||a(:, j) - a(:, C) T(:, j)|| for every column j, evaluated with scaled norms (dnrm2), column by
/// column so that a 1e300 column does not hide the error of a 1e-300 one.
inline std::vector<double> column_residuals(const Matrix& a, const la::InterpolativeDecomposition& id) {
  std::vector<double> res(static_cast<std::size_t>(a.cols()), 0.0);
  const auto k = static_cast<index_t>(id.skeleton.size());
  std::vector<double> e(static_cast<std::size_t>(a.rows()));
  for (index_t j = 0; j < a.cols(); ++j) {
    for (index_t i = 0; i < a.rows(); ++i) {
      // The sum in long double-free form: terms can be ~1e300, so subtract term by term.
      double v = a(i, j);
      for (index_t l = 0; l < k; ++l) v -= a(i, id.skeleton[std::size_t(l)]) * id.interpolation(l, j);
      e[std::size_t(i)] = v;
    }
    res[std::size_t(j)] = la::nrm2(e);
  }
  return res;
}

}  // namespace idprune::test::adversarial
