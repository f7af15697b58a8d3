// `idprune bench inference`: float32 forward-pass throughput and latency of models, the first one
// being the reference the others are compared with (what a compression buys at inference time).
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/tools.hpp"

namespace idprune::cli {

namespace {
const char* const kUsage = R"(--model ORIGINAL [--model OTHER ...] [--batch 1,64,1024] [--threads T] [--reps R] [--json]

Times the float32 forward pass (one sgemm per weight factor, bias and ReLU) of every model on the
same random batches (uniform [0, 1) inputs) and prints, per model and batch size, the throughput
(samples per second at the median latency), the latency of one pass over the batch (median, min,
max over the repetitions) and the speed-up over the FIRST model (its median latency over this
model's). Repetitions of the models are interleaved, so a change in machine load affects them
alike. Models are .safetensors files or .npy folders; the OpenBLAS kernel set is recorded.
With --json, one JSON object goes to standard output instead of the table.)";
}  // namespace

int run_bench_inference(const std::vector<std::string>& args) {
  po::options_description options("bench inference options");
  options.add_options()("model", po::value<std::vector<std::string>>()->required()->composing(),
                        "model file or .npy folder; repeat for several (the first is the reference)")(
      "name", po::value<std::string>()->default_value(""),
      "comma-separated labels of the models (default: their file names)")(
      "batch", po::value<std::string>()->default_value("1,64,1024"), "batch sizes (samples per forward pass)")(
      "threads", po::value<int>()->default_value(1), "OpenBLAS threads of each forward pass")(
      "reps", po::value<int>()->default_value(0),
      "timed passes per model and batch (0: enough for --min-seconds, 5 to 1000)")(
      "min-seconds", po::value<double>()->default_value(0.2), "with --reps 0: time per model and batch to fill")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the random inputs")(
      "json", po::bool_switch(), "print one JSON object instead of the table");
  add_layer_order_option(options);
  po::variables_map vm;
  if (!parse("bench inference", kUsage, options, args, vm)) return 0;
  return app::bench_inference(vm);
}

}  // namespace idprune::cli
