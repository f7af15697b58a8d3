#include "idprune/compress/scorer.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <string>

#include "idprune/dist/collectives.hpp"
#include "idprune/la/finite.hpp"
#include "tasks.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
using la::uz;

/// Uninitialised buffers of one evaluation task. Every product writes its output completely
/// (beta = 0), so the zero fill of la::Matrix would be a wasted pass over memory: in a sweep's
/// evaluation that pass, and the page faults of fresh allocations, cost a tenth of the time.
class Scratch {
 public:
  la::MatrixView view(std::size_t slot, index_t rows, index_t cols) {
    const std::size_t need = std::max<std::size_t>(1, uz(rows) * uz(cols));
    if (capacity_[slot] < need) {
      buffers_[slot] = std::make_unique_for_overwrite<double[]>(need);
      capacity_[slot] = need;
    }
    return {buffers_[slot].get(), rows, cols, std::max<index_t>(1, rows)};
  }

 private:
  std::array<std::unique_ptr<double[]>, 4> buffers_;
  std::array<std::size_t, 4> capacity_{};
};

/// y <- act(y + 1 b^T) with the layer's bias and activation.
void bias_and_activation(const nn::DenseLayer& layer, la::MatrixView y) {
  const bool relu = layer.activation() == nn::Activation::relu;
  for (index_t j = 0; j < y.cols(); ++j) {
    const double b = layer.has_bias() ? layer.bias()[uz(j)] : 0.0;
    double* c = y.col(j).data();
    // relu(NaN) stays NaN, as in nn::DenseLayer::forward.
    for (index_t i = 0; i < y.rows(); ++i) {
      const double v = c[i] + b;
      c[i] = relu && v < 0.0 ? 0.0 : v;
    }
  }
}

/// y = act(x F_1 ... F_q + 1 b^T) into scratch slot `out` (slots 2 and 3 hold intermediate
/// products of factored layers): nn::DenseLayer::forward without zero fills.
la::MatrixView layer_forward(const nn::DenseLayer& layer, la::ConstMatrixView x, Scratch& scratch, std::size_t out) {
  la::ConstMatrixView in = x;
  for (index_t f = 0; f < layer.factor_count(); ++f) {
    const Matrix& w = layer.factor(f);
    const std::size_t slot = f + 1 == layer.factor_count() ? out : 2 + uz(f % 2);
    const la::MatrixView y = scratch.view(slot, x.rows(), w.cols());
    la::gemm(1.0, in, la::Op::none, w, la::Op::none, 0.0, y);
    in = y;
  }
  const la::MatrixView y = scratch.view(out, x.rows(), layer.d_out());
  bias_and_activation(layer, y);
  return y;
}

/// dst = src(:, cols).
void gather_columns(la::ConstMatrixView src, std::span<const index_t> cols, la::MatrixView dst) {
  for (std::size_t c = 0; c < cols.size(); ++c)
    std::copy_n(src.col(cols[c]).data(), src.rows(), dst.col(static_cast<index_t>(c)).data());
}

bool is_identity(std::span<const index_t> cols, index_t n) {
  if (static_cast<index_t>(cols.size()) != n) return false;
  for (index_t i = 0; i < n; ++i)
    if (cols[uz(i)] != i) return false;
  return true;
}
}  // namespace

