// `idprune sweep`: one compression strategy over a grid of rank-rule values, one row per point in
// DIR/results.csv and DIR/results.jsonl (crash-safe, resumable), DIR/config.ini to repeat the run.
#include "idprune/compress/sweep.hpp"

#include <malloc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <future>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "compression_set.hpp"
#include "idprune/compress/progress.hpp"
#include "idprune/compress/results.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/dist/parallelism.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/nn/model_io.hpp"
#include "idprune/version.hpp"

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
      "layers", po::value<std::string>()->default_value("all"), "hidden layers to compress, 1-based, or all")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the compression set and the random strategy")(
      "engine", po::value<std::string>()->default_value("tsqr"),
      "pivot engine: tsqr | gram | sketch | scalapack | lapack")(
      "cpqr-method", po::value<std::string>()->default_value("blocked"), "local CPQR: blocked | unblocked | lapack")(
      "test-size", po::value<long>()->default_value(0), "evaluate on the first N test images (0: all)")(
      "threads", po::value<int>()->default_value(0), "threads per rank (0: the cores this process may use)")(
      "wave", po::value<long>()->default_value(0), "points per wave (0: 2 x threads)")(
      "batch-rows", po::value<long>()->default_value(500), "test rows per evaluation task")(
      "progress-interval", real(30.0), "seconds between progress lines when stderr is not a terminal")(
      "mean-compensation", po::bool_switch()->default_value(false),
      "id, corrected, random and output strategies: the next layer's bias absorbs the mean residual (rows are "
      "recorded as STRATEGY+mean)")("out", path()->required(), "output folder")(
      "resume", po::bool_switch()->default_value(false), "keep the rows in --out and compute only missing points");
  options.add(compression_set_options());
  po::variables_map vm;
  if (!parse("sweep", usage().c_str(), options, args, vm)) return 0;

  // Matrices of megabytes are allocated and freed for every point and layer: keep freed memory in
  // the heap rather than returning it to the kernel, which would cost a page fault per 4 KiB page on
  // every reuse (a measurable share of a sweep's time).
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);

  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  const compress::StrategyInfo& info = compress::strategy(vm["strategy"].as<std::string>());
  require(!info.sweep_rules.empty(), "sweep: strategy '", info.name, "' is not a sweep strategy (sweep takes ",
          compress::strategy_names(true), "; the others run in idprune pareto)");
  const bool mean_compensation = vm["mean-compensation"].as<bool>();
  require(!mean_compensation || compress::takes_mean_compensation(info.policy),
          "sweep: --mean-compensation applies to the id, corrected, random and output strategies, not to ", info.name);
  // Compensated rows are another strategy's rows: a resumed sweep never mixes them.
  const std::string strategy = std::string(info.name) + (mean_compensation ? "+mean" : "");
  const auto rule = compress::parse_rank_rule(vm["rule"].as<std::string>());
  const std::vector<double> grid = parse_doubles(vm["grid"].as<std::string>(), "--grid");
  for (double v : grid) compress::strategy_policy(info)->check(compress::LayerRule{rule, v});
  require(std::find(info.sweep_rules.begin(), info.sweep_rules.end(), rule) != info.sweep_rules.end(),
          "sweep: strategy ", info.name, " does not take the rule ", compress::to_string(rule),
          " (see idprune sweep --help)");
  const CompressionSetSpec set = compression_set_spec(vm, "sweep");
  long compression_size = 0;
  data::RowSource set_rows;
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
  const dist::ResolvedThreads resolved = dist::resolve_threads(vm["threads"].as<int>(), "--threads");
  if (root && !resolved.warning.empty()) std::cerr << "sweep: " << resolved.warning << "\n";
  const int threads = resolved.threads;
  const dist::ThreadLimit thread_limit(threads);
  const long wave = vm["wave"].as<long>();
  require(wave >= 0, "sweep: --wave=", wave, " (needs >= 0)");

  compress::EngineOptions copts;
  copts.pivot.engine = dist::parse_pivot_engine(vm["engine"].as<std::string>());
  copts.cpqr_method = la::parse_cpqr_method(vm["cpqr-method"].as<std::string>());
  copts.complete_factorizations = info.complete_factorizations;
  compress::PolicyOptions policy;
  policy.seed = seed;
  policy.mean_compensation = mean_compensation;

  // The results folder first (rank 0 only): locked for this run, so that a second run on it fails
  // at once, before any loading.
  std::optional<compress::ResultsFiles> files;
  std::string error = dist::capture_error([&] {
    if (!root) return;
    files.emplace(out_dir, resume, "idprune sweep");
    for (const auto& note : files->notes()) std::cerr << "sweep: " << note << "\n";
  });
  dist::check_collective(comm, error);

  // Model and this rank's rows of the compression and test sets.
  nn::Mlp model;
  la::Matrix xc;
  la::Matrix xt;
  std::vector<int> yt;
  std::int64_t n_test = 0;
  std::vector<la::index_t> layers;
  // Phase boundaries (model, data, results folder, each wave) end with a collective error check, so
  // a failure on one rank (a missing or corrupt file on its node) ends every rank with one message.
  std::string model_sha256;
  model = load_model_on_every_rank(comm, "sweep", model_path, model_sha256);
  std::string data_sha256;
  error = dist::capture_error([&] {
    dist::inject_fault(comm.rank(), "load-data");
    require(model.num_hidden() >= 1, "sweep: the model '", model_path, "' has no hidden layer");
    if (const std::string text = vm["layers"].as<std::string>(); !text.empty() && text != "all") {
      for (long l : parse_integers(text, "--layers")) {
        require(l >= 1 && l <= model.num_hidden(), "sweep: --layers entry ", l, " outside [1, ", model.num_hidden(),
                "] (the model's hidden layers)");
        layers.push_back(l - 1);
      }
      std::sort(layers.begin(), layers.end());
      layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    }
    const auto train = data::dataset_info(data_dir, data::Split::train);
    check_model_fits_data("sweep", model, model_path, train, data_dir);
    const std::array<data::Split, 2> splits = {data::Split::train, data::Split::test};
    data_sha256 = cli::data_sha256(data_dir, splits);
    compression_size = compression_images(
        "sweep", set.size, set.calibration.empty() ? train.samples : data::calibration_rows(set.calibration).rows(),
        set.calibration.empty() ? "the training images of '" + data_dir + "'" : "'" + set.calibration + "'");
    std::vector<std::int64_t> pool(static_cast<std::size_t>(train.samples));
    std::iota(pool.begin(), pool.end(), std::int64_t{0});
    const auto sample =
        set.calibration.empty() ? data::sample_compression_set(pool, compression_size, seed) : decltype(pool)();
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
    if (!set.plain()) {
      set_rows = compression_source("sweep", set, data_dir, sample, compression_size);
      compression_size = set_rows.rows();
    } else if (threads >= 2)
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
  });
  dist::check_collective(comm, error);
  check_same_data(comm, "sweep", data_dir, data_sha256);

  compress::SweepProvenance prov;
  prov.model = model_path;
  prov.data = data_dir;
  prov.model_sha256 = model_sha256;
  prov.data_sha256 = data_sha256;
  prov.compression_size = compression_size;
  prov.test_samples = n_test;
  prov.seed = seed;
  prov.engine = std::string(dist::to_string(copts.pivot.engine));
  prov.cpqr_method = std::string(la::to_string(copts.cpqr_method));
  prov.ranks = comm.size();
  prov.threads = threads;
  prov.wave_size = static_cast<std::size_t>(wave > 0 ? wave : 2L * threads);
  prov.git_revision = git_revision();
  prov.version = version_string();
  prov.blas_core = la::blas_core_name();

  // The points the folder already holds; its configuration (inputs identified by content).
  std::vector<char> finished(grid.size(), 0);
  error = dist::capture_error([&] {
    if (!root) return;
    finished = compress::finished_points(files->records(), grid, strategy, rule, layers, prov);
    const std::vector<std::pair<std::string, std::string>> hashes = {{"model_sha256", model_sha256},
                                                                     {"data_sha256", data_sha256}};
    write_resolved_config((std::filesystem::path(out_dir) / "config.ini").string(), "sweep", options, vm, hashes);
    const std::string name = "config-" + strategy + "-" + std::string(compress::to_string(rule)) + "-" +
                             compress::layers_label(layers) + ".ini";
    std::string safe = name;
    std::replace(safe.begin(), safe.end(), ';', '_');
    write_resolved_config((std::filesystem::path(out_dir) / safe).string(), "sweep", options, vm, hashes);
  });
  dist::check_collective(comm, error);
  comm.bcast(std::span<char>(finished), 0);

  compress::ScorerOptions scoring;
  scoring.batch_rows = batch_rows;
  const compress::Scorer test(model, std::move(xt), std::move(yt), comm, scoring);
  prov.original_accuracy = test.original_scores().accuracy();
  std::optional<compress::CompressionEngine> engine_slot;
  error = dist::capture_error([&] {
    engine_slot.emplace(
        set.plain() ? compress::CompressionEngine(
                          model, dist::DistMatrix::block_distributed(comm, std::move(xc), compression_size), copts)
                    : compression_engine("sweep", comm, model, set_rows, set, copts));
  });
  dist::check_collective(comm, error);
  compress::CompressionEngine& engine = *engine_slot;

  const std::size_t skipped = static_cast<std::size_t>(std::count(finished.begin(), finished.end(), 1));
  if (root)
    std::cerr << "sweep: " << strategy << " / " << compress::to_string(rule) << ", " << grid.size() << " points ("
              << skipped << " already in " << out_dir << "), layers " << compress::layers_label(layers)
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
  std::optional<StopSignals> signals;
  hooks.stop_requested = [&] { return signals->requested(); };
  hooks.before_wave = [&](std::size_t w) { dist::inject_fault(comm.rank(), "wave", static_cast<long>(w)); };

  compress::SweepSummary summary;
  signals.emplace("sweep", "wave", root);
  summary = compress::run_sweep(engine, info, policy, test, sopts, finished, hooks);
  const int stop_code = signals->exit_code();
  signals.reset();
  if (root) {
    progress.finish();
    const auto& st = engine.stats();
    std::cerr << "sweep: " << summary.computed << " points computed in " << summary.waves << " waves ("
              << summary.skipped << " skipped); compression: activations " << st.activation_seconds
              << " s, factorizations " << st.factorization_seconds << " s (" << st.factorizations << " engine calls), "
              << "least squares " << st.least_squares_seconds << " s, selection and folds " << st.fold_seconds
              << " s\n";
    if (summary.stopped)
      std::cerr << "sweep: stopped by a signal after a finished wave; every finished point is in " << out_dir
                << "/results.csv. Resume with: idprune sweep --config " << out_dir << "/config.ini --resume\n";
    else
      std::cout << out_dir << "/results.csv\n";
  }
  return summary.stopped ? stop_code : 0;
}

}  // namespace idprune::cli
