#include "idprune/compress/layer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "idprune/data/sampling.hpp"
#include "idprune/la/blas.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
using la::uz;

/// SplitMix64 finaliser (Steele, Lea, Flood 2014): decorrelates the per-layer seeds.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

Selection id_selection(const la::CpqrResult& f, index_t k) {
  const auto n = static_cast<index_t>(f.pivots.size());
  require(k >= 1 && k <= f.rank, "id_selection: k=", k, " outside [1, rank=", f.rank, "]");
  la::CpqrResult prefix;
  prefix.rank = k;
  prefix.pivots = f.pivots;
  prefix.r = Matrix(f.r.block(0, 0, k, n));
  const Matrix t = la::interpolation_matrix(prefix);  // row i belongs to pivot i
  std::vector<index_t> order(uz(k));
  std::iota(order.begin(), order.end(), index_t{0});
  std::sort(order.begin(), order.end(), [&](index_t a, index_t b) { return f.pivots[uz(a)] < f.pivots[uz(b)]; });
  Selection s;
  s.kept.reserve(uz(k));
  for (index_t i : order) s.kept.push_back(f.pivots[uz(i)]);
  // Rows of T in ascending neuron order, column by column (contiguous writes).
  s.interpolation = Matrix(k, n);
  for (index_t j = 0; j < n; ++j) {
    const auto src = t.col(j);
    const auto dst = s.interpolation.col(j);
    for (index_t i = 0; i < k; ++i) dst[uz(i)] = src[uz(order[uz(i)])];
  }
  return s;
}

Selection dead_layer_selection(index_t width) {
  require(width >= 1, "dead_layer_selection: width ", width, " < 1");
  Selection s;
  s.kept = {0};
  s.interpolation = Matrix(1, width);  // T = 0: the layer's output was zero on every sample
  return s;
}

namespace {
/// T W for a T (k x n) and W (n x d). When T(:, C) is exactly the identity (every ID selection:
/// T = [I, R11^{-1} R12] P^T), T W = W(C, :) + T(:, F) W(F, :) with F the other n - k columns: a
/// product of k (n - k) d flops instead of k n d (8x fewer for the first layers of a sweep's
/// mildest points, which keep 90% of the neurons). Otherwise the plain product.
Matrix fold(const Selection& s, la::ConstMatrixView w) {
  const Matrix& t = s.interpolation;
  const index_t k = t.rows();
  const index_t n = t.cols();
  std::vector<char> in_c(uz(n), 0);
  for (index_t c : s.kept) in_c[uz(c)] = 1;
  bool identity = true;
  for (index_t i = 0; i < k && identity; ++i)
    for (index_t j = 0; j < k && identity; ++j) identity = t(i, s.kept[uz(j)]) == (i == j ? 1.0 : 0.0);
  if (!identity) return la::matmul(t, w);
  std::vector<index_t> rest;
  for (index_t j = 0; j < n; ++j)
    if (!in_c[uz(j)]) rest.push_back(j);
  Matrix out = la::select_rows(w, s.kept);
  if (!rest.empty())
    la::gemm(1.0, la::select_columns(t, rest), la::Op::none, la::select_rows(w, rest), la::Op::none, 1.0, out.view());
  return out;
}
}  // namespace

FoldedLayers fold_selection(const nn::DenseLayer& cur, const nn::DenseLayer& next, const Selection& selection,
                            std::span<const double> shift) {
  const index_t width = cur.d_out();
  const auto k = static_cast<index_t>(selection.kept.size());
  require(k >= 1 && selection.interpolation.rows() == k && selection.interpolation.cols() == width,
          "fold_selection: T is ", selection.interpolation.rows(), " x ", selection.interpolation.cols(), " for ", k,
          " kept of ", width, " neurons");
  require(next.d_in() == width, "fold_selection: the next layer takes ", next.d_in(), " inputs, the layer has ", width,
          " neurons");
  require(shift.empty() || static_cast<index_t>(shift.size()) == width, "fold_selection: shift of length ",
          shift.size(), " for ", width, " neurons");
  for (index_t c : selection.kept)
    require(c >= 0 && c < width, "fold_selection: kept neuron ", c, " outside [0, ", width, ")");

  // Only the factors that change are computed; the others are copied once.
  std::vector<Matrix> factors;
  for (index_t j = 0; j + 1 < cur.factor_count(); ++j) factors.push_back(cur.factor(j));
  factors.push_back(la::select_columns(cur.factors().back(), selection.kept));
  std::vector<double> bias;
  if (cur.has_bias())
    for (index_t c : selection.kept) bias.push_back(cur.bias()[uz(c)]);

  std::vector<Matrix> next_factors;
  // W_{l+1} <- T W_{l+1}: only the first factor of a factored next layer changes.
  next_factors.push_back(selection.identity_rows ? la::select_rows(next.factor(0), selection.kept)
                                                 : fold(selection, next.factor(0)));
  for (index_t j = 1; j < next.factor_count(); ++j) next_factors.push_back(next.factor(j));
  std::vector<double> next_bias = next.bias();
  if (!shift.empty()) {
    // act(H T W + 1 t W + b): the intercept becomes part of the next layer's bias.
    next_bias.resize(uz(next.d_out()), 0.0);
    const Matrix tw = la::matmul(Matrix(la::ConstMatrixView(shift.data(), 1, width)), next.weight());
    for (index_t j = 0; j < next.d_out(); ++j) next_bias[uz(j)] += tw(0, j);
  }
  return {nn::DenseLayer(std::move(factors), std::move(bias), cur.activation()),
          nn::DenseLayer(std::move(next_factors), std::move(next_bias), next.activation())};
}

