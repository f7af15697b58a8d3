#include "idprune/compress/scorer.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>

#include "idprune/dist/collectives.hpp"
#include "idprune/la/finite.hpp"
#include "tasks.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
using la::uz;

/// A column-major block of T: entry (i, j) at data[i + j * ld]. la::MatrixView's role for either
/// arithmetic of the scorer.
template <class T>
struct Block {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t ld = 1;

  [[nodiscard]] T* col(index_t j) const { return data + j * ld; }
  [[nodiscard]] T& operator()(index_t i, index_t j) const { return data[i + j * ld]; }
  [[nodiscard]] Block rows_range(index_t i, index_t m) const { return {data + i, m, cols, ld}; }
  operator Block<const T>() const { return {data, rows, cols, ld}; }  // NOLINT(implicit)
};

Block<const double> block(la::ConstMatrixView v) { return {v.data(), v.rows(), v.cols(), v.ld()}; }

/// Column-major float32 storage (la::Matrix is float64 only).
struct Float32Matrix {
  index_t rows = 0;
  index_t cols = 0;
  std::vector<float> values;

  Float32Matrix() = default;
  /// `m` rounded to nearest, entry by entry.
  explicit Float32Matrix(la::ConstMatrixView m) : rows(m.rows()), cols(m.cols()), values(uz(m.rows()) * uz(m.cols())) {
    for (index_t j = 0; j < cols; ++j)
      for (index_t i = 0; i < rows; ++i) values[uz(i + j * rows)] = static_cast<float>(m(i, j));
  }
  [[nodiscard]] Block<const float> block() const { return {values.data(), rows, cols, std::max<index_t>(1, rows)}; }
};

/// C <- alpha A B + beta C: la::gemm (dgemm) or la::sgemm.
void gemm(double alpha, Block<const double> a, Block<const double> b, double beta, Block<double> c) {
  la::gemm(alpha, la::ConstMatrixView(a.data, a.rows, a.cols, a.ld), la::Op::none,
           la::ConstMatrixView(b.data, b.rows, b.cols, b.ld), la::Op::none, beta,
           la::MatrixView(c.data, c.rows, c.cols, c.ld));
}
void gemm(float alpha, Block<const float> a, Block<const float> b, float beta, Block<float> c) {
  require(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols, "sgemm: shapes A ", a.rows, " x ", a.cols, ", B ",
          b.rows, " x ", b.cols, ", C ", c.rows, " x ", c.cols);
  la::sgemm(c.rows, c.cols, a.cols, alpha, a.data, a.ld, la::Op::none, b.data, b.ld, la::Op::none, beta, c.data, c.ld);
}

/// Uninitialised buffers of one evaluation task. Every product writes its output completely
/// (beta = 0), so the zero fill of la::Matrix would be a wasted pass over memory: in a sweep's
/// evaluation that pass, and the page faults of fresh allocations, cost a tenth of the time.
template <class T>
class Scratch {
 public:
  Block<T> view(std::size_t slot, index_t rows, index_t cols) {
    const std::size_t need = std::max<std::size_t>(1, uz(rows) * uz(cols));
    if (capacity_[slot] < need) {
      buffers_[slot] = std::make_unique_for_overwrite<T[]>(need);
      capacity_[slot] = need;
    }
    return {buffers_[slot].get(), rows, cols, std::max<index_t>(1, rows)};
  }

 private:
  std::array<std::unique_ptr<T[]>, 4> buffers_;
  std::array<std::size_t, 4> capacity_{};
};

/// dst = src(:, cols).
template <class T>
void gather_columns(Block<const T> src, std::span<const index_t> cols, Block<T> dst) {
  for (std::size_t c = 0; c < cols.size(); ++c)
    std::copy_n(src.col(cols[c]), src.rows, dst.col(static_cast<index_t>(c)));
}

bool is_identity(std::span<const index_t> cols, index_t n) {
  if (static_cast<index_t>(cols.size()) != n) return false;
  for (index_t i = 0; i < n; ++i)
    if (cols[uz(i)] != i) return false;
  return true;
}

/// argmax per row (lowest index on ties), as nn::argmax_rows.
template <class T>
std::vector<int> argmax_rows(Block<const T> scores) {
  std::vector<int> best(uz(scores.rows), 0);
  if (scores.rows == 0) return best;
  std::vector<T> best_value(scores.col(0), scores.col(0) + scores.rows);
  for (index_t j = 1; j < scores.cols; ++j) {
    const T* col = scores.col(j);
    for (std::size_t i = 0; i < best.size(); ++i)
      if (col[i] > best_value[i]) {
        best_value[i] = col[i];
        best[i] = static_cast<int>(j);
      }
  }
  return best;
}
}  // namespace

