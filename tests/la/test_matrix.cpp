#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "idprune/la/blas.hpp"
#include "idprune/la/matrix.hpp"

using namespace idprune::la;

TEST(Matrix, ViewsShareStorageColumnMajor) {
  Matrix a(3, 2);
  a(2, 1) = 5.0;
  EXPECT_EQ(a.data()[2 + 1 * 3], 5.0);
  auto b = a.view().block(1, 1, 2, 1);
  b(1, 0) = 7.0;
  EXPECT_EQ(a(2, 1), 7.0);
}

// Matrix::uninitialized and reset_uninitialized leave the entries unset (for outputs a product or
// a copy overwrites): only the shape is promised, and a copy from a view holds the view's values.
TEST(Matrix, UninitializedShapesAndCopies) {
  Matrix a = Matrix::uninitialized(3, 4);
  EXPECT_EQ(a.rows(), 3);
  EXPECT_EQ(a.cols(), 4);
  EXPECT_EQ(a.size(), 12);
  a.view().fill(2.0);
  a.reset_uninitialized(5, 2);
  EXPECT_EQ(a.rows(), 5);
  EXPECT_EQ(a.cols(), 2);
  a.reset_uninitialized(0, 7);
  EXPECT_TRUE(a.empty());
  Matrix b(4, 3);
  for (index_t j = 0; j < 3; ++j)
    for (index_t i = 0; i < 4; ++i) b(i, j) = static_cast<double>(10 * i + j);
  const Matrix c(b.block(1, 1, 3, 2));
  for (index_t j = 0; j < 2; ++j)
    for (index_t i = 0; i < 3; ++i) EXPECT_EQ(c(i, j), b(i + 1, j + 1));
  EXPECT_EQ(select_rows(b, std::vector<index_t>{3, 0})(1, 2), b(0, 2));
  EXPECT_EQ(select_rows(b, std::vector<index_t>{3, 0})(0, 1), b(3, 1));
  EXPECT_EQ(select_rows(b, std::vector<index_t>{}).rows(), 0);
  Matrix d(2, 3, 7.0);  // the filling constructor still fills
  for (double v : d.values()) EXPECT_EQ(v, 7.0);
}

// Arrays past kLargeArrayBytes come from allocate_large_array: 2 MiB aligned, zero-filled when
// asked, copies and moves keep the values, and a size just below and just above the threshold both
// round-trip (the sanitizer build checks the allocate/free pairing).
TEST(Matrix, LargeArraysAreAlignedAndHoldTheirValues) {
  const index_t rows = static_cast<index_t>(kLargeArrayBytes / sizeof(double)) / 8;
  for (const index_t cols : {index_t{7}, index_t{8}, index_t{9}, index_t{33}}) {
    Matrix a(rows, cols);
    const bool large = static_cast<std::size_t>(a.size()) * sizeof(double) >= kLargeArrayBytes;
    if (large) {
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % (std::uintptr_t{2} << 20), 0U);
    }
    double sum = 0.0;
    for (const double v : a.values()) sum += std::abs(v);
    EXPECT_EQ(sum, 0.0);
    for (index_t j = 0; j < cols; ++j) a(rows - 1, j) = static_cast<double>(j + 1);
    Matrix b(a);
    Matrix c(std::move(a));
    for (index_t j = 0; j < cols; ++j) {
      EXPECT_EQ(b(rows - 1, j), static_cast<double>(j + 1));
      EXPECT_EQ(c(rows - 1, j), static_cast<double>(j + 1));
    }
    c.reset(2, 2, 3.0);  // shrinking below the threshold frees the large block
    EXPECT_EQ(c(1, 1), 3.0);
  }
}

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
// After retain_freed_memory, a freed 8 MiB array is reused from the heap: filling it again takes
// almost no page faults (a fresh mapping takes one per 4 KiB page, 2048 here).
TEST(Matrix, FreedArraysBelowTheLargeThresholdAreReusedWithoutPageFaults) {
  ASSERT_TRUE(retain_freed_memory());
  const auto fill_faults = [] {
    rusage before{};
    getrusage(RUSAGE_SELF, &before);
    Matrix a(1024, 1024, 1.0);  // 8 MiB, zero-filled then overwritten: every page touched
    EXPECT_EQ(a(1023, 1023), 1.0);
    rusage after{};
    getrusage(RUSAGE_SELF, &after);
    return after.ru_minflt - before.ru_minflt;
  };
  (void)fill_faults();  // the heap grows once
  EXPECT_LT(fill_faults(), 256);
}
#endif

TEST(Matrix, GemmMatchesDefinition) {
  Matrix a(2, 3), b(3, 2);
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 3; ++j) a(i, j) = static_cast<double>(i + 2 * j + 1), b(j, i) = static_cast<double>(j - i);
  const Matrix c = matmul(a, b);
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 2; ++j) {
      double s = 0;
      for (index_t l = 0; l < 3; ++l) s += a(i, l) * b(l, j);
      EXPECT_DOUBLE_EQ(c(i, j), s);
    }
  const Matrix ct = matmul(b, a, Op::transpose, Op::transpose);  // (A B)^T
  for (index_t i = 0; i < 2; ++i)
    for (index_t j = 0; j < 2; ++j) EXPECT_DOUBLE_EQ(ct(j, i), c(i, j));
}

TEST(Matrix, FrobeniusNormNeitherOverflowsNorUnderflows) {
  Matrix a(2, 1);
  a(0, 0) = 3e200;
  a(1, 0) = 4e200;
  EXPECT_DOUBLE_EQ(norm_fro(a), 5e200);
  a(0, 0) = 3e-200;
  a(1, 0) = 4e-200;
  EXPECT_DOUBLE_EQ(norm_fro(a), 5e-200);
  a(0, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_FALSE(all_finite(a));
}
