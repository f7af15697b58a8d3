// `idprune pareto`: accuracy / parameter Pareto fronts of greedy, the baselines and the joint
// strategies. Selection on a validation split of the training images, one test evaluation per
// final model. The result folder (compress::ParetoFiles) is written as each strategy finishes and
// resumable; DIR/config.ini, and the report (DIR/report).
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/runs.hpp"
#include "idprune/compress/strategy.hpp"

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
interpolated along its sweep), DIR/descent-path-*.csv, DIR/config.ini and the report DIR/report
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
                                    "parameter budgets, fractions of the original model");
  add_compression_set_options(options, "seed of the validation split and compression set",
                              "pivot engine of the greedy/magnitude/random sweeps: tsqr | gram | sketch | scalapack | "
                              "lapack");
  add_search_options(options);
  options.add_options()("hybrid-ranks", po::value<std::string>()->default_value(""),
                        "hybrid: first-layer ranks tried (0: not factored; default 0,16,24,32,48,64,96,128,192)");
  add_finetune_options(options,
                       "also fine-tune every selected model for E epochs on the training images outside the validation "
                       "split; reported apart (test_accuracy_finetuned, validation_accuracy_finetuned); factored "
                       "(low-rank) layers train their factors");
  add_evaluation_options(options, "rows per evaluation task");
  options.add_options()("objective", po::value<std::string>()->default_value("cross-entropy"),
                        "descent: validation objective, cross-entropy | error-rate")(
      "wave", po::value<long>()->default_value(8), "sweep models compressed together")(
      "no-report", po::bool_switch()->default_value(false), "do not build DIR/report")(
      "save-models", path(), "also write the model each strategy selected at each budget into this folder")(
      "resume", po::bool_switch()->default_value(false), "keep the strategies finished in --out, compute the rest");
  po::variables_map vm;
  if (!parse("pareto", kUsageHead + compress::strategy_help() + kUsageTail, options, args, vm)) return 0;

  app::ParetoRun run;
  run.model = vm["model"].as<std::string>();
  run.data = vm["data"].as<std::string>();
  run.out = vm["out"].as<std::string>();
  run.strategies = split_list(vm["strategies"].as<std::string>(), "--strategies");
  run.budgets = parse_doubles(vm["budgets"].as<std::string>(), "--budgets");
  run.objective = vm["objective"].as<std::string>();
  run.compression = compression_set_options("pareto", vm);
  run.search = search_options("pareto", vm);
  run.evaluation = evaluation_options("pareto", vm);
  run.finetune = finetune_options("pareto", vm);
  run.hybrid_ranks = vm["hybrid-ranks"].as<std::string>();
  run.wave = vm["wave"].as<long>();
  run.report = !vm["no-report"].as<bool>();
  run.save_models = vm.count("save-models") ? vm["save-models"].as<std::string>() : std::string();
  run.resume = vm["resume"].as<bool>();
  return app::run_pareto(run, {"pareto", options, vm});
}

}  // namespace idprune::cli
