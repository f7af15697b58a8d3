// `idprune bench compress-scale`: the time of one greedy compression point as the compression set
// grows, next to its lower bound (the engine's flops divided by the DGEMM rate measured in the same
// run). Run under mpirun -n P for P ranks (ranks divide the rows).
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/compression_set.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/collectives.hpp"
#include "idprune/dist/parallelism.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/measure.hpp"
#include "idprune/version.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"(--model M --data D [--rows 5000,20000,50000] [--rule fraction --value 0.2]
       [--augment shifts[:R]] [--block-rows B | --max-memory M] [--threads T] [--json]

Compresses the model once (greedy, every hidden layer, one rule value) with compression sets of
growing size (drawn from the training images with --seed; with --augment shifts, images and their
8 one-pixel shifts; shifts:2, 24 shifts) and prints per size: the engine's activation and factorization time, the total,
the floating-point work of that point (each hidden layer's activations on the compressed inputs plus
the R factor of each layer's activations), the DGEMM rate of this machine measured in the same run
(--threads OpenBLAS threads per rank), the lower bound work / (ranks x rate), the ratio of the
whole compression's time to the bound and that of the activations and factorizations alone
((a+f)/b), and the peak resident memory of the largest rank. Under mpirun -n P the rows are
divided among P ranks. A set streamed under --max-memory keeps the inputs of the layer being
factored within half the budget, so the next layer's pass starts from them (JSON cached_passes).
With --json, one JSON object goes to standard output instead of the table.)";

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

}  // namespace

