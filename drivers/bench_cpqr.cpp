// `idprune bench cpqr`: timing study of the early-stopped column-pivoted QR (reference text,
// Goal 2): over growing m (n fixed), growing n (m fixed) and m = n, for the three methods, with
// the log-log slopes of the medians; plus the full factorization and an early stop on one size,
// blocked against LAPACK dgeqp3. Timings are taken here, never inside the algorithms.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/error.hpp"
#include "idprune/version.hpp"

namespace idprune::cli {

namespace {

using la::CpqrMethod;
using la::index_t;
using la::Matrix;

const char* const kUsage = R"([--k 20] [--reps 5] [--json] [--m-sizes ...] [--n-sizes ...] [--square-sizes ...]

Times la::cpqr stopped after k steps (max_rank = k) for the methods unblocked, blocked and lapack
(LAPACK dgeqp3 always factors fully and is truncated afterwards: the reference). Three sweeps:
growing m with n fixed, growing n with m fixed, and m = n; each point is the median of --reps
runs (--lapack-reps for dgeqp3, whose full factorization dominates the run time), methods
interleaved so that they see the same machine load. The slope of a least-squares line through
(log size, log median time) is reported per sweep and method: an O(m n k) method shows about
1, 1 and 2. The default sizes keep every matrix at 64 MB or more, beyond the caches, so that
the memory-bound matrix-vector work of each step scales with the matrix size, and span a factor
of 2.76 in m = n (2900..8000: dgeqp3's full factorization at 8000 takes most of a minute), since a
shorter span left that slope at the mercy of one noisy point.
Then the full factorization of --full-m x --full-n: blocked (by default reduced first by an
unpivoted QR when m >= 2n), blocked on A itself (the dlaqps path) and dgeqp3; and the early stop
at k on the same matrix. Inputs are Gaussian (fixed seed).
Every run records wall-clock and process CPU time (all threads). On a shared machine the CPU
time is the steadier basis for slopes: it does not count the time other processes hold the cores.
With --json, one JSON object goes to standard output instead of the table.

Example (a quick run):
  idprune bench cpqr --k 10 --reps 1 --m-sizes 4000,8000 --n-sizes 200,400 --square-sizes 500,1000 \
                     --fixed-n 200 --fixed-m 4000 --full-m 1000 --full-n 200)";

// A timed configuration: a method, and for the blocked one whether the tall-matrix QR
// preprocessing may be used (the default) or the factorization must run on A itself.
struct Variant {
  std::string name;
  CpqrMethod method;
  bool tall_qr_preprocessing = true;
};

const std::vector<Variant> kMethods = {
    {"unblocked", CpqrMethod::unblocked}, {"blocked", CpqrMethod::blocked}, {"lapack", CpqrMethod::lapack}};

enum class Clock { wall, cpu };
constexpr Clock kClocks[] = {Clock::wall, Clock::cpu};
// JSON key prefix and table label of each clock.
std::string prefix(Clock c) { return c == Clock::wall ? "" : "cpu_"; }

Matrix gaussian_matrix(index_t m, index_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  Matrix a(m, n);
  for (double& v : a.values()) v = normal(gen);
  return a;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// Least-squares slope of log(t) against log(x).
double loglog_slope(const std::vector<double>& x, const std::vector<double>& t) {
  const auto n = static_cast<double>(x.size());
  double sx = 0, st = 0, sxx = 0, sxt = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double lx = std::log(x[i]);
    const double lt = std::log(t[i]);
    sx += lx;
    st += lt;
    sxx += lx * lx;
    sxt += lx * lt;
  }
  return (n * sxt - sx * st) / (n * sxx - sx * sx);
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Every run of each variant, per clock: runs[clock][variant name].
using Runs = std::map<Clock, std::map<std::string, std::vector<double>>>;

void time_once(const Matrix& a, const la::CpqrOptions& o, const std::string& name, Runs& runs) {
  const double cpu0 = process_cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  const la::CpqrResult f = la::cpqr(a, o);
  runs[Clock::wall][name].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count());
  runs[Clock::cpu][name].push_back(process_cpu_seconds() - cpu0);
  require(f.rank == (o.max_rank < 0 ? std::min(a.rows(), a.cols()) : o.max_rank),
          "bench cpqr: ", la::to_string(o.method), " stopped at rank ", f.rank, " on a Gaussian ", a.rows(), " x ",
          a.cols(), " matrix");
}

// `reps` runs of each variant on `a` (`lapack_reps` for dgeqp3), variants interleaved within each
// repetition so that they see the same machine load.
Runs time_variants(const Matrix& a, index_t k, index_t block_size, long reps, long lapack_reps,
                   const std::vector<Variant>& variants) {
  Runs runs;
  for (long r = 0; r < std::max(reps, lapack_reps); ++r) {
    for (const Variant& v : variants) {
      if (r >= (v.method == CpqrMethod::lapack ? lapack_reps : reps)) continue;
      la::CpqrOptions o;
      o.method = v.method;
      o.max_rank = k;
      o.block_size = block_size;
      o.tall_qr_preprocessing = v.tall_qr_preprocessing;
      time_once(a, o, v.name, runs);
    }
  }
  return runs;
}

std::map<std::string, double> medians(const std::map<std::string, std::vector<double>>& runs) {
  std::map<std::string, double> out;
  for (const auto& [name, v] : runs) out[name] = median(v);
  return out;
}

struct Sweep {
  std::string name;   // "m", "n" or "square"
  std::string label;  // for the table
  std::vector<std::pair<index_t, index_t>> shapes;
  std::vector<double> sizes;  // the x of the slope fit
  // Per clock and variant: the median per shape, every run (shape-major), the fitted slope.
  std::map<Clock, std::map<std::string, std::vector<double>>> medians;
  std::map<Clock, std::map<std::string, std::vector<double>>> all_runs;
  std::map<Clock, std::map<std::string, double>> slope;
};

void run_sweep(Sweep& s, index_t k, index_t block_size, long reps, long lapack_reps, std::uint64_t seed) {
  for (const auto& [m, n] : s.shapes) {
    require(k <= std::min(m, n), "bench cpqr: --k=", k, " exceeds min(m, n) for the shape ", m, " x ", n);
    const Matrix a = gaussian_matrix(m, n, seed);
    const Runs runs = time_variants(a, k, block_size, reps, lapack_reps, kMethods);
    for (const auto& [clock, per_variant] : runs) {
      for (const auto& [name, v] : per_variant) {
        s.medians[clock][name].push_back(median(v));
        auto& all = s.all_runs[clock][name];
        all.insert(all.end(), v.begin(), v.end());
      }
    }
  }
  for (Clock c : kClocks)
    for (const Variant& v : kMethods) s.slope[c][v.name] = loglog_slope(s.sizes, s.medians[c][v.name]);
}

std::vector<index_t> integer_list(const po::variables_map& vm, const std::string& key) {
  std::vector<index_t> out;
  for (long v : parse_integers(vm[key].as<std::string>(), "--" + key)) {
    require(v >= 1, "bench cpqr: --", key, " has the size ", v, " (sizes must be >= 1)");
    out.push_back(v);
  }
  require(out.size() >= 2, "bench cpqr: --", key, " needs at least two sizes for a slope");
  return out;
}

// The 1-, 5- and 15-minute load averages (Linux), a record of how busy the machine was.
std::vector<double> load_average() {
  std::ifstream in("/proc/loadavg");
  std::vector<double> out(3, -1.0);
  for (double& v : out) in >> v;
  return out;
}

}  // namespace

int run_bench_cpqr(const std::vector<std::string>& args) {
  po::options_description options("bench cpqr options");
  options.add_options()("k", po::value<long>()->default_value(20), "steps of the early-stopped factorization")(
      "reps", po::value<long>()->default_value(5), "repetitions per point (the median is reported)")(
      "lapack-reps", po::value<long>()->default_value(1),
      "repetitions of dgeqp3 per point of the sweeps (it never stops early and dominates the run time)")(
      "json", po::bool_switch(), "print one JSON object instead of the table")(
      "block-size", po::value<long>()->default_value(32), "panel width of the blocked method")(
      "threads", po::value<int>()->default_value(0), "OpenBLAS threads (0: leave OpenBLAS's default)")(
      "fixed-n", po::value<long>()->default_value(500), "n of the growing-m sweep")(
      "m-sizes", po::value<std::string>()->default_value("16000,32000,64000,128000"),
      "m values of the growing-m sweep")("fixed-m", po::value<long>()->default_value(16000),
                                         "m of the growing-n sweep")(
      "n-sizes", po::value<std::string>()->default_value("500,1000,2000"), "n values of the growing-n sweep")(
      "square-sizes", po::value<std::string>()->default_value("2900,4000,5600,8000"), "sizes of the m = n sweep")(
      "full-m", po::value<long>()->default_value(4000), "rows of the full-factorization comparison")(
      "full-n", po::value<long>()->default_value(1000), "columns of the full-factorization comparison")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the Gaussian test matrices");
  po::variables_map vm;
  if (!parse("bench cpqr", kUsage, options, args, vm)) return 0;

  const long k = vm["k"].as<long>();
  const long reps = vm["reps"].as<long>();
  const long lapack_reps = vm["lapack-reps"].as<long>();
  const long block_size = vm["block-size"].as<long>();
  const int threads = vm["threads"].as<int>();
  const long fixed_n = vm["fixed-n"].as<long>();
  const long fixed_m = vm["fixed-m"].as<long>();
  const long full_m = vm["full-m"].as<long>();
  const long full_n = vm["full-n"].as<long>();
  const auto seed = vm["seed"].as<unsigned long>();
  require(k >= 1, "bench cpqr: --k=", k, " must be >= 1");
  require(reps >= 1, "bench cpqr: --reps=", reps, " must be >= 1");
  require(lapack_reps >= 1, "bench cpqr: --lapack-reps=", lapack_reps, " must be >= 1");
  require(block_size >= 1, "bench cpqr: --block-size=", block_size, " must be >= 1");
  require(threads >= 0, "bench cpqr: --threads=", threads, " must be >= 0");
  require(fixed_n >= k && fixed_m >= k, "bench cpqr: --fixed-n and --fixed-m must be >= k=", k);
  require(full_m >= k && full_n >= k, "bench cpqr: --full-m and --full-n must be >= k=", k);

  std::vector<Sweep> sweeps(3);
  sweeps[0].name = "m";
  sweeps[0].label = "growing m (n = " + std::to_string(fixed_n) + ")";
  for (index_t m : integer_list(vm, "m-sizes")) {
    sweeps[0].shapes.emplace_back(m, fixed_n);
    sweeps[0].sizes.push_back(static_cast<double>(m));
  }
  sweeps[1].name = "n";
  sweeps[1].label = "growing n (m = " + std::to_string(fixed_m) + ")";
  for (index_t n : integer_list(vm, "n-sizes")) {
    sweeps[1].shapes.emplace_back(fixed_m, n);
    sweeps[1].sizes.push_back(static_cast<double>(n));
  }
  sweeps[2].name = "square";
  sweeps[2].label = "m = n";
  for (index_t n : integer_list(vm, "square-sizes")) {
    sweeps[2].shapes.emplace_back(n, n);
    sweeps[2].sizes.push_back(static_cast<double>(n));
  }

  const std::vector<double> load_before = load_average();
  la::ScopedBlasThreads scoped(threads > 0 ? threads : la::blas_threads());

  for (Sweep& s : sweeps) run_sweep(s, k, block_size, reps, lapack_reps, seed);

  const Matrix big = gaussian_matrix(full_m, full_n, seed);
  const index_t full_rank = std::min<index_t>(full_m, full_n);
  // The full factorization: blocked as used by default (tall inputs are first reduced by dgeqrf),
  // blocked on A itself (the dlaqps-equivalent path), and dgeqp3.
  const std::vector<Variant> full_variants = {{"blocked", CpqrMethod::blocked},
                                              {"blocked_without_qr_preprocessing", CpqrMethod::blocked, false},
                                              {"lapack", CpqrMethod::lapack}};
  Runs full_runs = time_variants(big, full_rank, block_size, reps, reps, full_variants);
  Runs early_runs = time_variants(big, k, block_size, reps, reps, kMethods);
  const std::vector<double> load_after = load_average();

  std::map<Clock, std::map<std::string, double>> full;
  std::map<Clock, std::map<std::string, double>> early;
  for (Clock c : kClocks) {
    full[c] = medians(full_runs[c]);
    early[c] = medians(early_runs[c]);
  }
  auto ratio = [](const std::map<std::string, double>& t, const std::string& a) { return t.at(a) / t.at("lapack"); };

  if (vm["json"].as<bool>()) {
    nlohmann::json j;
    j["benchmark"] = "cpqr";
    j["version"] = version_string();
    j["git_revision"] = git_revision();
    j["blas_core"] = la::blas_core_name();
    j["blas_threads"] = la::blas_threads();
    j["load_average_before"] = load_before;
    j["load_average_after"] = load_after;
    j["k"] = k;
    j["reps"] = reps;
    j["lapack_reps_in_sweeps"] = lapack_reps;
    j["block_size"] = block_size;
    j["statistic"] = "median; seconds = wall clock, cpu_seconds = process CPU time";
    for (const Sweep& s : sweeps) {
      nlohmann::json js;
      js["m"] = nlohmann::json::array();
      js["n"] = nlohmann::json::array();
      for (const auto& [m, n] : s.shapes) {
        js["m"].push_back(m);
        js["n"].push_back(n);
      }
      for (Clock c : kClocks) {
        for (const Variant& v : kMethods) {
          js[prefix(c) + "seconds"][v.name] = s.medians.at(c).at(v.name);
          js[prefix(c) + "runs"][v.name] = s.all_runs.at(c).at(v.name);
          js[prefix(c) + "slope"][v.name] = s.slope.at(c).at(v.name);
        }
      }
      j["sweeps"][s.name] = js;
    }
    j["full"] = {{"m", full_m}, {"n", full_n}};
    j["early_stop"] = {{"m", full_m}, {"n", full_n}, {"k", k}};
    for (Clock c : kClocks) {
      j["full"][prefix(c) + "seconds"] = full[c];
      j["full"][prefix(c) + "ratio_blocked_over_lapack"] = ratio(full[c], "blocked");
      j["full"][prefix(c) + "ratio_blocked_without_qr_preprocessing_over_lapack"] =
          ratio(full[c], "blocked_without_qr_preprocessing");
      j["early_stop"][prefix(c) + "seconds"] = early[c];
      j["early_stop"][prefix(c) + "ratio_blocked_over_lapack"] = ratio(early[c], "blocked");
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::cout << "idprune bench cpqr: k = " << k << ", median of " << reps
            << " runs (dgeqp3 in the sweeps: " << lapack_reps << "), OpenBLAS " << la::blas_core_name() << " with "
            << la::blas_threads() << " threads, block size " << block_size << ", load average " << load_before[0]
            << " -> " << load_after[0] << "\n";
  std::cout << std::fixed;
  for (const Sweep& s : sweeps) {
    std::cout << "\n"
              << s.label << ": wall-clock seconds\n"
              << std::setw(8) << "m" << std::setw(8) << "n" << std::setw(14) << "unblocked" << std::setw(14)
              << "blocked" << std::setw(14) << "lapack"
              << "\n";
    for (std::size_t i = 0; i < s.shapes.size(); ++i) {
      std::cout << std::setw(8) << s.shapes[i].first << std::setw(8) << s.shapes[i].second << std::setprecision(5);
      for (const Variant& v : kMethods) std::cout << std::setw(14) << s.medians.at(Clock::wall).at(v.name)[i];
      std::cout << "\n";
    }
    for (Clock c : kClocks) {
      std::cout << std::setw(16) << (c == Clock::wall ? "slope (wall)" : "slope (cpu)") << std::setprecision(2);
      for (const Variant& v : kMethods) std::cout << std::setw(14) << s.slope.at(c).at(v.name);
      std::cout << "\n";
    }
  }
  for (Clock c : kClocks) {
    const std::string unit = c == Clock::wall ? " s" : " s cpu";
    const auto& f = full[c];
    const auto& e = early[c];
    std::cout << std::setprecision(4) << "\nfull factorization " << full_m << " x " << full_n << ": blocked "
              << f.at("blocked") << unit << ", blocked without QR preprocessing "
              << f.at("blocked_without_qr_preprocessing") << unit << ", lapack (dgeqp3) " << f.at("lapack") << unit
              << "\n"
              << std::setprecision(3) << "  blocked / lapack = " << ratio(f, "blocked")
              << ", blocked without QR preprocessing / lapack = " << ratio(f, "blocked_without_qr_preprocessing")
              << "\n"
              << std::setprecision(4) << "early stop k = " << k << " on " << full_m << " x " << full_n << ": unblocked "
              << e.at("unblocked") << unit << ", blocked " << e.at("blocked") << unit << ", lapack " << e.at("lapack")
              << unit << "\n"
              << std::setprecision(3) << "  blocked / lapack = " << ratio(e, "blocked") << "\n";
  }
  return 0;
}

}  // namespace idprune::cli
