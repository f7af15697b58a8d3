// Structured OBS: with lambda = 0 the final weights are the least-squares re-fit on the kept
// neurons, the step costs add up to the final error, every greedy step removes the neuron whose
// removal increases the error least (brute force), and dead neurons go first without NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/structured_obs.hpp"
#include "idprune/la/lapack.hpp"

namespace idprune::test {
namespace {

using compress::StructuredObsOptions;

// argmin ||A X - B||_F by Householder QR (A full column rank): an independent reference.
Matrix least_squares(const Matrix& a, const Matrix& b) {
  Matrix qr(a);
  const std::vector<double> tau = la::geqrf(qr);
  Matrix c(b);
  la::ormqr(la::Side::left, la::Op::transpose, qr, tau, c);
  Matrix x(c.block(0, 0, a.cols(), b.cols()));
  la::trsm_upper_left(qr.block(0, 0, a.cols(), a.cols()), la::Op::none, x);
  return x;
}

// ||Z W - Z(:, K) W'||_F^2 at the least-squares W' (0 for K = everything).
double refit_error(const Matrix& z, const Matrix& w, const std::vector<index_t>& kept) {
  const Matrix target = la::matmul(z, w);
  const Matrix zk = la::select_columns(z, kept);
  Matrix r(target);
  la::gemm(-1.0, zk, la::Op::none, least_squares(zk, target), la::Op::none, 1.0, r);
  return norm_fro(r) * norm_fro(r);
}

Matrix activations(index_t m, index_t n, std::uint64_t seed) {
  // Correlated columns (a few latent factors plus noise), as hidden activations are.
  Matrix z = la::matmul(gaussian(m, 3, seed), gaussian(3, n, seed + 1));
  const Matrix noise = gaussian(m, n, seed + 2);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < m; ++i) z(i, j) = std::max(0.0, z(i, j) + 0.3 * noise(i, j));
  return z;
}

StructuredObsOptions undamped() {
  StructuredObsOptions o;
  o.damping = 0.0;
  return o;
}

TEST(StructuredObs, FinalWeightsAreTheLeastSquaresRefitAndCostsAddUp) {
  const index_t m = 60;
  const index_t n = 10;
  const Matrix z = activations(m, n, 501);
  const Matrix w = gaussian(n, 4, 502);
  const Matrix g = la::matmul(z, z, la::Op::transpose);
  for (index_t k : {1, 4, 9, 10}) {
    SCOPED_TRACE(k);
    const auto r = compress::structured_obs(g, w, k, undamped());
    ASSERT_EQ(static_cast<index_t>(r.kept.size()), k);
    EXPECT_TRUE(std::is_sorted(r.kept.begin(), r.kept.end()));
    ASSERT_EQ(r.weights.rows(), k);
    const Matrix ls = least_squares(la::select_columns(z, r.kept), la::matmul(z, w));
    EXPECT_LE(max_abs_diff(r.weights, ls), 1e-9 * norm_max(ls));
    // T(:, K) = I and W' = T W.
    for (index_t i = 0; i < k; ++i)
      for (index_t a = 0; a < k; ++a) EXPECT_EQ(r.interpolation(i, r.kept[uz(a)]), i == a ? 1.0 : 0.0);
    double total = 0.0;
    for (double c : r.removal_costs) total += c;
    const double err = refit_error(z, w, r.kept);
    EXPECT_NEAR(total, err, 1e-9 * norm_fro(la::matmul(z, w)) * norm_fro(la::matmul(z, w)));
  }
}

TEST(StructuredObs, EveryGreedyStepRemovesTheCheapestNeuron) {
  const index_t m = 30;
  const index_t n = 7;
  const Matrix z = activations(m, n, 503);
  const Matrix w = gaussian(n, 3, 504);
  const Matrix g = la::matmul(z, z, la::Op::transpose);
  const auto r = compress::structured_obs(g, w, 2, undamped());
  ASSERT_EQ(r.removed.size(), 5u);
  std::vector<index_t> current(uz(n));
  for (index_t j = 0; j < n; ++j) current[uz(j)] = j;
  const double scale = norm_fro(la::matmul(z, w)) * norm_fro(la::matmul(z, w));
  for (std::size_t step = 0; step < r.removed.size(); ++step) {
    SCOPED_TRACE(step);
    const double now = refit_error(z, w, current);
    double best = std::numeric_limits<double>::infinity();
    double chosen = std::numeric_limits<double>::quiet_NaN();
    for (index_t j : current) {
      std::vector<index_t> without;
      for (index_t i : current)
        if (i != j) without.push_back(i);
      const double increase = refit_error(z, w, without) - now;
      best = std::min(best, increase);
      if (j == r.removed[step]) chosen = increase;
    }
    EXPECT_NEAR(chosen, best, 1e-10 * scale);
    EXPECT_NEAR(r.removal_costs[step], chosen, 1e-10 * scale);
    std::erase(current, r.removed[step]);
  }
}

TEST(StructuredObs, DeadNeuronsAreRemovedFirstWithoutNaN) {
  const index_t n = 8;
  Matrix z = activations(40, n, 505);
  zero_columns(z, {3, 6});
  const Matrix w = gaussian(n, 4, 506);
  const Matrix g = la::matmul(z, z, la::Op::transpose);
  for (double damping : {0.0, 0.01}) {
    SCOPED_TRACE(damping);
    StructuredObsOptions o;
    o.damping = damping;
    const auto r = compress::structured_obs(g, w, 5, o);
    ASSERT_GE(r.removed.size(), 2u);
    EXPECT_EQ(r.removed[0], 3);
    EXPECT_EQ(r.removed[1], 6);
    EXPECT_EQ(r.removal_costs[0], 0.0);
    EXPECT_TRUE(la::all_finite(r.interpolation));
    EXPECT_TRUE(la::all_finite(r.weights));
    // k = 7 removes only the first dead neuron and keeps neuron 6.
    const auto keep_dead = compress::structured_obs(g, w, 7, o);
    EXPECT_EQ(keep_dead.removed, std::vector<index_t>{3});
    EXPECT_TRUE(la::all_finite(keep_dead.weights));
    // The dead kept neuron 6 passes its own row through (its activation is 0 anyway).
    const auto pos = std::find(keep_dead.kept.begin(), keep_dead.kept.end(), 6) - keep_dead.kept.begin();
    for (index_t c = 0; c < 4; ++c) EXPECT_EQ(keep_dead.weights(pos, c), w(6, c));
  }
  // Every neuron dead: nothing to fit, no NaN.
  const auto all_dead = compress::structured_obs(Matrix(n, n, 0.0), w, 2, undamped());
  EXPECT_TRUE(la::all_finite(all_dead.weights));
  EXPECT_EQ(all_dead.kept, (std::vector<index_t>{6, 7}));
}

TEST(StructuredObs, DuplicateNeuronsNeedDampingAndThenGoFirst) {
  Matrix z = activations(40, 6, 507);
  for (index_t i = 0; i < 40; ++i) z(i, 4) = z(i, 1);  // an exact duplicate
  const Matrix w = gaussian(6, 3, 508);
  const Matrix g = la::matmul(z, z, la::Op::transpose);
  EXPECT_THROW((void)compress::structured_obs(g, w, 3, undamped()), Error);
  const auto r = compress::structured_obs(g, w, 5, StructuredObsOptions{});
  ASSERT_EQ(r.removed.size(), 1u);
  EXPECT_TRUE(r.removed[0] == 1 || r.removed[0] == 4);
  EXPECT_TRUE(la::all_finite(r.weights));
  // The survivor carries both rows: the output is kept up to the (small) damping bias.
  const Matrix before = la::matmul(z, w);
  const Matrix after = la::matmul(la::select_columns(z, r.kept), r.weights);
  EXPECT_LE(max_abs_diff(after, before), 0.05 * norm_max(before));
}

TEST(StructuredObs, RefusesBadArguments) {
  const Matrix g = Matrix::identity(4);
  const Matrix w = gaussian(4, 2, 509);
  EXPECT_THROW((void)compress::structured_obs(g, w, 0), Error);
  EXPECT_THROW((void)compress::structured_obs(g, w, 5), Error);
  EXPECT_THROW((void)compress::structured_obs(g, gaussian(3, 2, 510), 2), Error);
  StructuredObsOptions o;
  o.damping = -1.0;
  EXPECT_THROW((void)compress::structured_obs(g, w, 2, o), Error);
  Matrix bad(g);
  bad(0, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)compress::structured_obs(bad, w, 2), Error);
}

}  // namespace
}  // namespace idprune::test