int run_bench_compress_scale(const std::vector<std::string>& args) {
  po::options_description options("bench compress-scale options");
  options.add_options()("model", path()->required(), "model file (.safetensors) or .npy folder")(
      "data", path()->required(), "data folder (Fashion-MNIST IDX or CIFAR-10 batches)")(
      "rows", po::value<std::string>()->default_value("5000,20000,50000"), "compression-set sizes in images")(
      "rule", po::value<std::string>()->default_value("fraction"), "eps | k | fraction")(
      "value", po::value<double>()->default_value(0.2), "the rule's value")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the compression sets")(
      "engine", po::value<std::string>()->default_value("tsqr"), "pivot engine: tsqr | gram")(
      "threads", po::value<int>()->default_value(0), "threads per rank (0: the cores this process may use)")(
      "json", po::bool_switch(), "print one JSON object instead of the table");
  po::options_description set("compression set");
  set.add_options()("augment", po::value<std::string>()->default_value("none"),
                    "none | shifts | shifts:R ((2R + 1)^2 rows per image)")(
      "block-rows", po::value<long>()->default_value(0), "stream in blocks of this many rows per rank (0: in memory)")(
      "max-memory", po::value<std::string>()->default_value(""), "stream when the set would take more per rank");
  options.add(set);
  po::variables_map vm;
  if (!parse("bench compress-scale", kUsage, options, args, vm)) return 0;

  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  const dist::ResolvedThreads resolved = dist::resolve_threads(vm["threads"].as<int>(), "--threads");
  const int threads = resolved.threads;
  const dist::ThreadLimit thread_limit(threads);
  CompressionSetOptions spec;
  spec.all = true;
  spec.shift_radius = parse_augment("bench compress-scale", vm["augment"].as<std::string>());
  const long block = vm["block-rows"].as<long>();
  require(block >= 0, "bench compress-scale: --block-rows=", block, " (needs >= 0)");
  spec.block_rows = block;
  if (const std::string m = vm["max-memory"].as<std::string>(); !m.empty()) spec.max_memory = la::parse_memory_size(m);
  const std::vector<long> sizes = parse_integers(vm["rows"].as<std::string>(), "--rows");
  const auto rule = compress::parse_rank_rule(vm["rule"].as<std::string>());
  const compress::StrategyInfo& info = compress::strategy("greedy");
  const auto policy = compress::strategy_policy(info, compress::PolicyOptions{});
  policy->check(compress::LayerRule{rule, vm["value"].as<double>()});
  compress::EngineOptions copts;
  copts.pivot.engine = dist::parse_pivot_engine(vm["engine"].as<std::string>());

  std::string sha;
  const nn::Mlp model = load_model_on_every_rank(comm, "bench compress-scale", vm["model"].as<std::string>(), sha);
  const std::string data_dir = vm["data"].as<std::string>();
  std::int64_t train_images = 0;
  dist::check_collective(comm, dist::capture_error([&] {
                           const auto train = data::dataset_info(data_dir, data::Split::train);
                           check_model_fits_data("bench compress-scale", model, vm["model"].as<std::string>(), train,
                                                 data_dir);
                           train_images = train.samples;
                         }));
  // Rate of this rank's cores, measured while every rank measures (ranks share the machine).
  comm.barrier();
  const double rate = la::measure_gemm_rate(threads);
  const double rate_min = comm.min(rate);

  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (const long images : sizes) {
    require(images >= 1 && images <= train_images, "bench compress-scale: --rows entry ", images, " outside [1, ",
            train_images, "] (the training images)");
    std::vector<std::int64_t> pool(static_cast<std::size_t>(train_images));
    std::iota(pool.begin(), pool.end(), std::int64_t{0});
    const data::RowSource whole =
        compression_source("bench compress-scale", spec, data_dir,
                           data::sample_compression_set(pool, images, vm["seed"].as<unsigned long>()), images);
    std::optional<compress::CompressionEngine> engine;
    dist::check_collective(
        comm, dist::capture_error([&] {
          engine.emplace(compression_engine("bench compress-scale", comm, model, whole, spec, copts));
        }));
    const compress::PointPlan plan =
        compress::uniform_plan(policy, model.num_hidden(), {}, compress::LayerRule{rule, vm["value"].as<double>()});
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<compress::CompressedModel> out = engine->compress(std::span<const compress::PointPlan>(&plan, 1));
    comm.barrier();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The work of the point: each hidden layer's activations from the compressed network's inputs
    // (the original width before the first layer) and the R factor of those activations.
    const auto rows = static_cast<la::index_t>(whole.rows());
    double flops = 0.0;
    la::index_t in = model.input_dim();
    for (la::index_t l = 0; l < model.num_hidden(); ++l) {
      const la::index_t width = model.hidden(l).d_out();
      flops += la::gemm_flops(rows, width, in) + la::qr_r_flops(rows, width);
      in = out.front().layers[static_cast<std::size_t>(l)].kept;
    }
    const double bound = flops / (static_cast<double>(comm.size()) * rate_min * 1e9);
    const double act = comm.max(engine->stats().activation_seconds);
    const double fact = comm.max(engine->stats().factorization_seconds);
    const auto rss = comm.max(la::peak_rss_bytes());
    nlohmann::ordered_json r;
    r["images"] = images;
    r["rows"] = rows;
    r["streamed"] = engine->streamed();
    r["activation_seconds"] = act;
    r["factorization_seconds"] = fact;
    r["seconds"] = seconds;
    r["gflop"] = flops / 1e9;
    r["bound_seconds"] = bound;
    r["ratio"] = seconds / bound;
    // The engine's compute phases alone (without checks, selections and folds).
    r["compute_ratio"] = (act + fact) / bound;
    r["peak_rss_bytes"] = rss;
    // Streamed passes that started from the inputs the level before kept (--max-memory), not the set.
    r["cached_passes"] = comm.max(engine->stats().cached_passes);
    std::vector<la::index_t> kept;
    for (const auto& o : out.front().layers) kept.push_back(o.kept);
    r["kept_per_layer"] = kept;
    nlohmann::ordered_json neurons = nlohmann::ordered_json::array();
    for (const auto& o : out.front().layers) neurons.push_back(o.kept_neurons);
    r["kept_neurons"] = neurons;
    runs.push_back(std::move(r));
  }
  if (!root) return 0;
  nlohmann::ordered_json j;
  j["benchmark"] = "compress-scale";
  j["ranks"] = comm.size();
  j["threads"] = threads;
  j["blas_core"] = la::blas_core_name();
  j["gemm_gflops_per_rank"] = rate_min;
  j["rule"] = std::string(compress::to_string(rule));
  j["value"] = vm["value"].as<double>();
  j["augment"] = vm["augment"].as<std::string>();
  j["rows_per_image"] = (2 * spec.shift_radius + 1) * (2 * spec.shift_radius + 1);
  j["block_rows"] = block;
  j["version"] = version_string();
  j["runs"] = runs;
  if (vm["json"].as<bool>()) {
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "compress-scale: greedy " << j["rule"].get<std::string>() << " " << j["value"].get<double>() << ", "
            << comm.size() << " rank(s) x " << threads << " thread(s), DGEMM " << fixed(rate_min, 1)
            << " GFLOP/s per rank (OpenBLAS " << la::blas_core_name() << ")\n";
  std::cout << std::setw(9) << "rows" << std::setw(10) << "streamed" << std::setw(12) << "activ. s" << std::setw(12)
            << "factor. s" << std::setw(10) << "total s" << std::setw(10) << "GFLOP" << std::setw(10) << "bound s"
            << std::setw(9) << "ratio" << std::setw(12) << "(a+f)/b" << std::setw(12) << "RSS MiB"
            << "\n";
  for (const auto& r : runs)
    std::cout << std::setw(9) << r["rows"].get<long>() << std::setw(10) << (r["streamed"].get<bool>() ? "yes" : "no")
              << std::setw(12) << fixed(r["activation_seconds"].get<double>(), 2) << std::setw(12)
              << fixed(r["factorization_seconds"].get<double>(), 2) << std::setw(10)
              << fixed(r["seconds"].get<double>(), 2) << std::setw(10) << fixed(r["gflop"].get<double>(), 1)
              << std::setw(10) << fixed(r["bound_seconds"].get<double>(), 2) << std::setw(9)
              << fixed(r["ratio"].get<double>(), 2) << std::setw(12) << fixed(r["compute_ratio"].get<double>(), 2)
              << std::setw(12) << fixed(static_cast<double>(r["peak_rss_bytes"].get<std::int64_t>()) / 1048576.0, 0)
              << "\n";
  return 0;
}

}  // namespace idprune::cli
