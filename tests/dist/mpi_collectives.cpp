// The collectives the layers above dist use (run under 1..4 ranks): batched TSQR, distributed
// least squares, broadcasts of factorizations and the named sums, flags and root computations.
// Every rank builds the full test matrices from a seed and takes its own rows, so references are
// computed on the full matrices on every rank.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "idprune/dist/collectives.hpp"
#include "idprune/dist/kernels.hpp"
#include "idprune/dist/least_squares.hpp"
#include "idprune/dist/tsqr.hpp"
#include "idprune/la/blas.hpp"
#include "mpi_helpers.hpp"

namespace idprune::test {
namespace {

using dist::CollectiveError;

/// FNV-1a over bytes, to compare results across ranks.
struct Hash {
  std::uint64_t h = 1469598103934665603ULL;
  void add(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  }
  void add(const Matrix& a) {
    const std::array<index_t, 2> shape = {a.rows(), a.cols()};
    add(shape.data(), sizeof shape);
    add(a.data(), static_cast<std::size_t>(a.size()) * sizeof(double));
  }
  template <class T>
  void add(const std::vector<T>& v) {
    const auto n = static_cast<index_t>(v.size());
    add(&n, sizeof n);
    add(v.data(), v.size() * sizeof(T));
  }
  void add(const la::CpqrResult& f) {
    add(&f.rank, sizeof f.rank);
    add(f.pivots);
    add(f.r);
    add(f.diag);
    add(&f.next_diag, sizeof f.next_diag);
    add(&f.residual_fro, sizeof f.residual_fro);
    add(f.householder);
    add(f.tau);
  }
};

template <class T>
std::uint64_t hash_of(const T& value) {
  Hash h;
  h.add(value);
  return h.h;
}

bool same_everywhere(const dist::Comm& comm, std::uint64_t h) { return comm.max(h) == h && comm.min(h) == h; }

bool same_bits(const Matrix& a, const Matrix& b) { return hash_of(a) == hash_of(b); }

double max_abs_diff(la::ConstMatrixView a, la::ConstMatrixView b) {
  double d = 0.0;
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) d = std::max(d, std::abs(a(i, j) - b(i, j)));
  return d;
}

/// Per-rank row counts that leave ranks empty: every row on the last rank, or (alternating) on
/// the odd ranks only when there are any.
std::vector<index_t> skewed_counts(index_t rows, int size, bool last_only) {
  std::vector<index_t> counts(static_cast<std::size_t>(size), 0);
  if (last_only || size == 1) {
    counts.back() = rows;
    return counts;
  }
  const int odd = size / 2;
  for (int r = 1, k = 0; r < size; r += 2, ++k)
    counts[static_cast<std::size_t>(r)] = rows / odd + (k < rows % odd ? 1 : 0);
  return counts;
}

std::vector<la::ConstMatrixView> local_views(const std::vector<dist::DistMatrix>& zs) {
  std::vector<la::ConstMatrixView> v;
  for (const auto& z : zs) v.push_back(z.local());
  return v;
}

// ---------------------------------------------------------------------------------------------
// TSQR

std::vector<Matrix> tsqr_matrices() {
  std::vector<Matrix> mats;
  mats.push_back(gaussian(90, 12, 1301));
  mats.push_back(low_rank(70, 15, 4, 1302));
  mats.push_back(gaussian(2, 9, 1303));  // n > rows: most ranks hold none
  mats.push_back(Matrix(0, 4));          // no rows anywhere
  mats.push_back(gaussian(40, 1, 1304));
  mats.push_back(Matrix(6, 0));  // no columns
  return mats;
}

// R^T R = Z^T Z to c eps max(m, n) ||Z||^2 with c = 10: each leaf QR and each of the log2 P
// combines is backward stable.
void expect_r_factor_of(const Matrix& r, const Matrix& z) {
  ASSERT_EQ(r.rows(), z.cols());
  ASSERT_EQ(r.cols(), z.cols());
  for (index_t j = 0; j < r.cols(); ++j)
    for (index_t i = j + 1; i < r.rows(); ++i) EXPECT_EQ(r(i, j), 0.0);
  if (z.empty()) {
    EXPECT_EQ(la::norm_fro(r), 0.0);
    return;
  }
  const double nz = norm2(z);
  const double bound = 10.0 * eps * static_cast<double>(std::max(z.rows(), z.cols())) * nz * nz;
  EXPECT_LE(max_abs_diff(la::matmul(r, r, la::Op::transpose), la::matmul(z, z, la::Op::transpose)), bound);
}

TEST(TsqrReduce, BatchEqualsOneCallPerMatrixBitForBit) {
  const auto comm = dist::Comm::world();
  const std::vector<Matrix> mats = tsqr_matrices();
  std::vector<dist::DistMatrix> zs;
  for (const Matrix& a : mats) zs.push_back(distribute(a, comm));
  const std::vector<la::ConstMatrixView> views = local_views(zs);
  const std::vector<Matrix> batch = dist::tsqr_reduce(comm, views);
  ASSERT_EQ(batch.size(), mats.size());
  dist::TsqrOptions threaded;
  threaded.threaded_local = true;  // blocks below the row block: the same local R, bit for bit
  const std::vector<Matrix> batch_threaded = dist::tsqr_reduce(comm, views, threaded);
  for (std::size_t i = 0; i < mats.size(); ++i) {
    SCOPED_TRACE("matrix " + std::to_string(i));
    const std::vector<Matrix> one = dist::tsqr_reduce(comm, std::span(views).subspan(i, 1));
    EXPECT_TRUE(same_bits(batch[i], one.front()));
    EXPECT_TRUE(same_bits(batch[i], batch_threaded[i]));
    EXPECT_TRUE(same_everywhere(comm, hash_of(batch[i])));
    expect_r_factor_of(batch[i], mats[i]);
  }
  EXPECT_TRUE(dist::tsqr_reduce(comm, {}).empty());
}

// On one rank there is no tree: R is kernel::local_r with one BLAS thread, bit for bit.
TEST(TsqrReduce, OneRankGivesLocalR) {
  const auto comm = dist::Comm::world();
  if (comm.size() != 1) GTEST_SKIP() << "one rank only";
  const std::vector<Matrix> mats = tsqr_matrices();
  std::vector<la::ConstMatrixView> views;
  for (const Matrix& a : mats) views.push_back(a.view());
  const std::vector<Matrix> rs = dist::tsqr_reduce(comm, views);
  const la::ScopedBlasThreads single(1);
  for (std::size_t i = 0; i < mats.size(); ++i) EXPECT_TRUE(same_bits(rs[i], dist::kernel::local_r(mats[i]))) << i;
}

TEST(TsqrReduce, RanksWithoutRows) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(33, 7, 1311);
  for (const bool last_only : {true, false}) {
    const auto z = distribute_counts(a, comm, skewed_counts(a.rows(), comm.size(), last_only));
    const la::ConstMatrixView view = z.local();
    const std::vector<Matrix> r = dist::tsqr_reduce(comm, std::span(&view, 1));
    expect_r_factor_of(r.front(), a);
    EXPECT_TRUE(same_everywhere(comm, hash_of(r.front())));
  }
}

