#pragma once
// How much is lost by building a rank-k approximation from k columns of A (the ID from CPQR)
// instead of the optimal one (truncated SVD): the reference text's Goal 3 / Goal 5 table.
#include <limits>
#include <vector>

#include "idprune/la/cpqr.hpp"

namespace idprune::la {

struct LowRankRow {
  index_t k = 0;
  double cpqr_error = 0.0;  ///< ||A - A(:, C_k) T_k||_2 = ||R22||_2 after k CPQR steps
  double svd_error = 0.0;   ///< sigma_{k+1}(A), the optimal rank-k error (0 for k = min(m, n))
  double ratio = 0.0;       ///< cpqr_error / svd_error; NaN when svd_error = 0
};

struct LowRankComparison {
  std::vector<LowRankRow> rows;  ///< k = 1..kmax
  double sigma1 = 0.0;           ///< ||A||_2
  /// Rows with svd_error > rounding_level are above rounding level; the ratio is only
  /// meaningful there. rounding_level = rounding_tol * sigma1.
  double rounding_level = 0.0;
  index_t rows_above_rounding = 0;  ///< how many rows pass that test
  double max_ratio = 0.0;           ///< max ratio over those rows (0 when there are none)
  index_t max_ratio_k = 0;          ///< the k attaining it
};

/// The default rounding tolerance: sigma_{k+1} > 100 eps sigma_1.
inline constexpr double default_rounding_tol = 100.0 * std::numeric_limits<double>::epsilon();

/// For k = 1..kmax: the spectral error of the rank-k ID from CPQR (one full factorization with
/// `opts.method`, every prefix read off it: the first k pivots do not depend on later steps) and
/// sigma_{k+1}. opts.max_rank and opts.rel_tol are ignored. Requires 1 <= kmax <= min(m, n),
/// rounding_tol > 0 and finite entries.
LowRankComparison cpqr_vs_svd_errors(ConstMatrixView a, index_t kmax, const CpqrOptions& opts = {},
                                     double rounding_tol = default_rounding_tol);

}  // namespace idprune::la
