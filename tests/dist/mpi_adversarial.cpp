// Every pivot engine (tsqr, gram, sketch, scalapack, lapack) on the adversarial matrices of
// support/adversarial.hpp (issue 9), under mpiexec -n 1..4: near-tied norms, exact duplicates,
// 1e-300..1e300 columns, entries near the overflow and underflow thresholds, a single row (most
// ranks then hold no rows), a single column, the zero matrix. Each rank count is compared with the
// same single-process dgeqp3 reference (la::cpqr, lapack) at the rank the engine chose, so results
// agree across 1..4 ranks. Properties: no error, bit-identical results on every rank, finite
// output, a valid permutation, T(:, C) = I exactly, the reference skeleton where greedy pivoting has
// a clear winner, and column by column
//   ||z_j - Z(:, C) t_j|| <= ||z_j - Z(:, C_ref) t_ref_j|| + 8 max(m, n) eps ||z_j||
// (sketch, a randomized method: its worst relative column residual within 10x the reference's).
// ||z_j|| + DBL_MIN: below DBL_MIN arithmetic is gradual underflow, fl(x op y) = (x op y)(1 + d) + h
// with |h| <= 2^-1075 = eps DBL_MIN / 2, so subnormal columns get 8 max(m, n) units of 2^-1074.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "mpi_helpers.hpp"
#include "support/adversarial.hpp"

