// `idprune sweep`: one compression strategy over a grid of rank-rule values, one row per point in
// DIR/results.csv and DIR/results.jsonl (crash-safe, resumable), DIR/config.ini to repeat the run.
#include "idprune/compress/sweep.hpp"

#include <malloc.h>
#include <sched.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <future>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/compress/progress.hpp"
#include "idprune/compress/results.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/nn/model_io.hpp"
#include "idprune/version.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"(--model M --data D --strategy greedy|magnitude|random|svd --rule eps|k|fraction|rank
       --grid v1,v2,... --out DIR [--layers 1,2,...] [--compression-size 2000] [--seed S]
       [--engine tsqr|gram|sketch|scalapack|lapack] [--threads T] [--resume]

Compresses the model once per grid value and evaluates each compressed model on the test set.
  greedy     layer by layer (--layers, 1-based, default all), each layer's neurons chosen by a
             column-pivoted QR of its activations on the compression set (--compression-size images
             drawn from the training split with --seed), the interpolation matrix folded into the
             next layer. Rules: eps (|r_k+1,k+1|/|r_11| <= eps/||W_next||_2), k (neurons kept per
             layer), fraction (of each layer's neurons).
  magnitude  keep the neurons with the largest outgoing weight norms, no correction. Rules k,
             fraction, and eps = the per-layer counts greedy keeps at that eps (equal sizes).
  random     seeded random neurons with the least-squares correction. Rules as magnitude.
  svd        each layer W replaced by U_r (S_r V_r^T). Rules rank (r) and fraction (of min(d_in, d_out)).
Points run in waves of --wave points (default 2 x threads) compressed in lockstep; each wave's rows
are appended and fsync'd when it ends. --resume keeps the rows in DIR and computes only the missing
points (also: add another strategy's sweep to the same folder for one comparison table).
Under mpirun every rank holds its rows of the compression and test sets. SIGTERM/SIGINT/SIGUSR1 stop the
sweep cleanly after the wave in flight (exit 143). Under mpirun send SIGUSR1: Open MPI's mpirun
passes it on to every rank, whereas it SIGKILLs the ranks about 1 s after passing on a SIGTERM.)";

volatile std::sig_atomic_t stop_signal = 0;  // set by the signal handler only (async-signal-safe)
extern "C" void on_stop_signal(int sig) { stop_signal = sig; }

/// Installs the stop handler for SIGTERM, SIGINT and SIGUSR1 for its lifetime (SIGUSR1: mpirun
/// forwards it without killing the ranks; SLURM sends it with --signal=B:USR1@SECONDS).
class StopSignals {
 public:
  StopSignals() {
    stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term_);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGUSR1, &sa, &old_usr1_);
  }
  ~StopSignals() {
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGUSR1, &old_usr1_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_term_ {};
  struct sigaction old_int_ {};
  struct sigaction old_usr1_ {};
};

/// 64-bit FNV-1a of a byte range, continuing from `h`.
std::uint64_t fnv1a(const void* data, std::size_t bytes, std::uint64_t h = 14695981039346656037ULL) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

/// Fingerprint of everything that defines the model's function: shapes, weights, biases, activations.
std::uint64_t model_fingerprint(const nn::Mlp& model) {
  std::uint64_t h = fnv1a(nullptr, 0);
  for (la::index_t l = 0; l < model.num_layers(); ++l) {
    const nn::DenseLayer& layer = model.layer(l);
    const auto act = static_cast<int>(layer.activation());
    h = fnv1a(&act, sizeof act, h);
    for (const la::Matrix& f : layer.factors()) {
      const std::array<la::index_t, 2> shape = {f.rows(), f.cols()};
      h = fnv1a(shape.data(), sizeof shape, h);
      h = fnv1a(f.data(), static_cast<std::size_t>(f.size()) * sizeof(double), h);
    }
    h = fnv1a(layer.bias().data(), layer.bias().size() * sizeof(double), h);
  }
  return h;
}

template <class T>
std::string join(const std::vector<T>& values) {
  std::string s;
  for (std::size_t i = 0; i < values.size(); ++i) s += (i ? "-" : "") + std::to_string(values[i]);
  return s;
}

std::string widths_label(const nn::Mlp& model) { return join(model.widths()); }

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

}  // namespace

