#include "idprune/compress/evaluate.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <numeric>
#include <string>

#include "idprune/la/finite.hpp"
#include "tasks.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

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
  return y;
}

bool is_identity(std::span<const index_t> cols, index_t n) {
  if (static_cast<index_t>(cols.size()) != n) return false;
  for (index_t i = 0; i < n; ++i)
    if (cols[uz(i)] != i) return false;
  return true;
}
}  // namespace

Evaluator::Evaluator(const nn::Mlp& original, Matrix x, std::vector<int> labels, dist::Comm comm, index_t batch_rows)
    : x_(std::move(x)), labels_(std::move(labels)), comm_(std::move(comm)), batch_rows_(batch_rows) {
  std::string error = dist::capture_error([&] {
    require(batch_rows_ >= 1, "Evaluator: batch_rows=", batch_rows_, " < 1");
    require(original.num_hidden() >= 1, "Evaluator: the model has no hidden layer");
    require(x_.cols() == original.input_dim(), "Evaluator: the evaluation set has ", x_.cols(),
            " features, the model expects ", original.input_dim());
    require(static_cast<index_t>(labels_.size()) == x_.rows(), "Evaluator: ", labels_.size(), " labels for ", x_.rows(),
            " samples");
    classes_ = static_cast<int>(original.num_classes());
    for (int y : labels_) require(y >= 0 && y < classes_, "Evaluator: label ", y, " outside [0, ", classes_, ")");
    // NaN/Inf would give NaN logits and arbitrary predictions: refused before any work.
    if (const std::string bad = nn::non_finite_parameter(original); !bad.empty()) throw Error("Evaluator: " + bad);
    if (const std::string bad = la::non_finite_message(x_, "Evaluator: the evaluation set (local rows of this rank)");
        !bad.empty())
      throw Error(bad);
    // Outside TBB: this one large product may use every core the rank has.
    first_hidden_ = original.hidden_activations(x_, 0);
  });
  dist::check_collective(comm_, error);

  CompressedModel reference;
  reference.model = original;
  reference.first_layer_columns.resize(uz(first_hidden_.cols()));
  std::iota(reference.first_layer_columns.begin(), reference.first_layer_columns.end(), index_t{0});
  const std::size_t batches = uz((x_.rows() + batch_rows_ - 1) / batch_rows_);
  std::vector<std::vector<int>> parts(batches);
  error = parallel::run_tasks(batches, [&](std::size_t b) { parts[b] = batch_predictions(reference, b); });
  dist::check_collective(comm_, error);
  for (const auto& p : parts) reference_.insert(reference_.end(), p.begin(), p.end());

  std::array<std::int64_t, 2> counts = {0, static_cast<std::int64_t>(labels_.size())};
  for (std::size_t i = 0; i < labels_.size(); ++i) counts[0] += reference_[i] == labels_[i] ? 1 : 0;
  comm_.allreduce_sum(std::span<std::int64_t>(counts));
  original_counts_ = {counts[0], counts[1], counts[1]};
}

std::vector<int> Evaluator::batch_predictions(const CompressedModel& m, std::size_t b) const {
  const index_t begin = static_cast<index_t>(b) * batch_rows_;
  const index_t count = std::min(batch_rows_, x_.rows() - begin);
  Scratch scratch;
  la::ConstMatrixView h;
  index_t first = 0;  // the first layer still to apply
  std::size_t slot = 0;
  if (m.first_layer_columns.empty()) {
    h = x_.view().rows_range(begin, count);
  } else {
    // The first layer's activations are columns of the original model's (shared product).
    const la::ConstMatrixView all = first_hidden_.view().rows_range(begin, count);
    first = 1;
    if (is_identity(m.first_layer_columns, first_hidden_.cols())) {
      h = all;
    } else {
      const auto cols = m.first_layer_columns;
      const la::MatrixView hc = scratch.view(slot, count, static_cast<index_t>(cols.size()));
      for (std::size_t c = 0; c < cols.size(); ++c)
        std::copy_n(all.col(cols[c]).data(), count, hc.col(static_cast<index_t>(c)).data());
      h = hc;
      slot = 1;
    }
  }
  for (index_t l = first; l < m.model.num_layers(); ++l) {
    h = layer_forward(m.model.layer(l), h, scratch, slot);
    slot = 1 - slot;
  }
  return nn::argmax_rows(h);
}

std::vector<int> Evaluator::predictions(const CompressedModel& model) const {
  const std::size_t batches = uz((x_.rows() + batch_rows_ - 1) / batch_rows_);
  std::vector<int> out;
  for (std::size_t b = 0; b < batches; ++b) {
    const auto p = batch_predictions(model, b);
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

std::vector<EvaluationCounts> Evaluator::evaluate(std::span<const CompressedModel> models) const {
  const std::size_t batches = uz((x_.rows() + batch_rows_ - 1) / batch_rows_);
  const std::size_t tasks = models.size() * batches;
  std::vector<std::int64_t> local(2 * tasks, 0);  // (correct, agree) per (model, batch)
  const std::string error = parallel::run_tasks(tasks, [&](std::size_t t) {
    const std::size_t m = t / batches;
    const std::size_t b = t % batches;
    const std::vector<int> pred = batch_predictions(models[m], b);
    const std::size_t begin = b * uz(batch_rows_);
    std::int64_t correct = 0;
    std::int64_t agree = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) {
      correct += pred[i] == labels_[begin + i] ? 1 : 0;
      agree += pred[i] == reference_[begin + i] ? 1 : 0;
    }
    local[2 * t] = correct;
    local[2 * t + 1] = agree;
  });
  dist::check_collective(comm_, error);
  // One allreduce for every model: (correct, agree) per model.
  std::vector<std::int64_t> sums(2 * models.size(), 0);
  for (std::size_t t = 0; t < tasks; ++t) {
    sums[2 * (t / batches)] += local[2 * t];
    sums[2 * (t / batches) + 1] += local[2 * t + 1];
  }
  comm_.allreduce_sum(std::span<std::int64_t>(sums));
  std::vector<EvaluationCounts> out(models.size());
  for (std::size_t m = 0; m < models.size(); ++m) out[m] = {sums[2 * m], sums[2 * m + 1], original_counts_.samples};
  return out;
}

ModelMetrics model_metrics(const nn::Mlp& original, const CompressedModel& compressed, const EvaluationCounts& counts) {
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
