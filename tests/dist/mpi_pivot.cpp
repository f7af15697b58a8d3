// Distributed pivot selection under mpiexec -n 1..4: every engine against the single-process
// dgeqp3 reference computed on the full matrix, which every rank builds from the same seed (so
// each np run is compared with the same reference: identical results for 1, 2, 3 and 4 ranks).
#include <gtest/gtest.h>

#include <algorithm>

#include "idprune/dist/kernels.hpp"
#include "mpi_helpers.hpp"

namespace idprune::test {
namespace {

using dist::PivotEngine;

la::InterpolativeDecomposition reference_id(const Matrix& a, la::CpqrOptions opts) {
  opts.method = la::CpqrMethod::lapack;
  return la::interpolative_decomposition(a, opts);
}

// A matrix whose greedy pivots are separated by a factor 0.7 at every step (no near-ties), cut by
// a tolerance in the middle of a gap: exact engines must return exactly the reference skeleton.
TEST(DistributedPivots, ExactEnginesMatchDgeqp3SkeletonAndIdErrorOnSeparatedColumns) {
  const auto comm = dist::Comm::world();
  const index_t m = 300;
  const index_t n = 40;
  const std::uint64_t seed = 101;
  const Matrix a = separated_columns(m, n, 0.7, seed);
  la::CpqrOptions opts;
  opts.rel_tol = std::pow(0.7, 19.5);  // between the 20th and 21st column norm
  const auto ref = reference_id(a, opts);
  const double ref_err = id_error_full(a, ref);
  const double norm_a = norm2(a);
  ASSERT_EQ(ref.factorization.rank, 20) << "seed " << seed;
  // cond(R11) ~ |r_11| / |r_kk|: first-order rounding of T (backward-stable QR) and, for gram, its
  // square (the Gram matrix squares the condition number).
  const double kappa = ref.factorization.diag.front() / ref.factorization.diag.back();
  for (const PivotEngine e : exact_engines()) {
    SCOPED_TRACE(std::string(dist::to_string(e)) + ", seed " + std::to_string(seed));
    const auto z = distribute(a, comm);
    dist::EngineStats stats;
    const auto id = dist::distributed_id(z, opts, engine_options(e), &stats);
    EXPECT_TRUE(same_on_every_rank(comm, id));
    ASSERT_EQ(id.factorization.rank, ref.factorization.rank);
    EXPECT_EQ(id.skeleton, ref.skeleton);
    const double err = id_error_full(a, id);
    const double c = e == PivotEngine::gram ? kappa * kappa : kappa;
    EXPECT_LE(std::abs(err - ref_err), 100.0 * eps * static_cast<double>(n) * c * norm_a)
        << "err " << err << " ref " << ref_err;
    // The diagonal of R: Householder-exact engines to rounding of ||A||; gram to eps ||A||^2 / r_kk.
    for (index_t i = 0; i < id.factorization.rank; ++i) {
      const double d = id.factorization.diag[static_cast<std::size_t>(i)];
      const double dref = ref.factorization.diag[static_cast<std::size_t>(i)];
      const double tol = e == PivotEngine::gram ? 100.0 * eps * static_cast<double>(n) * norm_a * norm_a / dref
                                                : 100.0 * eps * static_cast<double>(m) * norm_a;
      EXPECT_LE(std::abs(d - dref), tol) << "diag " << i;
    }
    EXPECT_NEAR(id.factorization.next_diag, ref.factorization.next_diag, 1e-6 * ref.factorization.next_diag);
    // The distributed residual of the ID agrees with the full-matrix computation.
    const auto derr = dist::id_error(z, id);
    EXPECT_NEAR(derr.spectral, err, 1e-8 * norm_a);
  }
}

// Sketch: a randomized ID. Halko, Martinsson & Tropp (2011, Thm 10.8) bound the range error of a
// Gaussian sketch with p = 10 oversampling by (1 + 9 sqrt(k + p) sqrt(min(m, n))) sigma_{k+1}
// with probability >= 1 - 3 p^{-p}; on a fast-decaying spectrum the realised error is a small
// multiple of sigma_{k+1}. We ask for at most 10x the dgeqp3 ID error at the same k (fixed seeds).
TEST(DistributedPivots, SketchIdErrorWithinTenTimesDgeqp3) {
  const auto comm = dist::Comm::world();
  const index_t m = 400;
  const index_t n = 60;
  std::vector<double> sigma(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) sigma[static_cast<std::size_t>(i)] = std::pow(10.0, -0.25 * static_cast<double>(i));
  const Matrix a = with_singular_values(m, n, sigma, 202);
  for (const index_t k : {index_t{5}, index_t{20}}) {
    la::CpqrOptions opts;
    opts.max_rank = k;
    const auto ref = reference_id(a, opts);
    const auto z = distribute(a, comm);
    dist::EngineStats stats;
    const auto id = dist::distributed_id(z, opts, engine_options(PivotEngine::sketch), &stats);
    EXPECT_TRUE(same_on_every_rank(comm, id));
    EXPECT_EQ(id.factorization.rank, k);
    EXPECT_EQ(stats.sketch_rows, k + 10);
    EXPECT_LE(id_error_full(a, id), 10.0 * id_error_full(a, ref)) << "k=" << k << ", seed 202";
  }
}

// The sketch does not depend on the number of ranks: compare with the same sketch built on one
// process from the full Omega, which every rank can generate from the seed.
TEST(DistributedPivots, SketchSkeletonIndependentOfRankCount) {
  const auto comm = dist::Comm::world();
  const Matrix a = separated_columns(250, 30, 0.6, 303);
  la::CpqrOptions opts;
  opts.max_rank = 8;
  const auto eng = engine_options(PivotEngine::sketch);
  const auto id = dist::distributed_id(distribute(a, comm), opts, eng);
  const index_t l = opts.max_rank + eng.oversampling;
  const Matrix omega = dist::kernel::gaussian_test_block(eng.seed, 0, l, 0, a.rows());
  Matrix y = la::matmul(omega, a);
  for (double& v : y.values()) v /= std::sqrt(static_cast<double>(l));
  const auto local = la::interpolative_decomposition(y, opts);
  EXPECT_EQ(id.skeleton, local.skeleton);
  const double scale = la::norm_max(local.interpolation) + 1.0;
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < opts.max_rank; ++i)
      EXPECT_NEAR(id.interpolation(i, j), local.interpolation(i, j), 1e-10 * scale);
}

// Tolerance rule without max_rank: the sketch finds k by doubling and stops by tolerance.
TEST(DistributedPivots, AdaptiveSketchFindsToleranceRank) {
  const auto comm = dist::Comm::world();
  const index_t n = 80;
  std::vector<double> sigma(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) sigma[static_cast<std::size_t>(i)] = std::pow(10.0, -0.1 * static_cast<double>(i));
  const Matrix a = with_singular_values(300, n, sigma, 404);
  la::CpqrOptions opts;
  opts.rel_tol = 1e-5;
  const auto ref = reference_id(a, opts);
  auto eng = engine_options(PivotEngine::sketch);
  eng.sketch_initial_rank = 4;  // forces several doublings (4, 8, 16, 32, 64)
  dist::EngineStats stats;
  const auto id = dist::distributed_id(distribute(a, comm), opts, eng, &stats);
  EXPECT_TRUE(same_on_every_rank(comm, id));
  EXPECT_GT(stats.sketch_rows, id.factorization.rank + eng.oversampling - 1);
  // The sketch's diagonal estimates Z's to within the sketch distortion: ranks within a few.
  EXPECT_LE(std::abs(id.factorization.rank - ref.factorization.rank), 5);
  EXPECT_LE(id_error_full(a, id), 10.0 * id_error_full(a, ref));
}

// Bytes sent by tsqr / gram / sketch do not depend on the number of rows; lapack's do.
TEST(DistributedPivots, CommunicationIndependentOfRowCount) {
  const auto comm = dist::Comm::world();
  const index_t n = 24;
  la::CpqrOptions opts;
  opts.max_rank = 10;
  for (const PivotEngine e : {PivotEngine::tsqr, PivotEngine::gram, PivotEngine::sketch, PivotEngine::lapack}) {
    std::vector<std::uint64_t> bytes;
    for (const index_t m : {index_t{100}, index_t{1000}}) {
      const Matrix a = gaussian(m, n, 505);
      dist::EngineStats stats;
      static_cast<void>(dist::distributed_cpqr(distribute(a, comm), opts, engine_options(e), &stats));
      bytes.push_back(comm.max(stats.bytes_sent));
    }
    if (comm.size() == 1) {
      EXPECT_EQ(bytes[0], 0U) << dist::to_string(e);
    } else if (e == PivotEngine::lapack) {
      EXPECT_GT(bytes[1], 5 * bytes[0]);
    } else {
      EXPECT_EQ(bytes[0], bytes[1]) << dist::to_string(e);
      EXPECT_GT(bytes[0], 0U);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Edge cases, every engine against the reference.

void expect_matches_reference(const Matrix& a, const dist::DistMatrix& z, const la::CpqrOptions& opts,
                              const std::string& what) {
  const auto ref = reference_id(a, opts);
  const double ref_err = a.empty() ? 0.0 : id_error_full(a, ref);
  const double norm_a = a.empty() ? 0.0 : norm2(a);
  for (const PivotEngine e : all_engines()) {
    SCOPED_TRACE(what + ", engine " + std::string(dist::to_string(e)));
    const auto id = dist::distributed_id(z, opts, engine_options(e));
    EXPECT_TRUE(same_on_every_rank(z.comm(), id));
    ASSERT_EQ(id.interpolation.rows(), id.factorization.rank);
    ASSERT_EQ(id.interpolation.cols(), a.cols());
    ASSERT_EQ(static_cast<index_t>(id.factorization.pivots.size()), a.cols());
    // T(:, C) = I exactly: the skeleton columns are reproduced.
    for (index_t i = 0; i < id.factorization.rank; ++i)
      for (index_t j = 0; j < id.factorization.rank; ++j)
        EXPECT_EQ(id.interpolation(i, id.skeleton[static_cast<std::size_t>(j)]), i == j ? 1.0 : 0.0);
    if (e == PivotEngine::sketch) continue;  // randomized: covered by the tests above
    EXPECT_EQ(id.factorization.rank, ref.factorization.rank);
    if (!a.empty()) {
      EXPECT_LE(id_error_full(a, id), ref_err + 1e-9 * norm_a);
    }
  }
}

TEST(DistributedPivotsEdge, MoreRanksThanRows) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(2, 5, 606);  // ranks 2 and 3 own no rows under -n 3 / -n 4
  la::CpqrOptions opts;
  expect_matches_reference(a, distribute(a, comm), opts, "2 x 5");
}

TEST(DistributedPivotsEdge, RootOwnsNoRows) {
  const auto comm = dist::Comm::world();
  const Matrix a = separated_columns(60, 12, 0.5, 707);
  std::vector<index_t> counts(static_cast<std::size_t>(comm.size()), 0);
  // Rank 0 (the root of every reduction) owns nothing; the last rank owns most rows.
  if (comm.size() == 1) {
    counts[0] = 60;
  } else {
    for (int r = 1; r < comm.size(); ++r) counts[static_cast<std::size_t>(r)] = 5;
    counts.back() += 60 - 5 * (comm.size() - 1);
  }
  la::CpqrOptions opts;
  opts.rel_tol = 1e-3;
  expect_matches_reference(a, distribute_counts(a, comm, counts), opts, "uneven split");
}

TEST(DistributedPivotsEdge, ZeroColumnsAreNeverSelected) {
  const auto comm = dist::Comm::world();
  Matrix a = separated_columns(80, 16, 0.6, 808);
  zero_columns(a, {0, 3, 9, 15});
  la::CpqrOptions opts;  // no tolerance: runs until the zero diagonal
  expect_matches_reference(a, distribute(a, comm), opts, "dead neurons");
  const auto ref = reference_id(a, opts);
  for (const PivotEngine e : all_engines()) {
    const auto id = dist::distributed_id(distribute(a, comm), opts, engine_options(e));
    for (const index_t c : id.skeleton) EXPECT_TRUE(c != 0 && c != 3 && c != 9 && c != 15) << dist::to_string(e);
    if (e == PivotEngine::sketch) continue;
    // Well separated live columns: the exact engines take them in the reference order, and the
    // dead columns interpolate to zero (tsqr, gram and sketch factor only the live columns).
    EXPECT_EQ(id.skeleton, ref.skeleton) << dist::to_string(e);
    for (const index_t dead : {0, 3, 9, 15})
      for (index_t i = 0; i < id.factorization.rank; ++i) EXPECT_EQ(id.interpolation(i, dead), 0.0);
  }
}

TEST(DistributedPivotsEdge, RankDeficient) {
  const auto comm = dist::Comm::world();
  const Matrix a = low_rank(90, 20, 5, 909);
  la::CpqrOptions opts;
  opts.rel_tol = 1e-6;
  expect_matches_reference(a, distribute(a, comm), opts, "rank 5");
  const auto id = dist::distributed_id(distribute(a, comm), opts);
  EXPECT_EQ(id.factorization.rank, 5);
  EXPECT_LE(id_error_full(a, id), 1e3 * eps * norm2(a));
}

TEST(DistributedPivotsEdge, FewerRowsThanColumns) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(10, 30, 1010);
  la::CpqrOptions opts;
  expect_matches_reference(a, distribute(a, comm), opts, "10 x 30");
  const auto id = dist::distributed_id(distribute(a, comm), opts);
  EXPECT_EQ(id.factorization.rank, 10);
}

TEST(DistributedPivotsEdge, RankZeroAndFullRank) {
  const auto comm = dist::Comm::world();
  const Matrix a = separated_columns(50, 10, 0.5, 1111);
  la::CpqrOptions opts;
  opts.max_rank = 0;
  expect_matches_reference(a, distribute(a, comm), opts, "k = 0");
  const auto id0 = dist::distributed_id(distribute(a, comm), opts);
  EXPECT_EQ(id0.factorization.rank, 0);
  double largest = 0.0;
  for (index_t j = 0; j < a.cols(); ++j) largest = std::max(largest, la::nrm2(a.col(j)));
  EXPECT_NEAR(id0.factorization.next_diag, largest, 1e-12);  // the largest column norm
  EXPECT_NEAR(id0.factorization.residual_fro, la::norm_fro(a), 1e-12);
  opts.max_rank = 10;
  expect_matches_reference(a, distribute(a, comm), opts, "k = n");
  const auto idn = dist::distributed_id(distribute(a, comm), opts);
  EXPECT_EQ(idn.factorization.rank, 10);
  EXPECT_EQ(idn.factorization.next_diag, 0.0);
}

TEST(DistributedPivotsEdge, EmptyMatrices) {
  const auto comm = dist::Comm::world();
  for (const auto& [m, n] : {std::pair<index_t, index_t>{0, 5}, {7, 0}, {0, 0}}) {
    const Matrix a(m, n);
    for (const PivotEngine e : all_engines()) {
      const auto id = dist::distributed_id(distribute(a, comm), {}, engine_options(e));
      EXPECT_EQ(id.factorization.rank, 0);
      EXPECT_EQ(static_cast<index_t>(id.factorization.pivots.size()), n);
      EXPECT_EQ(id.interpolation.cols(), n);
    }
  }
  const Matrix zero(20, 6);  // all dead neurons
  expect_matches_reference(zero, distribute(zero, comm), {}, "all-zero");
}

// distributed_cpqr_batch (the tsqr engine's local CPQRs in parallel between the collective steps)
// gives what one distributed_cpqr call per matrix gives, bit for bit, for every engine and for
// matrices that take the special paths: dead columns, all-zero, empty, near-overflow norms.
TEST(DistributedPivotsBatch, EqualsOneCallPerMatrix) {
  const auto comm = dist::Comm::world();
  std::vector<Matrix> mats;
  mats.push_back(separated_columns(60, 12, 0.6, 1201));
  mats.push_back(low_rank(70, 15, 4, 1202));
  Matrix dead = separated_columns(50, 10, 0.5, 1203);
  zero_columns(dead, {1, 7});
  mats.push_back(dead);
  mats.push_back(Matrix(30, 6));  // all dead
  mats.push_back(Matrix(0, 4));   // no rows
  Matrix huge = gaussian(40, 8, 1204);
  for (double& v : huge.values()) v *= 1e306;
  mats.push_back(huge);
  std::vector<la::CpqrOptions> opts(mats.size());
  opts[0].rel_tol = 1e-3;
  opts[1].rel_tol = 1e-6;  // above the Gram engine's accuracy limit sqrt(n eps)
  opts[2].max_rank = 6;
  opts[5].max_rank = 5;
  for (const PivotEngine e : all_engines()) {
    std::vector<dist::DistMatrix> zs;
    for (const Matrix& a : mats) zs.push_back(distribute(a, comm));
    std::vector<dist::EngineStats> stats(mats.size());
    const std::vector<la::CpqrResult> batch = dist::distributed_cpqr_batch(zs, opts, engine_options(e), stats);
    ASSERT_EQ(batch.size(), mats.size());
    for (std::size_t i = 0; i < mats.size(); ++i) {
      const la::CpqrResult one = dist::distributed_cpqr(distribute(mats[i], comm), opts[i], engine_options(e));
      EXPECT_EQ(batch[i].rank, one.rank) << dist::to_string(e) << " matrix " << i;
      EXPECT_EQ(batch[i].pivots, one.pivots) << dist::to_string(e) << " matrix " << i;
      EXPECT_EQ(batch[i].diag, one.diag) << dist::to_string(e) << " matrix " << i;
      EXPECT_EQ(batch[i].next_diag, one.next_diag) << dist::to_string(e) << " matrix " << i;
      EXPECT_EQ(batch[i].r.values().size(), one.r.values().size());
      EXPECT_TRUE(std::equal(batch[i].r.values().begin(), batch[i].r.values().end(), one.r.values().begin()))
          << dist::to_string(e) << " matrix " << i;
    }
  }
  EXPECT_THROW((void)dist::distributed_cpqr_batch(std::vector<dist::DistMatrix>{}, opts), Error);
}

// ---------------------------------------------------------------------------------------------
// The Gram engine's accuracy limit.

TEST(DistributedPivotsGram, RejectsToleranceBelowItsAccuracyLimit) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(30, 8, 1212);
  la::CpqrOptions opts;
  opts.rel_tol = 1e-9;
  try {
    static_cast<void>(dist::distributed_cpqr(distribute(a, comm), opts, engine_options(PivotEngine::gram)));
    ADD_FAILURE() << "gram accepted rel_tol=1e-9";
  } catch (const dist::CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("accuracy limit"), std::string::npos) << e.what();
  }
  opts.rel_tol = dist::gram_min_rel_tol(a.cols());  // the limit itself is accepted
  EXPECT_NO_THROW(
      static_cast<void>(dist::distributed_cpqr(distribute(a, comm), opts, engine_options(PivotEngine::gram))));
}