TEST(TsqrReduce, ResultLeftOnAnyRoot) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(50, 9, 1321);
  const auto z = distribute(a, comm);
  const la::ConstMatrixView view = z.local();
  dist::TsqrOptions o;
  o.broadcast = false;
  o.root = comm.size() - 1;
  const std::vector<Matrix> r = dist::tsqr_reduce(comm, std::span(&view, 1), o);
  if (comm.rank() == o.root) {
    expect_r_factor_of(r.front(), a);
  } else {
    EXPECT_TRUE(r.front().empty());
  }
}

// Each rank streams its rows through kernel::StreamingR in blocks of 7, then the tree combines the
// streamed factors: the R of the whole matrix.
TEST(TsqrCombine, StreamedLocalFactorsGiveTheGlobalR) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(101, 11, 1331);
  const auto z = distribute(a, comm);
  dist::kernel::StreamingR acc(a.cols());
  for (index_t first = 0; first < z.local_rows(); first += 7)
    acc.add_rows(z.local().block(first, 0, std::min<index_t>(7, z.local_rows() - first), a.cols()));
  std::vector<Matrix> rs;
  rs.push_back(acc.r());
  const std::vector<Matrix> r = dist::tsqr_combine(comm, std::move(rs));
  expect_r_factor_of(r.front(), a);
  if (comm.size() == 1) {
    EXPECT_TRUE(same_bits(r.front(), acc.r()));
  }
}

