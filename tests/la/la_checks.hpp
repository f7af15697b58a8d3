#pragma once
// Checks shared by the la tests (CPQR, ID, SVD): residual measures, the remainder of a partial
// factorization, and a readable description of the case for failure messages.
#include <algorithm>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/lapack.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::test {

using la::index_t;
using la::Matrix;

inline constexpr double eps = std::numeric_limits<double>::epsilon();

/// ||Q^T Q - I||_F.
inline double orthonormality_error(la::ConstMatrixView q) {
  la::Matrix g = la::matmul(q, q, la::Op::transpose, la::Op::none);
  for (index_t i = 0; i < g.rows(); ++i) g(i, i) -= 1.0;
  return la::norm_fro(g);
}

/// A - B (same shape).
inline la::Matrix difference(la::ConstMatrixView a, la::ConstMatrixView b) {
  la::Matrix d(a);
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) d(i, j) -= b(i, j);
  return d;
}

inline bool is_permutation(const std::vector<index_t>& p, index_t n) {
  if (static_cast<index_t>(p.size()) != n) return false;
  std::vector<index_t> s(p);
  std::sort(s.begin(), s.end());
  for (index_t j = 0; j < n; ++j)
    if (s[static_cast<std::size_t>(j)] != j) return false;
  return true;
}

/// Q_k^T (A P) for the k reflectors of `f` (computed with want_q): its first k rows are [R11 R12]
/// and rows k.. of columns k.. are the unreduced remainder M (R22 before any further step).
inline la::Matrix reduced(la::ConstMatrixView a, const la::CpqrResult& f) {
  la::Matrix c = la::select_columns(a, f.pivots);
  la::ormqr(la::Side::left, la::Op::transpose, f.householder, f.tau, c.view());
  return c;
}

inline la::Matrix remainder(la::ConstMatrixView a, const la::CpqrResult& f) {
  const la::Matrix c = reduced(a, f);
  return la::Matrix(c.block(f.rank, f.rank, a.rows() - f.rank, a.cols() - f.rank));
}

inline std::string describe(index_t m, index_t n, la::CpqrMethod method, std::uint64_t seed) {
  std::ostringstream os;
  os << m << " x " << n << " method=" << la::to_string(method) << " seed=" << seed;
  return os.str();
}

}  // namespace idprune::test