Scorer::Scorer(const nn::Mlp& original, Matrix x, std::vector<int> labels, dist::Comm comm, ScorerOptions options)
    : x_(std::move(x)), labels_(std::move(labels)), comm_(std::move(comm)), options_(options) {
  std::string error = dist::capture_error([&] {
    require(options_.batch_rows >= 1, "Scorer: batch_rows=", options_.batch_rows, " < 1");
    require(original.num_hidden() >= 1, "Scorer: the model has no hidden layer");
    require(x_.cols() == original.input_dim(), "Scorer: the evaluation set has ", x_.cols(),
            " features, the model expects ", original.input_dim());
    require(static_cast<index_t>(labels_.size()) == x_.rows(), "Scorer: ", labels_.size(), " labels for ", x_.rows(),
            " samples");
    classes_ = static_cast<int>(original.num_classes());
    for (int y : labels_) require(y >= 0 && y < classes_, "Scorer: label ", y, " outside [0, ", classes_, ")");
    // NaN/Inf would give NaN logits and arbitrary predictions: refused before any work.
    if (const std::string bad = nn::non_finite_parameter(original); !bad.empty()) throw Error("Scorer: " + bad);
    if (const std::string bad = la::non_finite_message(x_, "Scorer: the evaluation set (local rows of this rank)");
        !bad.empty())
      throw Error(bad);
    // Outside TBB: these large products may use every core the rank has.
    first_hidden_ = original.hidden_activations(x_, 0);
    if (original.num_hidden() >= 2) {
      w2_ = original.hidden(1).weight();
      second_product_ = la::matmul(first_hidden_, w2_);
    }
  });
  dist::check_collective(comm_, error);

  CompressedModel reference;
  reference.model = original;
  reference.first_layer_columns.resize(uz(first_hidden_.cols()));
  std::iota(reference.first_layer_columns.begin(), reference.first_layer_columns.end(), index_t{0});
  if (!w2_.empty()) {
    // The original is its own ID (T_1 = I, nothing left out): its second layer reads the shared
    // product second_product_ instead of multiplying again.
    reference.first_interpolation = std::make_shared<const Matrix>(Matrix::identity(first_hidden_.cols()));
    reference.second_layer_columns.resize(uz(w2_.cols()));
    std::iota(reference.second_layer_columns.begin(), reference.second_layer_columns.end(), index_t{0});
  }
  const std::unique_ptr<Shortcut> reference_shortcut = shortcut(reference);
  const std::size_t batches = uz((x_.rows() + options_.batch_rows - 1) / options_.batch_rows);
  std::vector<std::vector<int>> parts(batches);
  error = parallel::run_tasks(
      batches, [&](std::size_t b) { parts[b] = batch_predictions(reference, b, reference_shortcut.get()); });
  dist::check_collective(comm_, error);
  for (const auto& p : parts) reference_.insert(reference_.end(), p.begin(), p.end());

  original_scores_ = score(std::span<const CompressedModel>(&reference, 1)).front();
}

struct Scorer::Shortcut {
  std::vector<index_t> rest;  ///< F: the first layer's neurons not kept
  Matrix x;                   ///< T_1(:, F), k_1 x |F|
  Matrix w2_rest;             ///< W_2(F, C_2), |F| x k_2
};

std::unique_ptr<Scorer::Shortcut> Scorer::shortcut(const CompressedModel& m) const {
  if (!options_.second_layer_shortcut || w2_.empty() || !m.first_interpolation || m.model.num_hidden() < 2)
    return nullptr;
  const Matrix& t = *m.first_interpolation;
  const std::vector<index_t>& c1 = m.first_layer_columns;
  const std::vector<index_t>& c2 = m.second_layer_columns;
  const auto k1 = static_cast<index_t>(c1.size());
  const auto k2 = static_cast<index_t>(c2.size());
  const index_t n1 = first_hidden_.cols();
  const nn::DenseLayer& second = m.model.layer(1);
  // The contract of CompressedModel::first_interpolation, checked: a model that breaks it is
  // evaluated through its own weights.
  if (k1 < 1 || t.rows() != k1 || t.cols() != n1 || second.factor_count() != 1 || second.d_in() != k1 ||
      second.d_out() != k2)
    return nullptr;
  for (index_t c : c2)
    if (c < 0 || c >= w2_.cols()) return nullptr;
  std::vector<char> kept(uz(n1), 0);
  for (index_t c : c1) {
    if (c < 0 || c >= n1) return nullptr;
    kept[uz(c)] = 1;
  }
  for (index_t j = 0; j < k1; ++j)
    for (index_t i = 0; i < k1; ++i)
      if (t(i, c1[uz(j)]) != (i == j ? 1.0 : 0.0)) return nullptr;
  // Flops per sample: k1 f + f k2 against k1 k2, plus the copies of |F| + k2 columns: only
  // when it saves a fifth.
  const index_t f = n1 - k1;
  if (5 * (k1 * f + f * k2 + f + k2) >= 4 * k1 * k2) return nullptr;
  auto s = std::make_unique<Shortcut>();
  for (index_t j = 0; j < n1; ++j)
    if (!kept[uz(j)]) s->rest.push_back(j);
  s->x = la::select_columns(t, s->rest);
  s->w2_rest = la::select_rows(la::select_columns(w2_, c2), s->rest);
  return s;
}

