// `idprune eval`: test accuracy of a model file (the reference text's Goal 4), under mpirun too.
#include <array>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/la/error.hpp"
#include "idprune/nn/evaluate.hpp"
#include "idprune/nn/model_io.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"(--model MODEL --data DIR [--split test|train] [--predictions FILE] [--precision f64|f32]

Classifies every sample of the split and prints the accuracy acc(M) = correct / total, the
accuracy of each class, and the model's size. MODEL is a .safetensors file (a PyTorch state dict
of nn.Linear modules: nn.Sequential or named keys, --layer-order where the keys do not tell the
order; docs/model-files.md) or a folder of W1.npy ... Wk.npy, Ws.npy. --predictions writes
index,label,prediction for every sample. Under mpirun each rank reads and classifies
only its contiguous block of rows; the integer counts are summed exactly, so the figures do not
depend on the number of ranks. Every rank must read the same model and data (compared by content).
--precision f32 classifies as a deployed float32 model (weights and inputs rounded to float32, sgemm);
--compare-precision also prints how many predictions differ between float32 and float64.

Example:
  idprune eval --model data/models/fashion-mnist-small.safetensors --data data/fashion-mnist-small)";

std::string percent(std::int64_t part, std::int64_t whole) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << (whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / whole) << "%";
  return os.str();
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
  po::options_description options("eval options");
  options.add_options()("model", path()->required(), "model: .safetensors file or .npy folder")(
      "data", path()->required(), "data folder (IDX or CIFAR-10 binary files)")(
      "split", po::value<std::string>()->default_value("test"), "which split to classify: test or train")(
      "batch", po::value<long>()->default_value(2048), "rows per forward pass (memory vs. GEMM size)")(
      "predictions", po::value<std::string>(), "also write every sample's label and prediction (CSV) to this file");
  add_layer_order_option(options);
  app::add_precision_options(options);
  app::add_compare_precision_option(options);
  po::variables_map vm;
  if (!parse("eval", kUsage, options, args, vm)) return 0;
  const auto comm = dist::Comm::world();
  const std::string model_path = vm["model"].as<std::string>();
  const std::string dir = vm["data"].as<std::string>();
  const std::string split_name = vm["split"].as<std::string>();
  require(split_name == "test" || split_name == "train", "eval: --split=", split_name, " (expected test or train)");
  const auto split = split_name == "test" ? data::Split::test : data::Split::train;
  const long batch = vm["batch"].as<long>();
  require(batch > 0, "eval: --batch=", batch, " must be positive");
  app::EvaluationOptions precision;
  app::read_precision_options("eval", vm, precision);

  // Every rank reads the (small) model and checks the data; a failure on any rank is reported once.
  std::string model_sha256;
  const nn::Mlp model = load_model_on_every_rank(comm, "eval", model_path, model_sha256, model_read_options(vm));
  std::string data_sha256;
  dist::check_collective(comm, dist::capture_error([&] {
                           dist::inject_fault(comm.rank(), "load-data");
                           check_model_fits_data("eval", model, model_path, data::dataset_info(dir, split), dir);
                           data_sha256 = cli::data_sha256(dir, std::array<data::Split, 1>{split});
                         }));
  check_same_data(comm, "eval", dir, data_sha256);
  const auto start = std::chrono::steady_clock::now();
  const nn::ClassCounts counts = nn::evaluate_split(model, dir, split, comm, batch, precision.precision);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Every sample's prediction in both precisions (gathered on every rank): how many float32 changes.
  std::int64_t changed = 0;
  if (precision.compare_precision) {
    const nn::SplitPredictions a = nn::predict_split(model, dir, split, comm, batch, nn::Precision::f64);
    const nn::SplitPredictions b = nn::predict_split(model, dir, split, comm, batch, nn::Precision::f32);
    for (std::size_t i = 0; i < a.predictions.size(); ++i) changed += a.predictions[i] != b.predictions[i] ? 1 : 0;
  }
  if (vm.count("predictions")) {
    const nn::SplitPredictions p = nn::predict_split(model, dir, split, comm, batch, precision.precision);
    dist::check_collective(comm, dist::capture_error([&] {
                             if (comm.rank() == 0) nn::write_predictions_csv(vm["predictions"].as<std::string>(), p);
                           }));
  }
  if (comm.rank() != 0) return 0;

  std::string widths;
  for (auto w : model.widths()) widths += (widths.empty() ? "" : "-") + std::to_string(w);
  std::cout << "model: " << model_path << "\n"
            << "architecture: " << widths << "\n"
            << "parameters: " << model.parameter_count() << "\n"
            << "flops per sample: " << std::fixed << std::setprecision(0) << model.flops_per_sample() << "\n"
            << "data: " << dir << " (" << split_name << " split)\n"
            << "precision: " << nn::to_string(precision.precision) << "\n"
            << "accuracy: " << counts.correct_total() << " / " << counts.samples() << " = "
            << percent(counts.correct_total(), counts.samples()) << "\n";
  for (std::size_t c = 0; c < counts.total.size(); ++c)
    std::cout << "class " << std::left << std::setw(4) << c << std::right << std::setw(7) << counts.correct[c] << " / "
              << std::setw(6) << counts.total[c] << " = " << percent(counts.correct[c], counts.total[c]) << "\n";
  if (precision.compare_precision)
    std::cout << "f32 changed predictions: " << changed << " / " << counts.samples() << "\n";
  std::cout << "ranks: " << comm.size() << ", time " << std::setprecision(3) << seconds << " s\n";
  return 0;
}

}  // namespace idprune::cli