// With max_rank alone, diagonals below gram_min_rel_tol(n) |r_11| are not resolved by the Gram
// matrix: the engine stops there (tsqr goes on), and every diagonal it returns is above the limit.
TEST(DistributedPivotsGram, StopsAtItsAccuracyLimitWhereTsqrContinues) {
  const auto comm = dist::Comm::world();
  const index_t n = 14;
  std::vector<double> sigma(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) sigma[static_cast<std::size_t>(i)] = std::pow(10.0, -static_cast<double>(i));
  const Matrix a = with_singular_values(100, n, sigma, 1313);
  la::CpqrOptions opts;
  opts.max_rank = n;
  const auto z = distribute(a, comm);
  const auto gram = dist::distributed_cpqr(z, opts, engine_options(PivotEngine::gram));
  const auto tsqr = dist::distributed_cpqr(z, opts, engine_options(PivotEngine::tsqr));
  EXPECT_EQ(tsqr.rank, n);
  EXPECT_LT(gram.rank, n);
  EXPECT_GE(gram.rank, 5);  // diagonals down to ~1e-7 are resolved
  for (const double d : gram.diag) EXPECT_GT(d, dist::gram_min_rel_tol(n) * gram.diag.front());
  // Above the limit both engines find the same rank (a tolerance between two decades of sigma).
  opts.max_rank = -1;
  opts.rel_tol = std::pow(10.0, -5.5);
  EXPECT_EQ(dist::distributed_cpqr(z, opts, engine_options(PivotEngine::gram)).rank,
            dist::distributed_cpqr(z, opts, engine_options(PivotEngine::tsqr)).rank);
}

