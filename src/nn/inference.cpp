#include "idprune/nn/inference.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <random>

#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "nn/row_blocks.hpp"

namespace idprune::nn {

namespace {

float to_float_checked(double v, const char* what, index_t layer) {
  require(std::isfinite(v) && std::abs(v) <= static_cast<double>(std::numeric_limits<float>::max()),
          "Float32Mlp: layer ", layer + 1, " ", what, " value ", v, " is not finite or overflows float32");
  return static_cast<float>(v);
}

void ensure_size(std::vector<float>& buffer, index_t size) {
  if (static_cast<index_t>(buffer.size()) < size) buffer.resize(static_cast<std::size_t>(size));
}

}  // namespace

std::size_t Float32Batch::checked_size(index_t rows, index_t cols) {
  require(rows >= 0 && cols >= 0, "Float32Batch: negative shape ", rows, " x ", cols);
  require(cols == 0 || rows <= std::numeric_limits<index_t>::max() / cols, "Float32Batch: ", rows, " x ", cols,
          " overflows");
  return static_cast<std::size_t>(rows * cols);
}

Float32Batch to_float32(la::ConstMatrixView x) {
  Float32Batch out(x.rows(), x.cols());
  for (index_t j = 0; j < x.cols(); ++j)
    for (index_t i = 0; i < x.rows(); ++i)
      out.values[static_cast<std::size_t>(i + j * x.rows())] = static_cast<float>(x(i, j));
  return out;
}

la::Matrix to_double(const Float32Batch& x) {
  la::Matrix out(x.rows, x.cols);
  std::copy(x.values.begin(), x.values.end(), out.values().begin());
  return out;
}

Float32Mlp::Float32Mlp(const Mlp& model)
    : input_dim_(model.input_dim()), num_classes_(model.num_classes()), parameters_(model.parameter_count()) {
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const DenseLayer& src = model.layer(l);
    Layer layer;
    layer.relu = src.activation() == Activation::relu;
    for (const la::Matrix& f : src.factors()) {
      Factor factor{f.rows(), f.cols(), std::vector<float>(static_cast<std::size_t>(f.size()))};
      for (index_t k = 0; k < f.size(); ++k)
        factor.values[static_cast<std::size_t>(k)] =
            to_float_checked(f.values()[static_cast<std::size_t>(k)], "weight", l);
      layer.factors.push_back(std::move(factor));
    }
    for (double b : src.bias()) layer.bias.push_back(to_float_checked(b, "bias", l));
    layers_.push_back(std::move(layer));
  }
}

void Float32Mlp::logits(const Float32Batch& x, Float32Batch& logits, InferenceWorkspace& workspace,
                        const InferenceOptions& options) const {
  require(x.cols == input_dim_, "Float32Mlp::logits: the batch has ", x.cols, " features, the model takes ",
          input_dim_);
  require(static_cast<index_t>(x.values.size()) == x.rows * x.cols, "Float32Mlp::logits: the batch holds ",
          x.values.size(), " values for ", x.rows, " x ", x.cols);
  require(options.threads >= 1, "Float32Mlp::logits: threads=", options.threads, " must be >= 1");
  const index_t n = x.rows;
  logits.rows = n;
  logits.cols = num_classes_;
  logits.values.resize(static_cast<std::size_t>(n * num_classes_));
  if (n == 0) return;
  // Set only when it differs: a benchmark's repeated calls then leave OpenBLAS's pool alone.
  std::optional<la::ScopedBlasThreads> blas;
  if (la::blas_threads() != options.threads) blas.emplace(options.threads);
  const float* in = x.values.data();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    const index_t d_out = layer.factors.back().cols;
    // Ping-pong between the workspace's two buffers; the last layer writes the logits.
    float* out = l + 1 == layers_.size() ? logits.values.data() : nullptr;
    if (out == nullptr) {
      std::vector<float>& buffer = l % 2 == 0 ? workspace.a : workspace.b;
      ensure_size(buffer, n * d_out);
      out = buffer.data();
    }
    const float* z = in;
    const std::size_t q = layer.factors.size();
    for (std::size_t j = 0; j < q; ++j) {
      const Factor& f = layer.factors[j];
      float* target = out;
      if (j + 1 < q) {  // intermediate products of a factored layer alternate between t and u
        std::vector<float>& buffer = j % 2 == 0 ? workspace.t : workspace.u;
        ensure_size(buffer, n * f.cols);
        target = buffer.data();
      }
      la::sgemm(n, f.cols, f.rows, 1.0f, z, n, la::Op::none, f.values.data(), f.rows, la::Op::none, 0.0f, target, n);
      z = target;
    }
    for (index_t c = 0; c < d_out; ++c) {
      float* col = out + c * n;
      const float b = layer.bias.empty() ? 0.0f : layer.bias[static_cast<std::size_t>(c)];
      for (index_t i = 0; i < n; ++i) {
        float v = col[i] + b;
        if (layer.relu && v < 0.0f) v = 0.0f;
        col[i] = v;
      }
    }
    in = out;
  }
}

