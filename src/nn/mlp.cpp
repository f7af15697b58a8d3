#include "idprune/nn/mlp.hpp"

#include <algorithm>
#include <cmath>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"
#include "nn/row_blocks.hpp"

namespace idprune::nn {

std::string_view to_string(Activation activation) { return activation == Activation::relu ? "relu" : "identity"; }

Activation parse_activation(std::string_view name) {
  if (name == "relu") return Activation::relu;
  if (name == "identity" || name == "linear" || name == "none") return Activation::identity;
  throw Error(detail::concat("unknown activation '", name, "' (expected relu or identity)"));
}

DenseLayer::DenseLayer(la::Matrix weight, std::vector<double> bias, Activation activation)
    : bias_(std::move(bias)), activation_(activation) {
  factors_.front() = std::move(weight);
  validate();
}

DenseLayer::DenseLayer(std::vector<la::Matrix> factors, std::vector<double> bias, Activation activation)
    : factors_(std::move(factors)), bias_(std::move(bias)), activation_(activation) {
  require(!factors_.empty(), "DenseLayer: a layer needs at least one weight factor");
  validate();
}

void DenseLayer::validate() const {
  for (std::size_t j = 0; j < factors_.size(); ++j) {
    const auto& f = factors_[j];
    require(f.rows() > 0 && f.cols() > 0, "DenseLayer: factor ", j, " is empty (", f.rows(), " x ", f.cols(), ")");
    if (j > 0)
      require(factors_[j - 1].cols() == f.rows(), "DenseLayer: factor ", j - 1, " is ", factors_[j - 1].rows(), " x ",
              factors_[j - 1].cols(), " but factor ", j, " is ", f.rows(), " x ", f.cols());
  }
  require(bias_.empty() || static_cast<index_t>(bias_.size()) == d_out(), "DenseLayer: bias of length ", bias_.size(),
          " for d_out=", d_out());
}

la::Matrix DenseLayer::weight() const {
  la::Matrix w = factors_.front();
  for (std::size_t j = 1; j < factors_.size(); ++j) w = la::matmul(w, factors_[j]);
  return w;
}

index_t DenseLayer::parameter_count() const {
  index_t count = static_cast<index_t>(bias_.size());
  for (const auto& f : factors_) count += f.size();
  return count;
}

double DenseLayer::flops_per_sample() const {
  double flops = 0.0;
  for (const auto& f : factors_) flops += 2.0 * static_cast<double>(f.size());
  return flops;
}

void DenseLayer::forward(la::ConstMatrixView x, la::Matrix& y, const ForwardOptions& options) const {
  require(x.cols() == d_in(), "DenseLayer::forward: input has ", x.cols(), " columns, layer expects d_in=", d_in());
  require(options.block_rows >= 1, "DenseLayer::forward: block_rows=", options.block_rows, " must be at least 1");
  const index_t n = x.rows();
  if (y.rows() != n || y.cols() != d_out()) y.reset_uninitialized(n, d_out());
  if (n <= options.block_rows) {
    forward_block(x, y.view());
    return;
  }
  const la::MatrixView out = y.view();
  parallel::for_each_row_block(n, options.block_rows, [&](index_t first, index_t count) {
    forward_block(x.rows_range(first, count), out.rows_range(first, count));
  });
}

void DenseLayer::forward_block(la::ConstMatrixView x, la::MatrixView y) const {
  if (factors_.size() == 1) {
    la::gemm(1.0, x, la::Op::none, factors_.front(), la::Op::none, 0.0, y);
  } else {
    la::Matrix t = la::matmul(x, factors_.front());
    for (std::size_t j = 1; j + 1 < factors_.size(); ++j) t = la::matmul(t, factors_[j]);
    la::gemm(1.0, t, la::Op::none, factors_.back(), la::Op::none, 0.0, y);
  }
  const bool relu = activation_ == Activation::relu;
  for (index_t j = 0; j < y.cols(); ++j) {
    const double b = bias_.empty() ? 0.0 : bias_[static_cast<std::size_t>(j)];
    for (double& v : y.col(j)) {
      v += b;
      // max(v, 0) would keep NaN in the first argument's position; relu(NaN) stays NaN here too.
      if (relu && v < 0.0) v = 0.0;
    }
  }
}

Mlp::Mlp(std::vector<DenseLayer> hidden, DenseLayer classifier, Metadata metadata)
    : hidden_(std::move(hidden)), classifier_(std::move(classifier)), metadata_(std::move(metadata)) {
  require(classifier_.activation() == Activation::identity,
          "Mlp: the classifier layer must have identity activation (its outputs are the softmax logits)");
  for (std::size_t l = 0; l < hidden_.size(); ++l) {
    const index_t next_in = l + 1 < hidden_.size() ? hidden_[l + 1].d_in() : classifier_.d_in();
    require(hidden_[l].d_out() == next_in, "Mlp: hidden layer ", l, " has d_out=", hidden_[l].d_out(), " but the ",
            l + 1 < hidden_.size() ? "next layer" : "classifier", " has d_in=", next_in);
  }
}

index_t Mlp::input_dim() const { return hidden_.empty() ? classifier_.d_in() : hidden_.front().d_in(); }

std::vector<index_t> Mlp::widths() const {
  std::vector<index_t> w{input_dim()};
  for (const auto& layer : hidden_) w.push_back(layer.d_out());
  w.push_back(num_classes());
  return w;
}

const DenseLayer& Mlp::hidden(index_t l) const {
  require(l >= 0 && l < num_hidden(), "Mlp::hidden: layer ", l, " out of range [0, ", num_hidden(), ")");
  return hidden_[static_cast<std::size_t>(l)];
}

DenseLayer& Mlp::layer(index_t l) {
  require(l >= 0 && l <= num_hidden(), "Mlp::layer: layer ", l, " out of range [0, ", num_hidden(), "]");
  return l == num_hidden() ? classifier_ : hidden_[static_cast<std::size_t>(l)];
}

const DenseLayer& Mlp::layer(index_t l) const {
  require(l >= 0 && l <= num_hidden(), "Mlp::layer: layer ", l, " out of range [0, ", num_hidden(), "]");
  return l == num_hidden() ? classifier_ : hidden_[static_cast<std::size_t>(l)];
}

std::string non_finite_parameter(const Mlp& model) {
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const DenseLayer& layer = model.layer(l);
    const std::string name =
        l < model.num_hidden() ? detail::concat("hidden layer ", l + 1) : std::string("the classifier");
    for (index_t f = 0; f < layer.factor_count(); ++f) {
      const std::string what = layer.factor_count() == 1 ? detail::concat("model: ", name, " weight")
                                                         : detail::concat("model: ", name, " weight factor ", f);
      if (std::string bad = la::non_finite_message(layer.factor(f), what); !bad.empty()) return bad;
    }
    const auto& bias = layer.bias();
    for (std::size_t i = 0; i < bias.size(); ++i)
      if (!std::isfinite(bias[i]))
        return detail::concat("model: ", name, " bias: entry ", i, " is ", bias[i], " (NaN/Inf input)");
  }
  return {};
}

