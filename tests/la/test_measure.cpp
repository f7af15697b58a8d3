// Operation counts, the measured DGEMM rate, peak memory and memory sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/measure.hpp"

using namespace idprune;
using la::index_t;

TEST(Measure, GemmFlopsCountOneMultiplyAndOneAddPerTerm) {
  EXPECT_EQ(la::gemm_flops(3, 4, 5), 120.0);
  EXPECT_EQ(la::gemm_flops(50000, 1024, 784), 2.0 * 50000 * 1024 * 784);
  EXPECT_EQ(la::gemm_flops(0, 4, 5), 0.0);
  EXPECT_THROW((void)la::gemm_flops(-1, 4, 5), Error);
}

TEST(Measure, QrFlopsAgreeWithTheHouseholderStepCount) {
  // Householder step j on the trailing (m - j) x (n - j) block: forming v^T A and A - v w^T costs
  // 4 (m - j)(n - j) flops. The closed form is the leading term of that sum: relative difference O(1/min).
  for (const auto& [m, n] : std::vector<std::pair<index_t, index_t>>{{2000, 300}, {300, 300}, {300, 2000}}) {
    double steps = 0.0;
    for (index_t j = 0; j < std::min(m, n); ++j) steps += 4.0 * static_cast<double>(m - j) * static_cast<double>(n - j);
    const double closed = la::qr_r_flops(m, n);
    EXPECT_NEAR(closed / steps, 1.0, 3.0 / static_cast<double>(std::min(m, n))) << m << " x " << n;
  }
  EXPECT_DOUBLE_EQ(la::qr_r_flops(100, 10), 2.0 * 10 * 10 * (100 - 10 / 3.0));
  EXPECT_DOUBLE_EQ(la::qr_r_flops(10, 100), la::qr_r_flops(100, 10));
  EXPECT_EQ(la::qr_r_flops(0, 10), 0.0);
}

TEST(Measure, GemmRateIsPositiveAndRestoresBlasThreads) {
  const int before = la::blas_threads();
  const double rate = la::measure_gemm_rate(1);
  RecordProperty("gflops", std::to_string(rate));
  EXPECT_GT(rate, 0.0);
  EXPECT_TRUE(std::isfinite(rate));
  EXPECT_EQ(la::blas_threads(), before);
  EXPECT_THROW((void)la::measure_gemm_rate(0), Error);
}

TEST(Measure, PeakRssGrowsWithTouchedMemory) {
  const std::int64_t before = la::peak_rss_bytes();
  EXPECT_GT(before, 0);
  const std::int64_t bytes = std::int64_t{96} << 20;
  std::vector<unsigned char> big(static_cast<std::size_t>(bytes), 1);  // written: resident
  volatile unsigned char sink = big[big.size() / 2];
  (void)sink;
  const std::int64_t after = la::peak_rss_bytes();
  EXPECT_GE(after, before);
  EXPECT_GE(after, bytes);
}

TEST(Measure, MemorySizesUseBinaryUnits) {
  EXPECT_EQ(la::parse_memory_size("2G"), std::int64_t{2} << 30);
  EXPECT_EQ(la::parse_memory_size("512M"), std::int64_t{512} << 20);
  EXPECT_EQ(la::parse_memory_size("512m"), std::int64_t{512} << 20);
  EXPECT_EQ(la::parse_memory_size("1.5GiB"), std::int64_t{3} << 29);
  EXPECT_EQ(la::parse_memory_size("64KB"), std::int64_t{64} << 10);
  EXPECT_EQ(la::parse_memory_size("1T"), std::int64_t{1} << 40);
  EXPECT_EQ(la::parse_memory_size("4096"), 4096);
  EXPECT_EQ(la::parse_memory_size("4096B"), 4096);
  EXPECT_EQ(la::parse_memory_size(".5K"), 512);
}

TEST(Measure, BadMemorySizesAreErrorsQuotingTheText) {
  for (const char* bad : {"", "G", "-2G", "2X", "2 G", "2GG", "0", "0.1", "1e3", "99999999999T", ".", "2Gb!"}) {
    try {
      (void)la::parse_memory_size(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos) << e.what();
    }
  }
}
