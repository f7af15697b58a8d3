#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "idprune/app/bench_support.hpp"
#include "idprune/app/options.hpp"
#include "idprune/app/tools.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/error.hpp"
#include "idprune/report/studies.hpp"
#include "idprune/version.hpp"

namespace idprune::app {

namespace {

using la::CpqrMethod;
using la::index_t;
using la::Matrix;

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
    for (const Variant& v : kMethods) s.slope[c][v.name] = report::loglog_slope(s.sizes, s.medians[c][v.name]);
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

}  // namespace

int bench_cpqr(const po::variables_map& vm) {
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

}  // namespace idprune::app