TEST(TsqrReduce, BadInputIsOneCollectiveErrorOnEveryRank) {
  const auto comm = dist::Comm::world();
  Matrix nan = gaussian(20, 4, 1341);
  nan(19, 2) = std::numeric_limits<double>::quiet_NaN();
  const auto z = distribute(nan, comm);
  const la::ConstMatrixView view = z.local();
  EXPECT_THROW(static_cast<void>(dist::tsqr_reduce(comm, std::span(&view, 1))), CollectiveError);
  const Matrix ok = gaussian(comm.size() == 1 ? 3 : 2, comm.rank() == 1 ? 5 : 4, 1342);
  const la::ConstMatrixView mine = ok.view();
  if (comm.size() > 1) {  // rank 1 passes 5 columns, the others 4
    EXPECT_THROW(static_cast<void>(dist::tsqr_reduce(comm, std::span(&mine, 1))), CollectiveError);
  }
  const std::vector<la::ConstMatrixView> counts(comm.rank() == 0 ? 1 : 2, mine);
  if (comm.size() > 1) {  // one matrix on rank 0, two elsewhere
    EXPECT_THROW(static_cast<void>(dist::tsqr_reduce(comm, counts)), CollectiveError);
  }
  dist::TsqrOptions o;
  o.tpqrt_block = 0;
  EXPECT_THROW(static_cast<void>(dist::tsqr_reduce(comm, std::span(&mine, 1), o)), CollectiveError);
  o = {};
  o.root = comm.size();
  EXPECT_THROW(static_cast<void>(dist::tsqr_reduce(comm, std::span(&mine, 1), o)), CollectiveError);
  std::vector<Matrix> not_square;
  not_square.emplace_back(3, 2);
  EXPECT_THROW(static_cast<void>(dist::tsqr_combine(comm, std::move(not_square))), CollectiveError);
}

// ---------------------------------------------------------------------------------------------
// Least squares

/// LAPACK dgelsd on the full matrices: the minimum-norm least-squares solution, singular values
/// at or below k eps s_1 treated as zero (the rule of dist::least_squares).
Matrix dgelsd_solution(const Matrix& a, const Matrix& y) {
  const index_t m = a.rows();
  const index_t k = a.cols();
  const index_t n = y.cols();
  Matrix t(k, n);
  if (m == 0 || k == 0 || n == 0) return t;
  Matrix aa(a);
  Matrix b(std::max(m, k), n);
  b.block(0, 0, m, n).assign(y);
  std::vector<double> s(static_cast<std::size_t>(std::min(m, k)));
  lapack_int rank = 0;
  const lapack_int info =
      LAPACKE_dgelsd(LAPACK_COL_MAJOR, static_cast<lapack_int>(m), static_cast<lapack_int>(k),
                     static_cast<lapack_int>(n), aa.data(), static_cast<lapack_int>(aa.ld()), b.data(),
                     static_cast<lapack_int>(b.ld()), s.data(), static_cast<double>(k) * eps, &rank);
  EXPECT_EQ(info, 0);
  t.view().assign(b.block(0, 0, k, n));
  return t;
}

/// sigma_1 / sigma_r over the singular values above k eps sigma_1 (1 for A = 0).
double effective_condition(const Matrix& a) {
  if (a.empty()) return 1.0;
  Matrix copy(a);
  std::vector<double> s(static_cast<std::size_t>(std::min(a.rows(), a.cols())));
  std::vector<double> superb(s.size() + 1);
  EXPECT_EQ(
      LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'N', 'N', static_cast<lapack_int>(a.rows()), static_cast<lapack_int>(a.cols()),
                     copy.data(), static_cast<lapack_int>(copy.ld()), s.data(), nullptr, 1, nullptr, 1, superb.data()),
      0);
  if (s.front() == 0.0) return 1.0;
  double smallest = s.front();
  for (const double v : s)
    if (v > static_cast<double>(a.cols()) * eps * s.front()) smallest = v;
  return s.front() / smallest;
}

struct LsCase {
  std::string name;
  Matrix a;
  Matrix y;
};

std::vector<LsCase> ls_cases() {
  std::vector<LsCase> cases;
  cases.push_back({"full rank", gaussian(200, 8, 1401), gaussian(200, 5, 1402)});
  cases.push_back({"nearly square", gaussian(14, 12, 1403), gaussian(14, 3, 1404)});
  Matrix dup = gaussian(120, 8, 1405);
  std::copy(dup.col(1).begin(), dup.col(1).end(), dup.col(3).begin());  // an exact duplicate column
  cases.push_back({"duplicate column", dup, gaussian(120, 4, 1406)});
  Matrix dead = gaussian(120, 8, 1407);
  zero_columns(dead, {6});
  cases.push_back({"dead column", dead, gaussian(120, 4, 1408)});
  cases.push_back({"fewer rows than unknowns", gaussian(5, 8, 1409), gaussian(5, 3, 1410)});
  cases.push_back({"low rank", low_rank(90, 10, 3, 1411), gaussian(90, 2, 1412)});
  cases.push_back({"zero A", Matrix(30, 4), gaussian(30, 2, 1413)});
  cases.push_back({"no rows", Matrix(0, 3), Matrix(0, 2)});
  return cases;
}

