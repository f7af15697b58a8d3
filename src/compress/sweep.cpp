#include "idprune/compress/sweep.hpp"

#include <algorithm>
#include <array>
#include <ctime>

#include "idprune/compress/timing.hpp"
#include "idprune/dist/collectives.hpp"

namespace idprune::compress {

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}
}  // namespace

SweepSummary run_sweep(CompressionEngine& engine, const StrategyInfo& strategy, const PolicyOptions& policy,
                       const Scorer& test, const SweepOptions& options, std::span<const char> finished,
                       const SweepHooks& hooks) {
  const std::size_t n = options.grid.size();
  require(options.wave_size >= 1, "run_sweep: wave_size must be >= 1");
  require(finished.empty() || finished.size() == n, "run_sweep: ", finished.size(), " finished flags for ", n,
          " grid points");
  require(strategy.family == Family::sweep, "run_sweep: ", strategy.name, " is not a sweep strategy");
  const nn::Mlp& original = engine.original();
  const auto selection = strategy_policy(strategy, policy);
  std::vector<PointPlan> plans;
  plans.reserve(n);
  for (double v : options.grid)
    plans.push_back(uniform_plan(selection, original.num_hidden(), options.layers, LayerRule{options.rule, v}));
  const auto is_done = [&](std::size_t p) { return !finished.empty() && finished[p] != 0; };

  SweepSummary summary;
  summary.skipped = static_cast<std::size_t>(std::count_if(finished.begin(), finished.end(), [](char c) { return c; }));
  if (summary.skipped == n) return summary;
  prepare_points(engine, strategy, plans);

  for (std::size_t begin = 0, wave = 0; begin < n; begin += options.wave_size, ++wave) {
    const std::size_t end = std::min(n, begin + options.wave_size);
    bool pending = false;
    for (std::size_t p = begin; p < end; ++p) pending = pending || !is_done(p);
    if (!pending) continue;
    // A phase boundary: one rank's failure in the hook ends every rank here, never mid-collective.
    dist::check_collective(test.comm(), dist::capture_error([&] {
                             if (hooks.before_wave) hooks.before_wave(wave);
                           }));
    // Stop between waves, on every rank together.
    int stop = hooks.stop_requested && hooks.stop_requested() ? 1 : 0;
    if (dist::any_rank(test.comm(), stop != 0)) {
      summary.stopped = true;
      break;
    }
    double compress_seconds = 0.0;
    double evaluate_seconds = 0.0;
    ScopedTimer timer(compress_seconds);
    const std::vector<CompressedModel> models =
        compress_points(engine, strategy, std::span<const PointPlan>(plans).subspan(begin, end - begin));
    // Waves share no node but the original network's: cached ones would only hold memory, and
    // fresh pages cost more than the copies they save (page faults were 8% of a sweep's time).
    engine.clear_cache();
    timer.restart(evaluate_seconds);
    const std::vector<Scores> counts = test.score(models);
    timer.stop();
    std::vector<SweepRow> rows;
    for (std::size_t i = 0; i < models.size(); ++i) {
      const std::size_t p = begin + i;
      if (is_done(p)) continue;
      SweepRow row;
      row.point = p;
      row.value = options.grid[p];
      row.metrics = model_metrics(original, models[i], counts[i]);
      row.layers = models[i].layers;
      row.wave = wave;
      row.wave_points = models.size();
      row.wave_compress_seconds = compress_seconds;
      row.wave_evaluate_seconds = evaluate_seconds;
      rows.push_back(std::move(row));
    }
    summary.computed += rows.size();
    ++summary.waves;
    if (hooks.on_wave) hooks.on_wave(rows);
  }
  return summary;
}

std::string layers_label(std::span<const index_t> layers) {
  if (layers.empty()) return "all";
  std::string s;
  for (std::size_t i = 0; i < layers.size(); ++i) s += (i ? ";" : "") + std::to_string(layers[i] + 1);
  return s;
}

