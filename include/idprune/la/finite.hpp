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

/// Column norms above this (2^-16 of the largest double) leave too little headroom for the
/// intermediates of Householder QR (up to ~3x the norms) and of a Gaussian sketch (~sqrt(m)x):
/// cpqr and distributed_cpqr then factor 2^-kHugeScaleExponent A (exact: a power of two) and
/// scale R and the norms back (T, the pivots and the Householder vectors are scale-free). What
/// still overflows after that (a result entry above 1.8e308, e.g. the sketch engine's norm
/// estimates, which exceed the true norms by up to its distortion times sqrt(l / (l - j))) is a
/// clear error (overflow_message).
inline constexpr double kHugeColumnNorm = 0x1p1008;
inline constexpr int kHugeScaleExponent = 16;

/// f of 2^-e A turned into f of A: R, diag, next_diag, residual_fro and the R part of the
/// Householder storage (on and above the diagonal) times 2^e.
void unscale_result(CpqrResult& f, int e);

/// "" when R, diag, next_diag and residual_fro of `f` are finite, else a message saying that the
/// factorization overflowed (column norms within a small factor of the largest double: Householder
/// and sketch intermediates exceed the norms by a factor up to about sqrt(m)): a clear error
/// instead of Inf/NaN pivots handed on.
[[nodiscard]] std::string overflow_message(const CpqrResult& f, const std::string& what);

}  // namespace idprune::la
