// Local kernels of the distributed pivot engines, on one process without MPI.
#include <gtest/gtest.h>
#include <lapacke.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "idprune/dist/kernels.hpp"
#include "idprune/dist/scalapack.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/lapack.hpp"
#include "support/matrices.hpp"

namespace idprune::test {
namespace {

namespace kernel = dist::kernel;
constexpr double eps = std::numeric_limits<double>::epsilon();

double max_abs_diff(la::ConstMatrixView a, la::ConstMatrixView b) {
  double d = 0.0;
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) d = std::max(d, std::abs(a(i, j) - b(i, j)));
  return d;
}

void expect_upper_triangular(const Matrix& r) {
  for (index_t j = 0; j < r.cols(); ++j)
    for (index_t i = j + 1; i < r.rows(); ++i) EXPECT_EQ(r(i, j), 0.0) << "(" << i << ", " << j << ")";
}

TEST(LocalR, RFactorReproducesGramMatrixForAnyBlockShape) {
  for (const auto& [m, n] : {std::pair<index_t, index_t>{50, 12}, {12, 12}, {5, 12}, {1, 7}, {0, 6}}) {
    SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n));
    const Matrix z = gaussian(m, n, 11);
    const Matrix r = kernel::local_r(z);
    ASSERT_EQ(r.rows(), n);
    ASSERT_EQ(r.cols(), n);
    expect_upper_triangular(r);
    for (index_t i = std::min(m, n); i < n; ++i)
      for (index_t j = 0; j < n; ++j) EXPECT_EQ(r(i, j), 0.0);  // padding rows
    // Z^T Z = R^T R (Q has orthonormal columns), to c eps m ||Z||^2 with c = 10.
    const Matrix g = la::matmul(z, z, la::Op::transpose);
    const Matrix rtr = la::matmul(r, r, la::Op::transpose);
    const double nz = z.empty() ? 0.0 : norm2(z);
    EXPECT_LE(max_abs_diff(g, rtr), 10.0 * eps * static_cast<double>(std::max<index_t>(m, 1)) * nz * nz);
  }
}

TEST(LocalR, CombineOfTwoTrianglesReproducesStackedGram) {
  const index_t n = 15;
  Matrix r1 = kernel::local_r(gaussian(40, n, 21));
  Matrix r2 = kernel::local_r(gaussian(3, n, 22));  // a short block: padded R
  const Matrix g = la::matmul(r1, r1, la::Op::transpose);
  Matrix expected = la::matmul(r2, r2, la::Op::transpose);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < n; ++i) expected(i, j) += g(i, j);
  kernel::combine_r(r1.view(), r2.view());
  expect_upper_triangular(r1);
  const Matrix rtr = la::matmul(r1, r1, la::Op::transpose);
  EXPECT_LE(max_abs_diff(rtr, expected), 10.0 * eps * static_cast<double>(n) * norm2(expected));
}

