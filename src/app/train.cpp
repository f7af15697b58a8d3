#include "idprune/nn/train.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "idprune/app/options.hpp"
#include "idprune/app/tools.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/nn/model_io.hpp"
#include "idprune/version.hpp"

namespace idprune::app {

using la::index_t;
namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<index_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

double gib(double bytes) { return bytes / (1024.0 * 1024.0 * 1024.0); }

/// Bytes training needs, roughly: the training rows, and per parameter the weight, its gradient and
/// Adam's two moments (8 bytes each), plus a batch's activations and their gradients.
double training_bytes(std::int64_t features, const std::vector<index_t>& widths, int classes, std::int64_t samples,
                      long batch) {
  double params = 0.0;
  double units = 0.0;
  double d_in = static_cast<double>(features);
  for (const index_t w : widths) {
    params += d_in * static_cast<double>(w) + static_cast<double>(w);
    units += static_cast<double>(w);
    d_in = static_cast<double>(w);
  }
  params += d_in * classes + classes;
  return 8.0 * (static_cast<double>(samples) * static_cast<double>(features) + 4.0 * params +
                2.0 * static_cast<double>(batch) * (units + classes));
}

double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

}  // namespace

int train(const po::variables_map& vm) {
  const auto comm = dist::Comm::world();
  if (comm.size() > 1)
    throw dist::CollectiveError(
        0, "train: runs on one process (got " + std::to_string(comm.size()) + " ranks); start it without mpirun");

  const std::string dir = vm["data"].as<std::string>();
  const std::string out = vm["out"].as<std::string>();
  std::vector<index_t> widths;
  for (long w : parse_integers(vm["widths"].as<std::string>(), "train: --widths")) {
    require(w > 0, "train: --widths: width ", w, " must be positive");
    widths.push_back(w);
  }
  nn::TrainOptions train_options;
  train_options.epochs = vm["epochs"].as<int>();
  train_options.batch_size = vm["batch"].as<long>();
  train_options.learning_rate = vm["lr"].as<double>();
  train_options.schedule = nn::parse_lr_schedule(vm["schedule"].as<std::string>());
  train_options.seed = vm["seed"].as<unsigned long>();
  const bool bias = vm["bias"].as<bool>();
  const auto dtype = nn::parse_dtype(vm["dtype"].as<std::string>());
  const long train_rows = vm["train-rows"].as<long>();
  const long validation_rows = vm["validation"].as<long>();
  require(train_rows >= 0 && validation_rows >= 0, "train: --train-rows and --validation must be >= 0");
  const int threads = vm["threads"].as<int>();
  require(threads >= 0, "train: --threads=", threads, " must be >= 0");
  require(train_options.epochs >= 0, "train: --epochs=", train_options.epochs, " (needs >= 0)");
  require(train_options.batch_size > 0, "train: --batch=", train_options.batch_size, " (needs > 0)");
  require(std::isfinite(train_options.learning_rate) && train_options.learning_rate > 0.0,
          "train: --lr=", train_options.learning_rate, " (needs a finite value > 0)");
  if (threads > 0) la::set_blas_threads(threads);

  // The output before any work: its folder must take a file (a .npy folder is created now).
  {
    const fs::path target(out);
    const bool npy_folder = !out.ends_with(".safetensors");
    const fs::path folder = npy_folder ? target : target.parent_path();
    io::prepare_output_folder(folder.empty() ? std::string(".") : folder.string());
  }

  // Training rows: the first --train-rows (or all), minus a seeded validation hold-out.
  const auto info = data::dataset_info(dir, data::Split::train);
  const std::int64_t available = train_rows > 0 ? std::min<std::int64_t>(train_rows, info.samples) : info.samples;
  require(validation_rows < available, "train: --validation=", validation_rows, " leaves no training rows of ",
          available);
  // A model too large for this machine is refused now, with the memory it would need.
  const double need = training_bytes(info.features, widths, info.classes, available, train_options.batch_size);
  const double have = physical_memory_bytes();
  const auto too_large = [&] {
    return detail::concat("train: --widths ", vm["widths"].as<std::string>(), " on ", info.features,
                          " features needs about ", fixed(gib(need), 1),
                          " GiB to train (the rows, and weights, gradients and Adam's two moments at 8 bytes per "
                          "parameter)");
  };
  require(have <= 0.0 || need <= have, too_large(), ", more than the ", fixed(gib(have), 1),
          " GiB of memory of this machine");
  const auto split = data::train_validation_split(available, validation_rows, train_options.seed);
  const data::Dataset train_set = data::load_dataset_rows(dir, data::Split::train, split.train);
  data::Dataset validation_set;
  if (validation_rows > 0) validation_set = data::load_dataset_rows(dir, data::Split::train, split.validation);

  nn::Mlp model;
  try {
    model = nn::initialize_mlp(train_set.features(), widths, train_set.classes, bias, train_options.seed);
  } catch (const std::bad_alloc&) {
    throw Error(too_large() + ": out of memory");
  }
  std::cout << "train: " << join(model.widths()) << " (" << model.parameter_count() << " parameters"
            << (bias ? ", biases" : ", no biases") << ") on " << train_set.samples() << " samples of " << dir
            << (validation_rows > 0 ? ", " + std::to_string(validation_rows) + " held out for validation" : "")
            << "\n       epochs " << train_options.epochs << ", batch " << train_options.batch_size << ", Adam lr "
            << train_options.learning_rate << " (" << nn::to_string(train_options.schedule) << "), seed "
            << train_options.seed << ", OpenBLAS " << la::blas_core_name() << " x " << la::blas_threads() << " threads"
            << std::endl;

  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  const auto history =
      nn::train(model, train_set.x, train_set.y, train_options, [&](const nn::EpochReport& r, const nn::Mlp& m) {
        std::cout << "epoch " << std::setw(3) << r.epoch << "/" << train_options.epochs << "  lr " << std::scientific
                  << std::setprecision(2) << r.learning_rate << std::defaultfloat << "  loss " << fixed(r.loss, 4)
                  << "  train acc " << fixed(100 * r.train_accuracy, 2) << "%";
        if (validation_rows > 0) {
          const auto counts = nn::count_correct(m.predict(validation_set.x), validation_set.y, validation_set.classes);
          std::cout << "  validation acc " << fixed(100 * counts.accuracy(), 2) << "%";
        }
        std::cout << "  elapsed " << fixed(elapsed(), 1) << " s" << std::endl;
      });
  const double seconds = elapsed();

  auto& meta = model.metadata();
  meta["idprune.version"] = version_string();
  meta["idprune.git_revision"] = git_revision();
  meta["idprune.widths"] = join(model.widths());
  meta["idprune.bias"] = bias ? "true" : "false";
  meta["idprune.seed"] = std::to_string(train_options.seed);
  meta["idprune.epochs"] = std::to_string(train_options.epochs);
  meta["idprune.batch"] = std::to_string(train_options.batch_size);
  meta["idprune.lr"] = fixed(train_options.learning_rate, 8);
  meta["idprune.schedule"] = std::string(nn::to_string(train_options.schedule));
  meta["idprune.train_samples"] = std::to_string(train_set.samples());
  meta["idprune.validation_samples"] = std::to_string(validation_rows);
  meta["idprune.data"] = dir;
  meta["idprune.blas"] = la::blas_core_name() + " x " + std::to_string(la::blas_threads());
  meta["idprune.train_seconds"] = fixed(seconds, 1);
  if (!history.empty()) meta["idprune.final_loss"] = fixed(history.back().loss, 6);

  std::string test_note = "no test split";
  try {
    const data::Dataset test_set = data::load_dataset(dir, data::Split::test);
    // The accuracy of the model as saved: F32 files round the weights, so evaluate the rounded model.
    const nn::Mlp saved = dtype == nn::Dtype::f32 ? nn::from_tensor_file(nn::to_tensor_file(model, dtype), out) : model;
    const auto counts = nn::count_correct(saved.predict(test_set.x), test_set.y, test_set.classes);
    meta["idprune.test_accuracy"] = fixed(counts.accuracy(), 6);
    meta["idprune.test_samples"] = std::to_string(counts.samples());
    test_note = "test accuracy " + std::to_string(counts.correct_total()) + " / " + std::to_string(counts.samples()) +
                " = " + fixed(100 * counts.accuracy(), 2) + "%";
  } catch (const Error& e) {
    test_note = std::string("no test accuracy (") + e.what() + ")";
  }
  nn::save_model(out, model, dtype);
  std::cout << "trained in " << fixed(seconds, 1) << " s; " << test_note << "\nsaved " << out << " ("
            << model.parameter_count() << " parameters"
            << (out.ends_with(".safetensors") ? ", " + std::string(nn::to_string(dtype)) : ", .npy folder") << ")\n";
  return 0;
}

}  // namespace idprune::app
