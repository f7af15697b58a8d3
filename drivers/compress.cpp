// `idprune compress`: one compressed model written out (compress::compress_network), with its
// provenance in the file's metadata and the per-layer sensitivity table beside it.
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/runs.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"(--model M --data D --out FILE  (--budget F [--strategy NAME[,NAME...]]
                                                 | [--strategy S] --rule R --value V [--layers 1,2])

Writes ONE compressed model: hidden layers with fewer neurons (an svd layer as two Linear layers;
biases where the model or a strategy has them), loadable into a PyTorch nn.Sequential built from
the file's shapes (docs/model-files.md). FILE ending in .safetensors is written as safetensors
(--dtype F32 by default), anything else as a folder of .npy files (float64).

Two modes:
  --budget F       the best model within the fraction F of the original's parameters, selected on
                   a VALIDATION split of the training images (--validation-size images, drawn with
                   --seed) as `idprune pareto` selects: each strategy's best model within F, then
                   the strategy with the highest validation accuracy. --strategy names the
                   candidates (default: greedy-fraction,budget,budget-corrected,tuned-corrected;
                   any strategy of `idprune pareto`).
  --rule R --value V   one point of `idprune sweep`: --strategy greedy (default), random,
                   magnitude, svd or corrected with the rank rule eps, k, fraction or rank on every
                   hidden layer (--layers: only these, 1-based).
The compression set (--compression-size images, --seed) is drawn from the training images outside
the validation split; the test set only reports. The accuracies recorded are those of the file as
written (float32 weights for F32).

The file's metadata ("idprune.*" keys of __metadata__, or metadata.json of an .npy folder) records
the kept neurons of every hidden layer as indices into the ORIGINAL layer (idprune.kept_neurons, a
JSON array of arrays), the strategy, rule or budget, compression set size and seed, validation and
test accuracy, the original model's sha256, idprune's version and git revision.
It prints the sensitivity table (per hidden layer: neurons, parameters, and the relative error of
the next layer's pre-activation on the compression set, compressed vs original network) and writes
it as CSV beside the model: FILE with .safetensors replaced by .layers.csv (FILE.layers.csv for a
folder).

Example:
  idprune compress --model data/models/fashion-mnist-small.safetensors --data data/fashion-mnist-small \
                   --budget 0.2 --validation-size 1000 --out small-20.safetensors)";

}  // namespace

int run_compress(const std::vector<std::string>& args) {
  po::options_description options("compress options");
  options.add_options()("model", path()->required(), "model file (.safetensors) or .npy folder")(
      "data", path()->required(), "data folder (Fashion-MNIST IDX or CIFAR-10 batches)")(
      "out", path()->required(), "compressed model to write: FILE.safetensors, or a folder for .npy")(
      "budget", po::value<double>(), "fraction of the original's parameters, in (0, 1] (budget mode)")(
      "strategy", po::value<std::string>(),
      "point mode: greedy | random | magnitude | svd | corrected (default greedy); budget mode: the candidate "
      "strategies, comma-separated (default greedy-fraction,budget,budget-corrected,tuned-corrected)")(
      "rule", po::value<std::string>(), "point mode: eps | k | fraction | rank")("value", po::value<double>(),
                                                                                 "point mode: the rule's value")(
      "layers", po::value<std::string>()->default_value("all"), "point mode: hidden layers to compress (1-based)")(
      "dtype", po::value<std::string>()->default_value("F32"), "safetensors dtype: F32 or F64");
  add_compression_set_options(options, "seed of the validation split, the compression set and the random strategy",
                              "pivot engine of greedy/magnitude/random: tsqr | gram | sketch | scalapack | lapack");
  add_search_options(options, "budget mode: ");
  add_finetune_options(options,
                       "also fine-tune the compressed model for E epochs on the training images outside the validation "
                       "split and write it as FILE.finetuned (reported apart: *_finetuned keys)");
  add_evaluation_options(options, "rows per evaluation task");
  add_layer_order_option(options);
  po::variables_map vm;
  if (!parse("compress", kUsage, options, args, vm)) return 0;

  app::CompressRun run;
  run.model = vm["model"].as<std::string>();
  run.read = model_read_options(vm);
  run.data = vm["data"].as<std::string>();
  run.out = vm["out"].as<std::string>();
  if (vm.count("budget")) run.budget = vm["budget"].as<double>();
  if (vm.count("strategy")) run.strategy = vm["strategy"].as<std::string>();
  if (vm.count("rule")) run.rule = vm["rule"].as<std::string>();
  if (vm.count("value")) run.value = vm["value"].as<double>();
  run.layers = vm["layers"].as<std::string>();
  run.dtype = vm["dtype"].as<std::string>();
  run.compression = compression_set_options("compress", vm);
  run.search = search_options("compress", vm);
  run.evaluation = evaluation_options("compress", vm);
  run.finetune = finetune_options("compress", vm);
  return app::run_compress(run);
}

}  // namespace idprune::cli
