#include "idprune/la/finite.hpp"

#include <cmath>

#include "idprune/la/blas.hpp"

namespace idprune::la {

std::optional<NonFiniteEntry> first_non_finite(ConstMatrixView a) {
  for (index_t j = 0; j < a.cols(); ++j) {
    const auto col = a.col(j);
    for (std::size_t i = 0; i < col.size(); ++i)
      if (!std::isfinite(col[i])) return NonFiniteEntry{static_cast<index_t>(i), j, col[i]};
  }
  return std::nullopt;
}

std::string non_finite_message(ConstMatrixView a, const std::string& what, index_t row_offset) {
  const auto bad = first_non_finite(a);
  if (!bad) return {};
  return detail::concat(what, ": entry (", row_offset + bad->row, ", ", bad->col, ") is ", bad->value,
                        " (NaN/Inf input)");
}

std::string column_norm_overflow_message(ConstMatrixView a, const std::string& what) {
  for (index_t j = 0; j < a.cols(); ++j)
    if (!std::isfinite(nrm2(a.col(j))))
      return detail::concat(what, ": column ", j,
                            " has a 2-norm above the largest double (1.8e308); scale the input down");
  return {};
}

void unscale_result(CpqrResult& f, int e) {
  for (double& v : f.r.values()) v = std::ldexp(v, e);
  for (double& v : f.diag) v = std::ldexp(v, e);
  f.next_diag = std::ldexp(f.next_diag, e);
  f.residual_fro = std::ldexp(f.residual_fro, e);
  for (index_t j = 0; j < f.householder.cols(); ++j)
    for (index_t i = 0; i <= j && i < f.householder.rows(); ++i)
      f.householder(i, j) = std::ldexp(f.householder(i, j), e);
}

std::string overflow_message(const CpqrResult& f, const std::string& what) {
  bool finite = std::isfinite(f.next_diag) && std::isfinite(f.residual_fro) && all_finite(f.r);
  for (const double d : f.diag) finite = finite && std::isfinite(d);
  if (finite) return {};
  return what +
         ": the factorization overflowed (column norms within a small factor of the largest double, "
         "1.8e308); scale the input down";
}

}  // namespace idprune::la
