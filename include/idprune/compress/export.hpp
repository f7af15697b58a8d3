#pragma once
// A compressed model to take away (`idprune compress`, `idprune pareto --save-models`): one
// compression of a loaded model, the per-layer sensitivity table, and the provenance written with
// the model file.
//
// compress_network makes ONE model, in one of two modes:
//   point   a strategy with one rank rule on every hidden layer (as one point of `idprune sweep`):
//           any strategy of the registry that `idprune sweep` takes (strategy.hpp: greedy,
//           magnitude, random, svd, corrected), through compress_model;
//   budget  the best model within a fraction of the original's parameters, as `idprune pareto`
//           selects it: each candidate strategy's best model within the budget, chosen on the
//           VALIDATION split; among the strategies, the highest validation accuracy wins (then fewer
//           parameters, then the earlier strategy). The test set only reports.
// The model returned is the one a float32 file holds (CompressRequest::round_to): its accuracies,
// recorded in the metadata, are those `idprune eval` measures on the written file.
//
// Sensitivity table. Row l (hidden layer l = 1..L) reports the layer's width and parameters before
// and after, and the relative error of what the compressed network passes on from layer l:
//   P_{l+1} = Z_l W_{l+1} + 1 b_{l+1}^T       the original network's pre-activation of layer l+1
//                                             (the logits for l = L), Z_l its activations of layer l,
//   P^_{l+1} = Z^_l W^_{l+1} + 1 b^_{l+1}^T   the same in the compressed network (Z^_l has the kept
//                                             neurons only, W^_{l+1} holds layer l's fold T W_{l+1}),
//   relative_error_l = ||P^_{l+1} - P_{l+1}(:, C_{l+1})||_F / ||P_{l+1}(:, C_{l+1})||_F
// on the whole compression set, C_{l+1} the neurons layer l+1 keeps (every class for l = L). It
// includes the error accumulated in layers 1..l-1 (the compressed network's own activations feed
// it), so it grows along the network, and a jump at layer l is what cutting layer l cost. For a
// single compressed layer with the ID, ||P^ - P||_F <= ||Z - Z(:, C) T||_F ||W_{l+1}||_2 (the
// reference text's bound). A zero denominator gives 0 when the numerator is 0, else infinity.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "idprune/compress/engine.hpp"
#include "idprune/compress/pareto.hpp"
#include "idprune/compress/policy.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/dist/dist_matrix.hpp"
#include "idprune/nn/mlp.hpp"
#include "idprune/nn/safetensors.hpp"