Float32Batch Float32Mlp::logits(const Float32Batch& x, const InferenceOptions& options) const {
  Float32Batch out;
  InferenceWorkspace workspace;
  logits(x, out, workspace, options);
  return out;
}

std::vector<int> Float32Mlp::predict(const Float32Batch& x, const InferenceOptions& options) const {
  const Float32Batch scores = logits(x, options);
  std::vector<int> labels(static_cast<std::size_t>(scores.rows), 0);
  for (index_t i = 0; i < scores.rows; ++i) {
    float best = scores(i, 0);
    for (index_t c = 1; c < scores.cols; ++c)
      if (scores(i, c) > best) {
        best = scores(i, c);
        labels[static_cast<std::size_t>(i)] = static_cast<int>(c);
      }
  }
  return labels;
}

la::Matrix float32_error_bound(const Mlp& model, la::ConstMatrixView x) {
  require(x.cols() == model.input_dim(), "float32_error_bound: x has ", x.cols(), " columns, the model takes ",
          model.input_dim());
  // u = 2^-24, enlarged by 2^-20 relative so that the float64 reference's own rounding (2^-53 per
  // operation, 2^29 times smaller) is covered too.
  const double u = std::ldexp(1.0, -24) * (1.0 + std::ldexp(1.0, -20));
  const auto abs_of = [](la::ConstMatrixView a) {
    la::Matrix out(a.rows(), a.cols());
    for (index_t j = 0; j < a.cols(); ++j)
      for (index_t i = 0; i < a.rows(); ++i) out(i, j) = std::abs(a(i, j));
    return out;
  };
  la::Matrix h(x.rows(), x.cols());
  for (index_t j = 0; j < x.cols(); ++j)
    for (index_t i = 0; i < x.rows(); ++i) h(i, j) = x(i, j);
  la::Matrix e = abs_of(h);  // rounding the inputs: |fl(x) - x| <= u |x|
  for (double& v : e.values()) v *= u;
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const DenseLayer& layer = model.layer(l);
    for (const la::Matrix& f : layer.factors()) {
      // Z~ F~ with F~ = F (1 + delta), |delta| <= u, |Z~ - Z| <= E:
      //   |fl(Z~ F~) - Z F| <= (1 + u) (E + gamma_k (|Z| + E)) |F| + u |Z| |F|.
      const double k = static_cast<double>(f.rows());
      const double gamma = k * u / (1.0 - k * u);
      const la::Matrix fa = abs_of(f);
      const la::Matrix za = abs_of(h);
      la::Matrix s = e;  // (1 + gamma) E + gamma |Z|, then times (1 + u) |F|
      for (std::size_t i = 0; i < s.values().size(); ++i)
        s.values()[i] = (1.0 + gamma) * e.values()[i] + gamma * za.values()[i];
      la::Matrix next_e = la::matmul(s, fa);
      const la::Matrix zf = la::matmul(za, fa);
      for (std::size_t i = 0; i < next_e.values().size(); ++i)
        next_e.values()[i] = (1.0 + u) * next_e.values()[i] + u * zf.values()[i];
      h = la::matmul(h, f);
      e = std::move(next_e);
    }
    // fl(y~ + b~): |. - (y + b)| <= E + u |b| + u (|y| + E + (1 + u) |b|); ReLU is 1-Lipschitz.
    for (index_t j = 0; j < h.cols(); ++j) {
      const double b = layer.has_bias() ? layer.bias()[static_cast<std::size_t>(j)] : 0.0;
      for (index_t i = 0; i < h.rows(); ++i) {
        const double y = h(i, j);
        e(i, j) += u * std::abs(b) + u * (std::abs(y) + e(i, j) + (1.0 + u) * std::abs(b));
        double v = y + b;
        if (layer.activation() == Activation::relu && v < 0.0) v = 0.0;
        h(i, j) = v;
      }
    }
  }
  return e;
}

double InferenceTiming::samples_per_second() const {
  return median_seconds > 0.0 ? static_cast<double>(batch) / median_seconds : 0.0;
}