// Backward stability: T solves a problem with A + dA, ||dA|| <= c eps m ||A||, so the normal
// equations hold to ||A^T (Y - A T)||_2 <= c eps m ||A|| (||A|| ||T|| + ||Y - A T||), c = 10; the
// solution agrees with dgelsd's minimum-norm solution to c eps m (kappa ||T|| + kappa^2 ||r|| / ||A||),
// kappa the condition number over the singular values kept.
TEST(LeastSquares, NormalEquationsAndAgreementWithDgelsd) {
  const auto comm = dist::Comm::world();
  const std::vector<LsCase> cases = ls_cases();
  std::vector<dist::DistMatrix> as;
  std::vector<dist::DistMatrix> ys;
  for (const LsCase& c : cases) {
    as.push_back(distribute(c.a, comm));
    ys.push_back(distribute(c.y, comm));
  }
  std::vector<dist::LeastSquaresProblem> problems;
  for (std::size_t i = 0; i < cases.size(); ++i) problems.push_back({as[i].local(), ys[i].local()});
  const std::vector<Matrix> ts = dist::least_squares(comm, problems);
  ASSERT_EQ(ts.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const LsCase& c = cases[i];
    SCOPED_TRACE(c.name);
    const Matrix& t = ts[i];
    ASSERT_EQ(t.rows(), c.a.cols());
    ASSERT_EQ(t.cols(), c.y.cols());
    EXPECT_TRUE(same_everywhere(comm, hash_of(t)));
    const auto m = static_cast<double>(std::max<index_t>(c.a.rows(), 1));
    const double na = c.a.empty() ? 0.0 : norm2(c.a);
    Matrix r(c.y);
    if (c.a.rows() > 0) la::gemm(-1.0, c.a, la::Op::none, t, la::Op::none, 1.0, r.view());
    const double nr = r.empty() ? 0.0 : norm2(r);
    const double nt = norm2(t);
    if (c.a.rows() > 0) {
      const Matrix normal = la::matmul(c.a, r, la::Op::transpose);
      EXPECT_LE(norm2(normal), 10.0 * eps * m * na * (na * nt + nr));
    }
    const Matrix ref = dgelsd_solution(c.a, c.y);
    const double kappa = effective_condition(c.a);
    const double tol = 10.0 * eps * m * (kappa * norm2(ref) + (na > 0.0 ? kappa * kappa * nr / na : 0.0));
    Matrix diff(t);
    for (index_t j = 0; j < t.cols(); ++j)
      for (index_t q = 0; q < t.rows(); ++q) diff(q, j) -= ref(q, j);
    EXPECT_LE(diff.empty() ? 0.0 : norm2(diff), tol) << "kappa " << kappa;
  }
  // The dead column's row of the minimum-norm T is zero (to rounding).
  const Matrix& dead_t = ts[3];
  for (index_t j = 0; j < dead_t.cols(); ++j) EXPECT_LE(std::abs(dead_t(6, j)), 10.0 * eps * 120.0 * norm2(dead_t));
  // With fewer rows than unknowns the fit is exact: A T = Y.
  Matrix exact(cases[4].y);
  la::gemm(-1.0, cases[4].a, la::Op::none, ts[4], la::Op::none, 1.0, exact.view());
  EXPECT_LE(norm2(exact), 10.0 * eps * 8.0 * norm2(cases[4].a) * norm2(ts[4]));
  EXPECT_EQ(la::norm_fro(ts[6]), 0.0);  // A = 0: T = 0
}