bool same_bits(const Matrix& a, const Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

// The R factor of a matrix that is already upper triangular (each rank's input to the tsqr engine)
// is the matrix itself, bit for bit, exactly what dgeqrt returns for it (tau = 0 at every step):
// negative diagonal entries, a zero column and a wide block included. A single subdiagonal entry,
// however tiny, makes it a general matrix again.
TEST(LocalR, AnUpperTriangularBlockIsItsOwnRBitForBit) {
  Matrix r = kernel::local_r(gaussian(30, 9, 31));
  for (index_t i = 0; i < 9; ++i) r(i, 4) = 0.0;  // a dead neuron's column
  for (const auto& [m, n] : {std::pair<index_t, index_t>{9, 9}, {12, 9}, {6, 9}}) {
    SCOPED_TRACE(std::to_string(m) + " x " + std::to_string(n));
    Matrix z(m, n);
    for (index_t j = 0; j < n; ++j)
      for (index_t i = 0; i <= std::min(j, m - 1); ++i) z(i, j) = r(i, j);
    Matrix lapack(z);
    Matrix t(std::min(m, n), std::min(m, n));
    ASSERT_EQ(LAPACKE_dgeqrt(LAPACK_COL_MAJOR, static_cast<lapack_int>(m), static_cast<lapack_int>(n),
                             static_cast<lapack_int>(std::min(m, n)), lapack.data(), static_cast<lapack_int>(m),
                             t.data(), static_cast<lapack_int>(t.ld())),
              0);
    Matrix expected(n, n);
    for (index_t j = 0; j < n; ++j)
      for (index_t i = 0; i <= std::min(j, m - 1); ++i) expected(i, j) = lapack(i, j);
    EXPECT_TRUE(same_bits(kernel::local_r(z), expected));
    for (index_t j = 0; j < n; ++j)
      for (index_t i = 0; i <= std::min(j, m - 1); ++i) EXPECT_EQ(expected(i, j), z(i, j));
  }
  Matrix nearly(r);
  nearly(5, 2) = 1e-300;
  const Matrix rn = kernel::local_r(nearly);
  expect_upper_triangular(rn);
  EXPECT_LE(max_abs_diff(la::matmul(rn, rn, la::Op::transpose), la::matmul(nearly, nearly, la::Op::transpose)),
            10.0 * eps * 9.0 * norm2(nearly) * norm2(nearly));
}

/// max |(R^T R - Z^T Z)_ij|, the defining property of any R factor of Z.
double gram_error(const Matrix& r, const Matrix& z) {
  return max_abs_diff(la::matmul(r, r, la::Op::transpose), la::matmul(z, z, la::Op::transpose));
}

// Streaming blocks of assorted heights (none, fewer rows than columns, many) into StreamingR gives
// an R with R^T R = Z^T Z to c eps m ||Z||^2 (c = 10), and the |entries| of dgeqrf's R of the
// stacked rows (R is unique up to the signs of its rows) to c eps m kappa(Z) ||Z|| (c = 10,
// kappa(Z) = 10 by construction).
TEST(StreamingR, SameRAsOneQrOfTheStackedRows) {
  const index_t m = 300;
  const index_t n = 20;
  std::vector<double> sigma(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j)
    sigma[static_cast<std::size_t>(j)] = std::pow(10.0, -static_cast<double>(j) / (n - 1));
  const Matrix z = with_singular_values(m, n, sigma, 71);  // kappa(Z) = 10
  kernel::StreamingR acc(n, 8);
  index_t first = 0;
  for (const index_t b : {index_t{0}, index_t{3}, index_t{50}, index_t{1}, index_t{100}, index_t{0}, index_t{146}}) {
    acc.add_rows(z.block(first, 0, b, n));
    first += b;
  }
  ASSERT_EQ(first, m);
  EXPECT_EQ(acc.rows_seen(), m);
  const Matrix& r = acc.r();
  ASSERT_EQ(r.rows(), n);
  expect_upper_triangular(r);
  const double nz = norm2(z);
  EXPECT_LE(gram_error(r, z), 10.0 * eps * static_cast<double>(m) * nz * nz);

  Matrix qr(z);
  static_cast<void>(la::geqrf(qr.view()));
  const double kappa = 10.0;
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= j; ++i)
      EXPECT_LE(std::abs(std::abs(r(i, j)) - std::abs(qr(i, j))), 10.0 * eps * static_cast<double>(m) * kappa * nz)
          << "(" << i << ", " << j << ")";
}

TEST(StreamingR, FewRowsZeroColumnsAndWrongShapes) {
  kernel::StreamingR few(6);
  const Matrix z = gaussian(4, 6, 72);  // fewer rows than columns: the trapezoid, zero rows below
  few.add_rows(z.block(0, 0, 1, 6));
  few.add_rows(z.block(1, 0, 3, 6));
  for (index_t i = 4; i < 6; ++i)
    for (index_t j = 0; j < 6; ++j) EXPECT_LE(std::abs(few.r()(i, j)), 10.0 * eps * norm2(z)) << i << ", " << j;
  EXPECT_LE(gram_error(few.r(), z), 10.0 * eps * 6.0 * norm2(z) * norm2(z));
  kernel::StreamingR none(0);
  none.add_rows(Matrix(5, 0));
  EXPECT_EQ(none.r().rows(), 0);
  EXPECT_EQ(none.rows_seen(), 5);
  EXPECT_THROW(few.add_rows(Matrix(2, 5)), Error);
  EXPECT_THROW(kernel::StreamingR(-1), Error);
  EXPECT_THROW(kernel::StreamingR(3, 0), Error);
}