/// A model's layers in arithmetic T: float64 views of its own weights, or float32 copies rounded
/// to nearest (as nn::Float32Mlp does).
template <class T>
struct Scorer::Weights {
  struct Layer {
    std::vector<Block<const T>> factors;
    std::vector<T> bias;  // d_out entries (zeros when the layer has none)
    bool relu = false;
  };
  std::vector<Layer> layers;
  std::vector<Float32Matrix> storage;  // the float32 factors (`factors` points into them)

  Weights(const Weights&) = delete;  // a copy would point into the original's storage
  Weights& operator=(const Weights&) = delete;
  explicit Weights(const nn::Mlp& model) {
    storage.reserve(uz(model.num_layers()) * 2);
    for (index_t l = 0; l < model.num_layers(); ++l) {
      const nn::DenseLayer& src = model.layer(l);
      Layer layer;
      layer.relu = src.activation() == nn::Activation::relu;
      for (const Matrix& f : src.factors()) {
        if constexpr (std::is_same_v<T, double>) {
          layer.factors.push_back(block(f.view()));
        } else {
          storage.emplace_back(f.view());
          layer.factors.push_back(storage.back().block());
        }
      }
      layer.bias.assign(uz(src.d_out()), T(0));
      if (src.has_bias())
        for (index_t j = 0; j < src.d_out(); ++j) layer.bias[uz(j)] = static_cast<T>(src.bias()[uz(j)]);
      layers.push_back(std::move(layer));
    }
  }
};

namespace {
/// y <- act(y + 1 b^T) with the layer's bias and activation.
template <class T, class Layer>
void bias_and_activation(const Layer& layer, Block<T> y) {
  for (index_t j = 0; j < y.cols; ++j) {
    const T b = layer.bias[uz(j)];
    T* c = y.col(j);
    // relu(NaN) stays NaN, as in nn::DenseLayer::forward.
    for (index_t i = 0; i < y.rows; ++i) {
      const T v = c[i] + b;
      c[i] = layer.relu && v < T(0) ? T(0) : v;
    }
  }
}

/// y = act(x F_1 ... F_q + 1 b^T) into scratch slot `out` (slots 2 and 3 hold intermediate
/// products of factored layers): nn::DenseLayer::forward without zero fills.
template <class T, class Layer>
Block<T> layer_forward(const Layer& layer, Block<const T> x, Scratch<T>& scratch, std::size_t out) {
  Block<const T> in = x;
  Block<T> y;
  const std::size_t q = layer.factors.size();
  for (std::size_t f = 0; f < q; ++f) {
    const Block<const T> w = layer.factors[f];
    const std::size_t slot = f + 1 == q ? out : 2 + f % 2;
    y = scratch.view(slot, x.rows, w.cols);
    gemm(T(1), in, w, T(0), y);
    in = y;
  }
  bias_and_activation(layer, y);
  return y;
}
}  // namespace

/// The rows of this rank and the original's first hidden layer, in float32.
struct Scorer::Float32Set {
  Float32Matrix x;             ///< fl(X)
  Float32Matrix first_hidden;  ///< act(fl(X) fl(W_1) + fl(b_1)) in float32
};

struct Scorer::Prepared {
  std::unique_ptr<Shortcut> shortcut;  // float64 only
  std::optional<Weights<double>> f64;
  std::optional<Weights<float>> f32;
};

Scorer::Scorer(const nn::Mlp& original, Matrix x, std::vector<int> labels, dist::Comm comm, ScorerOptions options)
    : x_(std::move(x)), labels_(std::move(labels)), comm_(std::move(comm)), options_(options) {
  const bool f32 = options_.precision == nn::Precision::f32;
  const bool uses_f64 = !f32 || options_.compare_precision;
  const bool uses_f32 = f32 || options_.compare_precision;
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
    // Float32 overflow of a weight or input is refused as nn::Float32Mlp refuses it.
    if (uses_f32) {
      const nn::Float32Mlp checked(original);
      const double largest = static_cast<double>(std::numeric_limits<float>::max());
      for (index_t j = 0; j < x_.cols(); ++j)
        for (double v : x_.col(j))
          require(std::abs(v) <= largest, "Scorer: the evaluation set holds ", v, ", which overflows float32");
    }
    // Outside TBB: these large products may use every core the rank has.
    if (uses_f64) {
      first_hidden_ = original.hidden_activations(x_, 0);
      if (original.num_hidden() >= 2) {
        w2_ = original.hidden(1).weight();
        second_product_ = la::matmul(first_hidden_, w2_);
      }
    }
    if (uses_f32) {
      auto set = std::make_shared<Float32Set>();
      set->x = Float32Matrix(x_.view());
      const Weights<float> weights(original);
      Scratch<float> scratch;
      const Block<const float> h = layer_forward<float>(weights.layers[0], set->x.block(), scratch, 0);
      set->first_hidden.rows = h.rows;
      set->first_hidden.cols = h.cols;
      set->first_hidden.values.assign(h.data, h.data + uz(h.rows) * uz(h.cols));
      f32_ = std::move(set);
    }
  });
  dist::check_collective(comm_, error);

  CompressedModel reference;
  reference.model = original;
  reference.first_layer_columns.resize(uz(original.hidden(0).d_out()));
  std::iota(reference.first_layer_columns.begin(), reference.first_layer_columns.end(), index_t{0});
  if (!w2_.empty()) {
    // The original is its own ID (T_1 = I, nothing left out): its second layer reads the shared
    // product second_product_ instead of multiplying again.
    reference.first_interpolation = std::make_shared<const Matrix>(Matrix::identity(first_hidden_.cols()));
    reference.second_layer_columns.resize(uz(w2_.cols()));
    std::iota(reference.second_layer_columns.begin(), reference.second_layer_columns.end(), index_t{0});
  }
  // One pass over the set gives the original's predictions (the reference of every agreement) and
  // its scores; it agrees with itself everywhere.
  std::vector<int> predictions;
  original_scores_ = score(std::span<const CompressedModel>(&reference, 1), &predictions).front();
  original_scores_.agree = original_scores_.samples;
  reference_ = std::move(predictions);
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