InferenceBenchResult benchmark_inference(const std::vector<Mlp>& models, const std::vector<std::string>& names,
                                         const InferenceBenchOptions& options) {
  require(!models.empty(), "benchmark_inference: no models");
  require(names.size() == models.size(), "benchmark_inference: ", names.size(), " names for ", models.size(),
          " models");
  require(options.threads >= 1, "benchmark_inference: threads=", options.threads, " must be >= 1");
  require(options.repetitions >= 0, "benchmark_inference: repetitions=", options.repetitions, " must be >= 0");
  require(!options.batches.empty(), "benchmark_inference: no batch sizes");
  for (const index_t b : options.batches) require(b >= 1, "benchmark_inference: batch size ", b, " must be >= 1");
  for (std::size_t m = 1; m < models.size(); ++m)
    require(models[m].input_dim() == models[0].input_dim(), "benchmark_inference: ", names[m], " takes ",
            models[m].input_dim(), " inputs but ", names[0], " takes ", models[0].input_dim());

  std::vector<Float32Mlp> converted;
  InferenceBenchResult result;
  result.threads = options.threads;
  result.blas_core = la::blas_core_name();
  for (std::size_t m = 0; m < models.size(); ++m) {
    converted.emplace_back(models[m]);
    result.models.push_back({names[m], models[m].parameter_count(), models[m].flops_per_sample(), {}});
  }
  const InferenceOptions run{options.threads};
  std::mt19937_64 gen(options.seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  using clock = std::chrono::steady_clock;
  for (const index_t batch : options.batches) {
    Float32Batch x(batch, models[0].input_dim());
    for (float& v : x.values) v = pixel(gen);
    std::vector<InferenceWorkspace> workspaces(models.size());
    std::vector<Float32Batch> outputs(models.size());
    // One untimed pass per model (buffers allocated, caches and BLAS threads warm); it also sizes
    // the adaptive repetition count from the slowest model.
    double slowest = 0.0;
    for (std::size_t m = 0; m < models.size(); ++m) {
      const auto start = clock::now();
      converted[m].logits(x, outputs[m], workspaces[m], run);
      slowest = std::max(slowest, std::chrono::duration<double>(clock::now() - start).count());
    }
    int reps = options.repetitions;
    if (reps == 0)
      reps = static_cast<int>(std::clamp(std::ceil(options.min_seconds / std::max(slowest, 1e-9)), 5.0, 1000.0));
    std::vector<std::vector<double>> seconds(models.size());
    for (int r = 0; r < reps; ++r)
      for (std::size_t m = 0; m < models.size(); ++m) {
        const auto start = clock::now();
        converted[m].logits(x, outputs[m], workspaces[m], run);
        seconds[m].push_back(std::chrono::duration<double>(clock::now() - start).count());
      }
    for (std::size_t m = 0; m < models.size(); ++m) {
      auto& s = seconds[m];
      std::sort(s.begin(), s.end());
      const std::size_t mid = s.size() / 2;
      const double median = s.size() % 2 == 1 ? s[mid] : 0.5 * (s[mid - 1] + s[mid]);
      result.models[m].timings.push_back({batch, reps, median, s.front(), s.back()});
    }
  }
  return result;
}

}  // namespace idprune::nn

namespace idprune::nn {

std::string_view to_string(Precision precision) { return precision == Precision::f32 ? "f32" : "f64"; }

Precision parse_precision(std::string_view name) {
  if (name == "f64" || name == "float64") return Precision::f64;
  if (name == "f32" || name == "float32") return Precision::f32;
  throw Error(idprune::detail::concat("unknown precision '", name, "' (expected f64 or f32)"));
}

std::vector<int> predict(const Mlp& model, la::ConstMatrixView x, Precision precision, const ForwardOptions& options) {
  require(x.cols() == model.input_dim(), "predict: the rows have ", x.cols(), " features, the model takes ",
          model.input_dim());
  require(options.block_rows >= 1, "predict: block_rows=", options.block_rows, " must be at least 1");
  std::vector<int> predictions(static_cast<std::size_t>(x.rows()));
  std::optional<Float32Mlp> single;
  if (precision == Precision::f32) single.emplace(model);
  parallel::for_each_row_block(x.rows(), options.block_rows, [&](index_t first, index_t count) {
    const la::ConstMatrixView rows = x.rows_range(first, count);
    // Each block is one product per layer (count <= block_rows), computed on this task's thread.
    const std::vector<int> p = single ? single->predict(to_float32(rows), InferenceOptions{.threads = 1})
                                      : argmax_rows(model.logits(rows, options));
    std::copy(p.begin(), p.end(), predictions.begin() + first);
  });
  return predictions;
}

}  // namespace idprune::nn