/// local_r_threaded of z inside a TBB arena of `threads` threads.
Matrix threaded_r(const Matrix& z, int threads, index_t row_block) {
  Matrix r;
  tbb::task_arena arena(threads);
  arena.execute([&] { r = kernel::local_r_threaded(z, row_block); });
  return r;
}

// Row blocks of a fixed size, lanes and a fixed combine tree: the same bits for 1, 2 and 4 threads
// (block counts that are and are not multiples of the 4 lanes before rounding, blocks with fewer
// rows than columns), whatever BLAS's own thread setting; R^T R = Z^T Z to c eps m ||Z||^2 (c = 10).
TEST(LocalRThreaded, BitIdenticalForOneTwoAndFourThreads) {
  const index_t n = 30;
  for (const auto& [m, block] :
       std::vector<std::pair<index_t, index_t>>{{700, 64}, {64 * 4 + 7, 64}, {2000, 64}, {301, 16}, {31, 30}}) {
    SCOPED_TRACE("m = " + std::to_string(m) + ", row block " + std::to_string(block));
    const Matrix z = gaussian(m, n, 81 + static_cast<std::uint64_t>(m));
    const la::ScopedBlasThreads blas(2);
    const Matrix one = threaded_r(z, 1, block);
    EXPECT_TRUE(same_bits(one, threaded_r(z, 2, block)));
    EXPECT_TRUE(same_bits(one, threaded_r(z, 4, block)));
    expect_upper_triangular(one);
    const double nz = norm2(z);
    EXPECT_LE(gram_error(one, z), 10.0 * eps * static_cast<double>(m) * nz * nz);
  }
}

// Equal parts: heights differ by at most one row, the taller first, covering [0, rows) in order.
TEST(PartBegin, CutsRowsIntoEqualConsecutiveParts) {
  for (const index_t rows : {index_t{0}, index_t{3}, index_t{4}, index_t{10}, index_t{50000}}) {
    SCOPED_TRACE("rows = " + std::to_string(rows));
    EXPECT_EQ(kernel::part_begin(rows, 4, 0), 0);
    EXPECT_EQ(kernel::part_begin(rows, 4, 4), rows);
    for (index_t i = 0; i < 4; ++i) {
      const index_t h = kernel::part_begin(rows, 4, i + 1) - kernel::part_begin(rows, 4, i);
      EXPECT_TRUE(h == rows / 4 || h == rows / 4 + 1) << "part " << i;
      if (i > 0) {
        EXPECT_LE(h, kernel::part_begin(rows, 4, i) - kernel::part_begin(rows, 4, i - 1));
      }
    }
  }
  EXPECT_THROW(static_cast<void>(kernel::part_begin(10, 0, 0)), Error);
  EXPECT_THROW(static_cast<void>(kernel::part_begin(10, 4, 5)), Error);
}

// A block no taller than the row block goes through local_r unchanged, bit for bit; so does the
// default row block (max(4096, 4 n)) on a block of ordinary height.
TEST(LocalRThreaded, ShortBlocksAreLocalR) {
  EXPECT_EQ(kernel::threaded_row_block(10), 4096);
  EXPECT_EQ(kernel::threaded_row_block(2000), 8000);
  const Matrix z = gaussian(64, 12, 91);
  EXPECT_TRUE(same_bits(kernel::local_r_threaded(z, 64), kernel::local_r(z)));
  EXPECT_TRUE(same_bits(kernel::local_r_threaded(z), kernel::local_r(z)));
  EXPECT_TRUE(same_bits(kernel::local_r_threaded(Matrix(0, 5), 4), Matrix(5, 5)));
  EXPECT_THROW(static_cast<void>(kernel::local_r_threaded(z, -1)), Error);
}

TEST(PackUpper, RoundTripKeepsUpperTriangleAndZeroesTheRest) {
  const Matrix a = gaussian(9, 9, 31);
  const auto packed = kernel::pack_upper(a);
  EXPECT_EQ(packed.size(), 45U);
  Matrix b(9, 9, 7.0);
  kernel::unpack_upper(packed, b.view());
  for (index_t j = 0; j < 9; ++j)
    for (index_t i = 0; i < 9; ++i) EXPECT_EQ(b(i, j), i <= j ? a(i, j) : 0.0);
  EXPECT_THROW(kernel::unpack_upper(packed, Matrix(8, 8).view()), Error);
}

