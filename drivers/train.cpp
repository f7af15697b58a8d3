// `idprune train`: trains an MLP classifier on an image data set and saves it (nn::train).
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/tools.hpp"

namespace idprune::cli {

namespace {
const char* const kUsage = R"(--data DIR --out MODEL [--epochs E --widths W1,W2,... --seed S --batch B --lr R ...]

Trains d - W1 - ... - Wk - classes (ReLU hidden layers, softmax classifier; no biases unless
--bias) on the training split of DIR with mini-batch Adam on the mean cross-entropy, then reports
the test accuracy (when DIR has a test split) and saves the model. MODEL ending in .safetensors is
written as safetensors (PyTorch nn.Sequential naming, --dtype F32 or F64), anything else as a
folder of .npy files. Inputs are pixel bytes / 255. Deterministic for a given seed and BLAS
thread count (--threads, default: OpenBLAS's own). Runs on one process.

Every option and --out are checked before any data is read: a folder that cannot be written, or
a model too large for this machine's memory, is refused before training starts.

Example (the reference model of the project):
  idprune train --data data/fashion-mnist --out data/models/fashion-mnist-reference.safetensors)";
}  // namespace

int run_train(const std::vector<std::string>& args) {
  po::options_description options("train options");
  options.add_options()("data", path()->required(), "data folder (IDX or CIFAR-10 binary files)")(
      "out", path()->required(), "model file to write (.safetensors, or a folder for .npy)")(
      "widths", po::value<std::string>()->default_value("1024,512,512,256,256,128,128"),
      "hidden layer widths, comma-separated")("epochs", po::value<int>()->default_value(15), "passes over the data")(
      "batch", po::value<long>()->default_value(128), "mini-batch size")("lr", real(1e-3),
                                                                         "Adam learning rate (peak of the schedule)")(
      "schedule", po::value<std::string>()->default_value("cosine"), "learning-rate schedule: cosine or constant")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the initial weights and the shuffles")(
      "bias", po::bool_switch(), "give every layer a bias (initialised to zero)")(
      "train-rows", po::value<long>()->default_value(0), "use only the first N training rows (0: all)")(
      "validation", po::value<long>()->default_value(0),
      "hold out N random training rows and report their accuracy after each epoch")(
      "dtype", po::value<std::string>()->default_value("F32"), "safetensors dtype: F32 or F64")(
      "threads", po::value<int>()->default_value(0), "OpenBLAS threads (0: OpenBLAS's default)");
  po::variables_map vm;
  if (!parse("train", kUsage, options, args, vm)) return 0;
  return app::train(vm);
}

}  // namespace idprune::cli