std::vector<int> Scorer::batch_predictions(const CompressedModel& m, std::size_t b, const Shortcut* sc,
                                           double* loss) const {
  const index_t begin = static_cast<index_t>(b) * options_.batch_rows;
  const index_t count = std::min(options_.batch_rows, x_.rows() - begin);
  Scratch scratch;
  la::ConstMatrixView h;
  index_t first = 0;  // the first layer still to apply
  std::size_t slot = 0;
  if (sc != nullptr) {
    // Second-layer pre-activations (Z_1 W_2)(:, C_2) - E W_2(F, C_2), E = Z_1(:, F) - Z_1(:, C_1) X.
    const la::ConstMatrixView z1 = first_hidden_.view().rows_range(begin, count);
    const auto k1 = static_cast<index_t>(m.first_layer_columns.size());
    const auto f = static_cast<index_t>(sc->rest.size());
    const la::MatrixView y = scratch.view(0, count, static_cast<index_t>(m.second_layer_columns.size()));
    gather_columns(second_product_.view().rows_range(begin, count), m.second_layer_columns, y);
    if (f > 0) {
      const la::MatrixView zc = scratch.view(2, count, k1);
      gather_columns(z1, m.first_layer_columns, zc);
      const la::MatrixView e = scratch.view(3, count, f);
      gather_columns(z1, sc->rest, e);
      la::gemm(-1.0, zc, la::Op::none, sc->x, la::Op::none, 1.0, e);
      la::gemm(-1.0, e, la::Op::none, sc->w2_rest, la::Op::none, 1.0, y);
    }
    bias_and_activation(m.model.layer(1), y);
    h = y;
    first = 2;
    slot = 1;
  } else if (m.first_layer_columns.empty()) {
    h = x_.view().rows_range(begin, count);
  } else {
    // The first layer's activations are columns of the original model's (shared product).
    const la::ConstMatrixView all = first_hidden_.view().rows_range(begin, count);
    first = 1;
    if (is_identity(m.first_layer_columns, first_hidden_.cols())) {
      h = all;
    } else {
      const la::MatrixView hc = scratch.view(slot, count, static_cast<index_t>(m.first_layer_columns.size()));
      gather_columns(all, m.first_layer_columns, hc);
      h = hc;
      slot = 1;
    }
  }
  for (index_t l = first; l < m.model.num_layers(); ++l) {
    h = layer_forward(m.model.layer(l), h, scratch, slot);
    slot = 1 - slot;
  }
  if (loss != nullptr) {
    // Mean cross-entropy's terms, log-sum-exp shifted by the row's largest logit.
    for (index_t i = 0; i < count; ++i) {
      double mx = -std::numeric_limits<double>::infinity();
      for (index_t c = 0; c < h.cols(); ++c) mx = std::max(mx, h(i, c));
      double sum = 0.0;
      for (index_t c = 0; c < h.cols(); ++c) sum += std::exp(h(i, c) - mx);
      *loss += mx + std::log(sum) - h(i, labels_[uz(begin + i)]);
    }
  }
  return nn::argmax_rows(h);
}

