#include "idprune/la/measure.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"

namespace idprune::la {

double gemm_flops(index_t m, index_t n, index_t k) {
  require(m >= 0 && n >= 0 && k >= 0, "gemm_flops: negative dimension m=", m, ", n=", n, ", k=", k);
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
}

double qr_r_flops(index_t m, index_t n) {
  require(m >= 0 && n >= 0, "qr_r_flops: negative dimension m=", m, ", n=", n);
  const auto big = static_cast<double>(std::max(m, n));
  const auto small = static_cast<double>(std::min(m, n));
  return 2.0 * small * small * (big - small / 3.0);
}

namespace {

double seconds_of_product(const Matrix& a, const Matrix& b, Matrix& c) {
  const auto start = std::chrono::steady_clock::now();
  gemm(1.0, a, Op::none, b, Op::none, 0.0, c.view());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Deterministic entries in [-1, 1): the rate does not depend on the values (no denormals, no zeros).
Matrix filled(index_t n, double shift) {
  Matrix a = Matrix::uninitialized(n, n);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < n; ++i) a(i, j) = static_cast<double>((i * 7 + j * 13) % 17) / 17.0 - shift;
  return a;
}

}  // namespace

double measure_gemm_rate(int threads) {
  require(threads >= 1, "measure_gemm_rate: threads=", threads, " must be at least 1");
  const ScopedBlasThreads blas(threads);
  // The product size follows from a warm-up rate; a 256^3 warm-up (0.3 ms) was so noisy that the
  // chosen size, and with it the rate, varied 2x from run to run on a 2-core VM. 512^3, the fastest
  // of three, sizes the timed products to about 0.1 s each, where DGEMM runs at its large-matrix rate.
  constexpr index_t warm_n = 512;
  constexpr int repetitions = 7;
  constexpr double target_seconds = 0.1;
  double warm_seconds = 0.0;
  {
    const Matrix a = filled(warm_n, 0.5), b = filled(warm_n, 0.25);
    Matrix c = Matrix::uninitialized(warm_n, warm_n);
    (void)seconds_of_product(a, b, c);  // first call: thread pool start, page faults
    warm_seconds = seconds_of_product(a, b, c);
    for (int r = 0; r < 2; ++r) warm_seconds = std::min(warm_seconds, seconds_of_product(a, b, c));
  }
  const double warm_rate = gemm_flops(warm_n, warm_n, warm_n) / std::max(warm_seconds, 1e-9);
  auto n = static_cast<index_t>(std::cbrt(target_seconds * warm_rate / 2.0));
  n = std::clamp<index_t>(n / 64 * 64, warm_n, 2048);
  const Matrix a = filled(n, 0.5), b = filled(n, 0.25);
  Matrix c = Matrix::uninitialized(n, n);
  (void)seconds_of_product(a, b, c);
  std::vector<double> seconds;
  for (int r = 0; r < repetitions; ++r) seconds.push_back(seconds_of_product(a, b, c));
  // The fastest product: the rate serves lower bounds (work / rate), which must not exceed what the
  // machine did; a median let one slow neighbour on a shared host halve the rate.
  const double fastest = *std::min_element(seconds.begin(), seconds.end());
  return gemm_flops(n, n, n) / std::max(fastest, 1e-9) / 1e9;
}

std::int64_t peak_rss_bytes() {
  rusage usage{};
  require(getrusage(RUSAGE_SELF, &usage) == 0, "peak_rss_bytes: getrusage failed");
  return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;  // Linux reports kilobytes
}

std::int64_t parse_memory_size(std::string_view text) {
  const std::string quoted = "memory size '" + std::string(text) + "'";
  std::size_t pos = 0;
  std::size_t digits = 0;
  const auto skip_digits = [&] {
    for (; pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])); ++pos) ++digits;
  };
  skip_digits();
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    skip_digits();
  }
  require(digits > 0, quoted, " does not start with a number (expected e.g. 2G, 512M, 1.5GiB or 4096)");
  const double number = std::stod(std::string(text.substr(0, pos)));
  std::string unit(text.substr(pos));
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double scale = 1.0;
  if (!unit.empty() && unit != "B") {
    const std::string prefixes = "KMGT";
    const std::size_t p = prefixes.find(unit[0]);
    const std::string rest = unit.substr(1);
    require(p != std::string::npos && (rest.empty() || rest == "B" || rest == "IB"), quoted, ": unknown unit '",
            text.substr(pos), "' (expected K, M, G or T, optionally followed by B or iB; none for bytes)");
    scale = std::pow(1024.0, static_cast<double>(p + 1));
  }
  const double bytes = std::floor(number * scale);
  require(bytes < 9.2e18, quoted, " is too large (more than 8 EiB)");
  require(bytes >= 1.0, quoted, " must be at least 1 byte");
  return static_cast<std::int64_t>(bytes);
}

}  // namespace idprune::la
