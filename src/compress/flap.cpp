#include "idprune/compress/flap.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <tuple>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"

namespace idprune::compress {
namespace {

std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

}  // namespace

std::vector<double> flap_scores(const ActivationMoments& activations, la::ConstMatrixView w_next) {
  const index_t n = activations.cols();
  require(n >= 1, "flap_scores: moments of no neurons");
  require(w_next.rows() == n && w_next.cols() >= 1, "flap_scores: next weight ", w_next.rows(), " x ", w_next.cols(),
          " for a layer of ", n, " neurons");
  const std::string bad = la::non_finite_message(w_next, "flap_scores: next weight");
  require(bad.empty(), bad);
  const std::vector<double> var = activations.variance();
  std::vector<double> s(uz(n));
  for (index_t j = 0; j < n; ++j) {
    double r = 0.0;
    for (index_t c = 0; c < w_next.cols(); ++c) r += w_next(j, c) * w_next(j, c);
    s[uz(j)] = var[uz(j)] * r;
  }
  return s;
}

std::vector<double> standardize(std::span<const double> scores) {
  const auto n = static_cast<index_t>(scores.size());
  std::vector<double> z(scores.size(), 0.0);
  if (n < 2) return z;
  double mean = 0.0;
  for (double s : scores) mean += s;
  mean /= static_cast<double>(n);
  double ss = 0.0;
  for (double s : scores) ss += (s - mean) * (s - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n - 1));
  if (!(sd > 0.0)) return z;
  for (std::size_t j = 0; j < scores.size(); ++j) z[j] = (scores[j] - mean) / sd;
  return z;
}

FlapResult flap_select(std::span<const std::vector<double>> scores, const FlapOptions& options) {
  const auto L = static_cast<index_t>(scores.size());
  require(L >= 1, "flap_select: no layers");
  const bool by_count = options.keep_neurons >= 0;
  const bool by_budget = options.budget >= 0.0;
  require(by_count != by_budget, "flap_select: give exactly one target, keep_neurons (", options.keep_neurons,
          ") or budget (", options.budget, ")");
  std::vector<index_t> widths(uz(L));
  index_t total = 0;
  for (index_t l = 0; l < L; ++l) {
    widths[uz(l)] = static_cast<index_t>(scores[uz(l)].size());
    require(widths[uz(l)] >= 1, "flap_select: layer ", l + 1, " has no neurons");
    for (double s : scores[uz(l)])
      require(std::isfinite(s), "flap_select: layer ", l + 1, " has a non-finite score ", s);
    total += widths[uz(l)];
  }
  if (by_count)
    require(options.keep_neurons >= L, "flap_select: keep_neurons=", options.keep_neurons, " below one per layer (", L,
            " layers)");
  if (by_budget) {
    require(std::isfinite(options.budget), "flap_select: budget=", options.budget);
    options.shape.validate();
    require(options.shape.num_hidden() == L && options.shape.hidden_widths() == widths,
            "flap_select: the shape's hidden widths do not match the scores' layers");
  }

  FlapResult out;
  // Every neuron, ordered by increasing standardised score (ties: lower layer, then lower index).
  std::vector<std::tuple<double, index_t, index_t>> order;
  order.reserve(uz(total));
  for (index_t l = 0; l < L; ++l) {
    out.standardized.push_back(standardize(scores[uz(l)]));
    for (index_t j = 0; j < widths[uz(l)]; ++j) order.emplace_back(out.standardized.back()[uz(j)], l, j);
  }
  std::sort(order.begin(), order.end());

  auto met = [&](const std::vector<index_t>& w) {
    if (by_count) return std::accumulate(w.begin(), w.end(), index_t{0}) <= options.keep_neurons;
    return static_cast<double>(options.shape.cost(w, options.budget_kind)) <= options.budget;
  };
  std::vector<std::vector<bool>> gone(uz(L));
  for (index_t l = 0; l < L; ++l) gone[uz(l)].assign(uz(widths[uz(l)]), false);
  for (const auto& [s, l, j] : order) {
    if (met(widths)) break;
    if (widths[uz(l)] == 1) continue;  // a layer keeps at least one neuron
    gone[uz(l)][uz(j)] = true;
    --widths[uz(l)];
    out.removed.emplace_back(l, j);
  }
  out.target_met = met(widths);
  out.widths = widths;
  for (index_t l = 0; l < L; ++l) {
    std::vector<index_t> k;
    for (index_t j = 0; j < static_cast<index_t>(gone[uz(l)].size()); ++j)
      if (!gone[uz(l)][uz(j)]) k.push_back(j);
    out.kept.push_back(std::move(k));
  }
  if (by_budget) out.cost = options.shape.cost(widths, options.budget_kind);
  return out;
}

std::vector<double> flap_bias_compensation(std::span<const double> mean, la::ConstMatrixView w_next,
                                           std::span<const index_t> kept) {
  const auto n = static_cast<index_t>(mean.size());
  require(w_next.rows() == n, "flap_bias_compensation: next weight has ", w_next.rows(), " rows for ", n, " neurons");
  std::vector<double> pruned_mean(mean.begin(), mean.end());
  for (index_t j : kept) {
    require(j >= 0 && j < n, "flap_bias_compensation: kept index ", j, " outside [0, ", n, ")");
    pruned_mean[uz(j)] = 0.0;
  }
  std::vector<double> shift(uz(w_next.cols()), 0.0);
  la::gemv(1.0, w_next, la::Op::transpose, pruned_mean, 0.0, shift);
  return shift;
}

}  // namespace idprune::compress
