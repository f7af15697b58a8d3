// `idprune lowrank`: how close the rank-k approximation from k columns (CPQR / ID) comes to the
// optimal one (truncated SVD), for k = 1..kmax (reference text, Goal 3). The table itself is
// computed by la::cpqr_vs_svd_errors; this file only chooses the matrix and writes the results.
#include "idprune/la/lowrank.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/npy.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/kernel.hpp"
#include "idprune/nn/model_io.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage =
    R"([--n N --seed S | --matrix FILE.npy | --model M --data D --layer L [--seed S]] [--kmax K] [--out FILE.csv]

For k = 1..K compares the spectral error of the rank-k interpolative decomposition from a
column-pivoted QR, ||A - A(:, C) T||_2 = ||R22||_2, with the optimal rank-k error sigma_{k+1}(A).
The matrix is the kernel matrix G_ij = exp(-2 ||x_i - x_j||^2) of N points drawn uniformly from
the unit square (seeded), or any 2-D .npy array given with --matrix, or (reference text, Goal 5)
the activations act(Xc W_1 ...) of hidden layer L (1-based) of a model on a compression set Xc of
--compression-size training images drawn with --seed (default 1: the draw `idprune sweep` makes
with the same --compression-size and --seed); then K defaults to min(compression-size, the layer's
width), else to min(100, min(m, n)). The three sources exclude each other. --seed defaults to 0 for
the kernel points.

Writes the CSV `k,cpqr_error,svd_error,ratio` to --out (atomically), or to standard output when
--out is not given (the summary then goes to standard error). The summary reports the largest
ratio over the k whose optimal error is above rounding level, sigma_{k+1} > tol * sigma_1.

Example:
  idprune lowrank --n 200 --kmax 50 --out results/lowrank-kernel.csv)";

struct Problem {
  la::Matrix a;
  std::string description;
};

Problem load_problem(const po::variables_map& vm) {
  if (vm.count("model")) {
    require(vm.count("data") > 0, "lowrank: --model needs --data (the compression set's images)");
    const auto path = vm["model"].as<std::string>();
    const auto dir = vm["data"].as<std::string>();
    const long layer = vm["layer"].as<long>();
    const long size = vm["compression-size"].as<long>();
    // The compression set `idprune sweep` draws (its --seed defaults to 1).
    const unsigned long seed = vm.count("seed") ? vm["seed"].as<unsigned long>() : 1;
    const nn::Mlp model = load_model(vm, path);
    require(layer >= 1 && layer <= model.num_hidden(), "lowrank: --layer=", layer, " outside [1, ", model.num_hidden(),
            "] (the hidden layers of ", path, ")");
    const auto info = data::dataset_info(dir, data::Split::train);
    require(size >= 1 && size <= info.samples, "lowrank: --compression-size=", size, " outside [1, ", info.samples,
            "] (training images in ", dir, ")");
    std::vector<std::int64_t> pool(static_cast<std::size_t>(info.samples));
    std::iota(pool.begin(), pool.end(), std::int64_t{0});
    const auto rows = data::sample_compression_set(pool, size, seed);
    const data::Dataset xc = data::load_dataset_rows(dir, data::Split::train, rows);
    Problem p{model.hidden_activations(xc.x, layer - 1), {}};
    p.description = "activations of hidden layer " + std::to_string(layer) + " of " + path + " on " +
                    std::to_string(size) + " training images of " + dir + " (seed " + std::to_string(seed) + "), " +
                    std::to_string(p.a.rows()) + " x " + std::to_string(p.a.cols());
    return p;
  }
  if (vm.count("matrix")) {
    const auto path = vm["matrix"].as<std::string>();
    Problem p{data::read_npy(path, /*require_finite=*/true), {}};
    p.description = "matrix " + path + " (" + std::to_string(p.a.rows()) + " x " + std::to_string(p.a.cols()) + ")";
    return p;
  }
  const long n = vm["n"].as<long>();
  require(n >= 1, "lowrank: --n=", n, " must be >= 1");
  const unsigned long seed = vm.count("seed") ? vm["seed"].as<unsigned long>() : 0;
  Problem p{la::kernel_study_matrix(n, seed), {}};
  p.description = "kernel matrix exp(-2 ||x_i - x_j||^2), " + std::to_string(n) +
                  " uniform points in the unit square (seed " + std::to_string(seed) + ")";
  return p;
}

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  std::ostringstream os;
  os << std::setprecision(17) << v;
  return os.str();
}

std::string to_csv(const la::LowRankComparison& table) {
  std::ostringstream os;
  os << "k,cpqr_error,svd_error,ratio\n";
  for (const auto& row : table.rows)
    os << row.k << "," << format_number(row.cpqr_error) << "," << format_number(row.svd_error) << ","
       << format_number(row.ratio) << "\n";
  return os.str();
}

}  // namespace

