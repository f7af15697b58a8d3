// Numerical robustness of compression (issue 9), under mpiexec -n 1..4:
//  - a hidden layer whose neurons are all dead on the compression set (and on every input) keeps
//    one neuron with T = 0, through every strategy and every pivot engine, the first layer or a
//    middle one; the compressed model evaluates and predicts exactly what the original predicts;
//  - NaN/Inf in the model or the compression set is one clear error on every rank, before any
//    work, naming the layer/tensor or the global position of the first bad value.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/layer.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/compress/strategy.hpp"
#include "idprune/dist/comm.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::LayerRule;
using compress::RankRule;

/// random_mlp with hidden layer `dead` made dead on every non-negative input: its weight and bias
/// are all negative, so its pre-activations are negative on the inputs in [0, 1] (layer 0) or on
/// the non-negative ReLU outputs of the layer before it.
nn::Mlp with_dead_layer(index_t dead, std::uint64_t seed) {
  nn::Mlp m = random_mlp(10, {12, 9, 7}, 4, true, seed);
  nn::DenseLayer& layer = m.layer(dead);
  const la::MatrixView w = layer.factor_values(0);
  for (index_t j = 0; j < w.cols(); ++j)
    for (double& v : w.col(j)) v = -std::abs(v) - 0.05;
  for (double& b : layer.bias_values()) b = -std::abs(b) - 0.05;
  return m;
}

std::vector<dist::PivotEngine> engines() {
  return {dist::PivotEngine::tsqr, dist::PivotEngine::gram, dist::PivotEngine::sketch, dist::PivotEngine::scalapack,
          dist::PivotEngine::lapack};
}

// Documented behaviour (layer.hpp, dead_layer_selection): a layer that is zero on the whole
// compression set keeps one neuron (neuron 0) and folds T = 0 into the next layer, so every shape
// stays valid (no zero-width layer) and the next layer sees what it saw before, zero. The data-free
// baselines keep their own neurons (magnitude: the largest outgoing norms; it is dead all the same).
TEST(DeadLayer, EveryStrategyAndEngineKeepsAModelWithTheOriginalPredictions) {
  const dist::Comm comm = dist::Comm::world();
  const Matrix xc = structured_inputs(60, 10, 4, 201);
  const Matrix xt = structured_inputs(50, 10, 4, 202);
  for (const index_t dead : {index_t{0}, index_t{1}}) {
    const nn::Mlp model = with_dead_layer(dead, 203 + static_cast<std::uint64_t>(dead));
    // The construction really is dead on both sets.
    ASSERT_EQ(la::norm_max(model.hidden_activations(xc, dead)), 0.0);
    ASSERT_EQ(la::norm_max(model.hidden_activations(xt, dead)), 0.0);
    const std::vector<int> expected = model.predict(xt);
    const Matrix expected_logits = model.logits(xt);
    struct Setup {
      std::string strategy;
      dist::PivotEngine engine;
    };
    std::vector<Setup> setups;
    for (const auto e : engines()) setups.push_back({"greedy", e});
    setups.push_back({"random", dist::PivotEngine::tsqr});
    setups.push_back({"magnitude", dist::PivotEngine::tsqr});
    // Only the dead layer (every strategy), or every layer (greedy: the layers after the dead one
    // then see constant activations, which the ID reproduces; the baselines would change them).
    std::vector<std::pair<Setup, std::vector<index_t>>> runs;
    for (const Setup& s : setups) {
      runs.push_back({s, {dead}});
      if (s.strategy == "greedy") runs.push_back({s, {}});
    }
    for (const auto& [s, layers] : runs) {
      for (const LayerRule rule : {LayerRule{RankRule::eps, 1e-3}, LayerRule{RankRule::k, 3.0}}) {
        SCOPED_TRACE("dead layer " + std::to_string(dead) + ", " + s.strategy + ", " +
                     std::string(dist::to_string(s.engine)) + ", rule " + std::string(compress::to_string(rule.rule)) +
                     (layers.empty() ? ", all layers" : ", one layer"));
        compress::EngineOptions o;
        o.pivot.engine = s.engine;
        o.pivot.scalapack_block = 4;
        compress::CompressedModel c;
        ASSERT_NO_THROW(c = compress::compress_model(model, distribute(xc, comm), s.strategy, rule, layers, o));
        const auto& out = c.layers[std::size_t(dead)];
        EXPECT_TRUE(out.compressed);
        if (rule.rule == RankRule::eps && s.strategy != "magnitude") {
          EXPECT_EQ(out.kept, 1);
        }
        EXPECT_GE(c.model.hidden(dead).d_out(), 1);
        // Still dead after compression: the kept neurons are original neurons.
        EXPECT_EQ(la::norm_max(c.model.hidden_activations(xt, dead)), 0.0);
        EXPECT_EQ(c.model.predict(xt), expected);
        // Everything after the dead layer is a constant the compressed model reproduces: layers
        // behind it see exactly zero, and later layers are compressed to rounding.
        EXPECT_LE(max_abs_diff(c.model.logits(xt), expected_logits), 1e-10 * (1.0 + la::norm_max(expected_logits)));
      }
    }
  }
}

