#include "idprune/la/finite.hpp"

#include <cmath>

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

}  // namespace idprune::la