std::vector<index_t> Mlp::layer_parameter_counts() const {
  std::vector<index_t> counts;
  for (const auto& layer : hidden_) counts.push_back(layer.parameter_count());
  counts.push_back(classifier_.parameter_count());
  return counts;
}

index_t Mlp::parameter_count() const {
  index_t total = 0;
  for (index_t c : layer_parameter_counts()) total += c;
  return total;
}

double Mlp::flops_per_sample() const {
  double total = classifier_.flops_per_sample();
  for (const auto& layer : hidden_) total += layer.flops_per_sample();
  return total;
}

la::Matrix Mlp::forward_hidden(la::ConstMatrixView h, index_t layer, const ForwardOptions& options) const {
  require(layer >= 0 && layer < num_hidden(), "Mlp::forward_hidden: layer ", layer, " out of range [0, ", num_hidden(),
          ")");
  la::Matrix out;
  hidden_[static_cast<std::size_t>(layer)].forward(h, out, options);
  return out;
}

la::Matrix Mlp::hidden_activations(la::ConstMatrixView x, index_t layer, const ForwardOptions& options) const {
  require(layer >= 0 && layer < num_hidden(), "Mlp::hidden_activations: layer ", layer, " out of range [0, ",
          num_hidden(), ")");
  require(x.cols() == input_dim(), "Mlp::hidden_activations: input has ", x.cols(), " columns, model expects ",
          input_dim());
  la::Matrix h;
  hidden_.front().forward(x, h, options);
  la::Matrix next;
  for (index_t l = 1; l <= layer; ++l) {
    hidden_[static_cast<std::size_t>(l)].forward(h, next, options);
    std::swap(h, next);
  }
  return h;
}

la::Matrix Mlp::logits_from_hidden(la::ConstMatrixView h, index_t layer, const ForwardOptions& options) const {
  require(layer >= -1 && layer < num_hidden(), "Mlp::logits_from_hidden: layer ", layer, " out of range [-1, ",
          num_hidden(), ")");
  const index_t expected = layer < 0 ? input_dim() : hidden_[static_cast<std::size_t>(layer)].d_out();
  require(h.cols() == expected, "Mlp::logits_from_hidden: input has ", h.cols(), " columns, layer ", layer + 1,
          " expects ", expected);
  la::Matrix a;
  la::Matrix b;
  la::ConstMatrixView current = h;
  for (index_t l = layer + 1; l < num_hidden(); ++l) {
    hidden_[static_cast<std::size_t>(l)].forward(current, a, options);
    std::swap(a, b);
    current = b.view();
  }
  la::Matrix z;
  classifier_.forward(current, z, options);
  return z;
}