std::unique_ptr<Scorer::Prepared> Scorer::prepare(const CompressedModel& m) const {
  auto p = std::make_unique<Prepared>();
  if (options_.precision == nn::Precision::f64 || options_.compare_precision) {
    p->shortcut = shortcut(m);
    p->f64.emplace(m.model);
  }
  if (options_.precision == nn::Precision::f32 || options_.compare_precision) p->f32.emplace(m.model);
  return p;
}

std::vector<int> Scorer::batch_predictions(const CompressedModel& m, const Prepared& p, nn::Precision precision,
                                           std::size_t b, double* loss) const {
  if (precision == nn::Precision::f32) return batch_predictions<float>(m, *p.f32, b, nullptr, loss);
  return batch_predictions<double>(m, *p.f64, b, p.shortcut.get(), loss);
}

template <class T>
std::vector<int> Scorer::batch_predictions(const CompressedModel& m, const Weights<T>& w, std::size_t b,
                                           const Shortcut* sc, double* loss) const {
  const index_t begin = static_cast<index_t>(b) * options_.batch_rows;
  const index_t count = std::min(options_.batch_rows, x_.rows() - begin);
  Block<const T> x_all;
  Block<const T> hidden_all;
  if constexpr (std::is_same_v<T, double>) {
    x_all = block(x_.view());
    hidden_all = block(first_hidden_.view());
  } else {
    x_all = f32_->x.block();
    hidden_all = f32_->first_hidden.block();
  }
  Scratch<T> scratch;
  Block<const T> h;
  index_t first = 0;  // the first layer still to apply
  std::size_t slot = 0;
  if constexpr (std::is_same_v<T, double>) {
    if (sc != nullptr) {
      // Second-layer pre-activations (Z_1 W_2)(:, C_2) - E W_2(F, C_2), E = Z_1(:, F) - Z_1(:, C_1) X.
      const Block<const double> z1 = hidden_all.rows_range(begin, count);
      const auto k1 = static_cast<index_t>(m.first_layer_columns.size());
      const auto f = static_cast<index_t>(sc->rest.size());
      const Block<double> y = scratch.view(0, count, static_cast<index_t>(m.second_layer_columns.size()));
      gather_columns<double>(block(second_product_.view()).rows_range(begin, count), m.second_layer_columns, y);
      if (f > 0) {
        const Block<double> zc = scratch.view(2, count, k1);
        gather_columns(z1, m.first_layer_columns, zc);
        const Block<double> e = scratch.view(3, count, f);
        gather_columns(z1, sc->rest, e);
        gemm(-1.0, zc, block(sc->x.view()), 1.0, e);
        gemm(-1.0, e, block(sc->w2_rest.view()), 1.0, y);
      }
      bias_and_activation(w.layers[1], y);
      h = y;
      first = 2;
      slot = 1;
    }
  }
  if (first == 0 && m.first_layer_columns.empty()) {
    h = x_all.rows_range(begin, count);
  } else if (first == 0) {
    // The first layer's activations are columns of the original model's (shared product).
    const Block<const T> all = hidden_all.rows_range(begin, count);
    first = 1;
    if (is_identity(m.first_layer_columns, hidden_all.cols)) {
      h = all;
    } else {
      const Block<T> hc = scratch.view(slot, count, static_cast<index_t>(m.first_layer_columns.size()));
      gather_columns(all, m.first_layer_columns, hc);
      h = hc;
      slot = 1;
    }
  }
  for (index_t l = first; l < m.model.num_layers(); ++l) {
    h = layer_forward<T>(w.layers[uz(l)], h, scratch, slot);
    slot = 1 - slot;
  }
  if (loss != nullptr) {
    // Mean cross-entropy's terms, log-sum-exp shifted by the row's largest logit (in float64
    // whatever the arithmetic of the logits).
    for (index_t i = 0; i < count; ++i) {
      double mx = -std::numeric_limits<double>::infinity();
      for (index_t c = 0; c < h.cols; ++c) mx = std::max(mx, static_cast<double>(h(i, c)));
      double sum = 0.0;
      for (index_t c = 0; c < h.cols; ++c) sum += std::exp(static_cast<double>(h(i, c)) - mx);
      *loss += mx + std::log(sum) - static_cast<double>(h(i, labels_[uz(begin + i)]));
    }
  }
  return argmax_rows<T>(h);
}

