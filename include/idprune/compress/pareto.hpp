#pragma once
// The Pareto study behind `idprune pareto` (issue 6): for every strategy, its best model within
// each parameter budget, selected on the VALIDATION split and then evaluated once on the test set.
//
// Strategies: every entry of the registry (strategy.hpp). Sweep-family strategies run a grid
// (eps, fraction or tau) refined towards every budget, and the model for a budget is the sweep point
// with the highest validation accuracy within it; budget and search strategies produce one model
// per budget. Test data enter only through the test Scorer, after every selection is made.
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "idprune/compress/allocation.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/compress/hybrid.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"

namespace idprune::compress {

struct ParetoOptions {
  std::vector<std::string> strategies;
  std::vector<double> budgets;   ///< fractions of the original parameter count, in (0, 1]
  std::vector<double> eps_grid;  ///< sweep strategies whose pareto_rule is eps
  std::vector<double> tau_grid;  ///< spectrum, spectrum-corrected
  std::vector<double> svd_grid;  ///< sweep strategies whose pareto_rule is fraction (svd, greedy-fraction)
  EngineOptions engine;          ///< pivot engine, CPQR method (complete_factorizations is set per strategy)
  PolicyOptions policy;          ///< random's seed, corrected's intercept
  BudgetOptions budget;
  TuneOptions tune;
  DescentOptions descent;
  HybridOptions hybrid;       ///< hybrid: first-layer ranks and what its budgets count (parameters or FLOPs)
  std::size_t wave_size = 8;  ///< sweep models compressed and evaluated together
  int refine = 5;             ///< eps-driven: bisection rounds towards every budget (see pareto.cpp)
  bool keep_models = false;   ///< keep every selected row's network (ParetoModel::network)
};

/// Throws idprune::Error naming the first option run_pareto would refuse (an unknown strategy, a
/// budget outside (0, 1], a grid value its rule does not take, a descent step outside (0, 1), ...),
/// so that a study can be refused before any data is read rather than when it reaches a strategy.
void check_pareto_options(const ParetoOptions& options);

/// Default grids, log-spaced with 6 values per decade: eps over 1e-3..10, tau over 1e-4..1, svd
/// fractions over 0.01..1 (refined towards every budget afterwards).
[[nodiscard]] std::vector<double> default_eps_grid();
[[nodiscard]] std::vector<double> default_tau_grid();
[[nodiscard]] std::vector<double> default_svd_grid();

/// One compressed model of a strategy.
struct ParetoModel {
  std::string setting;  ///< e.g. "eps=0.1", "tau=0.01", "fraction=0.2", "budget=0.05"
  std::int64_t params = 0;
  double params_fraction = 0.0;
  std::vector<index_t> kept_per_layer;
  std::vector<index_t> ranks_per_layer;
  Scores validation;
  Scores test;                                     ///< test accuracy and agreement with the original's test predictions
  std::vector<std::vector<index_t>> kept_neurons;  ///< per hidden layer, indices in the original
  std::shared_ptr<const nn::Mlp> network;          ///< the model itself (ParetoOptions::keep_models)
  /// A study with fine-tuning (pareto --finetune-epochs): the accuracies of a fine-tuned copy, in
  /// columns of their own (NaN for a model with factored svd layers, which is not fine-tuned).
  bool finetuned = false;
  double validation_accuracy_finetuned = std::numeric_limits<double>::quiet_NaN();
  double test_accuracy_finetuned = std::numeric_limits<double>::quiet_NaN();
};

struct ParetoRow {
  std::string strategy;
  double budget = 0.0;
  ParetoModel model;
  double search_seconds = 0.0;  ///< the search that produced this row (see run_pareto)
};

/// Every model a strategy evaluated on the test set (eps-driven: its sweep; budget-driven: its rows).
struct ParetoCurve {
  std::string strategy;
  std::vector<ParetoModel> models;
  double seconds = 0.0;           ///< the whole strategy
  std::vector<SearchPoint> path;  ///< search strategies: the descent path (empty for the others)
};

struct ParetoResult {
  std::vector<ParetoRow> rows;
  std::vector<ParetoCurve> curves;
  std::vector<std::vector<SearchPoint>> paths;  ///< descent paths of search strategies (curve order)
  std::vector<std::string> path_strategies;
  std::int64_t original_params = 0;
  Scores original_validation;
  Scores original_test;
};

struct ParetoHooks {
  /// After each strategy (rows of that strategy), on every rank.
  std::function<void(const ParetoCurve&, std::span<const ParetoRow>)> on_strategy;
  /// Progress lines (rank 0 decides whether to print).
  std::function<void(const std::string&)> log;
};

/// Collective. `compression_set`: rows of the TRAINING images outside the validation split;
/// `validation` scores on the validation split (selection), `test` evaluates final models only.
/// search_seconds: eps-driven rows get their whole sweep's time; budget rows the allocation and
/// compression for that budget; joint rows the descent's time until the selected point was found.
[[nodiscard]] ParetoResult run_pareto(const nn::Mlp& model, const dist::DistMatrix& compression_set,
                                      const Scorer& validation, const Scorer& test, const ParetoOptions& options,
                                      const ParetoHooks& hooks = {});

/// The model of a curve for `budget` parameters: highest validation accuracy among those within
/// it, then fewer parameters; -1 when none fits.
[[nodiscard]] std::ptrdiff_t select_within(std::span<const ParetoModel> models, std::int64_t budget);

/// Linear interpolation of test accuracy along a curve sorted by parameter fraction, at `fraction`
/// (NaN below the smallest model; the largest model's accuracy above the largest).
[[nodiscard]] double interpolate_test_accuracy(std::span<const ParetoModel> models, double fraction);

/// Comparison of one strategy with greedy (issue 6, "Done when").
struct ParetoComparison {
  std::string strategy;
  std::vector<double> budgets;
  std::vector<double> test_accuracy;  ///< the strategy's row per budget (NaN when none)
  std::vector<double> greedy;         ///< greedy interpolated along its sweep at the budget
  std::vector<double> gain;           ///< test_accuracy - greedy
  double mean_gain = 0.0;
  double min_gain = 0.0;
  double max_gain = 0.0;
  /// Smallest parameter fraction of a model on the curve within 1 point (0.01) of the original's
  /// test accuracy (NaN when none), and the ratio to greedy's.
  double within_one_point = 0.0;
  double within_one_point_ratio = 0.0;
};
[[nodiscard]] std::vector<ParetoComparison> compare_with_greedy(const ParetoResult& result);

}  // namespace idprune::compress