std::vector<int> Scorer::predictions(const CompressedModel& model) const {
  const std::size_t batches = uz((x_.rows() + options_.batch_rows - 1) / options_.batch_rows);
  const std::unique_ptr<Shortcut> sc = shortcut(model);
  std::vector<int> out;
  for (std::size_t b = 0; b < batches; ++b) {
    const auto p = batch_predictions(model, b, sc.get());
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

std::vector<Scores> Scorer::score(std::span<const CompressedModel> models) const {
  const std::size_t batches = uz((x_.rows() + options_.batch_rows - 1) / options_.batch_rows);
  const std::size_t tasks = models.size() * batches;
  std::vector<std::int64_t> local(2 * tasks, 0);  // (correct, agree) per (model, batch)
  std::vector<double> losses(tasks, 0.0);
  std::vector<std::unique_ptr<Shortcut>> shortcuts(models.size());
  std::string error = parallel::run_tasks(models.size(), [&](std::size_t m) { shortcuts[m] = shortcut(models[m]); });
  if (error.empty())
    error = parallel::run_tasks(tasks, [&](std::size_t t) {
      const std::size_t m = t / batches;
      const std::size_t b = t % batches;
      const std::vector<int> pred =
          batch_predictions(models[m], b, shortcuts[m].get(), options_.cross_entropy ? &losses[t] : nullptr);
      const std::size_t begin = b * uz(options_.batch_rows);
      std::int64_t correct = 0;
      std::int64_t agree = 0;
      for (std::size_t i = 0; i < pred.size(); ++i) {
        correct += pred[i] == labels_[begin + i] ? 1 : 0;
        agree += !reference_.empty() && pred[i] == reference_[begin + i] ? 1 : 0;
      }
      local[2 * t] = correct;
      local[2 * t + 1] = agree;
    });
  dist::check_collective(comm_, error);
  // One reduction for every model: (correct, agree, samples) per model, and the losses summed in
  // batch order (deterministic).
  std::vector<std::int64_t> sums(3 * models.size(), 0);
  std::vector<double> loss(models.size(), 0.0);
  for (std::size_t t = 0; t < tasks; ++t) {
    sums[3 * (t / batches)] += local[2 * t];
    sums[3 * (t / batches) + 1] += local[2 * t + 1];
    loss[t / batches] += losses[t];
  }
  for (std::size_t m = 0; m < models.size(); ++m) sums[3 * m + 2] = x_.rows();
  dist::sum_in_place(comm_, std::span<std::int64_t>(sums));
  if (options_.cross_entropy) dist::sum_in_place(comm_, std::span<double>(loss));
  std::vector<Scores> out(models.size());
  for (std::size_t m = 0; m < models.size(); ++m) out[m] = {sums[3 * m], sums[3 * m + 1], sums[3 * m + 2], loss[m]};
  return out;
}

ModelMetrics model_metrics(const nn::Mlp& original, const CompressedModel& compressed, const Scores& counts) {
  ModelMetrics m;
  m.counts = counts;
  m.test_accuracy = counts.accuracy();
  m.agreement = counts.agreement();
  m.params = compressed.model.parameter_count();
  m.original_params = original.parameter_count();
  m.params_fraction = static_cast<double>(m.params) / static_cast<double>(m.original_params);
  m.flops = compressed.model.flops_per_sample();
  m.original_flops = original.flops_per_sample();
  for (index_t l = 0; l < compressed.model.num_hidden(); ++l) {
    const nn::DenseLayer& layer = compressed.model.hidden(l);
    m.kept_per_layer.push_back(layer.d_out());
    index_t rank = std::min(layer.d_in(), layer.d_out());
    for (const auto& f : layer.factors()) rank = std::min({rank, f.rows(), f.cols()});
    m.ranks_per_layer.push_back(rank);
    m.hidden_kept += layer.d_out();
    m.hidden_total += original.hidden(l).d_out();
  }
  m.hidden_kept_fraction = static_cast<double>(m.hidden_kept) / static_cast<double>(m.hidden_total);
  return m;
}

}  // namespace idprune::compress
