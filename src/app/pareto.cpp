#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "idprune/app/inputs.hpp"
#include "idprune/app/runs.hpp"
#include "idprune/app/stop.hpp"
#include "idprune/compress/export.hpp"
#include "idprune/compress/finetune.hpp"
#include "idprune/compress/pareto_files.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/matrix.hpp"
#include "idprune/report/report.hpp"
#include "idprune/version.hpp"

namespace idprune::app {

namespace {

/// The study's options: the run's, with the default grids where none was given.
compress::ParetoOptions study_options(const ParetoRun& run) {
  compress::ParetoOptions popts = run.search.study;
  popts.strategies = run.strategies;
  popts.budgets = run.budgets;
  for (double b : popts.budgets)
    require(b > 0.0 && b <= 1.0, "pareto: --budgets entry ", b, " outside (0, 1] (a fraction of the parameters)");
  if (popts.eps_grid.empty()) popts.eps_grid = compress::default_eps_grid();
  if (popts.tau_grid.empty()) popts.tau_grid = compress::default_tau_grid();
  if (popts.svd_grid.empty()) popts.svd_grid = compress::default_svd_grid();
  popts.descent.objective = compress::parse_objective(run.objective);
  popts.descent.stop_fraction = 0.8 * *std::min_element(popts.budgets.begin(), popts.budgets.end());
  popts.tune.objective = popts.descent.objective;
  if (!run.hybrid_ranks.empty()) {
    popts.hybrid.first_layer_ranks.clear();
    for (double r : parse_doubles(run.hybrid_ranks, "--hybrid-ranks")) {
      require(r >= 0.0 && r == std::floor(r), "pareto: --hybrid-ranks entry ", r, " (needs an integer >= 0)");
      popts.hybrid.first_layer_ranks.push_back(static_cast<la::index_t>(r));
    }
  }
  popts.engine = run.compression.engine;
  popts.policy.seed = run.compression.seed;
  require(run.wave >= 1, "pareto: --wave=", run.wave, " (needs >= 1)");
  popts.wave_size = static_cast<std::size_t>(run.wave);
  popts.keep_models = !run.save_models.empty() || run.finetune.epochs > 0;
  compress::check_pareto_options(popts);
  return popts;
}

/// The provenance columns of every row.
nlohmann::ordered_json row_provenance(const ParetoRun& run, const compress::ParetoOptions& popts,
                                      const SelectionInputs& in, int threads) {
  nlohmann::ordered_json prov;
  prov["original_params"] = in.model.parameter_count();
  prov["original_validation_accuracy"] = in.validation.original_scores().accuracy();
  prov["original_test_accuracy"] = in.test.original_scores().accuracy();
  prov["compression_size"] = run.compression.size;
  prov["validation_size"] = run.search.validation_size;
  prov["test_samples"] = in.test_samples;
  prov["seed"] = run.compression.seed;
  prov["mean_compensation"] = popts.policy.mean_compensation;
  prov["engine"] = std::string(dist::to_string(popts.engine.pivot.engine));
  prov["cpqr_method"] = std::string(la::to_string(popts.engine.cpqr_method));
  prov["step"] = popts.descent.step;
  prov["objective"] = std::string(compress::to_string(popts.descent.objective));
  prov["ranks"] = in.compression_set.comm().size();
  prov["threads"] = threads;
  prov["model"] = run.model;
  prov["data"] = run.data;
  prov["model_sha256"] = in.model_sha256;
  prov["data_sha256"] = in.data_sha256;
  prov["git_revision"] = git_revision();
  prov["version"] = version_string();
  prov["blas_core"] = la::blas_core_name();
  // As in sweep rows: float64 keeps the historical columns, a float32 evaluation is always marked.
  if (run.evaluation.precision != nn::Precision::f64)
    prov["precision"] = std::string(nn::to_string(run.evaluation.precision));
  return prov;
}

/// Collective: each row's model, rounded to float32 and scored again (the file's accuracies), written
/// by rank 0 as DIR/STRATEGY_BUDGET.safetensors with its sensitivity table beside it.
void save_models(const std::string& dir, const SelectionInputs& in, std::span<const compress::ParetoRow> rows,
                 const compress::CompressionProvenance& prov, const compress::PolicyOptions& policy, bool root) {
  for (const compress::ParetoRow& row : rows) {
    compress::CompressedNetwork network = compress::network_of_row(in.model, row, in.validation, in.test);
    network.sensitivity = compress::sensitivity_table(in.model, network.compressed, in.compression_set);
    compress::CompressRequest request;
    request.budget = row.budget;
    request.budget_strategies = {row.strategy};
    request.policy = policy;
    nn::ModelWriteOptions write;
    write.metadata = compress::compression_metadata(in.model, network, request, prov);
    std::ostringstream name;
    name << row.strategy << "_" << row.budget;
    const std::string base = (std::filesystem::path(dir) / name.str()).string();
    dist::check_collective(in.compression_set.comm(), dist::capture_error([&] {
                             if (!root) return;
                             nn::write_model(base + ".safetensors", network.compressed.model, write);
                             compress::write_sensitivity_csv(base + ".layers.csv", network.sensitivity);
                           }));
  }
}

/// The plot and table of the fronts (the report layer reads DIR/pareto.csv). A missing gnuplot
/// leaves the tables in place and says so.
void build_report(const std::string& out_dir) {
  try {
    const std::filesystem::path dir(out_dir);
    report::ReportOptions ro;
    ro.result_dirs = {dir};
    ro.out = dir / "report";
    ro.title = "idprune pareto";
    const auto s = report::build_report(ro);
    std::cerr << "pareto: report in " << s.out.string() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "pareto: no report (" << printable(e.what()) << "); run 'idprune report " << out_dir << "'\n";
  }
}

}  // namespace

int run_pareto(const ParetoRun& run, const CommandLine& command_line) {
  // A search allocates and frees matrices of megabytes for every candidate and layer.
  (void)la::retain_freed_memory();
  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  compress::ParetoOptions popts = study_options(run);
  const RunThreads threads("pareto", run.evaluation.threads, root);

  // The results folder first (rank 0): locked for this run, so a second run fails at once.
  std::optional<compress::ParetoFiles> files;
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           files.emplace(run.out, run.resume, "idprune pareto");
                           for (const auto& note : files->notes()) std::cerr << "pareto: " << note << "\n";
                           if (!run.save_models.empty()) io::prepare_output_folder(run.save_models);
                         }));

  // This rank's rows of the compression, validation and test sets. The validation split and the
  // compression set both come from the training images; the test set is read only for evaluation.
  const SelectionInputs in =
      load_selection_inputs(comm, "pareto", run.model, {}, run.data, run.compression.size, run.search.validation_size,
                            run.evaluation.test_size, run.compression.seed, run.evaluation);

  // What a resumed run must share with the finished strategies: every option that decides results,
  // the inputs by content (not by path).
  nlohmann::ordered_json run_settings = settings(
      command_line.options, command_line.vm, {"model", "data", "out", "strategies", "threads", "no-report", "resume"});
  run_settings["model_sha256"] = in.model_sha256;
  run_settings["data_sha256"] = in.data_sha256;
  std::string todo_list;
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           const std::vector<std::string> todo = files->unfinished(popts.strategies, run_settings);
                           for (const auto& name : todo) todo_list += (todo_list.empty() ? "" : ",") + name;
                           write_resolved_config((std::filesystem::path(run.out) / "config.ini").string(), "pareto",
                                                 command_line.options, command_line.vm,
                                                 {{"model_sha256", in.model_sha256}, {"data_sha256", in.data_sha256}});
                         }));
  comm.bcast_string(todo_list, 0);

  const std::vector<std::string> todo = todo_list.empty() ? std::vector<std::string>() : split_list(todo_list, "todo");
  if (root)
    std::cerr << "pareto: " << popts.strategies.size() << " strategies (" << popts.strategies.size() - todo.size()
              << " already in " << run.out << ") x " << popts.budgets.size() << " budgets; "
              << in.model.parameter_count() << " parameters, " << in.summary(threads.count()) << "\n";
  const nlohmann::ordered_json prov = row_provenance(run, popts, in, threads.count());
  const compress::CompressionProvenance prov_of_models = in.provenance(run.compression.seed);
  if (root && !run.save_models.empty() && todo.size() < popts.strategies.size())
    std::cerr << "pareto: --save-models writes the models of the strategies computed now, not of those kept from "
                 "the earlier run\n";

  StopSignals signals("pareto", "strategy", root);
  compress::ParetoHooks hooks;
  hooks.log = [&](const std::string& line) {
    if (root) std::cerr << line << "\n";
  };
  // Fine-tuning (optional): every training image outside the validation split, on every rank.
  FinetuneData tuning;
  if (run.finetune.epochs > 0)
    tuning = load_finetune_data(comm, run.data, run.search.validation_size, run.compression.seed);
  hooks.on_strategy = [&](const compress::ParetoCurve& curve, std::span<const compress::ParetoRow> new_rows) {
    std::vector<compress::ParetoRow> rows(new_rows.begin(), new_rows.end());
    if (run.finetune.epochs > 0) {
      nn::TrainOptions o;
      o.epochs = run.finetune.epochs;
      o.learning_rate = run.finetune.learning_rate;
      o.seed = run.compression.seed;
      for (auto& row : rows) {
        row.model.finetuned = true;
        if (!row.model.network) continue;
        const auto tuned =
            compress::finetune_and_score(*row.model.network, tuning.x, tuning.y, o, in.validation, in.test);
        row.model.validation_accuracy_finetuned = tuned.validation.accuracy();
        row.model.test_accuracy_finetuned = tuned.test.accuracy();
      }
    }
    // Recorded as it finishes: an interrupted study resumes with it kept.
    dist::check_collective(comm, dist::capture_error([&] {
                             if (!root) return;
                             files->record(curve, rows, prov);
                             std::cerr << "pareto: " << curve.strategy << " done in " << std::fixed
                                       << std::setprecision(1) << curve.seconds << " s (" << curve.models.size()
                                       << " models evaluated)\n"
                                       << std::defaultfloat;
                           }));
    if (!run.save_models.empty()) save_models(run.save_models, in, new_rows, prov_of_models, popts.policy, root);
    throw_if_stop_requested(comm, signals);
  };
  if (!todo.empty()) {
    popts.strategies = todo;
    try {
      (void)compress::run_pareto(in.model, in.compression_set, in.validation, in.test, popts, hooks);
    } catch (const StopRequested&) {
      if (root)
        std::cerr << "pareto: stopped by a signal after a finished strategy; resume with: idprune pareto --config "
                  << run.out << "/config.ini --resume\n";
      return signals.exit_code();
    }
  }

  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           compress::ParetoResult originals;
                           originals.original_params = in.model.parameter_count();
                           originals.original_validation = in.validation.original_scores();
                           originals.original_test = in.test.original_scores();
                           const auto comparisons = compress::compare_with_greedy(files->result(originals));
                           files->write_summary(comparisons);
                           std::cout << compress::format_comparisons(comparisons)
                                     << (std::filesystem::path(run.out) / "pareto.csv").string() << "\n";
                         }));
  if (root && run.report) build_report(run.out);
  return 0;
}

}  // namespace idprune::app
