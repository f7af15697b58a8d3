#include "idprune/compress/output_selection.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"

namespace idprune::compress {

using la::index_t;
using la::Matrix;
using la::uz;

OutputSelection output_aware_selection(const Matrix& gram, la::ConstMatrixView w_next, index_t k) {
  const index_t n = gram.rows();
  require(gram.cols() == n && n >= 1, "output_aware_selection: the Gram matrix is ", gram.rows(), " x ", gram.cols());
  require(w_next.rows() == n, "output_aware_selection: the next weight has ", w_next.rows(), " rows for ", n,
          " neurons");
  require(k >= 1 && k <= n, "output_aware_selection: k=", k, " outside [1, ", n, "]");
  for (const auto& [m, what] : {std::pair{gram.view(), "Gram matrix"}, std::pair{w_next, "next weight"}}) {
    const std::string bad = la::non_finite_message(m, std::string("output_aware_selection: ") + what);
    require(bad.empty(), bad);
  }

  const index_t d = w_next.cols();
  Matrix g(gram);                        // G_s, downdated in place
  Matrix gw = la::matmul(gram, w_next);  // G_s W (n x d)
  double max_diag = 0.0;
  for (index_t j = 0; j < n; ++j) max_diag = std::max(max_diag, gram(j, j));
  const double tiny = static_cast<double>(n) * std::numeric_limits<double>::epsilon() * max_diag;
  // ||(I - P_C) Z W||_F^2 = tr(W^T G_s W), kept as the sum of the diagonal of W^T (G_s W).
  double residual = 0.0;
  for (index_t c = 0; c < d; ++c)
    for (index_t i = 0; i < n; ++i) residual += w_next(i, c) * gw(i, c);

  OutputSelection out;
  std::vector<char> chosen(uz(n), 0);
  std::vector<double> col(uz(n));
  std::vector<double> wg(uz(d));
  for (index_t s = 0; s < k; ++s) {
    index_t best = -1;
    double best_score = -1.0;
    for (index_t j = 0; j < n; ++j) {
      if (chosen[uz(j)] != 0 || !(g(j, j) > tiny)) continue;
      double r = 0.0;
      for (index_t c = 0; c < d; ++c) r += gw(j, c) * gw(j, c);
      const double score = r / g(j, j);
      if (score > best_score) {  // ties: the lower index
        best_score = score;
        best = j;
      }
    }
    if (best < 0) {
      // Every remaining residual column is numerically zero: the rest changes nothing.
      for (index_t j = 0; j < n && static_cast<index_t>(out.order.size()) < k; ++j)
        if (chosen[uz(j)] == 0) {
          chosen[uz(j)] = 1;
          out.order.push_back(j);
          out.residual.push_back(std::max(0.0, residual));
        }
      break;
    }
    chosen[uz(best)] = 1;
    out.order.push_back(best);
    residual -= best_score;
    out.residual.push_back(std::max(0.0, residual));
    // G_s <- G_s - g g^T, G_s W <- G_s W - g (W^T g)^T with g = G_s(:, p) / sqrt(G_s(p, p)).
    const double root = std::sqrt(g(best, best));
    for (index_t i = 0; i < n; ++i) col[uz(i)] = g(i, best) / root;
    std::fill(wg.begin(), wg.end(), 0.0);
    for (index_t c = 0; c < d; ++c)
      for (index_t i = 0; i < n; ++i) wg[uz(c)] += w_next(i, c) * col[uz(i)];
    for (index_t j = 0; j < n; ++j) {
      const double gj = col[uz(j)];
      if (gj == 0.0) continue;
      for (index_t i = 0; i < n; ++i) g(i, j) -= col[uz(i)] * gj;
    }
    for (index_t c = 0; c < d; ++c)
      for (index_t i = 0; i < n; ++i) gw(i, c) -= col[uz(i)] * wg[uz(c)];
  }
  return out;
}

}  // namespace idprune::compress
