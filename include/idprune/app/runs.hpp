#pragma once
// The runs behind `idprune sweep`, `pareto` and `compress`: each takes its subcommand's parsed
// options, runs on every MPI rank (collective), writes its results through the library's schemas
// (compress::ResultsFiles, compress::ParetoFiles, nn::write_model) and returns the process's exit
// status (0, or 128 + the signal that stopped it).
#include <optional>
#include <string>
#include <vector>

#include "idprune/app/option_groups.hpp"
#include "idprune/app/options.hpp"
#include "idprune/nn/model_io.hpp"

namespace idprune::app {

/// `idprune sweep`: one strategy over a grid of rule values, rows appended to OUT/results.csv and
/// OUT/results.jsonl wave by wave (resumable), OUT/config.ini to repeat the run.
struct SweepRun {
  std::string model;
  std::string data;
  std::string out;
  std::string strategy = "greedy";
  std::string rule = "eps";
  std::string grid;                   ///< comma-separated rule values
  std::string layers = "all";         ///< 1-based, comma-separated, or all
  CompressionSetOptions compression;  ///< streamable (add_compression_set_options(..., true))
  EvaluationOptions evaluation;
  /// The next layer's bias absorbs the mean residual; rows are recorded as STRATEGY+mean.
  bool mean_compensation = false;
  long wave = 0;  ///< points per wave (0: 2 x threads)
  double progress_interval = 30.0;
  bool resume = false;
};
[[nodiscard]] int run_sweep(const SweepRun& run, const CommandLine& command_line);

/// `idprune pareto`: every strategy's best model within each budget, selected on a validation
/// split (compress::run_pareto), recorded in OUT as each strategy finishes (compress::ParetoFiles),
/// the comparison with greedy, the report OUT/report, and the selected models (save_models).
struct ParetoRun {
  std::string model;
  std::string data;
  std::string out;
  std::vector<std::string> strategies;
  std::vector<double> budgets;
  std::string objective = "cross-entropy";
  CompressionSetOptions compression;
  SearchOptions search;
  EvaluationOptions evaluation;
  FinetuneOptions finetune;  ///< of every selected model, reported apart
  std::string hybrid_ranks;  ///< hybrid: first-layer ranks tried, comma-separated ("": the default)
  long wave = 8;
  bool report = true;
  std::string save_models;  ///< folder of the selected models ("": none)
  bool resume = false;
};
[[nodiscard]] int run_pareto(const ParetoRun& run, const CommandLine& command_line);

/// `idprune compress`: one compressed model (compress::compress_network) written to OUT with its
/// provenance in the file's metadata and its sensitivity table beside it; prints the summary.
struct CompressRun {
  std::string model;
  nn::ModelReadOptions read;
  std::string data;
  std::string out;
  std::optional<double> budget;  ///< budget mode
  std::optional<std::string> strategy;
  std::optional<std::string> rule;  ///< point mode, with value
  std::optional<double> value;
  std::string layers = "all";
  std::string dtype = "F32";
  CompressionSetOptions compression;
  SearchOptions search;
  EvaluationOptions evaluation;
  FinetuneOptions finetune;  ///< also written as OUT.finetuned, reported apart
};
[[nodiscard]] int run_compress(const CompressRun& run);

}  // namespace idprune::app
