#include <gtest/gtest.h>

#include <cmath>
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