namespace idprune::compress {

/// The strategies of point mode: those of the registry with sweep rules (the ones `idprune sweep`
/// takes), in canonical order.
[[nodiscard]] std::vector<std::string_view> point_strategy_names();
/// The candidates of budget mode when none is named: strategies that aim at a parameter budget
/// (greedy-fraction, budget, budget-corrected, tuned-corrected).
[[nodiscard]] std::vector<std::string> default_budget_strategies();

/// What compress_network makes. Budget mode when `budget` is set, else point mode.
struct CompressRequest {
  /// Point mode: one of point_strategy_names() with `rule` on `layers`.
  std::string strategy = "greedy";
  LayerRule rule{RankRule::eps, 0.1};
  std::vector<index_t> layers;  ///< hidden layers to compress (0-based); empty: all
  /// Budget mode: the fraction of the original's parameters, in (0, 1], and the candidate
  /// strategies (any name of the registry; empty: default_budget_strategies()).
  std::optional<double> budget;
  std::vector<std::string> budget_strategies;
  /// Budget mode: grids and search settings of the study. compress_network sets its strategies,
  /// budgets and keep_models, fills empty grids with the defaults and sets the descent's
  /// stop_fraction to 0.8 * budget (as `idprune pareto` does); `engine` and `policy` below
  /// replace pareto.engine and pareto.policy.
  ParetoOptions pareto;
  EngineOptions engine;  ///< pivot engine, CPQR method
  PolicyOptions policy;  ///< random's seed; corrected strategies' intercept (the next layer gains a bias)
  /// Round the parameters to this type before scoring (a float32 safetensors file holds exactly
  /// the returned model); std::nullopt keeps float64 (an .npy folder).
  std::optional<nn::Dtype> round_to = nn::Dtype::f32;
};

/// Throws idprune::Error naming the first setting compress_network would refuse (an unknown
/// strategy, a rule the strategy does not take, a budget outside (0, 1], ...): call it before
/// reading any data. With a model, also checks the layers against its hidden layers.
void check_compress_request(const CompressRequest& request, const nn::Mlp* model = nullptr);

/// One row of the sensitivity table (see the header comment).
struct LayerSensitivity {
  index_t layer = 0;  ///< 1-based hidden layer
  index_t width_before = 0;
  index_t width_after = 0;
  index_t rank_after = 0;  ///< inner dimension of the compressed weight (svd: r; otherwise min(d_in, width))
  std::int64_t params_before = 0;
  std::int64_t params_after = 0;
  double relative_error = 0.0;
};

struct SensitivityTable {
  std::vector<LayerSensitivity> layers;
  std::int64_t params_before = 0;  ///< the whole model, classifier included
  std::int64_t params_after = 0;
  index_t rows = 0;  ///< compression set rows the errors are measured on
};

/// Collective: the table of `compressed` (a compression of `original`) on the compression set.
/// Rows are processed in batches of `batch_rows`; one allreduce for every sum.
[[nodiscard]] SensitivityTable sensitivity_table(const nn::Mlp& original, const CompressedModel& compressed,
                                                 const dist::DistMatrix& compression_set, index_t batch_rows = 1024);
/// CSV: layer,width_before,width_after,rank_after,params_before,params_after,relative_error (one
/// row per hidden layer; the errors in full precision), written with io::write_file_atomically.
void write_sensitivity_csv(const std::string& path, const SensitivityTable& table);
/// The table for a terminal: one line per layer, then the totals (classifier included).
[[nodiscard]] std::string format_sensitivity_table(const SensitivityTable& table);

/// What compress_network returns.
struct CompressedNetwork {
  /// The model (rounded as CompressRequest::round_to says, metadata empty: compression_metadata
  /// makes it) and the outcome of every hidden layer, kept_neurons included. first_layer_columns
  /// and the second-layer shortcut are cleared (the rounded model is scored directly).
  CompressedModel compressed;
  std::string mode;      ///< "point" or "budget"
  std::string strategy;  ///< the strategy that made the model
  std::string setting;   ///< what that strategy chose, e.g. "eps=0.1", "fraction=0.2", "budget=0.2"
  Scores validation;
  Scores test;
  Scores original_validation;
  Scores original_test;
  /// Budget mode: the best model of every candidate strategy within the budget, in request order
  /// (scores of the unrounded models, on which the choice was made).
  std::vector<ParetoRow> candidates;
  SensitivityTable sensitivity;
};

/// Rounds every parameter to float32 (to nearest), as a float32 file stores it.
void round_to_float32(nn::Mlp& model);

/// Collective. `compression_set`: rows of the TRAINING images outside the validation split;
/// `validation` scores (and in budget mode selects; make it as `idprune pareto` does, with
/// ScorerOptions::cross_entropy and without the second-layer shortcut), `test` only reports. Loads
/// nothing.
[[nodiscard]] CompressedNetwork compress_network(const nn::Mlp& model, const dist::DistMatrix& compression_set,
                                                 const Scorer& validation, const Scorer& test,
                                                 const CompressRequest& request, const ParetoHooks& hooks = {});

/// Where a compression came from, for compression_metadata.
struct CompressionProvenance {
  std::string original_sha256;  ///< io::sha256_path of the original model file or folder
  std::string data_sha256;      ///< optional ("" leaves it out)
  std::int64_t compression_size = 0;
  std::int64_t validation_size = 0;
  std::uint64_t seed = 0;                                   ///< of the validation split and compression set
  nn::Precision evaluation_precision = nn::Precision::f64;  ///< of the validation and test scores
};

/// The `__metadata__` strings of a compressed model file (keys "idprune.*"):
///   kept_neurons                JSON array, one array per hidden layer of the kept neurons'
///                               indices in the ORIGINAL layer (ascending; every index for a layer
///                               left as it is and for svd)
///   mode, strategy, setting     "point" | "budget", the strategy, what it chose ("eps=0.1", ...)
///   rule, value                 point mode: the rank rule and its value
///   layers                      point mode: the compressed hidden layers (1-based, comma-separated)
///   budget                      budget mode: the fraction of the parameters
///   candidates                  budget mode: JSON array of {strategy, setting, params,
///                               validation_accuracy, test_accuracy} of every candidate
///   intercept                   "true" when a corrected strategy fitted an intercept
///   mean_compensation           "true" when an id, corrected, random or output strategy compensated the mean
///   widths, params, params_fraction, original_widths, original_params
///   compression_size, validation_size, seed, test_samples
///   validation_accuracy, test_accuracy, test_agreement (with the original's predictions),
///   original_validation_accuracy, original_test_accuracy
///   evaluation_precision        "f32" when those scores are float32 forward passes (absent: float64)
///   original_sha256, data_sha256, version, git_revision
/// Numbers are written in the shortest form that reads back to the same double.
[[nodiscard]] nn::Metadata compression_metadata(const nn::Mlp& original, const CompressedNetwork& network,
                                                const CompressRequest& request,
                                                const CompressionProvenance& provenance);

/// Collective: a CompressedNetwork of a row that run_pareto selected with ParetoOptions::keep_models
/// (as `pareto --save-models` writes them): the row's model rounded as `round_to` says and scored
/// again on `validation` and `test` (so the scores are the file's), mode "budget", no sensitivity
/// table. Throws when the row holds no model.
[[nodiscard]] CompressedNetwork network_of_row(const nn::Mlp& original, const ParetoRow& row, const Scorer& validation,
                                               const Scorer& test, std::optional<nn::Dtype> round_to = nn::Dtype::f32);

}  // namespace idprune::compress
