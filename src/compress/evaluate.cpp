#include "idprune/compress/evaluate.hpp"

#include <algorithm>
#include <array>
#include <numeric>
#include <string>

#include "tasks.hpp"

namespace idprune::compress {

using la::Matrix;

namespace {
std::size_t uz(index_t i) { return static_cast<std::size_t>(i); }

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
  if (m.first_layer_columns.empty()) return nn::argmax_rows(m.model.logits(x_.view().rows_range(begin, count)));
  const la::ConstMatrixView h = first_hidden_.view().rows_range(begin, count);
  if (is_identity(m.first_layer_columns, first_hidden_.cols()))
    return nn::argmax_rows(m.model.logits_from_hidden(h, 0));
  const Matrix hc = la::select_columns(h, m.first_layer_columns);
  return nn::argmax_rows(m.model.logits_from_hidden(hc, 0));
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
