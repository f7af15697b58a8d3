#include "idprune/compress/whitened_svd.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"
#include "idprune/la/svd.hpp"

namespace idprune::compress {
namespace {

std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

void check_inputs(la::ConstMatrixView gram, la::ConstMatrixView w, const WhitenedSvdOptions& o) {
  const index_t d_in = w.rows();
  const index_t d_out = w.cols();
  require(d_in >= 1 && d_out >= 1, "whitened_svd: empty weight ", d_in, " x ", d_out);
  require(gram.rows() == d_in && gram.cols() == d_in, "whitened_svd: Gram ", gram.rows(), " x ", gram.cols(),
          " does not match a weight with ", d_in, " inputs");
  require(o.rank >= 1 && o.rank <= std::min(d_in, d_out), "whitened_svd: rank=", o.rank, " outside [1, min(d_in=", d_in,
          ", d_out=", d_out, ")]");
  require(std::isfinite(o.ridge) && o.ridge >= 0.0, "whitened_svd: ridge=", o.ridge, " must be finite and >= 0");
  require(std::isfinite(o.null_tol) && o.null_tol < 1.0, "whitened_svd: null_tol=", o.null_tol, " must be < 1");
  std::string bad = la::non_finite_message(gram, "whitened_svd: Gram");
  require(bad.empty(), bad);
  bad = la::non_finite_message(w, "whitened_svd: weight");
  require(bad.empty(), bad);
}

WhitenedSvdResult factor(la::Matrix h, la::ConstMatrixView w, const WhitenedSvdOptions& o) {
  const index_t d_in = w.rows();
  const index_t d_out = w.cols();
  const index_t r = o.rank;
  if (o.ridge > 0.0) {
    double trace = 0.0;
    for (index_t i = 0; i < d_in; ++i) trace += h(i, i);
    const double lambda = o.ridge * trace / static_cast<double>(d_in);
    for (index_t i = 0; i < d_in; ++i) h(i, i) += lambda;
  }
  // G = U diag(lambda) U^T: the SVD of a symmetric positive semidefinite matrix (see the header).
  const la::Svd eig = la::svd(h);
  const double tol =
      (o.null_tol < 0.0 ? static_cast<double>(d_in) * std::numeric_limits<double>::epsilon() : o.null_tol) *
      (eig.s.empty() ? 0.0 : eig.s.front());
  index_t q = 0;
  while (q < d_in && eig.s[uz(q)] > tol) ++q;

  WhitenedSvdResult out;
  out.whitening_rank = q;
  out.a.reset(d_in, r, 0.0);
  out.b.reset(r, d_out, 0.0);
  if (q == 0) return out;  // X = 0: X A B = X W = 0 for any A B, and A = B = 0 is the minimum-norm choice

  // R W = diag(sqrt(lambda_q)) U_q^T W  (q x d_out).
  const la::ConstMatrixView uq = eig.u.view().cols_range(0, q);
  la::Matrix rw = la::matmul(uq, w, la::Op::transpose);
  for (index_t j = 0; j < d_out; ++j)
    for (index_t i = 0; i < q; ++i) rw(i, j) *= std::sqrt(eig.s[uz(i)]);
  const la::Svd f = la::svd(rw);
  out.singular_values = f.s;
  const auto n_s = static_cast<index_t>(f.s.size());
  const index_t kept = std::min(r, n_s);
  for (index_t i = kept; i < n_s; ++i) out.output_error_sq += f.s[uz(i)] * f.s[uz(i)];
  out.effective_rank = 0;
  while (out.effective_rank < kept && f.s[uz(out.effective_rank)] > 0.0) ++out.effective_rank;
  const index_t e = out.effective_rank;
  if (e == 0) return out;

  // A = U_q diag(lambda_q^{-1/2}) P_e, B = S_e Q_e^T.
  la::Matrix scaled_p(q, e);
  for (index_t j = 0; j < e; ++j)
    for (index_t i = 0; i < q; ++i) scaled_p(i, j) = f.u(i, j) / std::sqrt(eig.s[uz(i)]);
  la::gemm(1.0, uq, la::Op::none, scaled_p, la::Op::none, 0.0, out.a.view().cols_range(0, e));
  for (index_t j = 0; j < d_out; ++j)
    for (index_t i = 0; i < e; ++i) out.b(i, j) = f.s[uz(i)] * f.vt(i, j);
  return out;
}

}  // namespace

WhitenedSvdResult whitened_svd(la::ConstMatrixView gram, la::ConstMatrixView w, const WhitenedSvdOptions& options) {
  check_inputs(gram, w, options);
  require(!options.center, "whitened_svd: center needs the moments of the inputs (sum and rows), not the Gram alone");
  return factor(la::Matrix(gram), w, options);
}

WhitenedSvdResult whitened_svd(const ActivationMoments& inputs, la::ConstMatrixView w,
                               const WhitenedSvdOptions& options) {
  check_inputs(inputs.gram, w, options);
  require(inputs.rows >= 1, "whitened_svd: moments of no rows");
  if (!options.center) return factor(inputs.gram, w, options);
  // Centred Gram X_c^T X_c = X^T X - s s^T / m (s = X^T 1).
  const index_t d_in = w.rows();
  const double m = static_cast<double>(inputs.rows);
  la::Matrix c(inputs.gram);
  for (index_t j = 0; j < d_in; ++j)
    for (index_t i = 0; i < d_in; ++i) c(i, j) -= inputs.sum[uz(i)] * (inputs.sum[uz(j)] / m);
  WhitenedSvdResult out = factor(std::move(c), w, options);
  // bias_shift = mean^T (W - A B).
  la::Matrix diff(w);
  la::gemm(-1.0, out.a, la::Op::none, out.b, la::Op::none, 1.0, diff);
  const std::vector<double> mu = inputs.mean();
  out.bias_shift.assign(uz(w.cols()), 0.0);
  la::gemv(1.0, diff, la::Op::transpose, mu, 0.0, out.bias_shift);
  return out;
}

}  // namespace idprune::compress