namespace idprune::test {
namespace {

using dist::PivotEngine;

std::vector<la::CpqrOptions> rules(const Matrix& a, PivotEngine e) {
  std::vector<la::CpqrOptions> out;
  la::CpqrOptions o;
  o.block_size = 3;
  // Gram cannot resolve a rule below sqrt(n eps) (CollectiveError by design); it stops there anyway.
  if (e != PivotEngine::gram) out.push_back(o);
  o.rel_tol = 1e-6;
  out.push_back(o);
  o.rel_tol = 0.0;
  o.max_rank = std::min(a.rows(), a.cols()) / 2;
  out.push_back(o);
  return out;
}

double worst_relative(const Matrix& a, const std::vector<double>& res) {
  double worst = 0.0;
  for (index_t j = 0; j < a.cols(); ++j) {
    const double norm = la::nrm2(a.col(j));
    if (norm > 0.0) worst = std::max(worst, res[std::size_t(j)] / norm);
  }
  return worst;
}

TEST(AdversarialEngines, EveryEngineGivesAFiniteValidIdAsAccurateAsDgeqp3) {
  const auto comm = dist::Comm::world();
  for (const auto& c : adversarial::cases()) {
    const Matrix& a = c.a;
    const double tol_factor = 8.0 * static_cast<double>(std::max(a.rows(), a.cols())) * eps;
    const double dbl_min = std::numeric_limits<double>::min();
    for (const PivotEngine e : all_engines()) {
      for (const la::CpqrOptions& opts : rules(a, e)) {
        SCOPED_TRACE(c.name + ", " + std::string(dist::to_string(e)) + ", max_rank=" + std::to_string(opts.max_rank) +
                     " rel_tol=" + std::to_string(opts.rel_tol) + ", np=" + std::to_string(comm.size()));
        const auto z = distribute(a, comm);
        la::InterpolativeDecomposition id;
        ASSERT_NO_THROW(id = dist::distributed_id(z, opts, engine_options(e)));
        ASSERT_TRUE(same_on_every_rank(comm, id));
        const auto& f = id.factorization;
        for (double v : f.r.values()) ASSERT_TRUE(std::isfinite(v)) << "R";
        for (double v : f.diag) ASSERT_TRUE(std::isfinite(v) && v > 0.0) << "diag " << v;
        ASSERT_TRUE(std::isfinite(f.next_diag) && std::isfinite(f.residual_fro));
        for (double v : id.interpolation.values()) ASSERT_TRUE(std::isfinite(v)) << "T";
        std::vector<index_t> sorted(f.pivots);
        std::sort(sorted.begin(), sorted.end());
        for (index_t j = 0; j < a.cols(); ++j) ASSERT_EQ(sorted[std::size_t(j)], j) << "not a permutation";
        for (index_t i = 0; i < f.rank; ++i)
          for (index_t l = 0; l < f.rank; ++l)
            ASSERT_EQ(id.interpolation(l, id.skeleton[std::size_t(i)]), l == i ? 1.0 : 0.0);

        la::CpqrOptions ro;
        ro.method = la::CpqrMethod::lapack;
        ro.max_rank = f.rank;
        const auto ref = la::interpolative_decomposition(a, ro);
        const auto res = adversarial::column_residuals(a, id);
        const auto ref_res = adversarial::column_residuals(a, ref);
        if (e == PivotEngine::sketch) {
          EXPECT_LE(worst_relative(a, res), 10.0 * worst_relative(a, ref_res) + tol_factor);
          continue;
        }
        if (c.separated) {
          EXPECT_EQ(id.skeleton, ref.skeleton);
        }
        for (index_t j = 0; j < a.cols(); ++j)
          EXPECT_LE(res[std::size_t(j)], ref_res[std::size_t(j)] + tol_factor * (la::nrm2(a.col(j)) + dbl_min))
              << "column " << j << " norm " << la::nrm2(a.col(j)) << " reference " << ref_res[std::size_t(j)];
      }
    }
  }
}

// The rank each engine finds on exact duplicates under a tolerance: the number of distinct
// columns (every engine, every rank count), and never two copies of one column.
TEST(AdversarialEngines, DuplicateColumnsAreSelectedOnce) {
  const auto comm = dist::Comm::world();
  const Matrix a = adversarial::with_duplicates(30, 10, {{3, 1}, {7, 1}, {9, 4}}, 12);
  la::CpqrOptions opts;
  opts.rel_tol = 1e-6;
  for (const PivotEngine e : all_engines()) {
    SCOPED_TRACE(std::string(dist::to_string(e)));
    const auto f = dist::distributed_cpqr(distribute(a, comm), opts, engine_options(e));
    EXPECT_EQ(f.rank, 7);
    const auto skel = f.skeleton();
    const auto has = [&](index_t j) { return std::count(skel.begin(), skel.end(), j) > 0; };
    EXPECT_LE(has(1) + has(3) + has(7), 1);
    EXPECT_LE(has(4) + has(9), 1);
  }
}

// The Gram engine squares the entries: it scales Z by a power of two first, so that entries near
// the overflow threshold (1e300, squares 1e600) and near the underflow threshold (1e-300, squares
// 1e-600) give the same pivots and (scaled) diagonal as tsqr instead of Inf/NaN or a zero Gram matrix.
TEST(AdversarialEngines, GramEngineScalesAwayOverflowAndUnderflow) {
  const auto comm = dist::Comm::world();
  const Matrix base = adversarial::graded(25, 8, 0.0, 3.0, 31);
  for (const double s : {1e300, 1e-300, 1.0}) {
    SCOPED_TRACE("scale " + std::to_string(std::log10(s)));
    Matrix a(base);
    for (double& v : a.values()) v *= s;
    la::CpqrOptions opts;
    opts.rel_tol = 1e-5;
    const auto g = dist::distributed_cpqr(distribute(a, comm), opts, engine_options(PivotEngine::gram));
    const auto t = dist::distributed_cpqr(distribute(a, comm), opts, engine_options(PivotEngine::tsqr));
    ASSERT_EQ(g.rank, t.rank);
    EXPECT_EQ(g.skeleton(), t.skeleton());
    for (index_t i = 0; i < g.rank; ++i)
      EXPECT_NEAR(g.diag[std::size_t(i)], t.diag[std::size_t(i)], 1e-6 * t.diag[0]) << "step " << i;
    EXPECT_TRUE(std::isfinite(g.next_diag) && std::isfinite(g.residual_fro));
  }
}

// Column norms at the top of the double range, every engine: up to the largest double the result
// is that of the same matrix scaled into the middle of the range (the engines factor 2^-16 Z
// there: pivots equal, R and the norms scaled back), finite and the same on every rank; a column
// whose norm overflows is the same clear error on every rank.
TEST(AdversarialEngines, ColumnNormsNearTheLargestDoubleAreScaledOrAClearError) {
  const auto comm = dist::Comm::world();
  for (const double top : {0.5, 0.99}) {
    const Matrix a = near_max_norm_columns(24, 5, top, 33);
    Matrix mid(a);
    for (double& v : mid.values()) v = std::ldexp(v, -100);
    for (const PivotEngine e : all_engines()) {
      SCOPED_TRACE(std::string(dist::to_string(e)) + ", norms " + std::to_string(top) + " DBL_MAX");
      la::InterpolativeDecomposition id;
      if (e == PivotEngine::sketch) {
        // The sketch's diag estimates exceed the true norms by its distortion and the factor
        // sqrt(l / (l - j)): near the top they may not be representable, a clear error then.
        try {
          id = dist::distributed_id(distribute(a, comm), {}, engine_options(e));
        } catch (const dist::CollectiveError& err) {
          EXPECT_NE(std::string(err.what()).find("scale the input down"), std::string::npos) << err.what();
          continue;
        }
      } else {
        ASSERT_NO_THROW(id = dist::distributed_id(distribute(a, comm), {}, engine_options(e)));
      }
      ASSERT_TRUE(same_on_every_rank(comm, id));
      const auto ref = dist::distributed_id(distribute(mid, comm), {}, engine_options(e));
      EXPECT_EQ(id.skeleton, ref.skeleton);
      ASSERT_EQ(id.factorization.diag.size(), ref.factorization.diag.size());
      for (std::size_t i = 0; i < id.factorization.diag.size(); ++i) {
        const double d = id.factorization.diag[i];
        EXPECT_TRUE(std::isfinite(d));
        EXPECT_NEAR(d, std::ldexp(ref.factorization.diag[i], 100), 1e-12 * d) << "step " << i;
      }
      for (double v : id.interpolation.values()) EXPECT_TRUE(std::isfinite(v));
    }
  }
  // Entries +-2 DBL_MAX / sqrt(m): every entry finite, every column norm 2 DBL_MAX.
  Matrix a = gaussian(24, 5, 34);
  const double c = 2.0 / std::sqrt(24.0) * std::numeric_limits<double>::max();
  for (double& v : a.values()) v = v < 0.0 ? -c : c;
  for (const PivotEngine e : all_engines()) {
    SCOPED_TRACE(std::string(dist::to_string(e)));
    try {
      (void)dist::distributed_id(distribute(a, comm), {}, engine_options(e));
      ADD_FAILURE() << "no error";
    } catch (const dist::CollectiveError& err) {
      EXPECT_NE(std::string(err.what()).find("column 0 has a 2-norm above the largest double"), std::string::npos)
          << err.what();
    }
  }
}

// A non-finite entry anywhere (here on the last rank only) is the same clear error on every rank,
// naming its global position, for every engine, before any work.
TEST(AdversarialEngines, NonFiniteEntryIsACollectiveErrorNamingItsPosition) {
  const auto comm = dist::Comm::world();
  const index_t m = 4 * comm.size();
  Matrix full = gaussian(m, 5, 77);
  full(m - 2, 3) = -std::numeric_limits<double>::infinity();
  for (const PivotEngine e : all_engines()) {
    try {
      (void)dist::distributed_id(distribute(full, comm), {}, engine_options(e));
      ADD_FAILURE() << "no error";
    } catch (const dist::CollectiveError& err) {
      const std::string what = err.what();
      EXPECT_NE(what.find("entry (" + std::to_string(m - 2) + ", 3) is -inf"), std::string::npos) << what;
      EXPECT_EQ(err.failing_rank(), comm.size() - 1);
    }
  }
}

}  // namespace
}  // namespace idprune::test
