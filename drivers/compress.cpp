// `idprune compress`: one compressed model written out (compress::compress_network), with its
// provenance in the file's metadata and the per-layer sensitivity table beside it.
#include <tbb/global_control.h>

#include <array>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/compress/export.hpp"
#include "idprune/compress/finetune.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/dist/parallelism.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/nn/model_io.hpp"
#include "model_options.hpp"

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

/// Where the sensitivity table goes: beside the model.
std::string table_path(const std::string& out) {
  const std::string suffix = ".safetensors";
  if (out.ends_with(suffix)) return out.substr(0, out.size() - suffix.size()) + ".layers.csv";
  std::string folder = out;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  return folder + ".layers.csv";
}

/// Where the fine-tuned model goes: FILE with .safetensors replaced by .finetuned.safetensors
/// (FILE.finetuned for a folder).
std::string finetuned_path(const std::string& out) {
  const std::string suffix = ".safetensors";
  if (out.ends_with(suffix)) return out.substr(0, out.size() - suffix.size()) + ".finetuned.safetensors";
  std::string folder = out;
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  return folder + ".finetuned";
}

std::string percent(double fraction, int digits = 2) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << 100.0 * fraction << "%";
  return os.str();
}

std::string widths_text(const nn::Mlp& model) {
  std::string s;
  for (auto w : model.widths()) s += (s.empty() ? "" : "-") + std::to_string(w);
  return s;
}

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
      "compression-size", po::value<long>()->default_value(2000), "images in the compression set")(
      "validation-size", po::value<long>()->default_value(5000), "training images held out for selection")(
      "seed", po::value<unsigned long>()->default_value(1),
      "seed of the validation split, the compression set and the random strategy")(
      "test-size", po::value<long>()->default_value(0), "evaluate on the first N test images (0: all)")(
      "dtype", po::value<std::string>()->default_value("F32"), "safetensors dtype: F32 or F64")(
      "intercept", po::bool_switch()->default_value(false),
      "corrected strategies: least-squares fit with an intercept (the next layer gains a bias)")(
      "mean-compensation", po::bool_switch()->default_value(false),
      "id, corrected, random and output strategies: the next layer's bias absorbs the mean residual (the "
      "next layer's mean pre-activation on the compression set stays the original's)")(
      "finetune-epochs", po::value<int>()->default_value(0),
      "also fine-tune the compressed model for E epochs on the training images outside the validation "
      "split and write it as FILE.finetuned (reported apart: *_finetuned keys)")(
      "finetune-lr", real(1e-4), "fine-tuning: Adam learning rate (cosine schedule)")(
      "eps-grid", po::value<std::string>()->default_value(""), "budget mode: eps values of the sweep strategies")(
      "tau-grid", po::value<std::string>()->default_value(""), "budget mode: spectrum tolerances")(
      "svd-grid", po::value<std::string>()->default_value(""),
      "budget mode: svd rank fractions and greedy-fraction's kept fractions")(
      "step", real(0.05), "budget mode, descent: fraction of the parameters one move removes")(
      "budget-iterations", po::value<int>()->default_value(3), "budget mode, budget: allocation rounds")(
      "tune-rounds", po::value<int>()->default_value(3), "budget mode, tuned: coordinate-descent rounds")(
      "budget-kind", po::value<std::string>()->default_value("params"),
      "budget mode, hybrid: what its budget counts, params | flops (a fraction of the original's)")(
      "refine", po::value<int>()->default_value(5), "budget mode, sweeps: bisection rounds towards the budget")(
      "engine", po::value<std::string>()->default_value("tsqr"),
      "pivot engine of greedy/magnitude/random: tsqr | gram | sketch | scalapack | lapack")(
      "cpqr-method", po::value<std::string>()->default_value("blocked"), "local CPQR: blocked | unblocked | lapack")(
      "threads", po::value<int>()->default_value(0), "threads per rank (0: the cores this process may use)")(
      "batch-rows", po::value<long>()->default_value(500), "rows per evaluation task");
  add_layer_order_option(options);
  po::variables_map vm;
  if (!parse("compress", kUsage, options, args, vm)) return 0;

  // Every option is checked before any file is read.
  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  compress::CompressRequest request;
  const bool budget_mode = vm.count("budget") > 0;
  const bool point_mode = vm.count("rule") > 0 || vm.count("value") > 0;
  require(!(budget_mode && point_mode), "compress: give either --budget F or --rule R --value V, not both");
  require(budget_mode || point_mode,
          "compress: give --budget F (a fraction of the parameters) or --strategy S --rule R --value V");
  if (budget_mode) {
    request.budget = vm["budget"].as<double>();
    if (vm.count("strategy")) request.budget_strategies = split_list(vm["strategy"].as<std::string>(), "--strategy");
    require(vm["layers"].as<std::string>() == "all", "compress: --layers is for a rule (a budget counts every layer)");
  } else {
    require(vm.count("rule") && vm.count("value"), "compress: --rule and --value go together");
    request.strategy = vm.count("strategy") ? vm["strategy"].as<std::string>() : "greedy";
    request.rule =
        compress::LayerRule{compress::parse_rank_rule(vm["rule"].as<std::string>()), vm["value"].as<double>()};
    if (const std::string text = vm["layers"].as<std::string>(); text != "all") {
      for (long l : parse_integers(text, "--layers")) {
        require(l >= 1, "compress: --layers entry ", l, " (hidden layers are numbered from 1)");
        if (std::find(request.layers.begin(), request.layers.end(), l - 1) == request.layers.end())
          request.layers.push_back(l - 1);
      }
      std::sort(request.layers.begin(), request.layers.end());
    }
  }
  const auto grid = [&](const char* key) {
    const std::string text = vm[key].as<std::string>();
    return text.empty() ? std::vector<double>() : parse_doubles(text, std::string("--") + key);
  };
  request.pareto.eps_grid = grid("eps-grid");
  request.pareto.tau_grid = grid("tau-grid");
  request.pareto.svd_grid = grid("svd-grid");
  request.pareto.descent.step = vm["step"].as<double>();
  request.pareto.budget.iterations = vm["budget-iterations"].as<int>();
  request.pareto.tune.rounds = vm["tune-rounds"].as<int>();
  request.pareto.hybrid.kind = compress::parse_budget_kind(vm["budget-kind"].as<std::string>());
  request.pareto.hybrid.budget = request.pareto.budget;
  request.pareto.refine = vm["refine"].as<int>();
  request.engine.pivot.engine = dist::parse_pivot_engine(vm["engine"].as<std::string>());
  request.engine.cpqr_method = la::parse_cpqr_method(vm["cpqr-method"].as<std::string>());
  request.policy.intercept = vm["intercept"].as<bool>();
  request.policy.mean_compensation = vm["mean-compensation"].as<bool>();
  const auto seed = vm["seed"].as<unsigned long>();
  request.policy.seed = seed;
  const std::string out = vm["out"].as<std::string>();
  const bool safetensors = out.ends_with(".safetensors");
  const nn::Dtype dtype = nn::parse_dtype(vm["dtype"].as<std::string>());
  request.round_to = safetensors && dtype == nn::Dtype::f32 ? std::optional<nn::Dtype>(nn::Dtype::f32) : std::nullopt;
  compress::check_compress_request(request);
  const long compression_size = vm["compression-size"].as<long>();
  const long validation_size = vm["validation-size"].as<long>();
  const long test_size = vm["test-size"].as<long>();
  const long batch_rows = vm["batch-rows"].as<long>();
  const int finetune_epochs = vm["finetune-epochs"].as<int>();
  require(finetune_epochs >= 0, "compress: --finetune-epochs=", finetune_epochs, " (needs >= 0)");
  const double finetune_lr = vm["finetune-lr"].as<double>();
  require(finetune_lr > 0.0, "compress: --finetune-lr=", finetune_lr, " (needs > 0)");
  require(compression_size >= 1, "compress: --compression-size=", compression_size, " (needs >= 1)");
  require(validation_size >= 1, "compress: --validation-size=", validation_size, " (needs >= 1)");
  require(test_size >= 0, "compress: --test-size=", test_size, " (needs >= 0)");
  require(batch_rows >= 1, "compress: --batch-rows=", batch_rows, " (needs >= 1)");
  const std::string model_path = vm["model"].as<std::string>();
  const std::string data_dir = vm["data"].as<std::string>();
  const std::string csv_path = table_path(out);
  const dist::ResolvedThreads resolved = dist::resolve_threads(vm["threads"].as<int>(), "--threads");
  if (root && !resolved.warning.empty()) std::cerr << "compress: " << resolved.warning << "\n";
  const int threads = resolved.threads;
  const dist::ThreadLimit thread_limit(threads);

  // The output's folder must take files before any work (rank 0 writes).
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           const std::filesystem::path folder = std::filesystem::path(csv_path).parent_path();
                           io::prepare_output_folder(folder.empty() ? std::string(".") : folder.string());
                         }));

  std::string model_sha256;
  const nn::Mlp model = load_model_on_every_rank(comm, "compress", model_path, model_sha256, model_read_options(vm));
  std::string data_sha256;
  la::Matrix xc;
  la::Matrix xv;
  std::vector<int> yv;
  la::Matrix xt;
  std::vector<int> yt;
  std::int64_t n_test = 0;
  dist::check_collective(comm, dist::capture_error([&] {
                           require(model.num_hidden() >= 1, "compress: the model '", model_path,
                                   "' has no hidden layer");
                           compress::check_compress_request(request, &model);
                           SelectionData d = load_selection_data(comm, "compress", model, model_path, data_dir,
                                                                 compression_size, validation_size, test_size, seed);
                           xc = std::move(d.xc);
                           xv = std::move(d.xv);
                           yv = std::move(d.yv);
                           xt = std::move(d.xt);
                           yt = std::move(d.yt);
                           n_test = d.test_samples;
                           data_sha256 = std::move(d.data_sha256);
                         }));
  check_same_data(comm, "compress", data_dir, data_sha256);

  const dist::DistMatrix xcd = dist::DistMatrix::block_distributed(comm, std::move(xc), compression_size);
  // As `idprune pareto` scores: selection reads the validation loss through the layers' own products.
  compress::ScorerOptions vopts;
  vopts.batch_rows = batch_rows;
  vopts.cross_entropy = true;
  vopts.second_layer_shortcut = false;
  compress::ScorerOptions topts;
  topts.batch_rows = batch_rows;
  const compress::Scorer validation(model, std::move(xv), std::move(yv), comm, vopts);
  const compress::Scorer test(model, std::move(xt), std::move(yt), comm, topts);
  if (root)
    std::cerr << "compress: " << widths_text(model) << " (" << model.parameter_count()
              << " parameters), validation accuracy " << validation.original_scores().accuracy() << " on "
              << validation.samples() << " held-out training images, test accuracy "
              << test.original_scores().accuracy() << " on " << n_test << " test images; compression set "
              << compression_size << "; " << comm.size() << " rank(s) x " << threads << " thread(s)\n";
  compress::ParetoHooks hooks;
  hooks.log = [&](const std::string& line) {
    if (root) std::cerr << line << "\n";
  };
  const compress::CompressedNetwork network = compress::compress_network(model, xcd, validation, test, request, hooks);

  // Fine-tuning (optional): on every training image outside the validation split, the same on every
  // rank; its scores are reported apart and the file written above stays the post-training model.
  std::optional<compress::FinetunedNetwork> tuned;
  if (finetune_epochs > 0) {
    la::Matrix xf;
    std::vector<int> yf;
    dist::check_collective(comm, dist::capture_error([&] {
                             const auto info = data::dataset_info(data_dir, data::Split::train);
                             const auto split = data::train_validation_split(info.samples, validation_size, seed);
                             auto d = data::load_dataset_rows(data_dir, data::Split::train, split.train);
                             xf = std::move(d.x);
                             yf = std::move(d.y);
                           }));
    nn::TrainOptions o;
    o.epochs = finetune_epochs;
    o.learning_rate = finetune_lr;
    o.seed = seed;
    tuned = compress::finetune_network(network, xf, yf, o, validation, test, request.round_to);
  }

  compress::CompressionProvenance prov;
  prov.original_sha256 = model_sha256;
  prov.data_sha256 = data_sha256;
  prov.compression_size = compression_size;
  prov.validation_size = validation_size;
  prov.seed = seed;
  nn::ModelWriteOptions write;
  write.format = safetensors ? nn::ModelFormat::safetensors : nn::ModelFormat::npy;
  write.dtype = dtype;
  write.metadata = compress::compression_metadata(model, network, request, prov);
  const std::string tuned_out = finetuned_path(out);
  nn::ModelWriteOptions tuned_write = write;
  if (tuned) {
    write.metadata["idprune.finetuned_model"] = tuned_out;
    tuned_write.metadata["idprune.finetune_epochs"] = std::to_string(finetune_epochs);
    tuned_write.metadata["idprune.finetune_learning_rate"] = std::to_string(finetune_lr);
    tuned_write.metadata["idprune.validation_accuracy_finetuned"] = std::to_string(tuned->validation.accuracy());
    tuned_write.metadata["idprune.test_accuracy_finetuned"] = std::to_string(tuned->test.accuracy());
  }
  dist::check_collective(comm, dist::capture_error([&] {
                           if (!root) return;
                           nn::write_model(out, network.compressed.model, write);
                           if (tuned) nn::write_model(tuned_out, tuned->model, tuned_write);
                           compress::write_sensitivity_csv(csv_path, network.sensitivity);
                         }));
  if (!root) return 0;

  const nn::Mlp& m = network.compressed.model;
  if (!network.candidates.empty()) {
    std::cout << "candidates within " << percent(*request.budget, 1) << " of the parameters (chosen on validation):\n";
    for (const auto& row : network.candidates)
      std::cout << "  " << std::left << std::setw(20) << row.strategy << std::setw(24) << row.model.setting
                << std::right << std::setw(8) << percent(row.model.params_fraction) << "  validation "
                << percent(row.model.validation.accuracy()) << "  test " << percent(row.model.test.accuracy())
                << (row.strategy == network.strategy ? "  <- chosen" : "") << "\n";
  }
  std::cout << "strategy: " << network.strategy << " (" << network.setting << ")\n"
            << "architecture: " << widths_text(model) << " -> " << widths_text(m) << "\n"
            << "parameters: " << model.parameter_count() << " -> " << m.parameter_count() << " ("
            << percent(static_cast<double>(m.parameter_count()) / static_cast<double>(model.parameter_count())) << ")\n"
            << "validation accuracy: " << percent(network.validation.accuracy()) << " (original "
            << percent(network.original_validation.accuracy()) << ", " << network.validation.samples << " images)\n"
            << "test accuracy: " << percent(network.test.accuracy()) << " (original "
            << percent(network.original_test.accuracy()) << ", " << network.test.samples
            << " images; predictions equal to the original's on " << percent(network.test.agreement()) << ")\n\n"
            << compress::format_sensitivity_table(network.sensitivity) << "\n";
  if (tuned)
    std::cout << "after fine-tuning (" << finetune_epochs << " epochs, learning rate " << finetune_lr
              << ", on the training images outside the validation split; reported apart): validation "
              << percent(tuned->validation.accuracy()) << ", test " << percent(tuned->test.accuracy()) << "; wrote "
              << tuned_out << "\n";
  std::cout << "wrote " << out << " ("
            << (safetensors ? "safetensors " + std::string(nn::to_string(dtype)) : std::string(".npy folder"))
            << ") and " << csv_path << "\n";
  return 0;
}

}  // namespace idprune::cli
