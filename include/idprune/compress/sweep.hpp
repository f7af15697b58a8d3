#pragma once
// Sweeps: one strategy and rank rule over a grid of values (eps, k, fraction or rank), one
// compressed and evaluated model per grid point.
//
// The grid is processed in WAVES of `wave_size` consecutive points (a fixed partition of the grid):
// a wave is compressed together (CompressionEngine) and scored with one reduction (Scorer), and
// its rows are handed to the caller (who writes them) before the next wave starts, so a crash loses
// at most the wave in flight. Resuming skips every point already recorded; a wave with some points
// recorded is recomputed whole (its new rows only are reported), so rows do not depend on where a
// run was interrupted. Before each wave the caller's hook errors and stop request are checked
// collectively (one allreduce each), so every rank fails or stops after the same wave.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "idprune/compress/engine.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"

namespace idprune::compress {

struct SweepOptions {
  RankRule rule = RankRule::eps;
  std::vector<double> grid;
  std::vector<index_t> layers;  ///< hidden layers to compress, 0-based; empty means all
  std::size_t wave_size = 4;    ///< points per wave (>= 1)
};

/// One grid point's result.
struct SweepRow {
  std::size_t point = 0;  ///< index into the grid
  double value = 0.0;
  ModelMetrics metrics;
  std::vector<LayerOutcome> layers;
  std::size_t wave = 0;
  std::size_t wave_points = 0;         ///< points compressed together in the wave
  double wave_compress_seconds = 0.0;  ///< the wave's compression time (shared by its points)
  double wave_evaluate_seconds = 0.0;  ///< the wave's evaluation time
};

struct SweepHooks {
  /// Called on every rank before each wave is computed, with the wave's index. An exception it
  /// throws on any rank is checked collectively (dist::check_collective): every rank's run_sweep
  /// then throws dist::CollectiveError, so one rank's failure never leaves the others waiting.
  std::function<void(std::size_t wave)> before_wave;
  /// Called on every rank after each wave with that wave's new rows (in grid order).
  std::function<void(std::span<const SweepRow>)> on_wave;
  /// Polled on every rank between waves; true on any rank stops every rank after the current wave.
  std::function<bool()> stop_requested;
};

struct SweepSummary {
  std::size_t computed = 0;  ///< rows produced by this run
  std::size_t skipped = 0;   ///< points already finished before it
  std::size_t waves = 0;     ///< waves run
  bool stopped = false;      ///< a stop request ended it early
};

/// Collective: runs the points of `options.grid` whose `finished` entry is 0 (finished may be empty:
/// none finished) with `strategy` (a sweep-family entry); the engine is prepared with every point
/// first, so rows do not depend on the waves. `test` scores every model.
SweepSummary run_sweep(CompressionEngine& engine, const StrategyInfo& strategy, const PolicyOptions& policy,
                       const Scorer& test, const SweepOptions& options, std::span<const char> finished,
                       const SweepHooks& hooks);

/// Provenance recorded in every row.
struct SweepProvenance {
  std::string model;
  std::string data;
  std::string model_sha256;  ///< content of the model file (or folder): what resuming compares
  std::string data_sha256;   ///< content of the data files of both splits
  std::int64_t compression_size = 0;
  std::int64_t test_samples = 0;
  std::uint64_t seed = 0;
  std::string engine;
  std::string cpqr_method;
  int ranks = 1;
  int threads = 1;
  std::size_t wave_size = 1;
  std::string git_revision;
  std::string version;
  std::string blas_core;
  double original_accuracy = 0.0;
  /// Arithmetic of the evaluation (ScorerOptions::precision); compression is float64 always.
  nn::Precision precision = nn::Precision::f64;
  bool compare_precision = false;  ///< ScorerOptions::compare_precision: rows count the changed predictions
};

/// "all" or the 1-based layers joined by ';' (the row's `layers` column).
[[nodiscard]] std::string layers_label(std::span<const index_t> layers);

/// The row of one point: strategy, rule, value, layers, test_accuracy, agreement, params,
/// params_fraction, hidden_kept_fraction, kept_per_layer, ... (see the implementation for the full
/// ordered list), then timings and provenance. Lists are JSON arrays. A float32 evaluation adds
/// `precision` = "f32" after agreement (a row without it was evaluated in float64), and
/// compare_precision adds `f32_changed_predictions` (Scores::precision_changes).
[[nodiscard]] nlohmann::ordered_json sweep_record(const SweepRow& row, std::string_view strategy, RankRule rule,
                                                  std::span<const index_t> layers, const SweepProvenance& provenance);

/// Columns that vary between otherwise identical runs (timings, when the row was written, and how
/// the run was parallelised): ignore them when comparing tables.
[[nodiscard]] std::span<const char* const> run_dependent_columns();

/// Which grid points `records` (the rows of an existing results file) already hold for this
/// strategy, rule and layers. Rows of other strategies, rules or layer sets are left alone (several
/// sweeps may share a folder), but every row must come from the same model and data (by content:
/// model_sha256 and data_sha256, so the same files under other paths are accepted; rows written
/// without hashes compare the paths), compression set (size and seed) and evaluation set, and rows
/// of this strategy/rule/layers from the same engine, and every row evaluated in the same precision
/// (a row without `precision` is float64); otherwise idprune::Error says which field differs.
[[nodiscard]] std::vector<char> finished_points(std::span<const nlohmann::ordered_json> records,
                                                std::span<const double> grid, std::string_view strategy, RankRule rule,
                                                std::span<const index_t> layers, const SweepProvenance& provenance);

}  // namespace idprune::compress