// ---------------------------------------------------------------------------------------------
// Bad input on one rank: every rank gets the same clear error, nobody hangs.

TEST(DistributedPivotsErrors, ColumnCountMismatchOnOneRankFailsEverywhere) {
  const auto comm = dist::Comm::world();
  const index_t n = comm.rank() == comm.size() - 1 ? 7 : 8;
  const dist::DistMatrix z = dist::DistMatrix::from_local_rows(comm, gaussian(5, n, 1414));
  for (const PivotEngine e : all_engines()) {
    if (comm.size() == 1) {
      EXPECT_NO_THROW(static_cast<void>(dist::distributed_cpqr(z, {}, engine_options(e))));
      continue;
    }
    try {
      static_cast<void>(dist::distributed_cpqr(z, {}, engine_options(e)));
      ADD_FAILURE() << "no error";
    } catch (const dist::CollectiveError& err) {
      EXPECT_NE(std::string(err.what()).find("holds 7 columns"), std::string::npos) << err.what();
      EXPECT_EQ(err.failing_rank(), comm.size() - 1);
    }
  }
}

TEST(DistributedPivotsErrors, NanOnOneRankFailsEverywhere) {
  const auto comm = dist::Comm::world();
  Matrix local = gaussian(4, 6, 1515);
  if (comm.rank() == comm.size() - 1) local(2, 3) = std::nan("");
  const dist::DistMatrix z = dist::DistMatrix::from_local_rows(comm, std::move(local));
  for (const PivotEngine e : all_engines()) {
    try {
      static_cast<void>(dist::distributed_cpqr(z, {}, engine_options(e)));
      ADD_FAILURE() << "no error";
    } catch (const dist::CollectiveError& err) {
      EXPECT_NE(std::string(err.what()).find("NaN"), std::string::npos) << err.what();
      EXPECT_EQ(err.failing_rank(), comm.size() - 1);
    }
  }
}

TEST(DistributedPivotsErrors, BadOptionsFailEverywhere) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(10, 4, 1616);
  la::CpqrOptions opts;
  opts.max_rank = 5;  // > min(m, n)
  EXPECT_THROW(static_cast<void>(dist::distributed_cpqr(distribute(a, comm), opts)), dist::CollectiveError);
  EXPECT_THROW(static_cast<void>(dist::parse_pivot_engine("householder")), Error);
  for (const PivotEngine e : all_engines()) EXPECT_EQ(dist::parse_pivot_engine(dist::to_string(e)), e);
}

}  // namespace
}  // namespace idprune::test
