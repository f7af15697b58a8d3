#include "idprune/compress/neuron_merging.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"

namespace idprune::compress {
namespace {

std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

void check_layer(la::ConstMatrixView w, std::span<const double> bias, const char* who) {
  require(w.rows() >= 1 && w.cols() >= 1, who, ": empty weight ", w.rows(), " x ", w.cols());
  require(bias.empty() || static_cast<index_t>(bias.size()) == w.cols(), who, ": ", bias.size(), " biases for ",
          w.cols(), " neurons");
  const std::string bad = la::non_finite_message(w, std::string(who) + ": weight");
  require(bad.empty(), bad);
  for (std::size_t j = 0; j < bias.size(); ++j)
    require(std::isfinite(bias[j]), who, ": bias entry ", j, " is ", bias[j], " (NaN/Inf input)");
}

}  // namespace

NeuronNorm parse_neuron_norm(std::string_view name) {
  if (name == "l1") return NeuronNorm::l1;
  if (name == "l2") return NeuronNorm::l2;
  throw Error(detail::concat("unknown neuron norm '", name, "' (expected l1 or l2)"));
}

std::vector<double> incoming_norms(la::ConstMatrixView w, std::span<const double> bias, NeuronNorm norm) {
  check_layer(w, bias, "incoming_norms");
  std::vector<double> out(uz(w.cols()));
  for (index_t j = 0; j < w.cols(); ++j) {
    const double b = bias.empty() ? 0.0 : bias[uz(j)];
    if (norm == NeuronNorm::l2) {
      std::vector<double> v(w.col(j).begin(), w.col(j).end());
      v.push_back(b);
      out[uz(j)] = la::nrm2(v);
    } else {
      double s = std::abs(b);
      for (double x : w.col(j)) s += std::abs(x);
      out[uz(j)] = s;
    }
  }
  return out;
}

std::vector<index_t> norm_selection(la::ConstMatrixView w, std::span<const double> bias, index_t k, NeuronNorm norm) {
  const std::vector<double> s = incoming_norms(w, bias, norm);
  const index_t n = w.cols();
  require(k >= 1 && k <= n, "norm_selection: k=", k, " outside [1, ", n, "]");
  std::vector<index_t> order(uz(n));
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) { return s[uz(a)] > s[uz(b)]; });
  order.resize(uz(k));
  std::sort(order.begin(), order.end());
  return order;
}

NeuronMergingResult neuron_merging(la::ConstMatrixView w, std::span<const double> bias, std::span<const index_t> kept,
                                   const NeuronMergingOptions& options) {
  check_layer(w, bias, "neuron_merging");
  require(!std::isnan(options.threshold), "neuron_merging: threshold is NaN");
  const index_t n = w.cols();
  const index_t k = static_cast<index_t>(kept.size());
  require(k >= 1, "neuron_merging: no kept neurons");
  std::vector<index_t> position(uz(n), -1);
  for (index_t i = 0; i < k; ++i) {
    const index_t j = kept[uz(i)];
    require(j >= 0 && j < n, "neuron_merging: kept index ", j, " outside [0, ", n, ")");
    require(position[uz(j)] < 0, "neuron_merging: kept index ", j, " given twice");
    position[uz(j)] = i;
  }

  // Unit incoming vectors u_j = v_j / ||v_j||_2 as the columns of a (d_in + 1) x n matrix (the bias
  // row only when there is a bias); cosines of pruned against kept neurons are one product U^T U_kept.
  const index_t d = w.rows() + (bias.empty() ? 0 : 1);
  la::Matrix u(d, n, 0.0);
  std::vector<double> norm2(uz(n), 0.0);
  for (index_t j = 0; j < n; ++j) {
    for (index_t i = 0; i < w.rows(); ++i) u(i, j) = w(i, j);
    if (!bias.empty()) u(d - 1, j) = bias[uz(j)];
    norm2[uz(j)] = la::nrm2(u.col(j));
    if (norm2[uz(j)] > 0.0)
      for (double& x : u.col(j)) x /= norm2[uz(j)];
  }
  const la::Matrix u_kept = la::select_columns(u, kept);
  const la::Matrix cosine = la::matmul(u_kept, u, la::Op::transpose);  // k x n

  NeuronMergingResult out;
  out.kept.assign(kept.begin(), kept.end());
  out.interpolation.reset(k, n, 0.0);
  out.merged_into.assign(uz(n), -1);
  out.similarity.assign(uz(n), 0.0);
  out.scale.assign(uz(n), 0.0);
  for (index_t j = 0; j < n; ++j) {
    if (position[uz(j)] >= 0) {
      const index_t p = position[uz(j)];
      out.interpolation(p, j) = 1.0;
      out.merged_into[uz(j)] = p;
      out.similarity[uz(j)] = 1.0;
      out.scale[uz(j)] = 1.0;
      continue;
    }
    if (norm2[uz(j)] == 0.0) continue;  // relu(0) = 0: nothing to carry over
    index_t best = -1;
    double best_cos = -2.0;
    for (index_t i = 0; i < k; ++i) {
      if (norm2[uz(kept[uz(i)])] == 0.0) continue;
      const double c = cosine(i, j);
      if (c > best_cos || (c == best_cos && kept[uz(i)] < kept[uz(best)])) {
        best = i;
        best_cos = c;
      }
    }
    if (best < 0) continue;
    out.similarity[uz(j)] = best_cos;
    if (best_cos < options.threshold) continue;
    const double s = norm2[uz(j)] / norm2[uz(kept[uz(best)])];
    out.interpolation(best, j) = s;
    out.merged_into[uz(j)] = best;
    out.scale[uz(j)] = s;
    ++out.merged;
  }
  return out;
}

}  // namespace idprune::compress
