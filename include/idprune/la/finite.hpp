#pragma once
// Locating non-finite input (issue 9): every boundary that refuses NaN/Inf names the first bad
// entry, so a user can find it in the file or tensor it came from.
#include <optional>
#include <string>

#include "idprune/la/cpqr.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::la {

/// Position and value of the first NaN or Inf entry of `a` in column-major order.
struct NonFiniteEntry {
  index_t row = 0;
  index_t col = 0;
  double value = 0.0;
};
[[nodiscard]] std::optional<NonFiniteEntry> first_non_finite(ConstMatrixView a);

/// "" when every entry of `a` is finite, else "<what>: entry (i, j) is nan (NaN/Inf input)"; the
/// row is offset by `row_offset` (a block of a larger matrix reports global rows).
[[nodiscard]] std::string non_finite_message(ConstMatrixView a, const std::string& what, index_t row_offset = 0);

/// "" when every column of `a` has a representable 2-norm, else "<what>: column j has a 2-norm
/// above the largest double (1.8e308): scale the input down". No factorization can represent R then.
[[nodiscard]] std::string column_norm_overflow_message(ConstMatrixView a, const std::string& what);

/// "" when R, diag, next_diag and residual_fro of `f` are finite, else a message saying that the
/// factorization overflowed (column norms within a small factor of the largest double: Householder
/// and sketch intermediates exceed the norms by a factor up to about sqrt(m)): a clear error
/// instead of Inf/NaN pivots handed on.
[[nodiscard]] std::string overflow_message(const CpqrResult& f, const std::string& what);

}  // namespace idprune::la