TEST(StoppingRank, FollowsTheCpqrRule) {
  const std::vector<double> diag = {4.0, 2.0, 1.0, 0.5, 0.0};
  la::CpqrOptions o;
  EXPECT_EQ(kernel::stopping_rank(diag, o), 4);  // stops at the zero diagonal
  o.max_rank = 2;
  EXPECT_EQ(kernel::stopping_rank(diag, o), 2);
  o.max_rank = -1;
  o.rel_tol = 0.25;  // |r_33| = 1 <= 0.25 * 4: k = 2
  EXPECT_EQ(kernel::stopping_rank(diag, o), 2);
  o.rel_tol = 0.2;
  EXPECT_EQ(kernel::stopping_rank(diag, o), 3);
  o.rel_tol = 1.0;  // r_11 itself satisfies the rule
  EXPECT_EQ(kernel::stopping_rank(diag, o), 0);
  EXPECT_EQ(kernel::stopping_rank({}, la::CpqrOptions{}), 0);
}

TEST(TruncatePivotedR, AgreesWithCpqrTruncationOfDgeqp3) {
  const std::vector<double> sigma = {1.0, 0.5, 0.2, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10};
  const Matrix a = with_singular_values(30, 12, sigma, 41);
  la::CpqrOptions opts;
  opts.method = la::CpqrMethod::lapack;
  opts.rel_tol = 1e-5;
  const la::CpqrResult ref = la::cpqr(a, opts);
  // The full pivoted R from an untruncated dgeqp3 run.
  la::CpqrOptions full = opts;
  full.rel_tol = 0.0;
  const la::CpqrResult all = la::cpqr(a, full);
  ASSERT_EQ(all.rank, 12);
  const la::CpqrResult f = kernel::truncate_pivoted_r(all.r, all.pivots, opts);
  EXPECT_EQ(f.rank, ref.rank);
  EXPECT_EQ(f.pivots, ref.pivots);
  EXPECT_EQ(f.diag, ref.diag);
  EXPECT_LE(max_abs_diff(f.r, ref.r), 0.0);
  EXPECT_NEAR(f.next_diag, ref.next_diag, 10 * eps * norm2(a));
  EXPECT_NEAR(f.residual_fro, ref.residual_fro, 1e-3 * ref.residual_fro);
}

// Greedy pivoted Cholesky of Z^T Z selects the same skeleton as CPQR of Z on a matrix without
// near-ties (column norms 0.6^j, nearly orthogonal columns), and gives the same T to
// c eps kappa(R11)^2 (the Gram matrix squares the condition number).
TEST(PivotedCholesky, SameSkeletonAndInterpolationAsCpqr) {
  const index_t m = 200;
  const index_t n = 16;
  Matrix z = gaussian(m, n, 51);
  for (index_t j = 0; j < n; ++j) {
    const double s = std::pow(0.6, static_cast<double>((5 * j) % n)) / la::nrm2(z.col(j));
    for (double& v : z.col(j)) v *= s;
  }
  la::CpqrOptions opts;
  opts.rel_tol = std::pow(0.6, 9.5);
  const auto ref = la::interpolative_decomposition(z, opts);
  Matrix g(n, n);
  la::syrk_upper(1.0, z, 0.0, g.view());
  const la::CpqrResult f = kernel::pivoted_cholesky_cpqr(g.view(), opts, 0.0);
  ASSERT_EQ(f.rank, ref.factorization.rank);
  EXPECT_EQ(f.skeleton(), ref.skeleton);
  const Matrix t = la::interpolation_matrix(f);
  const double kappa = ref.factorization.diag.front() / ref.factorization.diag.back();
  EXPECT_LE(max_abs_diff(t, ref.interpolation), 100.0 * eps * static_cast<double>(n) * kappa * kappa);
  for (std::size_t i = 0; i < f.diag.size(); ++i) EXPECT_NEAR(f.diag[i], ref.factorization.diag[i], 1e-10);
  EXPECT_NEAR(f.next_diag, ref.factorization.next_diag, 1e-8);
  EXPECT_NEAR(f.residual_fro, ref.factorization.residual_fro, 1e-8);
}

