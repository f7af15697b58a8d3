// `idprune pareto`: accuracy / parameter Pareto fronts of greedy, the baselines and the joint
// strategies (issue 6). Selection on a validation split of the training images, one test
// evaluation per final model. Writes DIR/pareto.csv (one row per strategy and budget),
// DIR/pareto-curves.csv (every model evaluated), DIR/pareto-summary.csv (each strategy against
// greedy), DIR/joint-path-*.csv (the descent paths), DIR/config.ini, and the report (DIR/report).
#include "idprune/compress/pareto.hpp"

#include <sched.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/compress/results.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/nn/model_io.hpp"
#include "idprune/report/report.hpp"
#include "idprune/version.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"(--model M --data D --out DIR [--strategies greedy,magnitude,svd,...]
       [--budgets 0.05,0.075,0.1,0.15,0.2,0.3] [--compression-size 2000] [--validation-size 5000]
       [--seed S] [--threads T] [--intercept] [--step 0.05] [--objective cross-entropy|error-rate]

For every strategy and parameter budget (a fraction of the model's parameters), the strategy's best
compressed model within the budget: selected on a VALIDATION split of the training images
(--validation-size images, drawn with --seed), then evaluated once on the test set. The compression
set (--compression-size images) is drawn from the remaining training images.
Strategies:
  greedy, magnitude, random   the sweep strategies over --eps-grid (best point within each budget)
  greedy-fraction             greedy ID with every layer keeping the same fraction of its neurons,
                              over --svd-grid fractions (a stronger baseline than the eps rule)
  svd                         each layer replaced by U_r (S_r V_r^T), over --svd-grid fractions
  corrected                   greedy's eps rule, interpolation T re-solved by least squares against
                              the ORIGINAL network's activations (errors do not accumulate)
  spectrum[-corrected]        one relative tolerance per layer on its own CPQR diagonal (--tau-grid)
  budget[-corrected]          per-budget allocation of neurons from every layer's CPQR diagonals
                              (least estimated error per parameter), iterated
  tuned[-corrected]           the budget allocation with per-layer error weights tuned on the
                              validation split (coordinate descent, --tune-rounds rounds)
  joint[-corrected]           search on the validation split: repeatedly shrink the layer whose
                              reduction (by --step of the parameters) costs the least validation
                              cross-entropy per parameter removed; one path serves every budget
Writes DIR/pareto.csv, DIR/pareto-curves.csv, DIR/pareto-summary.csv (each strategy vs greedy
interpolated along its sweep), DIR/joint-path-*.csv, DIR/config.ini and the report DIR/report
(--no-report to skip).)";

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

std::string join(const std::vector<la::index_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ";" : "") + std::to_string(v[i]);
  return s;
}

/// Rows as CSV text (header from the first row).
std::string csv_text(const std::vector<nlohmann::ordered_json>& rows) {
  if (rows.empty()) return {};
  const std::vector<std::string> columns = compress::csv_columns(rows.front());
  std::string text;
  for (std::size_t i = 0; i < columns.size(); ++i) text += (i ? "," : "") + columns[i];
  text += "\n";
  for (const auto& r : rows) text += compress::csv_line(r, columns) + "\n";
  return text;
}

double finite_or_nan(double v) { return std::isfinite(v) ? v : std::nan(""); }

}  // namespace