int run_lowrank(const std::vector<std::string>& args) {
  po::options_description options("lowrank options");
  options.add_options()("n", po::value<long>()->default_value(200), "number of kernel points (kernel study)")(
      "seed", po::value<unsigned long>(),
      "seed of the kernel points (default 0), or of the compression set (with --model; default 1, as sweep)")(
      "matrix", path(), "use this 2-D .npy array instead of the kernel matrix")(
      "model", path(), "use the activations of a hidden layer of this model (with --data)")(
      "data", path(), "data folder of the compression set (with --model)")(
      "layer", po::value<long>()->default_value(1), "hidden layer (1-based) whose activations are used (with --model)")(
      "compression-size", po::value<long>()->default_value(2000), "images in the compression set (with --model)")(
      "kmax", po::value<long>(),
      "largest k (1..min(m, n)); default min(100, min(m, n)), with --model min(compression-size, width)")(
      "method", po::value<std::string>()->default_value("blocked"), "CPQR method: unblocked, blocked or lapack")(
      "tol", real(la::default_rounding_tol), "rounding level: ratios count where sigma_{k+1} > tol * sigma_1 (> 0)")(
      "out", path(), "write the CSV table to this file (default: standard output)");
  add_layer_order_option(options);
  po::variables_map vm;
  if (!parse("lowrank", kUsage, options, args, vm)) return 0;

  // Validate every option before any work, so a bad run leaves nothing behind.
  const double tol = vm["tol"].as<double>();
  require(std::isfinite(tol) && tol > 0.0, "lowrank: --tol=", tol, " must be finite and > 0");
  la::CpqrOptions opts;
  opts.method = la::parse_cpqr_method(vm["method"].as<std::string>());
  const bool kmax_given = vm.count("kmax") > 0;
  const long kmax_opt = kmax_given ? vm["kmax"].as<long>() : 0;
  require(!kmax_given || kmax_opt >= 1, "lowrank: --kmax=", kmax_opt, " must be >= 1");
  // One matrix source: a second one given would otherwise be ignored without a word.
  const bool kernel_given = !vm["n"].defaulted();
  const int sources =
      static_cast<int>(vm.count("matrix")) + static_cast<int>(vm.count("model")) + (kernel_given ? 1 : 0);
  require(sources <= 1, "lowrank: --n, --matrix and --model each choose the matrix; give one of them (got",
          kernel_given ? " --n" : "", vm.count("matrix") ? " --matrix" : "", vm.count("model") ? " --model" : "", ")");
  require(!vm.count("data") || vm.count("model"), "lowrank: --data goes with --model");
  // --out before any work: a folder that cannot be written is refused now.
  if (vm.count("out")) {
    const std::filesystem::path out(vm["out"].as<std::string>());
    io::prepare_output_folder(out.has_parent_path() ? out.parent_path().string() : std::string("."));
  }

  const Problem p = load_problem(vm);
  const la::index_t full = std::min(p.a.rows(), p.a.cols());
  require(full >= 1, "lowrank: the matrix is empty (", p.a.rows(), " x ", p.a.cols(), ")");
  const la::index_t kmax = !kmax_given ? (vm.count("model") ? full : std::min<la::index_t>(100, full)) : kmax_opt;
  require(kmax <= full, "lowrank: --kmax=", kmax, " out of range [1, ", full, "] for a ", p.a.rows(), " x ", p.a.cols(),
          " matrix");

  const la::LowRankComparison table = la::cpqr_vs_svd_errors(p.a, kmax, opts, tol);
  const std::string csv = to_csv(table);

  std::ostream& summary = vm.count("out") ? std::cout : std::cerr;
  if (vm.count("out")) {
    io::write_file_atomically(vm["out"].as<std::string>(), csv);
  } else {
    std::cout << csv;
  }
  summary << "lowrank: " << p.description << "\n"
          << "  CPQR method " << la::to_string(opts.method) << ", k = 1.." << kmax << "\n"
          << std::setprecision(4) << "  sigma_1 = " << table.sigma1 << ", rounding level " << tol
          << " * sigma_1 = " << table.rounding_level << "\n"
          << "  k with sigma_{k+1} above rounding level: " << table.rows_above_rounding << "\n";
  if (table.rows_above_rounding > 0)
    summary << "  max CPQR/SVD error ratio there: " << table.max_ratio << " (k = " << table.max_ratio_k << ")\n";
  if (vm.count("out")) summary << "  wrote " << vm["out"].as<std::string>() << "\n";
  return 0;
}

}  // namespace idprune::cli
