#include "idprune/compress/sweep.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>

#include "idprune/app/compression_set.hpp"
#include "idprune/app/inputs.hpp"
#include "idprune/app/runs.hpp"
#include "idprune/app/stop.hpp"
#include "idprune/compress/progress.hpp"
#include "idprune/compress/results.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/matrix.hpp"
#include "idprune/version.hpp"

namespace idprune::app {

namespace {

/// The provenance columns of every row of the sweep.
compress::SweepProvenance sweep_provenance(const SweepRun& run, const SweepData& d, const std::string& model_sha256,
                                           const dist::Comm& comm, int threads) {
  compress::SweepProvenance prov;
  prov.model = run.model;
  prov.data = run.data;
  prov.model_sha256 = model_sha256;
  prov.data_sha256 = d.data_sha256;
  prov.compression_size = d.compression_size;
  prov.test_samples = d.test_samples;
  prov.seed = run.compression.seed;
  prov.engine = std::string(dist::to_string(run.compression.engine.pivot.engine));
  prov.cpqr_method = std::string(la::to_string(run.compression.engine.cpqr_method));
  prov.ranks = comm.size();
  prov.threads = threads;
  prov.wave_size = static_cast<std::size_t>(run.wave > 0 ? run.wave : 2L * threads);
  prov.git_revision = git_revision();
  prov.version = version_string();
  prov.blas_core = la::blas_core_name();
  prov.precision = run.evaluation.precision;
  prov.compare_precision = run.evaluation.compare_precision;
  return prov;
}

/// OUT/config.ini and OUT/config-STRATEGY-RULE-LAYERS.ini (the folder may gather several sweeps).
void write_configs(const CommandLine& cl, const std::string& out_dir, const std::string& name,
                   const std::vector<std::pair<std::string, std::string>>& hashes) {
  write_resolved_config((std::filesystem::path(out_dir) / "config.ini").string(), cl.command, cl.options, cl.vm,
                        hashes);
  std::string safe = name;
  std::replace(safe.begin(), safe.end(), ';', '_');
  write_resolved_config((std::filesystem::path(out_dir) / safe).string(), cl.command, cl.options, cl.vm, hashes);
}

}  // namespace

int run_sweep(const SweepRun& run, const CommandLine& command_line) {
  const compress::StrategyInfo& info = compress::strategy(run.strategy);
  require(!info.sweep_rules.empty(), "sweep: strategy '", info.name, "' is not a sweep strategy (sweep takes ",
          compress::strategy_names(true), "; the others run in idprune pareto)");
  require(!run.mean_compensation || compress::takes_mean_compensation(info.policy),
          "sweep: --mean-compensation applies to the id, corrected, random and output strategies, not to ", info.name);
  // Compensated rows are another strategy's rows: a resumed sweep never mixes them.
  const std::string strategy = std::string(info.name) + (run.mean_compensation ? "+mean" : "");
  const auto rule = compress::parse_rank_rule(run.rule);
  const std::vector<double> grid = parse_doubles(run.grid, "--grid");
  for (double v : grid) compress::strategy_policy(info)->check(compress::LayerRule{rule, v});
  require(std::find(info.sweep_rules.begin(), info.sweep_rules.end(), rule) != info.sweep_rules.end(),
          "sweep: strategy ", info.name, " does not take the rule ", compress::to_string(rule),
          " (see idprune sweep --help)");
  // Matrices of megabytes are allocated and freed for every point and layer.
  (void)la::retain_freed_memory();

  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  const RunThreads threads("sweep", run.evaluation.threads, root);
  require(run.wave >= 0, "sweep: --wave=", run.wave, " (needs >= 0)");
  compress::EngineOptions copts = run.compression.engine;
  copts.complete_factorizations = info.complete_factorizations;
  compress::PolicyOptions policy;
  policy.seed = run.compression.seed;
  policy.mean_compensation = run.mean_compensation;

  // The results folder first (rank 0 only): locked for this run, so that a second run on it fails
  // at once, before any loading.
  std::optional<compress::ResultsFiles> files;
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           files.emplace(run.out, run.resume, "idprune sweep");
                           for (const auto& note : files->notes()) std::cerr << "sweep: " << note << "\n";
                         }));

  // Phase boundaries (model, data, results folder, each wave) end with a collective error check, so
  // a failure on one rank (a missing or corrupt file on its node) ends every rank with one message.
  std::string model_sha256;
  const nn::Mlp model = load_model_on_every_rank(comm, "sweep", run.model, model_sha256);
  SweepData d;
  dist::check_collective(comm, dist::capture_error([&] {
                           d = load_sweep_data(comm, "sweep", model, run.model, run.data, run.layers, run.compression,
                                               run.evaluation.test_size, threads.count());
                         }));
  check_same_data(comm, "sweep", run.data, d.data_sha256);
  compress::SweepProvenance prov = sweep_provenance(run, d, model_sha256, comm, threads.count());
  const std::vector<la::index_t>& layers = d.layers;

  // The points the folder already holds; its configuration (inputs identified by content).
  std::vector<char> finished(grid.size(), 0);
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           finished = compress::finished_points(files->records(), grid, strategy, rule, layers, prov);
                           write_configs(command_line, run.out,
                                         "config-" + strategy + "-" + std::string(compress::to_string(rule)) + "-" +
                                             compress::layers_label(layers) + ".ini",
                                         {{"model_sha256", model_sha256}, {"data_sha256", d.data_sha256}});
                         }));
  comm.bcast(std::span<char>(finished), 0);

  compress::ScorerOptions scoring;
  scoring.batch_rows = run.evaluation.batch_rows;
  scoring.precision = run.evaluation.precision;
  scoring.compare_precision = run.evaluation.compare_precision;
  const compress::Scorer test(model, std::move(d.xt), std::move(d.yt), comm, scoring);
  prov.original_accuracy = test.original_scores().accuracy();
  std::optional<compress::CompressionEngine> engine_slot;
  dist::check_collective(
      comm, dist::capture_error([&] {
        engine_slot.emplace(
            run.compression.plain()
                ? compress::CompressionEngine(
                      model, dist::DistMatrix::block_distributed(comm, std::move(d.xc), d.compression_size), copts)
                : compression_engine("sweep", comm, model, d.set_rows, run.compression, copts));
      }));
  compress::CompressionEngine& engine = *engine_slot;

  const std::size_t skipped = static_cast<std::size_t>(std::count(finished.begin(), finished.end(), 1));
  if (root)
    std::cerr << "sweep: " << strategy << " / " << compress::to_string(rule) << ", " << grid.size() << " points ("
              << skipped << " already in " << run.out << "), layers " << compress::layers_label(layers)
              << ", original accuracy " << prov.original_accuracy << " on " << d.test_samples << " test images, "
              << model.parameter_count() << " parameters; " << comm.size() << " rank(s) x " << threads.count()
              << " thread(s), engine " << prov.engine << "\n";

  compress::Progress progress(std::cerr, "sweep", grid.size(), skipped, compress::is_terminal(2),
                              run.progress_interval);
  std::size_t done = skipped;
  compress::SweepOptions sopts;
  sopts.rule = rule;
  sopts.grid = grid;
  sopts.layers = layers;
  sopts.wave_size = prov.wave_size;
  compress::SweepHooks hooks;
  hooks.on_wave = [&](std::span<const compress::SweepRow> rows) {
    // Test facility: a failure outside any check while the other ranks wait in the one below.
    if (!rows.empty()) dist::inject_fault(comm.rank(), "wave-abort", static_cast<long>(rows.front().wave));
    // Rank 0 writes; a write failure there must end every rank, not leave them waiting.
    const std::string e = dist::capture_error([&] {
      if (!root) return;
      std::vector<nlohmann::ordered_json> records;
      for (const auto& row : rows) records.push_back(compress::sweep_record(row, strategy, rule, layers, prov));
      files->append(records);
      done += rows.size();
      progress.update(done);
    });
    dist::check_collective(comm, e);
  };
  std::optional<StopSignals> signals;
  hooks.stop_requested = [&] { return signals->requested(); };
  hooks.before_wave = [&](std::size_t w) { dist::inject_fault(comm.rank(), "wave", static_cast<long>(w)); };

  signals.emplace("sweep", "wave", root);
  const compress::SweepSummary summary = compress::run_sweep(engine, info, policy, test, sopts, finished, hooks);
  const int stop_code = signals->exit_code();
  signals.reset();
  if (root) {
    progress.finish();
    const auto& st = engine.stats();
    std::cerr << "sweep: " << summary.computed << " points computed in " << summary.waves << " waves ("
              << summary.skipped << " skipped); compression: activations " << st.activation_seconds
              << " s, factorizations " << st.factorization_seconds << " s (" << st.factorizations << " engine calls), "
              << "least squares " << st.least_squares_seconds << " s, selection and folds " << st.fold_seconds
              << " s\n";
    if (summary.stopped)
      std::cerr << "sweep: stopped by a signal after a finished wave; every finished point is in " << run.out
                << "/results.csv. Resume with: idprune sweep --config " << run.out << "/config.ini --resume\n";
    else
      std::cout << run.out << "/results.csv\n";
  }
  return summary.stopped ? stop_code : 0;
}

}  // namespace idprune::app
