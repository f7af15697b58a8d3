#include <chrono>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "idprune/app/bench_support.hpp"
#include "idprune/app/tools.hpp"
#include "idprune/dist/kernels.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/lapack.hpp"
#include "idprune/version.hpp"

namespace idprune::app {

namespace {

using la::index_t;
using la::Matrix;

/// "3125x1024,4096x512" -> {(3125, 1024), (4096, 512)}.
std::vector<std::pair<index_t, index_t>> parse_shapes(const std::string& text) {
  std::vector<std::pair<index_t, index_t>> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto x = item.find('x');
    long m = 0;
    long n = 0;
    std::size_t used_m = 0;
    std::size_t used_n = 0;
    try {
      if (x != std::string::npos) {
        m = std::stol(item.substr(0, x), &used_m);
        n = std::stol(item.substr(x + 1), &used_n);
      }
    } catch (const std::exception&) {
      used_m = 0;
    }
    require(x != std::string::npos && used_m == x && used_n == item.size() - x - 1 && m >= 1 && n >= 1,
            "bench qr: --shapes entry '", item, "' is not ROWSxCOLS with positive integers (e.g. 3125x1024)");
    out.emplace_back(m, n);
  }
  require(!out.empty(), "bench qr: --shapes is empty");
  return out;
}

/// Seconds of body() on a fresh copy of the inputs made by prepare() (not timed).
template <class Prepare, class Body>
double seconds_of(Prepare&& prepare, Body&& body) {
  prepare();
  const auto t0 = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Median seconds and GFLOP/s of one kernel on one shape.
struct Timing {
  double seconds = 0.0;
  double gflops = 0.0;
};

Timing timing(std::vector<double> seconds, double flops) {
  const double s = median(std::move(seconds));
  return {s, s > 0.0 ? flops / s * 1e-9 : 0.0};
}

struct Row {
  index_t m = 0;
  index_t n = 0;
  Timing dgeqrt;     ///< R of B (m x n), dist::kernel::local_r_in_place (dgeqrt)
  Timing dtpqrt;     ///< R <- R of [R; B], LAPACK dtpqrt (L = 0)
  Timing recursive;  ///< the same by la::tpqrt_recursive
  [[nodiscard]] double ratio() const { return recursive.seconds > 0.0 ? dtpqrt.seconds / recursive.seconds : 0.0; }
};

}  // namespace

int bench_qr(const po::variables_map& vm) {
  const auto shapes = parse_shapes(vm["shapes"].as<std::string>());
  const long reps = vm["reps"].as<long>();
  const long nb = vm["block-size"].as<long>();
  const int threads = vm["threads"].as<int>();
  require(reps >= 1, "bench qr: --reps=", reps, " (needs >= 1)");
  require(nb >= 1, "bench qr: --block-size=", nb, " (needs >= 1)");
  require(threads >= 1, "bench qr: --threads=", threads, " (needs >= 1)");
  const la::ScopedBlasThreads blas(threads);
  const auto seed = vm["seed"].as<unsigned long>();

  std::vector<Row> rows;
  for (const auto& [m, n] : shapes) {
    const Matrix b0 = gaussian_matrix(m, n, seed);
    Matrix r0 = gaussian_matrix(n, n, seed + 1);
    for (index_t j = 0; j < n; ++j)
      for (index_t i = j + 1; i < n; ++i) r0(i, j) = 0.0;
    Matrix r;
    Matrix b;
    const auto fresh = [&] {
      r = r0;
      b = b0;
    };
    std::vector<double> geqrt;
    std::vector<double> tpqrt;
    std::vector<double> recursive;
    // Interleaved, so that the three see the same machine load.
    for (long k = 0; k < reps; ++k) {
      geqrt.push_back(seconds_of(fresh, [&] { (void)dist::kernel::local_r_in_place(b.view()); }));
      tpqrt.push_back(seconds_of(fresh, [&] { (void)la::tpqrt(r.view(), b.view(), 0, nb); }));
      recursive.push_back(seconds_of(fresh, [&] { (void)la::tpqrt_recursive(r.view(), b.view(), nb); }));
    }
    // Flops: dgeqrt 2 m n^2 - 2 n^3 / 3 (m >= n; for m < n the m x n trapezoid), the stacking 2 m n^2.
    const double md = static_cast<double>(m);
    const double nd = static_cast<double>(n);
    const double geqrt_flops =
        md >= nd ? 2.0 * md * nd * nd - 2.0 * nd * nd * nd / 3.0 : 2.0 * nd * md * md - 2.0 * md * md * md / 3.0;
    rows.push_back(
        {m, n, timing(geqrt, geqrt_flops), timing(tpqrt, 2.0 * md * nd * nd), timing(recursive, 2.0 * md * nd * nd)});
  }
  if (vm["json"].as<bool>()) {
    nlohmann::json j;
    j["benchmark"] = "qr";
    j["version"] = version_string();
    j["blas_core"] = la::blas_core_name();
    j["blas_threads"] = threads;
    j["block_size"] = nb;
    j["reps"] = reps;
    j["load_average"] = load_average();
    j["shapes"] = nlohmann::json::array();
    for (const Row& r : rows) {
      j["shapes"].push_back({{"m", r.m},
                             {"n", r.n},
                             {"dgeqrt_seconds", r.dgeqrt.seconds},
                             {"dgeqrt_gflops", r.dgeqrt.gflops},
                             {"dtpqrt_seconds", r.dtpqrt.seconds},
                             {"dtpqrt_gflops", r.dtpqrt.gflops},
                             {"tpqrt_recursive_seconds", r.recursive.seconds},
                             {"tpqrt_recursive_gflops", r.recursive.gflops},
                             {"dtpqrt_over_recursive", r.ratio()}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "idprune bench qr: block size " << nb << ", " << threads << " BLAS thread(s) (OpenBLAS "
            << la::blas_core_name() << "), median of " << reps << " interleaved runs, GFLOP/s\n"
            << "  dgeqrt: R of a row block B (m x n), the lanes' first block (LAPACK dgeqrt, block 64); stacking:\n"
               "  R <- R of [R; B] (L = 0), every further block, by LAPACK dtpqrt and by la::tpqrt_recursive\n\n";
  std::cout << std::setw(8) << "m" << std::setw(8) << "n" << std::setw(10) << "dgeqrt" << std::setw(10) << "dtpqrt"
            << std::setw(12) << "recursive" << std::setw(22) << "dtpqrt / recursive\n";
  std::cout << std::fixed;
  for (const Row& r : rows)
    std::cout << std::setw(8) << r.m << std::setw(8) << r.n << std::setprecision(1) << std::setw(10) << r.dgeqrt.gflops
              << std::setw(10) << r.dtpqrt.gflops << std::setw(12) << r.recursive.gflops << std::setprecision(2)
              << std::setw(21) << r.ratio() << "\n";
  return 0;
}

}  // namespace idprune::app