void apply_selection(nn::Mlp& model, index_t layer, const Selection& selection) {
  require(layer >= 0 && layer < model.num_hidden(), "apply_selection: layer ", layer, " outside [0, ",
          model.num_hidden(), ")");
  FoldedLayers f = fold_selection(model.hidden(layer), model.layer(layer + 1), selection);
  model.layer(layer) = std::move(f.layer);
  model.layer(layer + 1) = std::move(f.next);
}

std::vector<double> outgoing_norms(const nn::DenseLayer& next) {
  const Matrix w = next.weight();
  std::vector<double> norms(uz(w.rows()), 0.0);
  // Row i of a column-major matrix is strided: accumulate squares column by column with scaling-free
  // sums (weights are O(1); an overflow would need entries near 1e154).
  for (index_t j = 0; j < w.cols(); ++j)
    for (index_t i = 0; i < w.rows(); ++i) norms[uz(i)] += w(i, j) * w(i, j);
  for (double& v : norms) v = std::sqrt(v);
  return norms;
}

Selection magnitude_selection(const nn::DenseLayer& next, index_t k) {
  const std::vector<double> norms = outgoing_norms(next);
  const auto width = static_cast<index_t>(norms.size());
  require(k >= 1 && k <= width, "magnitude_selection: k=", k, " outside [1, width=", width, "]");
  std::vector<index_t> order(uz(width));
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return norms[uz(a)] > norms[uz(b)]; });
  Selection s;
  s.kept.assign(order.begin(), order.begin() + k);
  std::sort(s.kept.begin(), s.kept.end());
  s.interpolation = Matrix(k, width);
  for (index_t i = 0; i < k; ++i) s.interpolation(i, s.kept[uz(i)]) = 1.0;
  s.identity_rows = true;
  return s;
}

std::vector<index_t> random_columns(index_t width, index_t k, std::uint64_t seed, index_t layer) {
  require(k >= 1 && k <= width, "random_columns: k=", k, " outside [1, width=", width, "]");
  const auto perm = data::random_permutation(width, mix(seed ^ mix(static_cast<std::uint64_t>(layer))));
  std::vector<index_t> cols(perm.begin(), perm.begin() + k);
  std::sort(cols.begin(), cols.end());
  return cols;
}

nn::DenseLayer svd_layer(const nn::DenseLayer& layer, const la::Svd& w_svd, index_t r) {
  const index_t d_in = layer.d_in();
  const index_t d_out = layer.d_out();
  const auto full = static_cast<index_t>(w_svd.s.size());
  require(w_svd.u.rows() == d_in && w_svd.vt.cols() == d_out && full == std::min(d_in, d_out), "svd_layer: the SVD (",
          w_svd.u.rows(), " x ", full, " x ", w_svd.vt.cols(), ") is not of a ", d_in, " x ", d_out, " weight");
  require(r >= 1 && r <= full, "svd_layer: rank ", r, " outside [1, ", full, "]");
  Matrix u(w_svd.u.block(0, 0, d_in, r));
  Matrix svt(w_svd.vt.block(0, 0, r, d_out));
  for (index_t j = 0; j < d_out; ++j)
    for (index_t i = 0; i < r; ++i) svt(i, j) *= w_svd.s[uz(i)];
  std::vector<Matrix> factors;
  factors.push_back(std::move(u));
  factors.push_back(std::move(svt));
  return nn::DenseLayer(std::move(factors), layer.bias(), layer.activation());
}

}  // namespace idprune::compress