la::Matrix Mlp::logits(la::ConstMatrixView x, const ForwardOptions& options) const {
  require(x.cols() == input_dim(), "Mlp::logits: input has ", x.cols(), " columns, model expects ", input_dim());
  return logits_from_hidden(x, -1, options);
}

std::vector<int> Mlp::predict(la::ConstMatrixView x, index_t batch_rows) const {
  require(batch_rows > 0, "Mlp::predict: batch_rows=", batch_rows, " must be positive");
  std::vector<int> predictions;
  predictions.reserve(static_cast<std::size_t>(x.rows()));
  for (index_t begin = 0; begin < x.rows(); begin += batch_rows) {
    const index_t count = std::min(batch_rows, x.rows() - begin);
    const auto batch = argmax_rows(logits(x.rows_range(begin, count)));
    predictions.insert(predictions.end(), batch.begin(), batch.end());
  }
  return predictions;
}

std::vector<int> argmax_rows(la::ConstMatrixView scores) {
  require(scores.cols() > 0 || scores.rows() == 0, "argmax_rows: no columns");
  std::vector<int> best(static_cast<std::size_t>(scores.rows()), 0);
  std::vector<double> best_value(static_cast<std::size_t>(scores.rows()));
  if (scores.rows() == 0) return best;
  // Column by column so the column-major data is read contiguously; strict > keeps the lowest index.
  const auto first = scores.col(0);
  std::copy(first.begin(), first.end(), best_value.begin());
  for (index_t j = 1; j < scores.cols(); ++j) {
    const auto col = scores.col(j);
    for (std::size_t i = 0; i < col.size(); ++i) {
      if (col[i] > best_value[i]) {
        best_value[i] = col[i];
        best[i] = static_cast<int>(j);
      }
    }
  }
  return best;
}

la::Matrix softmax_rows(la::ConstMatrixView logits) {
  la::Matrix p(logits);
  const index_t n = p.rows();
  std::vector<double> row_max(static_cast<std::size_t>(n), -INFINITY);
  std::vector<double> row_sum(static_cast<std::size_t>(n), 0.0);
  for (index_t j = 0; j < p.cols(); ++j)
    for (index_t i = 0; i < n; ++i) row_max[static_cast<std::size_t>(i)] = std::max(row_max[i], p(i, j));
  for (index_t j = 0; j < p.cols(); ++j)
    for (index_t i = 0; i < n; ++i) {
      p(i, j) = std::exp(p(i, j) - row_max[static_cast<std::size_t>(i)]);
      row_sum[static_cast<std::size_t>(i)] += p(i, j);
    }
  for (index_t j = 0; j < p.cols(); ++j)
    for (index_t i = 0; i < n; ++i) p(i, j) /= row_sum[static_cast<std::size_t>(i)];
  return p;
}

std::int64_t ClassCounts::correct_total() const {
  std::int64_t s = 0;
  for (auto c : correct) s += c;
  return s;
}

std::int64_t ClassCounts::samples() const {
  std::int64_t s = 0;
  for (auto c : total) s += c;
  return s;
}

double ClassCounts::accuracy() const {
  const auto n = samples();
  return n == 0 ? 0.0 : static_cast<double>(correct_total()) / static_cast<double>(n);
}

double ClassCounts::class_accuracy(int c) const {
  require(c >= 0 && static_cast<std::size_t>(c) < total.size(), "ClassCounts::class_accuracy: class ", c,
          " out of range [0, ", total.size(), ")");
  const auto n = total[static_cast<std::size_t>(c)];
  return n == 0 ? 0.0 : static_cast<double>(correct[static_cast<std::size_t>(c)]) / static_cast<double>(n);
}

ClassCounts count_correct(std::span<const int> predictions, std::span<const int> labels, int classes) {
  require(classes > 0, "count_correct: classes=", classes, " must be positive");
  require(predictions.size() == labels.size(), "count_correct: ", predictions.size(), " predictions for ",
          labels.size(), " labels");
  ClassCounts counts{std::vector<std::int64_t>(static_cast<std::size_t>(classes), 0),
                     std::vector<std::int64_t>(static_cast<std::size_t>(classes), 0)};
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const int y = labels[i];
    const int p = predictions[i];
    require(y >= 0 && y < classes, "count_correct: label ", y, " of sample ", i, " out of range [0, ", classes, ")");
    require(p >= 0 && p < classes, "count_correct: prediction ", p, " of sample ", i, " out of range [0, ", classes,
            ")");
    ++counts.total[static_cast<std::size_t>(y)];
    if (p == y) ++counts.correct[static_cast<std::size_t>(y)];
  }
  return counts;
}

std::int64_t count_agreement(std::span<const int> a, std::span<const int> b) {
  require(a.size() == b.size(), "count_agreement: ", a.size(), " vs ", b.size(), " predictions");
  std::int64_t agree = 0;
  for (std::size_t i = 0; i < a.size(); ++i) agree += a[i] == b[i] ? 1 : 0;
  return agree;
}

}  // namespace idprune::nn