TEST(PivotedCholesky, FloorStopsAtNumericalRank) {
  const Matrix z = low_rank(60, 10, 4, 61);
  Matrix g(10, 10);
  la::syrk_upper(1.0, z, 0.0, g.view());
  const la::CpqrResult f = kernel::pivoted_cholesky_cpqr(g.view(), {}, std::sqrt(10 * eps));
  EXPECT_EQ(f.rank, 4);
}

TEST(CounterGaussian, ValuesDependOnlyOnSeedStreamAndIndex) {
  const kernel::CounterGaussian gen(7);
  std::vector<double> all(20);
  gen.fill(3, 0, all);
  for (std::size_t first : {0U, 1U, 4U, 7U}) {  // odd and even starts
    std::vector<double> part(9);
    gen.fill(3, first, part);
    for (std::size_t t = 0; t < part.size(); ++t) {
      if (first + t < all.size()) {
        EXPECT_EQ(part[t], all[first + t]);
      }
      EXPECT_EQ(part[t], gen.value(3, first + t));
    }
  }
  EXPECT_NE(gen.value(3, 0), gen.value(4, 0));
  EXPECT_NE(gen.value(3, 0), kernel::CounterGaussian(8).value(3, 0));
}

// N = 200000 samples: the sample mean has standard deviation 1/sqrt(N) = 0.0022 and the sample
// variance sqrt(2/N) = 0.0032; 5 standard deviations give the bounds below.
TEST(CounterGaussian, SampleMomentsAreStandardNormal) {
  const kernel::CounterGaussian gen(2024);
  const std::size_t n = 200000;
  std::vector<double> x(n);
  gen.fill(0, 0, std::span<double>(x).first(n / 2));
  gen.fill(1, 5, std::span<double>(x).last(n / 2));
  double mean = 0.0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(n);
  double var = 0.0;
  double fourth = 0.0;
  for (double v : x) {
    var += (v - mean) * (v - mean);
    fourth += std::pow(v - mean, 4);
  }
  var /= static_cast<double>(n);
  fourth /= static_cast<double>(n);
  EXPECT_LE(std::abs(mean), 5.0 / std::sqrt(static_cast<double>(n)));
  EXPECT_LE(std::abs(var - 1.0), 5.0 * std::sqrt(2.0 / static_cast<double>(n)));
  EXPECT_NEAR(fourth / (var * var), 3.0, 0.1);  // kurtosis of a normal
}

TEST(GaussianTestBlock, BlocksOfAnyPartitionAssembleTheSameOmega) {
  const Matrix whole = kernel::gaussian_test_block(99, 0, 6, 0, 10);
  const Matrix right = kernel::gaussian_test_block(99, 0, 6, 4, 6);   // columns 4..9
  const Matrix lower = kernel::gaussian_test_block(99, 3, 3, 0, 10);  // rows 3..5 (odd start)
  for (index_t j = 0; j < 6; ++j)
    for (index_t i = 0; i < 6; ++i) EXPECT_EQ(right(i, j), whole(i, j + 4));
  for (index_t j = 0; j < 10; ++j)
    for (index_t i = 0; i < 3; ++i) EXPECT_EQ(lower(i, j), whole(i + 3, j));
}

TEST(BlockCyclic, OwnerAndLocalIndexMatchNumroc) {
  for (const int p : {1, 2, 3}) {
    for (const int nb : {1, 4, 7}) {
      const int n = 31;
      for (int proc = 0; proc < p; ++proc) {
        const int zero = 0;
        const int count = numroc_(&n, &nb, &proc, &zero, &p);
        index_t owned = 0;
        for (index_t g = 0; g < n; ++g) {
          if (kernel::cyclic_owner(g, nb, p) != proc) continue;
          EXPECT_EQ(kernel::cyclic_local(g, nb, p), owned);  // local indices are dense, in order
          ++owned;
        }
        EXPECT_EQ(owned, count) << "p=" << p << " nb=" << nb << " proc=" << proc;
      }
    }
  }
}

}  // namespace
}  // namespace idprune::test