nlohmann::ordered_json sweep_record(const SweepRow& row, std::string_view strategy, RankRule rule,
                                    std::span<const index_t> layers, const SweepProvenance& prov) {
  const ModelMetrics& m = row.metrics;
  std::vector<double> rel_tol;
  std::vector<double> next_ratio;
  for (const auto& o : row.layers) {
    rel_tol.push_back(o.rel_tol);
    next_ratio.push_back(o.next_ratio);
  }
  nlohmann::ordered_json r;
  r["strategy"] = std::string(strategy);
  r["rule"] = std::string(to_string(rule));
  r["value"] = row.value;
  r["layers"] = layers_label(layers);
  r["test_accuracy"] = m.test_accuracy;
  r["agreement"] = m.agreement;
  // Float64 rows keep the historical columns; a float32 evaluation is always marked.
  if (prov.precision != nn::Precision::f64) r["precision"] = std::string(nn::to_string(prov.precision));
  if (prov.compare_precision) r["f32_changed_predictions"] = m.counts.precision_changes;
  r["params"] = m.params;
  r["params_fraction"] = m.params_fraction;
  r["hidden_kept_fraction"] = m.hidden_kept_fraction;
  r["kept_per_layer"] = m.kept_per_layer;
  r["ranks_per_layer"] = m.ranks_per_layer;
  r["flops"] = m.flops;
  r["flops_fraction"] = m.original_flops > 0.0 ? m.flops / m.original_flops : 0.0;
  r["test_correct"] = m.counts.correct;
  r["agree_count"] = m.counts.agree;
  r["test_samples"] = m.counts.samples;
  r["original_accuracy"] = prov.original_accuracy;
  r["original_params"] = m.original_params;
  r["hidden_kept"] = m.hidden_kept;
  r["hidden_total"] = m.hidden_total;
  r["rel_tol_per_layer"] = rel_tol;
  r["next_ratio_per_layer"] = next_ratio;
  r["point"] = row.point;
  r["wave"] = row.wave;
  r["wave_points"] = row.wave_points;
  r["wave_compress_seconds"] = row.wave_compress_seconds;
  r["wave_evaluate_seconds"] = row.wave_evaluate_seconds;
  r["finished_at"] = utc_now();
  r["compression_size"] = prov.compression_size;
  r["seed"] = prov.seed;
  r["engine"] = prov.engine;
  r["cpqr_method"] = prov.cpqr_method;
  r["ranks"] = prov.ranks;
  r["threads"] = prov.threads;
  r["wave_size"] = prov.wave_size;
  r["model"] = prov.model;
  r["data"] = prov.data;
  r["model_sha256"] = prov.model_sha256;
  r["data_sha256"] = prov.data_sha256;
  r["git_revision"] = prov.git_revision;
  r["version"] = prov.version;
  r["blas_core"] = prov.blas_core;
  return r;
}

std::span<const char* const> run_dependent_columns() {
  static constexpr std::array<const char*, 9> columns = {
      "wave",      "wave_points", "wave_compress_seconds", "wave_evaluate_seconds", "finished_at", "ranks", "threads",
      "wave_size", "blas_core"};
  return columns;
}

std::vector<char> finished_points(std::span<const nlohmann::ordered_json> records, std::span<const double> grid,
                                  std::string_view strategy, RankRule rule, std::span<const index_t> layers,
                                  const SweepProvenance& prov) {
  std::vector<char> done(grid.size(), 0);
  const std::string s = std::string(strategy);
  const std::string ru = std::string(to_string(rule));
  const std::string lay = layers_label(layers);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const auto where = [&](const char* field) {
      return detail::concat("results row ", i + 1, " was computed with ", field, " = ",
                            r.value(field, nlohmann::json()).dump(), ", this run has ");
    };
    const auto same = [&](const char* field, const auto& value) {
      require(r.contains(field) && r[field] == value, where(field), nlohmann::json(value).dump(),
              " (use another --out for a different configuration)");
    };
    // The inputs by content (the same files may be reached by another path).
    if (r.contains("model_sha256"))
      same("model_sha256", prov.model_sha256);
    else
      same("model", prov.model);
    if (r.contains("data_sha256"))
      same("data_sha256", prov.data_sha256);
    else
      same("data", prov.data);
    same("compression_size", prov.compression_size);
    same("seed", prov.seed);
    same("test_samples", prov.test_samples);
    // Accuracies in another arithmetic are not comparable rows of one table.
    const std::string precision(nn::to_string(prov.precision));
    require(r.value("precision", std::string("f64")) == precision, "results row ", i + 1,
            " was evaluated in precision ", r.value("precision", std::string("f64")), ", this run evaluates in ",
            precision, " (--precision; use another --out to compare precisions)");
    require(r.contains("strategy") && r.contains("rule") && r.contains("layers") && r.contains("value") &&
                r["value"].is_number(),
            "results row ", i + 1, " lacks strategy, rule, layers or a numeric value");
    if (r["strategy"] != s || r["rule"] != ru || r["layers"] != lay) continue;
    same("engine", prov.engine);
    same("cpqr_method", prov.cpqr_method);
    const double v = r["value"].get<double>();
    for (std::size_t p = 0; p < grid.size(); ++p)
      if (grid[p] == v) done[p] = 1;
  }
  return done;
}

}  // namespace idprune::compress