// One layer alone on a dead layer, every engine: one neuron with T = 0 (the next layer sees exactly
// the zero it saw), no ratio, the same predictions.
TEST(DeadLayer, OneLayerEveryEngineKeepsOneNeuronWithZeroInterpolation) {
  const dist::Comm comm = dist::Comm::world();
  const nn::Mlp model = with_dead_layer(1, 211);
  const Matrix xc = structured_inputs(40, 10, 4, 212);
  for (const auto e : engines()) {
    SCOPED_TRACE(std::string(dist::to_string(e)));
    compress::EngineOptions o;
    o.pivot.engine = e;
    o.pivot.scalapack_block = 4;
    const std::vector<index_t> second = {1};
    const auto c =
        compress::compress_model(model, distribute(xc, comm), "greedy", LayerRule{RankRule::eps, 1e-3}, second, o);
    EXPECT_EQ(c.layers[1].kept, 1);
    EXPECT_EQ(c.layers[1].next_ratio, 0.0);
    EXPECT_EQ(la::norm_max(c.model.hidden(2).weight()), 0.0);  // T = 0 folded into layer 3
    EXPECT_EQ(c.model.hidden(1).d_out(), 1);
    EXPECT_EQ(c.model.predict(xc), model.predict(xc));
  }
}

// A NaN or Inf weight is refused by the engine on every rank before any work, naming the layer,
// the tensor and the index; so is a NaN in the compression set held by one rank only (global row).
TEST(NonFiniteInput, EngineRefusesItOnEveryRankNamingWhere) {
  const dist::Comm comm = dist::Comm::world();
  const nn::Mlp model = random_mlp(10, {12, 9}, 4, true, 221);
  const Matrix xc = structured_inputs(8 * comm.size(), 10, 4, 222);
  const auto expect_collective = [&](const std::function<void()>& run, const std::string& needle) {
    try {
      run();
      ADD_FAILURE() << "no error; expected '" << needle << "'";
    } catch (const dist::CollectiveError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  for (const std::string s : {"greedy", "random", "magnitude", "svd"}) {
    SCOPED_TRACE(s);
    const LayerRule rule{RankRule::fraction, 0.5};  // a rule every strategy accepts
    nn::Mlp bad = model;
    bad.layer(1).factor_values(0)(4, 2) = std::numeric_limits<double>::quiet_NaN();
    expect_collective([&] { (void)compress::compress_model(bad, distribute(xc, comm), s, rule); },
                      "hidden layer 2 weight: entry (4, 2) is nan");
    bad = model;
    bad.layer(2).bias_values()[3] = std::numeric_limits<double>::infinity();
    expect_collective([&] { (void)compress::compress_model(bad, distribute(xc, comm), s, rule); },
                      "the classifier bias: entry 3 is inf");
    Matrix bad_x(xc);
    const index_t row = xc.rows() - 3;  // held by the last rank
    bad_x(row, 7) = -std::numeric_limits<double>::infinity();
    expect_collective([&] { (void)compress::compress_model(model, distribute(bad_x, comm), s, rule); },
                      "the compression set: entry (" + std::to_string(row) + ", 7) is -inf");
  }
  // So does the Scorer, for the model and for the evaluation set held by one rank.
  {
    nn::Mlp bad = model;
    bad.layer(0).bias_values()[5] = std::numeric_limits<double>::quiet_NaN();
    const std::vector<int> labels(std::size_t(distribute(xc, comm).local_rows()), 0);
    expect_collective([&] { compress::Scorer ev(bad, Matrix(distribute(xc, comm).local()), labels, comm); },
                      "hidden layer 1 bias: entry 5 is nan");
    Matrix bad_x(xc);
    bad_x(xc.rows() - 1, 2) = std::numeric_limits<double>::infinity();  // on the last rank
    expect_collective([&] { compress::Scorer ev(model, Matrix(distribute(bad_x, comm).local()), labels, comm); },
                      "the evaluation set (local rows of this rank): entry");
  }
}

}  // namespace
}  // namespace idprune::test