TEST(LeastSquares, BatchEqualsOneCallPerProblemAndRanksWithoutRows) {
  const auto comm = dist::Comm::world();
  const std::vector<LsCase> cases = ls_cases();
  for (const bool last_only : {true, false}) {
    std::vector<dist::DistMatrix> as;
    std::vector<dist::DistMatrix> ys;
    for (const LsCase& c : cases) {
      const auto counts = skewed_counts(c.a.rows(), comm.size(), last_only);
      as.push_back(distribute_counts(c.a, comm, counts));
      ys.push_back(distribute_counts(c.y, comm, counts));
    }
    std::vector<dist::LeastSquaresProblem> problems;
    for (std::size_t i = 0; i < cases.size(); ++i) problems.push_back({as[i].local(), ys[i].local()});
    const std::vector<Matrix> batch = dist::least_squares(comm, problems);
    for (std::size_t i = 0; i < cases.size(); ++i) {
      SCOPED_TRACE(cases[i].name);
      const std::vector<Matrix> one = dist::least_squares(comm, std::span(problems).subspan(i, 1));
      EXPECT_TRUE(same_bits(batch[i], one.front()));
      EXPECT_TRUE(same_everywhere(comm, hash_of(batch[i])));
      const Matrix ref = dgelsd_solution(cases[i].a, cases[i].y);
      EXPECT_LE(max_abs_diff(batch[i], ref), 1e-10 * std::max(1.0, la::norm_fro(ref)));
    }
  }
  EXPECT_TRUE(dist::least_squares(comm, {}).empty());
}

TEST(LeastSquares, BadInputIsOneCollectiveErrorOnEveryRank) {
  const auto comm = dist::Comm::world();
  const Matrix a = gaussian(4, 3, 1421);
  const Matrix y = gaussian(comm.rank() == comm.size() - 1 ? 3 : 4, 2, 1422);  // rows differ on the last rank
  const dist::LeastSquaresProblem rows{a.view(), y.view()};
  EXPECT_THROW(static_cast<void>(dist::least_squares(comm, std::span(&rows, 1))), CollectiveError);
  const Matrix y4 = gaussian(4, 2, 1423);
  const Matrix wide = gaussian(4, comm.rank() == 1 ? 4 : 3, 1424);
  const dist::LeastSquaresProblem shapes{wide.view(), y4.view()};
  if (comm.size() > 1) {  // k = 4 on rank 1, 3 elsewhere
    EXPECT_THROW(static_cast<void>(dist::least_squares(comm, std::span(&shapes, 1))), CollectiveError);
  }
  Matrix nan(y4);
  if (comm.rank() == 0) nan(2, 1) = std::numeric_limits<double>::infinity();
  const dist::LeastSquaresProblem bad{a.view(), nan.view()};
  try {
    static_cast<void>(dist::least_squares(comm, std::span(&bad, 1)));
    ADD_FAILURE() << "no error for an infinite entry";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("entry (2, 1)"), std::string::npos) << e.what();
  }
  const dist::LeastSquaresProblem good{a.view(), y4.view()};
  dist::LeastSquaresOptions o;
  o.tpqrt_block = 0;
  EXPECT_THROW(static_cast<void>(dist::least_squares(comm, std::span(&good, 1), o)), CollectiveError);
}

// ---------------------------------------------------------------------------------------------
// Broadcasts and named collectives

la::CpqrResult garbage_result() {
  la::CpqrResult f;
  f.rank = 3;
  f.pivots = {7, 7};
  f.r = Matrix(2, 5, 9.0);
  f.diag = {1.0};
  f.next_diag = -1.0;
  f.householder = Matrix(1, 1, 2.0);
  return f;
}

std::vector<la::CpqrResult> root_results() {
  const Matrix a = gaussian(25, 9, 1501);
  la::CpqrOptions with_q;
  with_q.want_q = true;  // householder and tau filled
  with_q.max_rank = 5;
  la::CpqrOptions rank0;
  rank0.max_rank = 0;
  return {la::cpqr(a, with_q), la::cpqr(a, rank0), la::CpqrResult{}, la::cpqr(a)};
}

TEST(Broadcast, CpqrResultsRoundTripFromAnyRoot) {
  const auto comm = dist::Comm::world();
  const int root = comm.size() - 1;
  const std::vector<la::CpqrResult> expected = root_results();
  ASSERT_FALSE(expected[0].householder.empty());
  ASSERT_FALSE(expected[0].tau.empty());
  std::vector<la::CpqrResult> span_results(expected.size(), garbage_result());
  if (comm.rank() == root) span_results = expected;
  dist::broadcast(comm, std::span<la::CpqrResult>(span_results), root);
  std::vector<la::CpqrResult> vector_results;  // other ranks: empty, resized by the broadcast
  if (comm.rank() == root) vector_results = expected;
  dist::broadcast(comm, vector_results, root);
  la::CpqrResult single = garbage_result();
  if (comm.rank() == root) single = expected[0];
  dist::broadcast(comm, single, root);
  ASSERT_EQ(span_results.size(), expected.size());
  ASSERT_EQ(vector_results.size(), expected.size());
  // Every rank computed the same la::cpqr (same input, same operations): compare with its own.
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(same_everywhere(comm, hash_of(expected[i]))) << i;
    EXPECT_EQ(hash_of(span_results[i]), hash_of(expected[i])) << i;
    EXPECT_EQ(hash_of(vector_results[i]), hash_of(expected[i])) << i;
  }
  EXPECT_EQ(hash_of(single), hash_of(expected[0]));
}

