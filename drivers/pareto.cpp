// `idprune pareto`: accuracy / parameter Pareto fronts of greedy, the baselines and the joint
// strategies. Selection on a validation split of the training images, one test evaluation per
// final model. The result folder (compress::ParetoFiles) is written as each strategy finishes and
// resumable; DIR/config.ini, and the report (DIR/report).
#include "idprune/compress/pareto.hpp"

#include <array>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/compress/export.hpp"
#include "idprune/compress/finetune.hpp"
#include "idprune/compress/pareto_files.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/dist/parallelism.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/nn/model_io.hpp"
#include "idprune/report/report.hpp"
#include "idprune/version.hpp"

namespace idprune::cli {

namespace {

const char* const kUsageHead = R"(--model M --data D --out DIR [--strategies greedy,magnitude,svd,...]
       [--budgets 0.05,0.075,0.1,0.15,0.2,0.3] [--compression-size 2000] [--validation-size 5000]
       [--seed S] [--threads T] [--intercept] [--mean-compensation] [--step 0.05] [--objective cross-entropy|error-rate]
       [--save-models MODELS_DIR] [--finetune-epochs E]

For every strategy and parameter budget (a fraction of the model's parameters), the strategy's best
compressed model within the budget: selected on a VALIDATION split of the training images
(--validation-size images, drawn with --seed), then evaluated once on the test set. The compression
set (--compression-size images) is drawn from the remaining training images.
Strategies (family: sweep = a grid refined towards each budget, budget = one allocation per budget,
search = a search on the validation split; joint is an alias of descent):
)";
const char* const kUsageTail =
    R"(Writes DIR/pareto.csv, DIR/pareto-curves.csv, DIR/pareto-summary.csv (each strategy vs greedy
interpolated along its sweep), DIR/joint-path-*.csv, DIR/config.ini and the report DIR/report
(--no-report to skip). Each strategy is recorded in DIR/pareto-strategies.jsonl as it finishes;
--resume keeps the finished ones (same options and the same model and data contents) and computes
the rest. SIGINT/SIGTERM/SIGUSR1 stop after the strategy in flight (a second one at once). One run
at a time per folder (DIR/idprune.lock).
--save-models MODELS_DIR writes the model each strategy selected at each budget as it finishes:
MODELS_DIR/STRATEGY_BUDGET.safetensors (float32, e.g. budget-corrected_0.2.safetensors) with the
metadata of `idprune compress` (kept neurons, accuracies of the file, provenance) and its
sensitivity table STRATEGY_BUDGET.layers.csv (strategies kept from an earlier run by --resume are
not written again).

Example:
  idprune pareto --model data/models/fashion-mnist-small.safetensors --data data/fashion-mnist-small \
                 --strategies greedy,svd,budget --validation-size 1000 --out results/pareto)";

/// Collective: each row's model, rounded to float32 and scored again (the file's accuracies), written
/// by rank 0 as DIR/STRATEGY_BUDGET.safetensors with its sensitivity table beside it.
void save_models(const std::string& dir, const nn::Mlp& model, const dist::DistMatrix& xc,
                 const compress::Scorer& validation, const compress::Scorer& test,
                 std::span<const compress::ParetoRow> rows, const compress::CompressionProvenance& prov,
                 const compress::PolicyOptions& policy, bool root) {
  for (const compress::ParetoRow& row : rows) {
    compress::CompressedNetwork network = compress::network_of_row(model, row, validation, test);
    network.sensitivity = compress::sensitivity_table(model, network.compressed, xc);
    compress::CompressRequest request;
    request.budget = row.budget;
    request.budget_strategies = {row.strategy};
    request.policy = policy;
    nn::ModelWriteOptions write;
    write.metadata = compress::compression_metadata(model, network, request, prov);
    std::ostringstream name;
    name << row.strategy << "_" << row.budget;
    const std::string base = (std::filesystem::path(dir) / name.str()).string();
    dist::check_collective(xc.comm(), dist::capture_error([&] {
                             if (!root) return;
                             nn::write_model(base + ".safetensors", network.compressed.model, write);
                             compress::write_sensitivity_csv(base + ".layers.csv", network.sensitivity);
                           }));
  }
}

}  // namespace

