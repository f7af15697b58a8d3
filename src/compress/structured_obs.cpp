#include "idprune/compress/structured_obs.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"
#include "idprune/la/lapack.hpp"

namespace idprune::compress {
namespace {

std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

/// Cholesky A = R^T R in place (upper triangle), false when A is not positive definite to working
/// precision: dpotrf fails, or a pivot r_ii^2 is at most n eps max_i a_ii (dpstrf's default rank
/// tolerance). A Gram matrix with linearly dependent columns is singular only up to the rounding of
/// its products, which depends on the BLAS kernels (OpenBLAS's AVX-512 DGEMM rounds two equal
/// columns' dot products differently): its smallest pivot is then rounding, not zero, and its
/// inverse would be noise amplified by 1 / eps.
bool numerically_spd_cholesky(la::Matrix& a) {
  const index_t n = a.rows();
  double largest = 0.0;
  for (index_t i = 0; i < n; ++i) largest = std::max(largest, a(i, i));
  try {
    la::potrf_upper(a);
  } catch (const Error&) {
    return false;
  }
  const double tol = static_cast<double>(n) * std::numeric_limits<double>::epsilon() * largest;
  for (index_t i = 0; i < n; ++i)
    if (a(i, i) * a(i, i) <= tol) return false;
  return true;
}

/// (A)^{-1} of a symmetric positive definite A by Cholesky A = R^T R and two triangular solves.
/// Returns false when A is not positive definite to working precision (numerically_spd_cholesky).
bool spd_inverse(la::Matrix& a) {
  const index_t n = a.rows();
  if (!numerically_spd_cholesky(a)) return false;
  la::Matrix r(n, n, 0.0);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= j; ++i) r(i, j) = a(i, j);
  la::Matrix x = la::Matrix::identity(n);
  la::trsm_upper_left(r, la::Op::transpose, x);  // R^T Y = I
  la::trsm_upper_left(r, la::Op::none, x);       // R X = Y
  // Symmetrise (the two solves leave rounding-level asymmetry).
  for (index_t j = 0; j < n; ++j)
    for (index_t i = j + 1; i < n; ++i) x(i, j) = x(j, i) = 0.5 * (x(i, j) + x(j, i));
  a = std::move(x);
  return true;
}

}  // namespace

