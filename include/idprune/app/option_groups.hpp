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

namespace idprune::app {

/// The compression set (the samples whose activations are factorized) and how it is factorized:
/// `sweep`, `pareto`, `compress`.
struct CompressionSetOptions {
  long size = 2000;                ///< --compression-size: images drawn from the training split
  std::uint64_t seed = 1;          ///< --seed: the draw (and the validation split, random's draws)
  compress::EngineOptions engine;  ///< --engine, --cpqr-method
};
/// Adds --compression-size, --seed, --engine and --cpqr-method; `seed_help` and `engine_help` say
/// what the seed draws and which strategies the pivot engine serves in that subcommand.
void add_compression_set_options(po::options_description& options, const char* seed_help, const char* engine_help);
/// The group's values; refuses --compression-size < 1.
[[nodiscard]] CompressionSetOptions compression_set_options(const std::string& command, const po::variables_map& vm);

/// Where the compressed models are scored and with how many threads: `sweep`, `pareto`, `compress`.
struct EvaluationOptions {
  long test_size = 0;     ///< --test-size: the first N test images (0: all)
  long batch_rows = 500;  ///< --batch-rows: rows per evaluation task
  int threads = 0;        ///< --threads: per rank (0: the cores this process may use)
};
void add_evaluation_options(po::options_description& options, const char* batch_rows_help);
/// The group's values; refuses --test-size < 0 and --batch-rows < 1.
[[nodiscard]] EvaluationOptions evaluation_options(const std::string& command, const po::variables_map& vm);

/// How a study selects models on a validation split: `pareto` and `compress` (budget mode).
/// `study` holds the grids (empty: the defaults), the descent step, the budget and tuning rounds,
/// the refinement rounds and the corrected strategies' intercept.
struct SearchOptions {
  long validation_size = 5000;  ///< --validation-size: training images held out for selection
  compress::ParetoOptions study;
};
/// --validation-size; the grids and search settings; --intercept. `mode` prefixes the help of the
/// settings that only some invocations read ("budget mode: " in `compress`).
void add_search_options(po::options_description& options, const std::string& mode = "");
/// The group's values; refuses --validation-size < 1 and malformed grids.
[[nodiscard]] SearchOptions search_options(const std::string& command, const po::variables_map& vm);

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
