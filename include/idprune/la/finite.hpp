#pragma once
// Locating non-finite input (issue 9): every boundary that refuses NaN/Inf names the first bad
// entry, so a user can find it in the file or tensor it came from.
#include <optional>
#include <string>

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

}  // namespace idprune::la