StructuredObsResult structured_obs(la::ConstMatrixView gram, la::ConstMatrixView w_next, index_t k,
                                   const StructuredObsOptions& options) {
  const index_t n = gram.rows();
  require(n >= 1 && gram.cols() == n, "structured_obs: Gram ", gram.rows(), " x ", gram.cols(), " is not square");
  require(w_next.rows() == n && w_next.cols() >= 1, "structured_obs: next weight ", w_next.rows(), " x ", w_next.cols(),
          " for ", n, " neurons");
  require(k >= 1 && k <= n, "structured_obs: k=", k, " outside [1, ", n, "]");
  require(std::isfinite(options.damping) && options.damping >= 0.0, "structured_obs: damping=", options.damping,
          " must be finite and >= 0");
  std::string bad = la::non_finite_message(gram, "structured_obs: Gram");
  require(bad.empty(), bad);
  bad = la::non_finite_message(w_next, "structured_obs: next weight");
  require(bad.empty(), bad);

  StructuredObsResult out;
  std::vector<bool> active(uz(n), true);
  index_t remaining = n;
  // Dead neurons first: Z(:, j) = 0 contributes nothing to Z W, so removing it costs nothing.
  std::vector<index_t> live;
  for (index_t j = 0; j < n; ++j) {
    if (gram(j, j) > 0.0) {
      live.push_back(j);
    } else if (remaining > k) {
      active[uz(j)] = false;
      --remaining;
      out.removed.push_back(j);
      out.removal_costs.push_back(0.0);
    }
  }
  const auto n_live = static_cast<index_t>(live.size());
  double mean_diag = 0.0;
  for (index_t j : live) mean_diag += gram(j, j);
  if (n_live > 0) mean_diag /= static_cast<double>(n_live);
  out.lambda = options.damping * mean_diag;

  // H^{-1} over the live neurons (indices into `live`), and the live rows of W.
  la::Matrix hinv(n_live, n_live);
  for (index_t b = 0; b < n_live; ++b)
    for (index_t a = 0; a < n_live; ++a) hinv(a, b) = gram(live[uz(a)], live[uz(b)]) + (a == b ? out.lambda : 0.0);
  require(n_live == 0 || spd_inverse(hinv), "structured_obs: the Gram of the ", n_live,
          " live neurons plus lambda=", out.lambda,
          " I is not positive definite (linearly dependent activations, e.g. duplicate neurons): use damping > 0");
  la::Matrix w = la::select_rows(w_next, live);
  std::vector<bool> live_active(uz(n_live), true);

  la::Matrix h_col(n_live, 1);
  la::Matrix w_row(1, w.cols());
  std::vector<double> row_norm2(uz(n_live));
  while (remaining > k) {
    // The cheapest live neuron: cost_j = ||W(j, :)||^2 / [H^{-1}]_jj (ties: lower index).
    // Row norms column by column (contiguous in the column-major W).
    std::fill(row_norm2.begin(), row_norm2.end(), 0.0);
    for (index_t c = 0; c < w.cols(); ++c)
      for (index_t a = 0; a < n_live; ++a) row_norm2[uz(a)] += w(a, c) * w(a, c);
    index_t best = -1;
    double best_cost = 0.0;
    for (index_t a = 0; a < n_live; ++a) {
      if (!live_active[uz(a)]) continue;
      const double cost = row_norm2[uz(a)] / hinv(a, a);
      if (best < 0 || cost < best_cost) {
        best = a;
        best_cost = cost;
      }
    }
    const double d = hinv(best, best);
    for (index_t a = 0; a < n_live; ++a) h_col(a, 0) = hinv(a, best);
    for (index_t c = 0; c < w.cols(); ++c) w_row(0, c) = w(best, c);
    // W <- W - H^{-1}(:, j) W(j, :) / d;  H^{-1} <- H^{-1} - H^{-1}(:, j) H^{-1}(j, :) / d.
    la::gemm(-1.0 / d, h_col, la::Op::none, w_row, la::Op::none, 1.0, w);
    la::gemm(-1.0 / d, h_col, la::Op::none, h_col, la::Op::transpose, 1.0, hinv);
    // Row and column j are now zero in exact arithmetic; make them exactly zero so later updates
    // (whose H^{-1}(:, j') has a zero there) leave the removed row alone.
    for (index_t a = 0; a < n_live; ++a) hinv(a, best) = hinv(best, a) = 0.0;
    for (index_t c = 0; c < w.cols(); ++c) w(best, c) = 0.0;
    live_active[uz(best)] = false;
    active[uz(live[uz(best)])] = false;
    --remaining;
    out.removed.push_back(live[uz(best)]);
    out.removal_costs.push_back(std::max(0.0, best_cost));
  }

  for (index_t j = 0; j < n; ++j)
    if (active[uz(j)]) out.kept.push_back(j);
  // T = H_KK^{-1} H_{K,:} on the live kept neurons, by one Cholesky solve (not the accumulated
  // downdates, whose rounding grows with the number of removals); dead kept neurons keep their own
  // row (identity), which is harmless since their activation is 0.
  out.interpolation.reset(k, n, 0.0);
  std::vector<index_t> live_kept_pos;  // positions in `kept` of live neurons
  for (index_t i = 0; i < k; ++i) {
    if (gram(out.kept[uz(i)], out.kept[uz(i)]) > 0.0)
      live_kept_pos.push_back(i);
    else
      out.interpolation(i, out.kept[uz(i)]) = 1.0;
  }
  const auto kl = static_cast<index_t>(live_kept_pos.size());
  if (kl > 0) {
    la::Matrix hkk(kl, kl);
    la::Matrix rhs(kl, n);
    for (index_t b = 0; b < kl; ++b) {
      const index_t jb = out.kept[uz(live_kept_pos[uz(b)])];
      for (index_t a = 0; a < kl; ++a)
        hkk(a, b) = gram(out.kept[uz(live_kept_pos[uz(a)])], jb) + (a == b ? out.lambda : 0.0);
    }
    for (index_t c = 0; c < n; ++c)
      for (index_t a = 0; a < kl; ++a) {
        const index_t ja = out.kept[uz(live_kept_pos[uz(a)])];
        rhs(a, c) = gram(ja, c) + (ja == c ? out.lambda : 0.0);
      }
    if (!numerically_spd_cholesky(hkk))
      throw Error(detail::concat("structured_obs: the Gram of the ", kl,
                                 " kept live neurons is not positive definite: use damping > 0"));
    for (index_t b = 0; b < kl; ++b)
      for (index_t a = b + 1; a < kl; ++a) hkk(a, b) = 0.0;
    la::trsm_upper_left(hkk, la::Op::transpose, rhs);
    la::trsm_upper_left(hkk, la::Op::none, rhs);
    for (index_t a = 0; a < kl; ++a)
      for (index_t c = 0; c < n; ++c) out.interpolation(live_kept_pos[uz(a)], c) = rhs(a, c);
    // T(:, K) = I exactly (the solve reproduces it to rounding).
    for (index_t a = 0; a < kl; ++a)
      for (index_t i = 0; i < k; ++i)
        out.interpolation(live_kept_pos[uz(a)], out.kept[uz(i)]) = live_kept_pos[uz(a)] == i ? 1.0 : 0.0;
  }
  out.weights = la::matmul(out.interpolation, w_next);
  return out;
}

}  // namespace idprune::compress