TEST(Broadcast, InterpolativeDecompositionMatricesAndScalars) {
  const auto comm = dist::Comm::world();
  const int root = comm.size() - 1;
  const bool is_root = comm.rank() == root;
  la::InterpolativeDecomposition id;
  const la::InterpolativeDecomposition expected = la::interpolative_decomposition(gaussian(30, 10, 1511), {});
  if (is_root) id = expected;
  dist::broadcast(comm, id, root);
  EXPECT_EQ(id.skeleton, expected.skeleton);
  EXPECT_TRUE(same_bits(id.interpolation, expected.interpolation));
  EXPECT_EQ(hash_of(id.factorization), hash_of(expected.factorization));

  Matrix a = is_root ? gaussian(4, 3, 1512) : Matrix(1, 7, 5.0);
  dist::broadcast(comm, a, root);
  EXPECT_TRUE(same_bits(a, gaussian(4, 3, 1512)));
  Matrix empty = is_root ? Matrix(0, 3) : Matrix(2, 2);
  dist::broadcast(comm, empty, root);
  EXPECT_EQ(empty.rows(), 0);
  EXPECT_EQ(empty.cols(), 3);
  std::vector<double> values = is_root ? std::vector<double>{1.5, -0.0, 1e-310} : std::vector<double>{};
  dist::broadcast(comm, values, root);
  EXPECT_EQ(values, (std::vector<double>{1.5, -0.0, 1e-310}));
  std::vector<std::int64_t> ints = is_root ? std::vector<std::int64_t>{} : std::vector<std::int64_t>{1, 2};
  dist::broadcast(comm, ints, root);
  EXPECT_TRUE(ints.empty());
  double x = is_root ? 0.25 : 1.0;
  std::int64_t k = is_root ? -7 : 3;
  dist::broadcast(comm, x, root);
  dist::broadcast(comm, k, root);
  EXPECT_EQ(x, 0.25);
  EXPECT_EQ(k, -7);
}

TEST(ComputedOnRoot, RootsValueOnEveryRankAndRootsErrorEverywhere) {
  const auto comm = dist::Comm::world();
  const int root = comm.size() - 1;
  const double v = dist::computed_on_root(
      comm, [&] { return 1.5 * comm.rank() + 2.0; }, root);
  EXPECT_EQ(v, 1.5 * root + 2.0);
  const Matrix m = dist::computed_on_root(comm, [&] { return Matrix(comm.rank() + 1, 2, 1.0); });
  EXPECT_EQ(m.rows(), 1);
  EXPECT_THROW(static_cast<void>(dist::computed_on_root(
                   comm, [&]() -> double { throw Error("failed on the root"); }, root)),
               CollectiveError);
}

TEST(NamedCollectives, ExactCountsSameSumsAndAnyFlag) {
  const auto comm = dist::Comm::world();
  const auto p = static_cast<std::int64_t>(comm.size());
  const std::int64_t big = std::int64_t{1} << 53;  // beyond the doubles' exact integers when summed
  std::vector<std::int64_t> counts = {big + comm.rank(), -comm.rank(), 1};
  dist::sum_in_place(comm, counts);
  EXPECT_EQ(counts, (std::vector<std::int64_t>{p * big + p * (p - 1) / 2, -p * (p - 1) / 2, p}));
  std::vector<double> sums = {0.1 * (comm.rank() + 1), 1e16 + comm.rank(), 1.0 / 3.0};
  dist::sum_in_place(comm, sums);
  EXPECT_TRUE(same_everywhere(comm, hash_of(sums)));
  EXPECT_NEAR(sums[2], static_cast<double>(p) / 3.0, 4.0 * eps * static_cast<double>(p));
  EXPECT_FALSE(dist::any_rank(comm, false));
  EXPECT_TRUE(dist::any_rank(comm, comm.rank() == comm.size() - 1));
  EXPECT_TRUE(dist::any_rank(comm, true));
}

}  // namespace
}  // namespace idprune::test