std::vector<int> Scorer::predictions(const CompressedModel& model) const {
  const std::size_t batches = uz((x_.rows() + options_.batch_rows - 1) / options_.batch_rows);
  const std::unique_ptr<Prepared> p = prepare(model);
  std::vector<int> out;
  for (std::size_t b = 0; b < batches; ++b) {
    const auto part = batch_predictions(model, *p, options_.precision, b);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::vector<Scores> Scorer::score(std::span<const CompressedModel> models) const { return score(models, nullptr); }

std::vector<Scores> Scorer::score(std::span<const CompressedModel> models, std::vector<int>* first_predictions) const {
  const std::size_t batches = uz((x_.rows() + options_.batch_rows - 1) / options_.batch_rows);
  const std::size_t tasks = models.size() * batches;
  constexpr std::size_t kCounts = 3;                    // correct, agree, precision_changes
  std::vector<std::int64_t> local(kCounts * tasks, 0);  // per (model, batch)
  std::vector<double> losses(tasks, 0.0);
  std::vector<std::vector<int>> first(first_predictions != nullptr ? batches : 0);
  std::vector<std::unique_ptr<Prepared>> prepared(models.size());
  const nn::Precision other = options_.precision == nn::Precision::f32 ? nn::Precision::f64 : nn::Precision::f32;
  std::string error = parallel::run_tasks(models.size(), [&](std::size_t m) { prepared[m] = prepare(models[m]); });
  if (error.empty())
    error = parallel::run_tasks(tasks, [&](std::size_t t) {
      const std::size_t m = t / batches;
      const std::size_t b = t % batches;
      const std::vector<int> pred = batch_predictions(models[m], *prepared[m], options_.precision, b,
                                                      options_.cross_entropy ? &losses[t] : nullptr);
      const std::size_t begin = b * uz(options_.batch_rows);
      std::int64_t correct = 0;
      std::int64_t agree = 0;
      for (std::size_t i = 0; i < pred.size(); ++i) {
        correct += pred[i] == labels_[begin + i] ? 1 : 0;
        agree += !reference_.empty() && pred[i] == reference_[begin + i] ? 1 : 0;
      }
      std::int64_t changed = 0;
      if (options_.compare_precision) {
        const std::vector<int> pred_other = batch_predictions(models[m], *prepared[m], other, b);
        for (std::size_t i = 0; i < pred.size(); ++i) changed += pred[i] != pred_other[i] ? 1 : 0;
      }
      local[kCounts * t] = correct;
      local[kCounts * t + 1] = agree;
      local[kCounts * t + 2] = changed;
      if (m == 0 && first_predictions != nullptr) first[b] = pred;
    });
  dist::check_collective(comm_, error);
  if (first_predictions != nullptr) {
    first_predictions->clear();
    for (const auto& part : first) first_predictions->insert(first_predictions->end(), part.begin(), part.end());
  }
  // One reduction for every model: (correct, agree, changed, samples) per model, and the losses
  // summed in batch order (deterministic).
  std::vector<std::int64_t> sums(4 * models.size(), 0);
  std::vector<double> loss(models.size(), 0.0);
  for (std::size_t t = 0; t < tasks; ++t) {
    for (std::size_t k = 0; k < kCounts; ++k) sums[4 * (t / batches) + k] += local[kCounts * t + k];
    loss[t / batches] += losses[t];
  }
  for (std::size_t m = 0; m < models.size(); ++m) sums[4 * m + 3] = x_.rows();
  dist::sum_in_place(comm_, std::span<std::int64_t>(sums));
  if (options_.cross_entropy) dist::sum_in_place(comm_, std::span<double>(loss));
  std::vector<Scores> out(models.size());
  for (std::size_t m = 0; m < models.size(); ++m) {
    out[m] = {sums[4 * m], sums[4 * m + 1], sums[4 * m + 3], loss[m]};
    out[m].precision_changes = sums[4 * m + 2];
  }
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