int run_sweep(const std::vector<std::string>& args) {
  po::options_description options("sweep options");
  options.add_options()("model", po::value<std::string>()->required(), "model file (.safetensors) or .npy folder")(
      "data", po::value<std::string>()->required(), "data folder (Fashion-MNIST IDX or CIFAR-10 batches)")(
      "strategy", po::value<std::string>()->default_value("greedy"), "greedy | magnitude | random | svd")(
      "rule", po::value<std::string>()->default_value("eps"), "eps | k | fraction | rank")(
      "grid", po::value<std::string>()->required(), "comma-separated rule values, one model each")(
      "layers", po::value<std::string>()->default_value(""), "hidden layers to compress, 1-based (default: all)")(
      "compression-size", po::value<long>()->default_value(2000), "images in the compression set")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the compression set and the random strategy")(
      "engine", po::value<std::string>()->default_value("tsqr"),
      "pivot engine: tsqr | gram | sketch | scalapack | lapack")(
      "cpqr-method", po::value<std::string>()->default_value("blocked"), "local CPQR: blocked | unblocked | lapack")(
      "test-size", po::value<long>()->default_value(0), "evaluate on the first N test images (0: all)")(
      "threads", po::value<int>()->default_value(0), "threads per rank (0: the cores this process may use)")(
      "wave", po::value<long>()->default_value(0), "points per wave (0: 2 x threads)")(
      "batch-rows", po::value<long>()->default_value(500), "test rows per evaluation task")(
      "progress-interval", po::value<double>()->default_value(30.0),
      "seconds between progress lines when stderr is not a terminal")("out", po::value<std::string>()->required(),
                                                                      "output folder")(
      "resume", po::bool_switch()->default_value(false), "keep the rows in --out and compute only missing points");
  po::variables_map vm;
  if (!parse("sweep", kUsage, options, args, vm)) return 0;

  // Matrices of megabytes are allocated and freed for every point and layer: keep freed memory in
  // the heap rather than returning it to the kernel, which would cost a page fault per 4 KiB page on
  // every reuse (a measurable share of a sweep's time).
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);

  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  const auto strategy = compress::parse_strategy(vm["strategy"].as<std::string>());
  const auto rule = compress::parse_rank_rule(vm["rule"].as<std::string>());
  const std::vector<double> grid = parse_doubles(vm["grid"].as<std::string>(), "--grid");
  for (double v : grid) compress::check_rule(strategy, compress::LayerRule{rule, v});
  const long compression_size = vm["compression-size"].as<long>();
  require(compression_size >= 1, "sweep: --compression-size=", compression_size, " (needs >= 1)");
  const long test_size = vm["test-size"].as<long>();
  require(test_size >= 0, "sweep: --test-size=", test_size, " (needs >= 0)");
  const long batch_rows = vm["batch-rows"].as<long>();
  require(batch_rows >= 1, "sweep: --batch-rows=", batch_rows, " (needs >= 1)");
  const auto seed = vm["seed"].as<unsigned long>();
  const std::string model_path = vm["model"].as<std::string>();
  const std::string data_dir = vm["data"].as<std::string>();
  const std::string out_dir = vm["out"].as<std::string>();
  const bool resume = vm["resume"].as<bool>();

  // Threads: TBB's parallelism and BLAS outside TBB regions; never more than the cores we may use.
  const int cores = available_cores();
  int threads = vm["threads"].as<int>();
  require(threads >= 0, "sweep: --threads=", threads, " (needs >= 0)");
  if (threads == 0) threads = cores;
  if (threads > cores) {
    if (root)
      std::cerr << "sweep: --threads " << threads << " exceeds the " << cores << " cores this process may use; using "
                << cores << "\n";
    threads = cores;
  }
  const tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                        static_cast<std::size_t>(threads));
  la::set_blas_threads(threads);
  const long wave = vm["wave"].as<long>();
  require(wave >= 0, "sweep: --wave=", wave, " (needs >= 0)");

  compress::CompressionOptions copts;
  copts.strategy = strategy;
  copts.engine.engine = dist::parse_pivot_engine(vm["engine"].as<std::string>());
  copts.cpqr_method = la::parse_cpqr_method(vm["cpqr-method"].as<std::string>());
  copts.seed = seed;

  // Model and this rank's rows of the compression and test sets.
  nn::Mlp model;
  la::Matrix xc;
  la::Matrix xt;
  std::vector<int> yt;
  std::int64_t n_test = 0;
  std::vector<la::index_t> layers;
  std::vector<std::int64_t> data_shape;  // train/test samples, features, classes: the same on every rank
  // Phase boundaries (model, data, results folder, each wave) end with a collective error check, so
  // a failure on one rank (a missing or corrupt file on its node) ends every rank with one message.
  std::string error = dist::capture_error([&] {
    dist::inject_fault(comm.rank(), "load-model");
    model = nn::load_model(model_path);
  });
  dist::check_collective(comm, error);
  // Every rank must hold the same model: another one would mean collectives of other sizes (a hang
  // or an MPI error) or, with the same shapes, rows that silently mix two models.
  dist::check_same(comm, model_fingerprint(model),
                   detail::concat("sweep: the model '", model_path, "' (widths ", widths_label(model),
                                  ") differs from rank 0's; every rank must read the same model"));
  error = dist::capture_error([&] {
    dist::inject_fault(comm.rank(), "load-data");
    require(model.num_hidden() >= 1, "sweep: the model '", model_path, "' has no hidden layer");
    if (!vm["layers"].as<std::string>().empty()) {
      for (long l : parse_integers(vm["layers"].as<std::string>(), "--layers")) {
        require(l >= 1 && l <= model.num_hidden(), "sweep: --layers entry ", l, " outside [1, ", model.num_hidden(),
                "] (the model's hidden layers)");
        layers.push_back(l - 1);
      }
      std::sort(layers.begin(), layers.end());
      layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    }
    const auto train = data::dataset_info(data_dir, data::Split::train);
    require(compression_size <= train.samples, "sweep: --compression-size=", compression_size, " exceeds the ",
            train.samples, " training images of '", data_dir, "'");
    std::vector<std::int64_t> pool(static_cast<std::size_t>(train.samples));
    std::iota(pool.begin(), pool.end(), std::int64_t{0});
    const auto sample = data::sample_compression_set(pool, compression_size, seed);
    const auto mine = dist::block_rows(compression_size, comm.size(), comm.rank());
    const auto load_train = [&] {
      return data::load_dataset_rows(data_dir, data::Split::train,
                                     std::span<const std::int64_t>(sample).subspan(
                                         static_cast<std::size_t>(mine.begin), static_cast<std::size_t>(mine.count)))
          .x;
    };
    // With two threads or more, the training rows (the larger file to decompress) load on a
    // second thread while this one loads the test rows. (On an exception here the future's
    // destructor waits for that thread.)
    std::future<la::Matrix> train_rows;
    if (threads >= 2)
      train_rows = std::async(std::launch::async, load_train);
    else
      xc = load_train();
    const auto test = data::dataset_info(data_dir, data::Split::test);
    n_test = test_size > 0 ? std::min<std::int64_t>(test_size, test.samples) : test.samples;
    const auto tmine = dist::block_rows(n_test, comm.size(), comm.rank());
    auto ds = data::load_dataset(data_dir, data::Split::test, tmine.begin, tmine.count);
    if (train_rows.valid()) xc = train_rows.get();
    xt = std::move(ds.x);
    yt = std::move(ds.y);
    data_shape = {train.samples, train.features, train.classes, test.samples, test.features, test.classes};
  });
  dist::check_collective(comm, error);
  dist::check_same(comm, fnv1a(data_shape.data(), data_shape.size() * sizeof(std::int64_t)),
                   detail::concat("sweep: the data '", data_dir, "' (train/test samples, features, classes ",
                                  join(data_shape), ") differs from rank 0's; every rank must read the same data"));

  compress::SweepProvenance prov;
  prov.model = model_path;
  prov.data = data_dir;
  prov.compression_size = compression_size;
  prov.test_samples = n_test;
  prov.seed = seed;
  prov.engine = std::string(dist::to_string(copts.engine.engine));
  prov.cpqr_method = std::string(la::to_string(copts.cpqr_method));
  prov.ranks = comm.size();
  prov.threads = threads;
  prov.wave_size = static_cast<std::size_t>(wave > 0 ? wave : 2L * threads);
  prov.git_revision = git_revision();
  prov.version = version_string();
  prov.blas_core = la::blas_core_name();

  // Results folder (rank 0 only) and the points it already holds.
  std::optional<compress::ResultsFiles> files;
  std::vector<char> finished(grid.size(), 0);
  error = dist::capture_error([&] {
    if (!root) return;
    files.emplace(out_dir, resume);
    finished = compress::finished_points(files->records(), grid, strategy, rule, layers, prov);
    if (files->dropped_lines() > 0)
      std::cerr << "sweep: dropped an incomplete last line of " << files->jsonl_path()
                << " (a run ended while writing it); its point is computed again\n";
    write_resolved_config((std::filesystem::path(out_dir) / "config.ini").string(), "sweep", options, vm);
    const std::string name = "config-" + std::string(compress::to_string(strategy)) + "-" +
                             std::string(compress::to_string(rule)) + "-" + compress::layers_label(layers) + ".ini";
    std::string safe = name;
    std::replace(safe.begin(), safe.end(), ';', '_');
    write_resolved_config((std::filesystem::path(out_dir) / safe).string(), "sweep", options, vm);
  });
  dist::check_collective(comm, error);
  comm.bcast(std::span<char>(finished), 0);

  dist::DistMatrix xcd = dist::DistMatrix::block_distributed(comm, std::move(xc), compression_size);
  const compress::Evaluator evaluator(model, std::move(xt), std::move(yt), comm, batch_rows);
  prov.original_accuracy = evaluator.original_counts().accuracy();
  compress::Compressor compressor(model, std::move(xcd), copts);

  const std::size_t skipped = static_cast<std::size_t>(std::count(finished.begin(), finished.end(), 1));
  if (root)
    std::cerr << "sweep: " << compress::to_string(strategy) << " / " << compress::to_string(rule) << ", " << grid.size()
              << " points (" << skipped << " already in " << out_dir << "), layers " << compress::layers_label(layers)
              << ", original accuracy " << prov.original_accuracy << " on " << n_test << " test images, "
              << model.parameter_count() << " parameters; " << comm.size() << " rank(s) x " << threads
              << " thread(s), engine " << prov.engine << "\n";

  compress::Progress progress(std::cerr, "sweep", grid.size(), skipped, compress::is_terminal(2),
                              vm["progress-interval"].as<double>());
  std::size_t done = skipped;
  compress::SweepOptions sopts;
  sopts.rule = rule;
  sopts.grid = grid;
  sopts.layers = layers;
  sopts.wave_size = prov.wave_size;
  compress::SweepHooks hooks;
  hooks.on_wave = [&](std::span<const compress::SweepRow> rows) {
    // Test facility: a failure outside any check while the other ranks wait in the one below.
    if (!rows.empty()) dist::inject_fault(comm.rank(), "wave-abort", static_cast<long>(rows.front().wave));
    // Rank 0 writes; a write failure there must end every rank, not leave them waiting.
    const std::string e = dist::capture_error([&] {
      if (!root) return;
      std::vector<nlohmann::ordered_json> records;
      for (const auto& row : rows) records.push_back(compress::sweep_record(row, strategy, rule, layers, prov));
      files->append(records);
      done += rows.size();
      progress.update(done);
    });
    dist::check_collective(comm, e);
  };
  hooks.stop_requested = [] { return stop_signal != 0; };
  hooks.before_wave = [&](std::size_t w) { dist::inject_fault(comm.rank(), "wave", static_cast<long>(w)); };

  compress::SweepSummary summary;
  {
    const StopSignals signals;
    summary = compress::run_sweep(compressor, evaluator, sopts, finished, hooks);
  }
  if (root) {
    progress.finish();
    const auto& st = compressor.stats();
    std::cerr << "sweep: " << summary.computed << " points computed in " << summary.waves << " waves ("
              << summary.skipped << " skipped); compression: activations " << st.activation_seconds
              << " s, factorizations " << st.factorization_seconds << " s (" << st.factorizations << " engine calls), "
              << "selection and folds " << st.apply_seconds << " s\n";
    if (summary.stopped)
      std::cerr << "sweep: stopped by a signal after a finished wave; every finished point is in " << out_dir
                << "/results.csv. Resume with: idprune sweep --config " << out_dir << "/config.ini --resume\n";
    else
      std::cout << out_dir << "/results.csv\n";
  }
  return summary.stopped ? 128 + SIGTERM : 0;
}

}  // namespace idprune::cli
