#include "idprune/la/lowrank.hpp"

#include <algorithm>
#include <cmath>

#include "idprune/la/svd.hpp"

namespace idprune::la {

LowRankComparison cpqr_vs_svd_errors(ConstMatrixView a, index_t kmax, const CpqrOptions& opts, double rounding_tol) {
  const index_t m = a.rows();
  const index_t n = a.cols();
  const index_t full = std::min(m, n);
  require(kmax >= 1 && kmax <= full, "cpqr_vs_svd_errors: kmax=", kmax, " outside [1, min(m, n)=", full, "] for a ", m,
          " x ", n, " matrix");
  require(std::isfinite(rounding_tol) && rounding_tol > 0.0, "cpqr_vs_svd_errors: rounding tolerance ", rounding_tol,
          " must be finite and > 0");
  require(all_finite(a), "cpqr_vs_svd_errors: the ", m, " x ", n, " matrix has NaN or Inf entries");

  const std::vector<double> sigma = singular_values(a);
  const std::vector<double> optimal = optimal_rank_k_errors(sigma);

  CpqrOptions o = opts;
  o.max_rank = full;
  o.rel_tol = 0.0;
  o.want_q = false;
  const CpqrResult f = cpqr(a, o);
  // The factorization ends before min(m, n) steps only when the remainder is exactly zero.
  require(f.rank == full || f.residual_fro == 0.0, "cpqr_vs_svd_errors: CPQR stopped at rank ", f.rank,
          " with a nonzero remainder (||R22||_F = ", f.residual_fro, ")");

  LowRankComparison out;
  out.sigma1 = sigma.empty() ? 0.0 : sigma.front();
  out.rounding_level = rounding_tol * out.sigma1;
  for (index_t k = 1; k <= kmax; ++k) {
    LowRankRow row;
    row.k = k;
    // Continuing the factorization from step k applies orthogonal transformations and permutations
    // to the remainder M only, so ||M||_2 = ||R(k:r, k:n)||_2 (reference text, Question 5).
    row.cpqr_error = k < f.rank ? norm2(f.r.block(k, k, f.rank - k, n - k)) : 0.0;
    row.svd_error = optimal[static_cast<std::size_t>(k)];
    row.ratio = row.svd_error > 0.0 ? row.cpqr_error / row.svd_error : std::nan("");
    if (row.svd_error > out.rounding_level) {
      ++out.rows_above_rounding;
      if (row.ratio > out.max_ratio) {
        out.max_ratio = row.ratio;
        out.max_ratio_k = k;
      }
    }
    out.rows.push_back(row);
  }
  return out;
}

}  // namespace idprune::la