int run_pareto(const std::vector<std::string>& args) {
  po::options_description options("pareto options");
  options.add_options()("model", path()->required(), "model file (.safetensors) or .npy folder")(
      "data", path()->required(), "data folder (Fashion-MNIST IDX or CIFAR-10 batches)")("out", path()->required(),
                                                                                         "output folder")(
      "strategies",
      po::value<std::string>()->default_value(
          "greedy,greedy-fraction,magnitude,svd,corrected,spectrum,spectrum-corrected,budget,budget-corrected,descent,"
          "descent-corrected"),
      "comma-separated strategies")("budgets", po::value<std::string>()->default_value("0.05,0.075,0.1,0.15,0.2,0.3"),
                                    "parameter budgets, fractions of the original model")(
      "compression-size", po::value<long>()->default_value(2000), "images in the compression set")(
      "validation-size", po::value<long>()->default_value(5000), "training images held out for selection")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the validation split and compression set")(
      "test-size", po::value<long>()->default_value(0), "evaluate on the first N test images (0: all)")(
      "eps-grid", po::value<std::string>()->default_value(""), "eps values of the sweeps (default: 1e-3..10, log)")(
      "tau-grid", po::value<std::string>()->default_value(""), "spectrum tolerances (default: 1e-4..1, log)")(
      "svd-grid", po::value<std::string>()->default_value(""),
      "svd rank fractions and greedy-fraction's kept fractions (default: 0.01..1, log)")(
      "step", real(0.05), "descent: fraction of the parameters one move removes (at most half of a layer's neurons)")(
      "objective", po::value<std::string>()->default_value("cross-entropy"),
      "descent: validation objective, cross-entropy | error-rate")(
      "budget-iterations", po::value<int>()->default_value(3), "budget: allocation rounds")(
      "tune-rounds", po::value<int>()->default_value(3), "tuned: coordinate-descent rounds")(
      "budget-kind", po::value<std::string>()->default_value("params"),
      "hybrid: what its budgets count, params | flops (fractions of the original's)")(
      "hybrid-ranks", po::value<std::string>()->default_value(""),
      "hybrid: first-layer ranks tried (0: not factored; default 0,16,24,32,48,64,96,128,192)")(
      "engine", po::value<std::string>()->default_value("tsqr"),
      "pivot engine of the greedy/magnitude/random sweeps: tsqr | gram | sketch | scalapack | lapack")(
      "cpqr-method", po::value<std::string>()->default_value("blocked"), "local CPQR: blocked | unblocked | lapack")(
      "threads", po::value<int>()->default_value(0), "threads per rank (0: the cores this process may use)")(
      "wave", po::value<long>()->default_value(8), "sweep models compressed together")(
      "refine", po::value<int>()->default_value(5), "sweeps: bisection rounds towards every budget")(
      "batch-rows", po::value<long>()->default_value(500), "rows per evaluation task")(
      "intercept", po::bool_switch()->default_value(false),
      "corrected strategies: least-squares fit with an intercept (the next layer gains a bias)")(
      "mean-compensation", po::bool_switch()->default_value(false),
      "id, corrected, random and output strategies: the next layer's bias absorbs the mean residual (the "
      "next layer's mean pre-activation on the compression set stays the original's)")(
      "finetune-epochs", po::value<int>()->default_value(0),
      "also fine-tune every selected model for E epochs on the training images outside the validation split; "
      "reported apart (test_accuracy_finetuned, validation_accuracy_finetuned; NaN for svd models)")(
      "finetune-lr", real(1e-4), "fine-tuning: Adam learning rate (cosine schedule)")(
      "no-report", po::bool_switch()->default_value(false), "do not build DIR/report")(
      "save-models", path(), "also write the model each strategy selected at each budget into this folder")(
      "resume", po::bool_switch()->default_value(false), "keep the strategies finished in --out, compute the rest");
  po::variables_map vm;
  if (!parse("pareto", kUsageHead + compress::strategy_help() + kUsageTail, options, args, vm)) return 0;

  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  compress::ParetoOptions popts;
  popts.strategies = split_list(vm["strategies"].as<std::string>(), "--strategies");
  popts.budgets = parse_doubles(vm["budgets"].as<std::string>(), "--budgets");
  for (double b : popts.budgets)
    require(b > 0.0 && b <= 1.0, "pareto: --budgets entry ", b, " outside (0, 1] (a fraction of the parameters)");
  const auto grid = [&](const char* key, std::vector<double> fallback) {
    const std::string text = vm[key].as<std::string>();
    return text.empty() ? fallback : parse_doubles(text, std::string("--") + key);
  };
  popts.eps_grid = grid("eps-grid", compress::default_eps_grid());
  popts.tau_grid = grid("tau-grid", compress::default_tau_grid());
  popts.svd_grid = grid("svd-grid", compress::default_svd_grid());
  popts.descent.step = vm["step"].as<double>();
  popts.descent.objective = compress::parse_objective(vm["objective"].as<std::string>());
  popts.descent.stop_fraction = 0.8 * *std::min_element(popts.budgets.begin(), popts.budgets.end());
  popts.budget.iterations = vm["budget-iterations"].as<int>();
  popts.tune.rounds = vm["tune-rounds"].as<int>();
  popts.hybrid.kind = compress::parse_budget_kind(vm["budget-kind"].as<std::string>());
  popts.hybrid.budget = popts.budget;
  if (const std::string ranks = vm["hybrid-ranks"].as<std::string>(); !ranks.empty()) {
    popts.hybrid.first_layer_ranks.clear();
    for (double r : parse_doubles(ranks, "--hybrid-ranks")) {
      require(r >= 0.0 && r == std::floor(r), "pareto: --hybrid-ranks entry ", r, " (needs an integer >= 0)");
      popts.hybrid.first_layer_ranks.push_back(static_cast<la::index_t>(r));
    }
  }
  popts.tune.objective = popts.descent.objective;
  popts.engine.pivot.engine = dist::parse_pivot_engine(vm["engine"].as<std::string>());
  popts.engine.cpqr_method = la::parse_cpqr_method(vm["cpqr-method"].as<std::string>());
  popts.policy.intercept = vm["intercept"].as<bool>();
  popts.policy.mean_compensation = vm["mean-compensation"].as<bool>();
  const long wave = vm["wave"].as<long>();
  require(wave >= 1, "pareto: --wave=", wave, " (needs >= 1)");
  popts.wave_size = static_cast<std::size_t>(wave);
  popts.refine = vm["refine"].as<int>();
  const long compression_size = vm["compression-size"].as<long>();
  const long validation_size = vm["validation-size"].as<long>();
  const long test_size = vm["test-size"].as<long>();
  const long batch_rows = vm["batch-rows"].as<long>();
  require(compression_size >= 1, "pareto: --compression-size=", compression_size, " (needs >= 1)");
  require(validation_size >= 1, "pareto: --validation-size=", validation_size, " (needs >= 1)");
  require(test_size >= 0, "pareto: --test-size=", test_size, " (needs >= 0)");
  require(batch_rows >= 1, "pareto: --batch-rows=", batch_rows, " (needs >= 1)");
  const auto seed = vm["seed"].as<unsigned long>();
  popts.policy.seed = seed;
  const std::string model_path = vm["model"].as<std::string>();
  const std::string data_dir = vm["data"].as<std::string>();
  const std::string out_dir = vm["out"].as<std::string>();

  const bool resume = vm["resume"].as<bool>();
  const std::string models_dir = vm.count("save-models") ? vm["save-models"].as<std::string>() : std::string();
  const int finetune_epochs = vm["finetune-epochs"].as<int>();
  require(finetune_epochs >= 0, "pareto: --finetune-epochs=", finetune_epochs, " (needs >= 0)");
  const double finetune_lr = vm["finetune-lr"].as<double>();
  require(finetune_lr > 0.0, "pareto: --finetune-lr=", finetune_lr, " (needs > 0)");
  popts.keep_models = !models_dir.empty() || finetune_epochs > 0;
  compress::check_pareto_options(popts);
  const dist::ResolvedThreads resolved = dist::resolve_threads(vm["threads"].as<int>(), "--threads");
  if (root && !resolved.warning.empty()) std::cerr << "pareto: " << resolved.warning << "\n";
  const int threads = resolved.threads;
  const dist::ThreadLimit thread_limit(threads);

  // The results folder first (rank 0): locked for this run, so a second run fails at once.
  std::optional<compress::ParetoFiles> files;
  std::string error = dist::capture_error([&] {
    if (!root) return;
    files.emplace(out_dir, resume, "idprune pareto");
    for (const auto& note : files->notes()) std::cerr << "pareto: " << note << "\n";
    if (!models_dir.empty()) io::prepare_output_folder(models_dir);
  });
  dist::check_collective(comm, error);

  // This rank's rows of the compression, validation and test sets. The validation split and the
  // compression set both come from the training images; the test set is read only for evaluation.
  std::string model_sha256;
  const nn::Mlp model = load_model_on_every_rank(comm, "pareto", model_path, model_sha256);
  std::string data_sha256;
  la::Matrix xc;
  la::Matrix xv;
  std::vector<int> yv;
  la::Matrix xt;
  std::vector<int> yt;
  std::int64_t n_test = 0;
  error = dist::capture_error([&] {
    SelectionData d = load_selection_data(comm, "pareto", model, model_path, data_dir, compression_size,
                                          validation_size, test_size, seed);
    xc = std::move(d.xc);
    xv = std::move(d.xv);
    yv = std::move(d.yv);
    xt = std::move(d.xt);
    yt = std::move(d.yt);
    n_test = d.test_samples;
    data_sha256 = std::move(d.data_sha256);
  });
  dist::check_collective(comm, error);
  check_same_data(comm, "pareto", data_dir, data_sha256);

  // What a resumed run must share with the finished strategies: every option that decides results,
  // the inputs by content (not by path).
  nlohmann::ordered_json run_settings =
      settings(options, vm, {"model", "data", "out", "strategies", "threads", "no-report", "resume"});
  run_settings["model_sha256"] = model_sha256;
  run_settings["data_sha256"] = data_sha256;
  std::string todo_list;
  error = dist::capture_error([&] {
    if (!root) return;
    const std::vector<std::string> todo = files->unfinished(popts.strategies, run_settings);
    for (const auto& name : todo) todo_list += (todo_list.empty() ? "" : ",") + name;
    write_resolved_config((std::filesystem::path(out_dir) / "config.ini").string(), "pareto", options, vm,
                          {{"model_sha256", model_sha256}, {"data_sha256", data_sha256}});
  });
  dist::check_collective(comm, error);
  comm.bcast_string(todo_list, 0);

  const dist::DistMatrix xcd = dist::DistMatrix::block_distributed(comm, std::move(xc), compression_size);
  // Selection reads the validation loss; it scores through the layers' own products (the shared
  // second-layer shortcut agrees only to rounding, which could tip a search's near ties).
  compress::ScorerOptions vopts;
  vopts.batch_rows = batch_rows;
  vopts.cross_entropy = true;
  vopts.second_layer_shortcut = false;
  compress::ScorerOptions topts;
  topts.batch_rows = batch_rows;
  const compress::Scorer validation(model, std::move(xv), std::move(yv), comm, vopts);
  const compress::Scorer test(model, std::move(xt), std::move(yt), comm, topts);
  const std::int64_t total_params = model.parameter_count();
  const std::vector<std::string> todo = todo_list.empty() ? std::vector<std::string>() : split_list(todo_list, "todo");
  if (root)
    std::cerr << "pareto: " << popts.strategies.size() << " strategies (" << popts.strategies.size() - todo.size()
              << " already in " << out_dir << ") x " << popts.budgets.size() << " budgets; " << total_params
              << " parameters, validation accuracy " << validation.original_scores().accuracy() << " on "
              << validation.samples() << " held-out training images, test accuracy "
              << test.original_scores().accuracy() << " on " << n_test << " test images; compression set "
              << compression_size << "; " << comm.size() << " rank(s) x " << threads << " thread(s)\n";

  // Provenance columns of every row.
  nlohmann::ordered_json prov;
  prov["original_params"] = total_params;
  prov["original_validation_accuracy"] = validation.original_scores().accuracy();
  prov["original_test_accuracy"] = test.original_scores().accuracy();
  prov["compression_size"] = compression_size;
  prov["validation_size"] = validation_size;
  prov["test_samples"] = n_test;
  prov["seed"] = seed;
  prov["mean_compensation"] = popts.policy.mean_compensation;
  prov["engine"] = std::string(dist::to_string(popts.engine.pivot.engine));
  prov["cpqr_method"] = std::string(la::to_string(popts.engine.cpqr_method));
  prov["step"] = popts.descent.step;
  prov["objective"] = std::string(compress::to_string(popts.descent.objective));
  prov["ranks"] = comm.size();
  prov["threads"] = threads;
  prov["model"] = model_path;
  prov["data"] = data_dir;
  prov["model_sha256"] = model_sha256;
  prov["data_sha256"] = data_sha256;
  prov["git_revision"] = git_revision();
  prov["version"] = version_string();
  prov["blas_core"] = la::blas_core_name();

  compress::CompressionProvenance prov_of_models;
  prov_of_models.original_sha256 = model_sha256;
  prov_of_models.data_sha256 = data_sha256;
  prov_of_models.compression_size = compression_size;
  prov_of_models.validation_size = validation_size;
  prov_of_models.seed = seed;
  if (root && !models_dir.empty() && todo.size() < popts.strategies.size())
    std::cerr << "pareto: --save-models writes the models of the strategies computed now, not of those kept from "
                 "the earlier run\n";

  StopSignals signals("pareto", "strategy", root);
  compress::ParetoHooks hooks;
  hooks.log = [&](const std::string& line) {
    if (root) std::cerr << line << "\n";
  };
  // Fine-tuning (optional): every training image outside the validation split, on every rank.
  la::Matrix xf;
  std::vector<int> yf;
  if (finetune_epochs > 0)
    dist::check_collective(comm, dist::capture_error([&] {
                             const auto info = data::dataset_info(data_dir, data::Split::train);
                             const auto split = data::train_validation_split(info.samples, validation_size, seed);
                             auto d = data::load_dataset_rows(data_dir, data::Split::train, split.train);
                             xf = std::move(d.x);
                             yf = std::move(d.y);
                           }));
  hooks.on_strategy = [&](const compress::ParetoCurve& curve, std::span<const compress::ParetoRow> new_rows) {
    std::vector<compress::ParetoRow> rows(new_rows.begin(), new_rows.end());
    if (finetune_epochs > 0) {
      nn::TrainOptions o;
      o.epochs = finetune_epochs;
      o.learning_rate = finetune_lr;
      o.seed = seed;
      for (auto& row : rows) {
        row.model.finetuned = true;
        if (!row.model.network || !compress::finetunable(*row.model.network)) continue;
        const auto tuned = compress::finetune_and_score(*row.model.network, xf, yf, o, validation, test);
        row.model.validation_accuracy_finetuned = tuned.validation.accuracy();
        row.model.test_accuracy_finetuned = tuned.test.accuracy();
      }
    }
    // Recorded as it finishes: an interrupted study resumes with it kept.
    const std::string e = dist::capture_error([&] {
      if (!root) return;
      files->record(curve, rows, prov);
      std::cerr << "pareto: " << curve.strategy << " done in " << std::fixed << std::setprecision(1) << curve.seconds
                << " s (" << curve.models.size() << " models evaluated)\n"
                << std::defaultfloat;
    });
    dist::check_collective(comm, e);
    if (!models_dir.empty())
      save_models(models_dir, model, xcd, validation, test, new_rows, prov_of_models, popts.policy, root);
    throw_if_stop_requested(comm, signals);
  };
  if (!todo.empty()) {
    popts.strategies = todo;
    try {
      (void)compress::run_pareto(model, xcd, validation, test, popts, hooks);
    } catch (const StopRequested&) {
      if (root)
        std::cerr << "pareto: stopped by a signal after a finished strategy; resume with: idprune pareto --config "
                  << out_dir << "/config.ini --resume\n";
      return signals.exit_code();
    }
  }

  error = dist::capture_error([&] {
    if (!root) return;
    compress::ParetoResult originals;
    originals.original_params = total_params;
    originals.original_validation = validation.original_scores();
    originals.original_test = test.original_scores();
    const auto comparisons = compress::compare_with_greedy(files->result(originals));
    files->write_summary(comparisons);
    std::cout << compress::format_comparisons(comparisons) << (std::filesystem::path(out_dir) / "pareto.csv").string()
              << "\n";
  });
  dist::check_collective(comm, error);

  if (root && !vm["no-report"].as<bool>()) {
    // The plot and table of the fronts (the report layer reads DIR/pareto.csv). A missing gnuplot
    // leaves the tables in place and says so.
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
  return 0;
}

}  // namespace idprune::cli
