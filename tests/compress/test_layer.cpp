// Single-process mathematics of one-layer compression: rank rules, the ID selection and its error
// bound, the fold, the baselines' selections, parameter counts, and the SVD layer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "fixtures.hpp"
#include "idprune/compress/layer.hpp"
#include "idprune/compress/policy.hpp"
#include "idprune/compress/rules.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/la/svd.hpp"

namespace idprune::test {
namespace {

using compress::LayerRule;
using compress::RankRule;

TEST(Rules, ParseAndRejectWithClearErrors) {
  EXPECT_EQ(compress::strategy("svd").policy, "svd");
  EXPECT_EQ(compress::strategy("joint").name, "descent");  // the alias
  EXPECT_EQ(compress::parse_rank_rule("fraction"), RankRule::fraction);
  EXPECT_THROW((void)compress::strategy("joint-ish"), Error);
  EXPECT_THROW((void)compress::parse_rank_rule("tol"), Error);
  const auto greedy = compress::strategy_policy(compress::strategy("greedy"));
  EXPECT_NO_THROW(greedy->check({RankRule::eps, 1e-3}));
  EXPECT_NO_THROW(compress::strategy_policy(compress::strategy("magnitude"))->check({RankRule::eps, 1e-3}));
  EXPECT_THROW(compress::make_policy("svd")->check({RankRule::eps, 1e-3}), Error);
  EXPECT_THROW(greedy->check({RankRule::rank, 3}), Error);
  EXPECT_THROW(greedy->check({RankRule::k, 2.5}), Error);
  EXPECT_THROW(greedy->check({RankRule::k, 0}), Error);
  EXPECT_THROW(greedy->check({RankRule::fraction, 0.0}), Error);
  EXPECT_THROW(greedy->check({RankRule::fraction, 1.5}), Error);
  EXPECT_THROW(greedy->check({RankRule::eps, -1.0}), Error);
  EXPECT_THROW(greedy->check({RankRule::eps, std::nan("")}), Error);
}

TEST(Rules, KeptCountsFollowTheirFormulas) {
  EXPECT_EQ(compress::kept_count({RankRule::k, 7}, 5), 5);
  EXPECT_EQ(compress::kept_count({RankRule::k, 3}, 5), 3);
  // ceil(0.3 * 10) = 3 although 0.3 * 10 rounds to 3.0000000000000004.
  EXPECT_EQ(compress::kept_count({RankRule::fraction, 0.3}, 10), 3);
  EXPECT_EQ(compress::kept_count({RankRule::fraction, 0.31}, 10), 4);
  EXPECT_EQ(compress::kept_count({RankRule::fraction, 1e-9}, 10), 1);
  EXPECT_EQ(compress::svd_rank({RankRule::rank, 50}, 30, 20), 20);
  EXPECT_EQ(compress::svd_rank({RankRule::fraction, 0.5}, 30, 20), 10);
  const auto o = compress::cpqr_stopping_rule({RankRule::eps, 0.1}, 100, 40, 4.0);
  EXPECT_EQ(o.rel_tol, 0.1 / 4.0);
  EXPECT_EQ(o.max_rank, -1);
  EXPECT_EQ(compress::cpqr_stopping_rule({RankRule::k, 50}, 30, 40, 1.0).max_rank, 30);  // capped by rows
}

TEST(Rules, LoosestCoversBothRules) {
  la::CpqrOptions a;
  a.rel_tol = 1e-2;
  la::CpqrOptions b;
  b.rel_tol = 1e-4;
  la::CpqrOptions k;
  k.max_rank = 5;
  const auto ab = compress::loosest(a, b);
  EXPECT_EQ(ab.rel_tol, 1e-4);
  EXPECT_TRUE(compress::covers(ab, a));
  EXPECT_TRUE(compress::covers(ab, b));
  EXPECT_FALSE(compress::covers(a, b));
  const auto ak = compress::loosest(a, k);
  EXPECT_TRUE(compress::covers(ak, a));
  EXPECT_TRUE(compress::covers(ak, k));
  EXPECT_FALSE(compress::covers(k, a));
}

// prefix_rank applied to one loose factorization gives the rank (and pivots) that a factorization
// stopped by the tighter rule itself would give: the prefix property of greedy CPQR.
TEST(Rules, PrefixRankMatchesAFactorizationStoppedByTheRule) {
  std::vector<double> sigma;
  for (int i = 0; i < 30; ++i) sigma.push_back(std::pow(0.7, i));
  const Matrix a = with_singular_values(80, 40, sigma, 11);
  la::CpqrOptions loose;
  loose.rel_tol = 1e-9;
  const la::CpqrResult f = la::cpqr(a, loose);
  for (double tol : {0.5, 0.1, 1e-2, 1e-3, 1e-5}) {
    la::CpqrOptions rule;
    rule.rel_tol = tol;
    const la::CpqrResult g = la::cpqr(a, rule);
    const index_t k = compress::prefix_rank(f, rule);
    EXPECT_EQ(k, g.rank) << "tol " << tol;
    for (index_t i = 0; i < std::min(k, g.rank); ++i) EXPECT_EQ(f.pivots[uz(i)], g.pivots[uz(i)]);
  }
  la::CpqrOptions k7;
  k7.max_rank = 7;
  EXPECT_EQ(compress::prefix_rank(f, k7), 7);
}

// The reference text's bound for y = relu(x^T W) a: with C, T from CPQR of Z = relu(Xc W),
// ||relu(Xc W) a - relu(Xc W(:, C)) T a|| = ||(Z - Z(:,C) T) a|| <= ||R22||_2 ||a||_2, and Z(:, C) T
// reproduces the skeleton columns exactly. Checked through the compressed model's own forward pass.
TEST(IdSelection, OneHiddenLayerModelObeysTheR22Bound) {
  const index_t d = 30;
  const index_t n = 40;
  const index_t m = 200;
  for (const bool bias : {false, true}) {
    nn::Mlp model = random_mlp(d, {n}, 3, bias, 5);
    const Matrix xc = structured_inputs(m, d, 8, 6);
    const Matrix z = model.hidden_activations(xc, 0);
    la::CpqrOptions full;
    full.method = la::CpqrMethod::unblocked;
    const la::CpqrResult f = la::cpqr(z, full);
    for (index_t k : {5, 12, 25}) {
      const compress::Selection s = compress::id_selection(f, k);
      ASSERT_EQ(static_cast<index_t>(s.kept.size()), k);
      EXPECT_TRUE(std::is_sorted(s.kept.begin(), s.kept.end()));
      // T(:, C) = I exactly: skeleton columns reproduced exactly.
      for (index_t i = 0; i < k; ++i)
        for (index_t j = 0; j < k; ++j) EXPECT_EQ(s.interpolation(i, s.kept[uz(j)]), i == j ? 1.0 : 0.0);
      const Matrix r22(f.r.block(k, k, f.rank - k, n - k));
      const double r22_norm = test::norm2(r22);
      nn::Mlp compressed = model;
      compress::apply_selection(compressed, 0, s);
      EXPECT_EQ(compressed.hidden(0).d_out(), k);
      const Matrix y = model.logits(xc);
      const Matrix yc = compressed.logits(xc);
      Matrix diff(y);
      for (index_t j = 0; j < diff.cols(); ++j)
        for (index_t i = 0; i < diff.rows(); ++i) diff(i, j) -= yc(i, j);
      const double a_norm = test::norm2(model.classifier().weight());
      // Rounding slack: c eps n ||Z|| ||a|| with c = 10.
      const double slack = 10.0 * eps * static_cast<double>(n) * test::norm2(z) * a_norm;
      EXPECT_LE(test::norm2(diff), r22_norm * a_norm + slack) << "k=" << k << " bias=" << bias;
      // ||Z - Z(:,C) T||_2 = ||R22||_2 (to rounding).
      Matrix e(z);
      la::gemm(-1.0, la::select_columns(z, s.kept), la::Op::none, s.interpolation, la::Op::none, 1.0, e.view());
      EXPECT_NEAR(test::norm2(e), r22_norm, 10.0 * eps * static_cast<double>(n) * test::norm2(z));
    }
  }
}

// Exactly redundant neurons (a positive multiple of another: relu(c x w) = c relu(x w)) and dead
// neurons are removed with no loss: the ID keeps the numerical rank of Z (at most 7 of 10 here) and
// the compressed model reproduces the logits on inputs it never saw.
TEST(IdSelection, RedundantAndDeadNeuronsAreRemovedWithoutLoss) {
  const index_t d = 12;
  nn::Mlp model = random_mlp(d, {10, 8}, 4, false, 21);
  Matrix w = model.hidden(0).weight();
  for (index_t i = 0; i < d; ++i) {
    w(i, 3) = 2.5 * w(i, 1);             // duplicate of neuron 1
    w(i, 7) = 0.5 * w(i, 2);             // duplicate of neuron 2
    w(i, 9) = -std::abs(w(i, 9)) - 0.1;  // dead for inputs in [0, 1]^d
  }
  model.layer(0) = nn::DenseLayer(w);
  const Matrix xc = structured_inputs(100, d, 12, 22);
  const Matrix z = model.hidden_activations(xc, 0);
  const std::vector<double> sv = la::singular_values(z);
  const auto numerical_rank =
      static_cast<index_t>(std::count_if(sv.begin(), sv.end(), [&](double s) { return s > 1e-10 * sv.front(); }));
  la::CpqrOptions o;
  o.rel_tol = 1e-10;
  const la::CpqrResult f = la::cpqr(z, o);
  EXPECT_EQ(f.rank, numerical_rank);
  EXPECT_LE(f.rank, 7);  // 10 neurons, 2 duplicates, 1 dead (and possibly more dead by chance)
  nn::Mlp compressed = model;
  compress::apply_selection(compressed, 0, compress::id_selection(f, f.rank));
  // Inputs never seen, on which the duplicates stay duplicates and the dead neuron stays dead;
  // neurons dead by chance on xc need not be dead there, so compare where they are.
  const Matrix xt = structured_inputs(50, d, 12, 23);
  const Matrix zt = model.hidden_activations(xt, 0);
  std::vector<index_t> rows;
  for (index_t i = 0; i < xt.rows(); ++i) {
    bool ok = true;
    for (index_t j = 0; j < z.cols(); ++j) {
      double col = 0.0;
      for (index_t r = 0; r < z.rows(); ++r) col = std::max(col, z(r, j));
      if (col == 0.0 && zt(i, j) != 0.0) ok = false;
    }
    if (ok) rows.push_back(i);
  }
  ASSERT_GE(rows.size(), 10u);
  const Matrix xs = la::select_rows(xt, rows);
  const Matrix y = model.logits(xs);
  double scale = 0.0;
  for (double v : y.values()) scale = std::max(scale, std::abs(v));
  EXPECT_LE(max_abs_diff(y, compressed.logits(xs)), 1e3 * eps * scale);
}

// The fold keeps the network consistent and the parameter count follows sum k_{l-1} k_l + biases;
// compressing every layer to the numerical rank of its activations reproduces the logits on the
// compression set to rounding (exactly the same model when no neuron is dead: T is then I).
TEST(ApplySelection, FoldPreservesShapesAndCountsParameters) {
  nn::Mlp model = random_mlp(16, {12, 10, 8}, 3, true, 31);
  const Matrix x = structured_inputs(150, 16, 10, 32);
  nn::Mlp compressed = model;
  std::vector<index_t> kept = {16};
  for (index_t l = 0; l < 3; ++l) {
    const Matrix z = compressed.hidden_activations(x, l);
    la::CpqrOptions o;
    o.max_rank = z.cols() - 1 - l;  // drop at least 1, 2, 3 neurons
    const la::CpqrResult f = la::cpqr(z, o);
    EXPECT_LE(f.rank, o.max_rank);
    compress::apply_selection(compressed, l, compress::id_selection(f, f.rank));
    EXPECT_EQ(compressed.hidden(l).d_out(), f.rank);
    EXPECT_EQ(compressed.layer(l + 1).d_in(), f.rank);
    kept.push_back(f.rank);
  }
  // Parameters: weights k_{l-1} k_l plus biases k_l, then the classifier k_3 x 3 plus 3.
  index_t expected = 0;
  index_t biases = 3;
  for (std::size_t l = 1; l < kept.size(); ++l) {
    expected += kept[l - 1] * kept[l] + kept[l];
    biases += kept[l];
  }
  expected += kept.back() * 3 + 3;
  EXPECT_EQ(compressed.parameter_count(), expected);
  compress::CompressedModel cm;
  cm.model = compressed;
  const compress::ModelMetrics m = compress::model_metrics(model, cm, {});
  EXPECT_EQ(m.params, expected);
  EXPECT_EQ(m.kept_per_layer, std::vector<index_t>(kept.begin() + 1, kept.end()));
  EXPECT_EQ(m.hidden_kept, kept[1] + kept[2] + kept[3]);
  EXPECT_EQ(m.hidden_total, 30);
  EXPECT_DOUBLE_EQ(m.hidden_kept_fraction, static_cast<double>(m.hidden_kept) / 30.0);
  EXPECT_DOUBLE_EQ(m.flops, 2.0 * static_cast<double>(expected - biases));

  nn::Mlp same = model;
  bool any_dead = false;
  for (index_t l = 0; l < 3; ++l) {
    const Matrix z = same.hidden_activations(x, l);
    la::CpqrOptions o;
    o.rel_tol = 1e-12;
    const la::CpqrResult f = la::cpqr(z, o);
    any_dead = any_dead || f.rank < z.cols();
    compress::apply_selection(same, l, compress::id_selection(f, f.rank));
  }
  const Matrix y = model.logits(x);
  double scale = 0.0;
  for (double v : y.values()) scale = std::max(scale, std::abs(v));
  EXPECT_LE(max_abs_diff(y, same.logits(x)),
            1e6 * eps * scale);  // c = 1e6: T = R11^{-1} R12 amplifies rounding by cond(R11)
  if (!any_dead) {
    EXPECT_TRUE(identical_models(same, model));
  }
}

// W_{l+1} <- T W_{l+1} is formed as W(C, :) + T(:, F) W(F, :) when T(:, C) is the identity (every
// ID selection), by the full product otherwise: both must give T W to rounding, and the kept
// rows' identity part must be carried exactly (T(:, F) = 0 leaves W(C, :) bit for bit).
TEST(ApplySelection, FoldEqualsTheProductTW) {
  const nn::Mlp model = random_mlp(9, {12, 7}, 3, true, 41);
  const Matrix x = structured_inputs(80, 9, 6, 42);
  const Matrix z = model.hidden_activations(x, 0);
  la::CpqrOptions o;
  o.max_rank = 8;
  const la::CpqrResult f = la::cpqr(z, o);
  ASSERT_GE(f.rank, 2);
  const index_t k = f.rank;
  const compress::Selection id = compress::id_selection(f, k);
  const Matrix& w = model.layer(1).weight();  // 12 x 7

  compress::Selection dense = id;  // a T without the identity block: the full product
  dense.interpolation(0, id.kept[0]) = 0.5;
  compress::Selection plain = id;  // T = [I, 0]: W(C, :) exactly
  for (index_t j = 0; j < 12; ++j)
    if (std::find(id.kept.begin(), id.kept.end(), j) == id.kept.end())
      for (index_t i = 0; i < k; ++i) plain.interpolation(i, j) = 0.0;

  for (const compress::Selection* s : std::vector<const compress::Selection*>{&id, &dense, &plain}) {
    nn::Mlp folded = model;
    compress::apply_selection(folded, 0, *s);
    const Matrix expected = la::matmul(s->interpolation, w);
    double scale = 0.0;  // max_ij (|T| |W|)_ij bounds the rounding of either formula
    for (index_t i = 0; i < k; ++i)
      for (index_t j = 0; j < 7; ++j) {
        double sum = 0.0;
        for (index_t p = 0; p < 12; ++p) sum += std::abs(s->interpolation(i, p) * w(p, j));
        scale = std::max(scale, sum);
      }
    EXPECT_LE(max_abs_diff(folded.layer(1).weight(), expected), 16 * eps * scale);  // 16 > 12 terms
  }
  nn::Mlp exact = model;
  compress::apply_selection(exact, 0, plain);
  EXPECT_EQ(max_abs_diff(exact.layer(1).weight(), la::select_rows(w, id.kept)), 0.0);
}

TEST(DeadLayer, KeepsOneNeuronWithZeroInterpolation) {
  nn::Mlp model = random_mlp(6, {5}, 2, false, 41);
  Matrix w = model.hidden(0).weight();
  for (double& v : w.values()) v = -std::abs(v) - 0.1;  // every neuron dead on inputs in [0, 1]
  model.layer(0) = nn::DenseLayer(w);
  const Matrix x = structured_inputs(20, 6, 3, 42);
  nn::Mlp compressed = model;
  compress::apply_selection(compressed, 0, compress::dead_layer_selection(5));
  EXPECT_EQ(compressed.hidden(0).d_out(), 1);
  EXPECT_EQ(max_abs_diff(model.logits(x), compressed.logits(x)), 0.0);
}

TEST(Magnitude, KeepsTheLargestOutgoingNormsAndSelectsRows) {
  nn::Mlp model = random_mlp(8, {10, 6}, 3, false, 51);
  const std::vector<double> norms = compress::outgoing_norms(model.layer(1));
  ASSERT_EQ(norms.size(), 10u);
  for (index_t k : {1, 4, 10}) {
    const compress::Selection s = compress::magnitude_selection(model.layer(1), k);
    ASSERT_EQ(static_cast<index_t>(s.kept.size()), k);
    EXPECT_TRUE(std::is_sorted(s.kept.begin(), s.kept.end()));
    double min_kept = 1e300;
    double max_dropped = 0.0;
    const std::set<index_t> kept(s.kept.begin(), s.kept.end());
    for (index_t i = 0; i < 10; ++i) {
      if (kept.count(i))
        min_kept = std::min(min_kept, norms[uz(i)]);
      else
        max_dropped = std::max(max_dropped, norms[uz(i)]);
    }
    EXPECT_GE(min_kept, max_dropped);
    nn::Mlp c = model;
    compress::apply_selection(c, 0, s);
    // The fold selects rows of W_2 exactly (no arithmetic).
    const Matrix w2 = model.hidden(1).weight();
    const Matrix w2c = c.hidden(1).weight();
    for (index_t i = 0; i < k; ++i)
      for (index_t j = 0; j < w2.cols(); ++j) EXPECT_EQ(w2c(i, j), w2(s.kept[uz(i)], j));
  }
}

TEST(Random, ColumnsAreSeededDistinctAndNested) {
  const auto a = compress::random_columns(50, 10, 7, 0);
  const auto b = compress::random_columns(50, 10, 7, 0);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<index_t>(a.begin(), a.end()).size(), 10u);
  EXPECT_NE(compress::random_columns(50, 10, 7, 1), a);  // another layer draws its own
  const auto big = compress::random_columns(50, 20, 7, 0);
  for (index_t c : a) EXPECT_TRUE(std::binary_search(big.begin(), big.end(), c));  // nested in k
}

// W = U S V^T truncated to full rank reproduces the layer; rank r has r (d_in + d_out) weights.
TEST(Svd, FullRankReproducesTheLayerAndCountsParameters) {
  nn::Mlp model = random_mlp(14, {9, 7}, 3, true, 61);
  const Matrix x = structured_inputs(40, 14, 6, 62);
  nn::Mlp c = model;
  for (index_t l = 0; l < 2; ++l) {
    const auto& layer = model.hidden(l);
    const la::Svd s = la::svd(layer.weight());
    c.layer(l) = compress::svd_layer(layer, s, static_cast<index_t>(s.s.size()));
    EXPECT_EQ(c.hidden(l).factor_count(), 2);
  }
  double scale = 0.0;
  const Matrix y = model.logits(x);
  for (double v : y.values()) scale = std::max(scale, std::abs(v));
  EXPECT_LE(max_abs_diff(y, c.logits(x)), 100.0 * eps * 14 * scale);
  const auto& layer = model.hidden(0);
  const nn::DenseLayer r3 = compress::svd_layer(layer, la::svd(layer.weight()), 3);
  EXPECT_EQ(r3.parameter_count(), 3 * (14 + 9) + 9);
  // The rank-r layer's weight is the optimal rank-r approximation: ||W - W_r||_2 = sigma_{r+1}.
  const la::Svd s = la::svd(layer.weight());
  Matrix e = layer.weight();
  const Matrix wr = r3.weight();
  for (index_t j = 0; j < e.cols(); ++j)
    for (index_t i = 0; i < e.rows(); ++i) e(i, j) -= wr(i, j);
  EXPECT_NEAR(test::norm2(e), s.s[3], 100.0 * eps * s.s[0]);
}

}  // namespace
}  // namespace idprune::test