int run_pareto(const std::vector<std::string>& args) {
  po::options_description options("pareto options");
  options.add_options()("model", po::value<std::string>()->required(), "model file (.safetensors) or .npy folder")(
      "data", po::value<std::string>()->required(), "data folder (Fashion-MNIST IDX or CIFAR-10 batches)")(
      "out", po::value<std::string>()->required(), "output folder")(
      "strategies",
      po::value<std::string>()->default_value(
          "greedy,greedy-fraction,magnitude,svd,corrected,spectrum,spectrum-corrected,budget,budget-corrected,joint,"
          "joint-corrected"),
      "comma-separated strategies")("budgets", po::value<std::string>()->default_value("0.05,0.075,0.1,0.15,0.2,0.3"),
                                    "parameter budgets, fractions of the original model")(
      "compression-size", po::value<long>()->default_value(2000), "images in the compression set")(
      "validation-size", po::value<long>()->default_value(5000), "training images held out for selection")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the validation split and compression set")(
      "test-size", po::value<long>()->default_value(0), "evaluate on the first N test images (0: all)")(
      "eps-grid", po::value<std::string>()->default_value(""), "eps values of the sweeps (default: 1e-3..10, log)")(
      "tau-grid", po::value<std::string>()->default_value(""), "spectrum tolerances (default: 1e-4..1, log)")(
      "svd-grid", po::value<std::string>()->default_value(""),
      "svd rank fractions and greedy-fraction's kept fractions (default: 0.01..1, log)")(
      "step", po::value<double>()->default_value(0.05),
      "joint: fraction of the parameters one move removes (at most half of a layer's neurons)")(
      "objective", po::value<std::string>()->default_value("cross-entropy"),
      "joint: validation objective, cross-entropy | error-rate")(
      "budget-iterations", po::value<int>()->default_value(3), "budget: allocation rounds")(
      "tune-rounds", po::value<int>()->default_value(3), "tuned: coordinate-descent rounds")(
      "engine", po::value<std::string>()->default_value("tsqr"),
      "pivot engine of the greedy/magnitude/random sweeps: tsqr | gram | sketch | scalapack | lapack")(
      "cpqr-method", po::value<std::string>()->default_value("blocked"), "local CPQR: blocked | unblocked | lapack")(
      "threads", po::value<int>()->default_value(0), "threads per rank (0: the cores this process may use)")(
      "wave", po::value<long>()->default_value(8), "sweep models compressed together")(
      "refine", po::value<int>()->default_value(5), "sweeps: bisection rounds towards every budget")(
      "batch-rows", po::value<long>()->default_value(500), "rows per evaluation task")(
      "intercept", po::bool_switch()->default_value(false),
      "corrected strategies: least-squares fit with an intercept (the next layer gains a bias)")(
      "no-report", po::bool_switch()->default_value(false), "do not build DIR/report");
  po::variables_map vm;
  if (!parse("pareto", kUsage, options, args, vm)) return 0;

  const dist::Comm comm = dist::Comm::world();
  const bool root = comm.rank() == 0;
  compress::ParetoOptions popts;
  popts.strategies = split_list(vm["strategies"].as<std::string>(), "--strategies");
  {
    const auto known = compress::pareto_strategy_names();
    std::string names;
    for (const auto n : known) names += (names.empty() ? "" : ", ") + std::string(n);
    for (const auto& s : popts.strategies)
      require(std::find(known.begin(), known.end(), s) != known.end(), "pareto: unknown strategy '", s,
              "' (known: ", names, ")");
  }
  popts.budgets = parse_doubles(vm["budgets"].as<std::string>(), "--budgets");
  for (double b : popts.budgets)
    require(b > 0.0 && b <= 1.0, "pareto: --budgets entry ", b, " outside (0, 1] (a fraction of the parameters)");
  const auto grid = [&](const char* key, std::vector<double> fallback) {
    const std::string text = vm[key].as<std::string>();
    return text.empty() ? fallback : parse_doubles(text, std::string("--") + key);
  };
  popts.eps_grid = grid("eps-grid", compress::default_eps_grid());
  popts.tau_grid = grid("tau-grid", compress::default_tau_grid());
  popts.svd_grid = grid("svd-grid", compress::default_svd_grid());
  popts.descent.step = vm["step"].as<double>();
  popts.descent.objective = compress::parse_objective(vm["objective"].as<std::string>());
  popts.descent.stop_fraction = 0.8 * *std::min_element(popts.budgets.begin(), popts.budgets.end());
  popts.budget.iterations = vm["budget-iterations"].as<int>();
  popts.tune.rounds = vm["tune-rounds"].as<int>();
  popts.tune.objective = popts.descent.objective;
  popts.compression.engine.engine = dist::parse_pivot_engine(vm["engine"].as<std::string>());
  popts.compression.cpqr_method = la::parse_cpqr_method(vm["cpqr-method"].as<std::string>());
  popts.joint.cpqr_method = popts.compression.cpqr_method;
  popts.joint.intercept = vm["intercept"].as<bool>();
  const long wave = vm["wave"].as<long>();
  require(wave >= 1, "pareto: --wave=", wave, " (needs >= 1)");
  popts.wave_size = static_cast<std::size_t>(wave);
  popts.refine = vm["refine"].as<int>();
  require(popts.refine >= 0, "pareto: --refine=", popts.refine, " (needs >= 0)");
  const long compression_size = vm["compression-size"].as<long>();
  const long validation_size = vm["validation-size"].as<long>();
  const long test_size = vm["test-size"].as<long>();
  const long batch_rows = vm["batch-rows"].as<long>();
  require(compression_size >= 1, "pareto: --compression-size=", compression_size, " (needs >= 1)");
  require(validation_size >= 1, "pareto: --validation-size=", validation_size, " (needs >= 1)");
  require(test_size >= 0, "pareto: --test-size=", test_size, " (needs >= 0)");
  require(batch_rows >= 1, "pareto: --batch-rows=", batch_rows, " (needs >= 1)");
  const auto seed = vm["seed"].as<unsigned long>();
  popts.compression.seed = seed;
  const std::string model_path = vm["model"].as<std::string>();
  const std::string data_dir = vm["data"].as<std::string>();
  const std::string out_dir = vm["out"].as<std::string>();

  const int cores = available_cores();
  int threads = vm["threads"].as<int>();
  require(threads >= 0, "pareto: --threads=", threads, " (needs >= 0)");
  if (threads == 0) threads = cores;
  if (threads > cores) {
    if (root)
      std::cerr << "pareto: --threads " << threads << " exceeds the " << cores << " cores this process may use; using "
                << cores << "\n";
    threads = cores;
  }
  const tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                        static_cast<std::size_t>(threads));
  la::set_blas_threads(threads);

  // This rank's rows of the compression, validation and test sets. The validation split and the
  // compression set both come from the training images; the test set is read only for evaluation.
  nn::Mlp model;
  la::Matrix xc;
  la::Matrix xv;
  std::vector<int> yv;
  la::Matrix xt;
  std::vector<int> yt;
  std::int64_t n_test = 0;
  std::string error = dist::capture_error([&] {
    model = nn::load_model(model_path);
    require(model.num_hidden() >= 1, "pareto: the model '", model_path, "' has no hidden layer");
    const auto train = data::dataset_info(data_dir, data::Split::train);
    require(validation_size + compression_size <= train.samples, "pareto: --validation-size=", validation_size,
            " plus --compression-size=", compression_size, " exceed the ", train.samples, " training images of '",
            data_dir, "'");
    const auto split = data::train_validation_split(train.samples, validation_size, seed);
    const auto sample = data::sample_compression_set(split.train, compression_size, seed);
    const auto part = [&](const std::vector<std::int64_t>& rows) {
      const auto mine = dist::block_rows(static_cast<la::index_t>(rows.size()), comm.size(), comm.rank());
      return std::span<const std::int64_t>(rows).subspan(static_cast<std::size_t>(mine.begin),
                                                         static_cast<std::size_t>(mine.count));
    };
    xc = data::load_dataset_rows(data_dir, data::Split::train, part(sample)).x;
    auto val = data::load_dataset_rows(data_dir, data::Split::train, part(split.validation));
    xv = std::move(val.x);
    yv = std::move(val.y);
    const auto test = data::dataset_info(data_dir, data::Split::test);
    n_test = test_size > 0 ? std::min<std::int64_t>(test_size, test.samples) : test.samples;
    const auto tmine = dist::block_rows(n_test, comm.size(), comm.rank());
    auto ds = data::load_dataset(data_dir, data::Split::test, tmine.begin, tmine.count);
    xt = std::move(ds.x);
    yt = std::move(ds.y);
  });
  dist::check_collective(comm, error);

  error = dist::capture_error([&] {
    if (!root) return;
    std::filesystem::create_directories(out_dir);
    write_resolved_config((std::filesystem::path(out_dir) / "config.ini").string(), "pareto", options, vm);
  });
  dist::check_collective(comm, error);

  const dist::DistMatrix xcd = dist::DistMatrix::block_distributed(comm, std::move(xc), compression_size);
  const compress::ValidationScorer validation(model, std::move(xv), std::move(yv), comm, batch_rows);
  const compress::Evaluator test(model, std::move(xt), std::move(yt), comm, batch_rows);
  const std::int64_t total_params = model.parameter_count();
  if (root)
    std::cerr << "pareto: " << popts.strategies.size() << " strategies x " << popts.budgets.size() << " budgets; "
              << total_params << " parameters, validation accuracy " << validation.original_scores().accuracy << " on "
              << validation.samples() << " held-out training images, test accuracy "
              << test.original_counts().accuracy() << " on " << n_test << " test images; compression set "
              << compression_size << "; " << comm.size() << " rank(s) x " << threads << " thread(s)\n";

  // Provenance columns of every row.
  nlohmann::ordered_json prov;
  prov["original_params"] = total_params;
  prov["original_validation_accuracy"] = validation.original_scores().accuracy;
  prov["original_test_accuracy"] = test.original_counts().accuracy();
  prov["compression_size"] = compression_size;
  prov["validation_size"] = validation_size;
  prov["test_samples"] = n_test;
  prov["seed"] = seed;
  prov["engine"] = std::string(dist::to_string(popts.compression.engine.engine));
  prov["cpqr_method"] = std::string(la::to_string(popts.compression.cpqr_method));
  prov["step"] = popts.descent.step;
  prov["objective"] = std::string(compress::to_string(popts.descent.objective));
  prov["ranks"] = comm.size();
  prov["threads"] = threads;
  prov["model"] = model_path;
  prov["data"] = data_dir;
  prov["git_revision"] = git_revision();
  prov["version"] = version_string();
  prov["blas_core"] = la::blas_core_name();

  const auto model_json = [&](const compress::ParetoModel& m) {
    nlohmann::ordered_json r;
    r["params"] = m.params;
    r["params_fraction"] = m.params_fraction;
    r["validation_accuracy"] = m.validation.accuracy;
    r["test_accuracy"] = m.test.accuracy();
    r["agreement"] = m.test.agreement();
    r["kept_per_layer"] = join(m.kept_per_layer);
    r["ranks_per_layer"] = join(m.ranks_per_layer);
    r["validation_cross_entropy"] = m.validation.cross_entropy;
    r["validation_agreement"] = m.validation.agreement;
    r["setting"] = m.setting;
    return r;
  };
  std::vector<nlohmann::ordered_json> rows;
  std::vector<nlohmann::ordered_json> curve_rows;
  const std::filesystem::path dir(out_dir);
  compress::ParetoHooks hooks;
  hooks.log = [&](const std::string& line) {
    if (root) std::cerr << line << "\n";
  };
  hooks.on_strategy = [&](const compress::ParetoCurve& curve, std::span<const compress::ParetoRow> new_rows) {
    const std::string e = dist::capture_error([&] {
      if (!root) return;
      for (const auto& r : new_rows) {
        nlohmann::ordered_json j;
        j["strategy"] = r.strategy;
        j["budget"] = r.budget;
        j.update(model_json(r.model));
        j["search_seconds"] = r.search_seconds;
        j.update(prov);
        rows.push_back(std::move(j));
      }
      for (const auto& m : curve.models) {
        nlohmann::ordered_json j;
        j["strategy"] = curve.strategy;
        j.update(model_json(m));
        j["strategy_seconds"] = curve.seconds;
        curve_rows.push_back(std::move(j));
      }
      // Rewritten whole after every strategy (atomically): a crash keeps the finished strategies.
      compress::write_file_atomically((dir / "pareto.csv").string(), csv_text(rows));
      compress::write_file_atomically((dir / "pareto-curves.csv").string(), csv_text(curve_rows));
      std::cerr << "pareto: " << curve.strategy << " done in " << std::fixed << std::setprecision(1) << curve.seconds
                << " s (" << curve.models.size() << " models evaluated)\n"
                << std::defaultfloat;
    });
    dist::check_collective(comm, e);
  };

  const compress::ParetoResult result = compress::run_pareto(model, xcd, validation, test, popts, hooks);

  error = dist::capture_error([&] {
    if (!root) return;
    for (std::size_t i = 0; i < result.paths.size(); ++i) {
      std::vector<nlohmann::ordered_json> path;
      for (const auto& p : result.paths[i]) {
        nlohmann::ordered_json j;
        j["step"] = p.step;
        j["params"] = p.params;
        j["params_fraction"] = p.params_fraction;
        j["validation_accuracy"] = p.validation.accuracy;
        j["validation_cross_entropy"] = p.validation.cross_entropy;
        j["kept_per_layer"] = join(p.kept);
        j["seconds"] = p.seconds;
        path.push_back(std::move(j));
      }
      compress::write_file_atomically((dir / ("joint-path-" + result.path_strategies[i] + ".csv")).string(),
                                      csv_text(path));
    }
    const auto comparisons = compress::compare_with_greedy(result);
    std::vector<nlohmann::ordered_json> summary;
    for (const auto& c : comparisons) {
      for (std::size_t b = 0; b < c.budgets.size(); ++b) {
        nlohmann::ordered_json j;
        j["strategy"] = c.strategy;
        j["budget"] = c.budgets[b];
        j["test_accuracy"] = finite_or_nan(c.test_accuracy[b]);
        j["greedy_interpolated"] = finite_or_nan(c.greedy[b]);
        j["gain"] = finite_or_nan(c.gain[b]);
        j["mean_gain"] = finite_or_nan(c.mean_gain);
        j["min_gain"] = finite_or_nan(c.min_gain);
        j["max_gain"] = finite_or_nan(c.max_gain);
        j["within_one_point_fraction"] = finite_or_nan(c.within_one_point);
        j["within_one_point_ratio_to_greedy"] = finite_or_nan(c.within_one_point_ratio);
        summary.push_back(std::move(j));
      }
    }
    compress::write_file_atomically((dir / "pareto-summary.csv").string(), csv_text(summary));
    std::cout << "strategy             mean gain  min gain  max gain  within-1pt fraction (ratio to greedy)\n";
    for (const auto& c : comparisons)
      std::cout << std::left << std::setw(20) << c.strategy << std::right << std::fixed << std::setprecision(2)
                << std::setw(10) << 100.0 * c.mean_gain << std::setw(10) << 100.0 * c.min_gain << std::setw(10)
                << 100.0 * c.max_gain << std::setw(12) << c.within_one_point << " (" << c.within_one_point_ratio
                << ")\n"
                << std::defaultfloat;
    std::cout << (dir / "pareto.csv").string() << "\n";
  });
  dist::check_collective(comm, error);

  if (root && !vm["no-report"].as<bool>()) {
    // The plot and table of the fronts (the report layer reads DIR/pareto.csv). A missing gnuplot
    // leaves the tables in place and says so.
    try {
      report::ReportOptions ro;
      ro.result_dirs = {dir};
      ro.out = dir / "report";
      ro.title = "idprune pareto";
      const auto s = report::build_report(ro);
      std::cerr << "pareto: report in " << s.out.string() << "\n";
    } catch (const std::exception& e) {
      std::cerr << "pareto: no report (" << e.what() << "); run 'idprune report " << out_dir << "'\n";
    }
  }
  return 0;
}

}  // namespace idprune::cli
