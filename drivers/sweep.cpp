// `idprune sweep`: one compression strategy over a grid of rank-rule values, one row per point in
// DIR/results.csv and DIR/results.jsonl (crash-safe, resumable), DIR/config.ini to repeat the run.
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/runs.hpp"
#include "idprune/compress/strategy.hpp"

namespace idprune::cli {

namespace {

const char* const kUsageHead = R"(--model M --data D --strategy NAME --rule eps|k|fraction|rank
       --grid v1,v2,... --out DIR [--layers 1,2,...] [--compression-size 2000] [--seed S]
       [--engine tsqr|gram|sketch|scalapack|lapack] [--threads T] [--resume]

Compresses the model once per grid value and evaluates each compressed model on the test set.
Layers --layers (1-based, default all) are compressed in turn; data-driven strategies use the
activations of a compression set (--compression-size images drawn from the training split with
--seed). Rules: eps (|r_k+1,k+1|/|r_11| <= eps/||W_next||_2), k (neurons kept per layer), fraction
(of each layer's neurons; svd: of min(d_in, d_out)), rank (svd's r). Strategies:
)";
const char* const kUsageTail =
    R"(Points run in waves of --wave points (default 2 x threads) compressed in lockstep; each wave's rows
are appended and fsync'd when it ends. --resume keeps the rows in DIR and computes only the missing
points (also: add another strategy's sweep to the same folder for one comparison table).
Under mpirun every rank holds its rows of the compression and test sets. SIGTERM/SIGINT/SIGUSR1 stop the
sweep cleanly after the wave in flight (exit 128 + the signal: 130 for Ctrl-C, 143 for SIGTERM); a
second signal stops it at once, leaving what is on disk for --resume. Under mpirun send SIGUSR1:
Open MPI's mpirun passes it on to every rank, whereas it SIGKILLs the ranks about 1 s after passing
on a SIGTERM. One run at a time per folder: DIR/idprune.lock names the run that holds it.

--precision f32 evaluates each compressed model as a deployed float32 model would (weights and
inputs rounded to float32, sgemm); the models themselves are compressed in float64 either way, so
the kept neurons do not depend on it. Rows then carry precision = f32. --compare-precision also
runs each model in the other precision and records f32_changed_predictions, the number of test
predictions that differ between float32 and float64 (a second forward pass per model).

Example:
  idprune sweep --model data/models/fashion-mnist-small.safetensors --data data/fashion-mnist-small \
                --strategy greedy --rule eps --grid 0.01,0.1,1 --out results/greedy)";

std::string usage() {
  std::string rules;
  for (const auto& s : compress::strategies()) {
    if (s.sweep_rules.empty()) continue;
    rules += "  " + std::string(s.name) + " rules:";
    for (const auto r : s.sweep_rules) rules += " " + std::string(compress::to_string(r));
    rules += "\n";
  }
  return kUsageHead + compress::strategy_help(true) + rules + kUsageTail;
}
}  // namespace

int run_sweep(const std::vector<std::string>& args) {
  po::options_description options("sweep options");
  options.add_options()("model", path()->required(), "model file (.safetensors) or .npy folder")(
      "data", path()->required(), "data folder (Fashion-MNIST IDX or CIFAR-10 batches)")(
      "strategy", po::value<std::string>()->default_value("greedy"),
      ("one of " + compress::strategy_names(true)).c_str())("rule", po::value<std::string>()->default_value("eps"),
                                                            "eps | k | fraction | rank")(
      "grid", po::value<std::string>()->required(), "comma-separated rule values, one model each")(
      "layers", po::value<std::string>()->default_value("all"), "hidden layers to compress, 1-based, or all");
  add_compression_set_options(options, "seed of the compression set and the random strategy",
                              "pivot engine: tsqr | gram | sketch | scalapack | lapack", true);
  add_evaluation_options(options, "test rows per evaluation task");
  add_compare_precision_option(options);
  options.add_options()("wave", po::value<long>()->default_value(0), "points per wave (0: 2 x threads)")(
      "progress-interval", real(30.0), "seconds between progress lines when stderr is not a terminal")(
      "mean-compensation", po::bool_switch()->default_value(false),
      "id, corrected, random and output strategies: the next layer's bias absorbs the mean residual (rows are "
      "recorded as STRATEGY+mean)")("out", path()->required(), "output folder")(
      "resume", po::bool_switch()->default_value(false), "keep the rows in --out and compute only missing points");
  po::variables_map vm;
  if (!parse("sweep", usage().c_str(), options, args, vm)) return 0;

  app::SweepRun run;
  run.model = vm["model"].as<std::string>();
  run.data = vm["data"].as<std::string>();
  run.out = vm["out"].as<std::string>();
  run.strategy = vm["strategy"].as<std::string>();
  run.rule = vm["rule"].as<std::string>();
  run.grid = vm["grid"].as<std::string>();
  run.layers = vm["layers"].as<std::string>();
  run.compression = compression_set_options("sweep", vm);
  run.evaluation = evaluation_options("sweep", vm);
  run.mean_compensation = vm["mean-compensation"].as<bool>();
  run.wave = vm["wave"].as<long>();
  run.progress_interval = vm["progress-interval"].as<double>();
  run.resume = vm["resume"].as<bool>();
  return app::run_sweep(run, {"sweep", options, vm});
}

}  // namespace idprune::cli
