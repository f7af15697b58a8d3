#pragma once
// Float32 inference: what a deployed (compressed) model costs. A model is converted to float32 once;
// every layer's forward pass is then one sgemm per weight factor, H_l = act(H_{l-1} F_1 ... F_q + 1 b^T),
// with the batch's samples as rows (column-major, as everywhere in idprune).
//
// Accuracy: float32 rounding (unit roundoff u = 2^-24) of the weights, the inputs and the sums of
// each product: |fl(x W) - x W| <= gamma_k |x| |W|, gamma_k = k u / (1 - k u) for inner dimension k
// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.13), propagated through
// the layers; float32_error_bound() computes this bound for a batch, so that tests can compare
// against the float64 forward pass without an arbitrary tolerance.
//
// Threads: the products run on OpenBLAS's own threads (`threads` of them, set for the call and
// restored afterwards); nothing else runs in parallel, so a call uses at most `threads` cores. Call
// with threads = 1 from inside TBB tasks.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idprune/la/matrix.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::nn {

/// A batch of samples in float32: `rows` samples of `cols` features, column-major (sample i,
/// feature j at values[i + j * rows]).
struct Float32Batch {
  index_t rows = 0;
  index_t cols = 0;
  std::vector<float> values;

  Float32Batch() = default;
  Float32Batch(index_t rows_, index_t cols_) : rows(rows_), cols(cols_), values(checked_size(rows_, cols_)) {}
  [[nodiscard]] float operator()(index_t i, index_t j) const { return values[static_cast<std::size_t>(i + j * rows)]; }

 private:
  static std::size_t checked_size(index_t rows, index_t cols);
};

/// x rounded to float32 (each entry to nearest).
[[nodiscard]] Float32Batch to_float32(la::ConstMatrixView x);
/// x widened to double (exact).
[[nodiscard]] la::Matrix to_double(const Float32Batch& x);

struct InferenceOptions {
  int threads = 1;  ///< OpenBLAS threads for the products (>= 1)
};

/// Buffers reused between forward passes (two activations, two products inside a factored layer);
/// a workspace may be used by one call at a time.
struct InferenceWorkspace {
  std::vector<float> a, b, t, u;
};

/// An Mlp converted to float32 (weights rounded to nearest once, on construction).
class Float32Mlp {
 public:
  /// Throws when `model` has a parameter that is not finite or overflows float32.
  explicit Float32Mlp(const Mlp& model);

  [[nodiscard]] index_t input_dim() const { return input_dim_; }
  [[nodiscard]] index_t num_classes() const { return num_classes_; }
  [[nodiscard]] index_t parameter_count() const { return parameters_; }

  /// Logits (x.rows x classes) of the batch x (x.rows x input_dim), into `logits` (resized).
  void logits(const Float32Batch& x, Float32Batch& logits, InferenceWorkspace& workspace,
              const InferenceOptions& options = {}) const;
  [[nodiscard]] Float32Batch logits(const Float32Batch& x, const InferenceOptions& options = {}) const;
  /// argmax of the logits per sample (lowest index on ties), as Mlp::predict.
  [[nodiscard]] std::vector<int> predict(const Float32Batch& x, const InferenceOptions& options = {}) const;

 private:
  struct Factor {
    index_t rows = 0, cols = 0;  // d_in x d_out of this factor, column-major
    std::vector<float> values;
  };
  struct Layer {
    std::vector<Factor> factors;
    std::vector<float> bias;  // empty: none
    bool relu = false;
  };
  std::vector<Layer> layers_;
  index_t input_dim_ = 0;
  index_t num_classes_ = 0;
  index_t parameters_ = 0;
};

/// The arithmetic of an evaluation: float64 (Mlp, idprune's reference) or float32 (Float32Mlp, what
/// a deployed model computes).
enum class Precision { f64, f32 };

/// "f64" | "f32".
[[nodiscard]] std::string_view to_string(Precision precision);
/// Parses "f64" / "float64" / "f32" / "float32"; throws idprune::Error otherwise.
[[nodiscard]] Precision parse_precision(std::string_view name);

/// argmax of the logits per sample (lowest index on ties) of `model` on x, in `precision` (f32: the
/// model and each row block rounded to float32 as by Float32Mlp and to_float32). Rows are cut into
/// blocks of options.block_rows, each a TBB task with single-threaded BLAS (ForwardOptions), so the
/// predictions are the same for any thread count.
[[nodiscard]] std::vector<int> predict(const Mlp& model, la::ConstMatrixView x, Precision precision,
                                       const ForwardOptions& options = {});

/// An elementwise bound on |logits computed by Float32Mlp(model) on to_float32(x) - model.logits(x)|
/// (n x classes), from the float64 forward pass and the rounding-error bound above (first order in
/// u, with the factor (1 + ...) of gamma_k kept, so it is a bound, not an estimate).
[[nodiscard]] la::Matrix float32_error_bound(const Mlp& model, la::ConstMatrixView x);

/// Timing of one model at one batch size.
struct InferenceTiming {
  index_t batch = 0;
  int repetitions = 0;
  double median_seconds = 0.0;  ///< of one forward pass over the batch
  double min_seconds = 0.0;
  double max_seconds = 0.0;
  [[nodiscard]] double samples_per_second() const;  ///< batch / median_seconds
};

struct InferenceBenchOptions {
  std::vector<index_t> batches{1, 64, 1024};
  int threads = 1;
  /// Timed forward passes per model and batch (after one untimed warm-up pass). 0: as many as fit
  /// in `min_seconds` (at least 5, at most 1000).
  int repetitions = 0;
  double min_seconds = 0.2;
  std::uint64_t seed = 1;  ///< of the random inputs (uniform in [0, 1), like scaled pixels)
};

/// One model's timings, in the order of InferenceBenchOptions::batches.
struct InferenceBenchModel {
  std::string name;
  index_t parameters = 0;
  double flops_per_sample = 0.0;
  std::vector<InferenceTiming> timings;
};

struct InferenceBenchResult {
  std::vector<InferenceBenchModel> models;
  int threads = 1;
  std::string blas_core;  ///< OpenBLAS kernel set (e.g. "Haswell"), recorded with the figures
};

/// Times the float32 forward pass of every model on the same random batches. The models must take
/// the same input dimension; names label them in the result. Repetitions of the models are
/// interleaved (model 1, model 2, ..., model 1, ...) so that a change in machine load affects all.
[[nodiscard]] InferenceBenchResult benchmark_inference(const std::vector<Mlp>& models,
                                                       const std::vector<std::string>& names,
                                                       const InferenceBenchOptions& options = {});

}  // namespace idprune::nn
