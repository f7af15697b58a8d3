#pragma once
// Groups of options that several subcommands share, each with the struct it fills: a subcommand
// adds a group to its option table and reads the struct back. An option that belongs to a group
// (a new compression-set setting, a new search setting) is added here once: its declaration, its
// field and its check, and every subcommand that takes the group has it.
#include <cstdint>
#include <string>

#include "idprune/app/options.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/pareto.hpp"
#include "idprune/dist/parallelism.hpp"
#include "idprune/la/matrix.hpp"
#include "idprune/nn/inference.hpp"

namespace idprune::app {

/// The compression set (the samples whose activations are factorized) and how it is factorized:
/// `sweep`, `pareto`, `compress`.
struct CompressionSetOptions {
  long size = 2000;                ///< --compression-size: images drawn from the training split
  bool all = false;                ///< --compression-size all: every image (or calibration row)
  std::uint64_t seed = 1;          ///< --seed: the draw (and the validation split, random's draws)
  compress::EngineOptions engine;  ///< --engine, --cpqr-method
  // Streamable sets only (`sweep`):
  std::string calibration;      ///< --calibration: a .npy or IDX file of inputs instead of the training images
  int shift_radius = 0;         ///< --augment shifts[:R]: each image followed by its shifts by up to R pixels
  la::index_t block_rows = 0;   ///< --block-rows: rows per streamed block (0: in memory unless max_memory says)
  std::int64_t max_memory = 0;  ///< --max-memory: bytes per rank the set may take (0: no limit)

  /// The ordinary set: a sample of training images, held in memory.
  [[nodiscard]] bool plain() const {
    return calibration.empty() && shift_radius == 0 && block_rows == 0 && max_memory == 0;
  }
};
/// Adds --compression-size, --seed, --engine and --cpqr-method; `seed_help` and `engine_help` say
/// what the seed draws and which strategies the pivot engine serves in that subcommand. With
/// `streamable`, --compression-size also takes `all`, and --calibration, --augment, --block-rows
/// and --max-memory say where the set's rows come from and whether it is streamed.
void add_compression_set_options(po::options_description& options, const char* seed_help, const char* engine_help,
                                 bool streamable = false);
/// --augment's value as a shift radius: `none` is 0, `shifts` is 1 (an image and its 8 one-pixel
/// shifts), `shifts:R` is R (R = 1..3: (2R + 1)^2 rows per image).
[[nodiscard]] int parse_augment(const std::string& command, const std::string& augment);
/// The group's values; refuses --compression-size < 1 and malformed streaming settings.
[[nodiscard]] CompressionSetOptions compression_set_options(const std::string& command, const po::variables_map& vm);

/// Where the compressed models are scored and with how many threads: `sweep`, `pareto`, `compress`.
struct EvaluationOptions {
  long test_size = 0;                            ///< --test-size: the first N test images (0: all)
  long batch_rows = 500;                         ///< --batch-rows: rows per evaluation task
  int threads = 0;                               ///< --threads: per rank (0: the cores this process may use)
  nn::Precision precision = nn::Precision::f64;  ///< --precision: arithmetic of the evaluation forward passes
  bool compare_precision = false;  ///< --compare-precision (sweep only): count the predictions f32 changes
};
/// --test-size, --threads, --batch-rows and the precision options below.
void add_evaluation_options(po::options_description& options, const char* batch_rows_help);
/// The group's values; refuses --test-size < 0, --batch-rows < 1 and an unknown --precision.
[[nodiscard]] EvaluationOptions evaluation_options(const std::string& command, const po::variables_map& vm);
/// --precision f64|f32 (part of the evaluation group; `eval` adds it alone).
void add_precision_options(po::options_description& options);
/// --compare-precision (`sweep`, `eval`): also count the predictions float32 changes.
void add_compare_precision_option(po::options_description& options);
/// Reads --precision and (where the table has it) --compare-precision into `out`.
void read_precision_options(const std::string& command, const po::variables_map& vm, EvaluationOptions& out);

/// How a study selects models on a validation split: `pareto` and `compress` (budget mode).
/// `study` holds the grids (empty: the defaults), the descent step, the budget and tuning rounds,
/// the refinement rounds and the corrected strategies' intercept.
struct SearchOptions {
  long validation_size = 5000;  ///< --validation-size: training images held out for selection
  compress::ParetoOptions study;
};
/// --validation-size; the grids and search settings (--budget-kind among them); --intercept and
/// --mean-compensation. `mode` prefixes the help of the
/// settings that only some invocations read ("budget mode: " in `compress`).
void add_search_options(po::options_description& options, const std::string& mode = "");
/// The group's values; refuses --validation-size < 1 and malformed grids.
[[nodiscard]] SearchOptions search_options(const std::string& command, const po::variables_map& vm);

/// Fine-tuning of the selected models (`pareto`, `compress`): reported apart from the
/// post-training scores.
struct FinetuneOptions {
  int epochs = 0;               ///< --finetune-epochs (0: none)
  double learning_rate = 1e-4;  ///< --finetune-lr: Adam, cosine schedule
};
/// --finetune-epochs (with `epochs_help`) and --finetune-lr.
void add_finetune_options(po::options_description& options, const char* epochs_help);
/// The group's values; refuses --finetune-epochs < 0 and --finetune-lr <= 0.
[[nodiscard]] FinetuneOptions finetune_options(const std::string& command, const po::variables_map& vm);

/// The threads of a run, for its lifetime: --threads resolved against the cores this process may
/// use (a lowered request is announced once, by `announce`), TBB and BLAS limited to them.
class RunThreads {
 public:
  RunThreads(const std::string& command, int requested, bool announce);
  [[nodiscard]] int count() const { return limit_.threads(); }

 private:
  dist::ThreadLimit limit_;
};

}  // namespace idprune::app
