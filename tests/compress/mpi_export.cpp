// A compressed model to take away, under mpiexec -n 1..4: the kept neuron indices of every strategy
// index the ORIGINAL layer (checked through the biases, which no fold changes), the sensitivity
// table against a direct computation, the models a Pareto study keeps, compress_network's two
// modes, and the metadata written with the model. Every rank builds the same data from seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "fixtures.hpp"
#include "idprune/compress/export.hpp"
#include "idprune/dist/comm.hpp"
#include "support/distributed.hpp"

namespace idprune::test {
namespace {

using compress::CompressedModel;
using compress::LayerRule;
using compress::PointPlan;
using compress::RankRule;

using Problem = SelectionProblem;

/// The scorers as `idprune pareto` and `idprune compress` make them.
compress::Scorer validation_scorer(const Problem& p, const dist::Comm& comm) {
  compress::ScorerOptions o;
  o.batch_rows = 64;
  o.cross_entropy = true;
  o.second_layer_shortcut = false;
  return compress::Scorer(p.model, Matrix(distribute(p.xv, comm).local()), block_of(p.yv, comm), comm, o);
}
compress::Scorer test_scorer(const Problem& p, const dist::Comm& comm) {
  compress::ScorerOptions o;
  o.batch_rows = 64;
  return compress::Scorer(p.model, Matrix(distribute(p.xt, comm).local()), block_of(p.yt, comm), comm, o);
}

/// Checks what kept_neurons promises: ascending distinct indices of the original layer, one per
/// neuron of the compressed layer, and (for the strategies whose layers keep their biases) the
/// compressed layer's bias is the original bias at exactly those indices, at every depth.
/// `rounded`: the model was rounded to float32 (compare with the original's values rounded so).
void expect_kept_neurons_index_the_original(const nn::Mlp& original, const CompressedModel& m, bool biases_kept,
                                            const std::string& what, bool rounded = false) {
  const auto value = [&](double v) { return rounded ? static_cast<double>(static_cast<float>(v)) : v; };
  SCOPED_TRACE(what);
  ASSERT_EQ(static_cast<index_t>(m.layers.size()), original.num_hidden());
  for (index_t l = 0; l < original.num_hidden(); ++l) {
    const std::vector<index_t>& c = m.layers[uz(l)].kept_neurons;
    ASSERT_EQ(static_cast<index_t>(c.size()), m.model.hidden(l).d_out()) << "layer " << l + 1;
    EXPECT_EQ(static_cast<index_t>(c.size()), m.layers[uz(l)].kept);
    EXPECT_TRUE(std::is_sorted(c.begin(), c.end()));
    EXPECT_EQ(std::adjacent_find(c.begin(), c.end()), c.end());
    ASSERT_TRUE(c.empty() || (c.front() >= 0 && c.back() < original.hidden(l).d_out()));
    if (!biases_kept) continue;
    std::vector<double> expected;
    for (index_t j : c) expected.push_back(value(original.hidden(l).bias()[uz(j)]));
    EXPECT_EQ(m.model.hidden(l).bias(), expected) << "layer " << l + 1;
  }
  // The first layer keeps its columns: W_1(:, C_1) exactly.
  const Matrix w = original.hidden(0).weight();
  const Matrix wc = m.model.hidden(0).weight();
  if (m.model.hidden(0).factor_count() != 1) return;
  for (std::size_t j = 0; j < m.layers[0].kept_neurons.size(); ++j) {
    for (index_t i = 0; i < w.rows(); ++i) {
      ASSERT_EQ(wc(i, static_cast<index_t>(j)), value(w(i, m.layers[0].kept_neurons[j])));
    }
  }
}

TEST(KeptNeurons, EveryStrategyRecordsIndicesOfTheOriginalLayer) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(201, true);
  const auto xc = distribute(p.xc, comm);
  for (const char* strategy : {"greedy", "random", "magnitude"}) {
    for (const LayerRule rule : {LayerRule{RankRule::fraction, 0.4}, LayerRule{RankRule::k, 7}}) {
      const CompressedModel m = compress::compress_model(p.model, xc, strategy, rule);
      expect_kept_neurons_index_the_original(p.model, m, true, strategy);
      // Only the middle layer: the others keep every index.
      const std::vector<index_t> middle = {1};
      const CompressedModel one = compress::compress_model(p.model, xc, strategy, rule, middle);
      expect_kept_neurons_index_the_original(p.model, one, true, "middle layer only");
      EXPECT_EQ(one.layers[0].kept_neurons.size(), 24U);
      EXPECT_EQ(one.layers[2].kept_neurons.size(), 16U);
    }
  }
  // magnitude folds nothing: every weight is the original's at (kept inputs, kept outputs).
  const CompressedModel m = compress::compress_model(p.model, xc, "magnitude", LayerRule{RankRule::fraction, 0.5});
  for (index_t l = 1; l <= p.model.num_hidden(); ++l) {
    const Matrix w = p.model.layer(l).weight();
    const Matrix wc = m.model.layer(l).weight();
    const auto& rows = m.layers[uz(l - 1)].kept_neurons;
    for (index_t j = 0; j < wc.cols(); ++j) {
      const index_t oj = l < p.model.num_hidden() ? m.layers[uz(l)].kept_neurons[uz(j)] : j;
      for (std::size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(wc(static_cast<index_t>(i), j), w(rows[i], oj));
    }
  }
  // svd keeps every neuron.
  const CompressedModel s = compress::compress_model(p.model, xc, "svd", LayerRule{RankRule::rank, 3});
  for (index_t l = 0; l < p.model.num_hidden(); ++l)
    EXPECT_EQ(static_cast<index_t>(s.layers[uz(l)].kept_neurons.size()), p.model.hidden(l).d_out());
  expect_kept_neurons_index_the_original(p.model, s, true, "svd");
}

TEST(KeptNeurons, EnginePlansRecordIndicesOfTheOriginalLayer) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(211, true);
  for (const char* name : {"id", "corrected"}) {
    const auto policy = compress::make_policy(name);
    compress::CompressionEngine engine(p.model, distribute(p.xc, comm));
    const std::vector<PointPlan> plans = {
        compress::kept_plan(policy, std::vector<index_t>{9, 5, 11}),
        compress::uniform_plan(policy, 3, std::vector<index_t>{2}, LayerRule{RankRule::eps, 0.05}),
        compress::uniform_plan(policy, 3, {}, LayerRule{RankRule::fraction, 0.3}),
    };
    for (const CompressedModel& m : engine.compress(plans))
      expect_kept_neurons_index_the_original(p.model, m, true, name);
  }
}

/// ||P^ - P(:, C)||_F / ||P(:, C)||_F of the next layer's pre-activation, straight from the definition.
std::vector<double> direct_errors(const nn::Mlp& original, const CompressedModel& m, const Matrix& x) {
  std::vector<double> out;
  const index_t L = original.num_hidden();
  for (index_t l = 0; l < L; ++l) {
    const auto pre = [&](const nn::Mlp& net) {
      Matrix pa = la::matmul(net.hidden_activations(x, l), net.layer(l + 1).weight());
      for (index_t j = 0; j < pa.cols(); ++j)
        for (index_t i = 0; i < pa.rows(); ++i)
          pa(i, j) += net.layer(l + 1).has_bias() ? net.layer(l + 1).bias()[uz(j)] : 0.0;
      return pa;
    };
    const Matrix po = pre(original);
    const Matrix pc = pre(m.model);
    double num = 0.0;
    double den = 0.0;
    for (index_t j = 0; j < pc.cols(); ++j) {
      const index_t oj = l + 1 < L ? m.layers[uz(l + 1)].kept_neurons[uz(j)] : j;
      for (index_t i = 0; i < pc.rows(); ++i) {
        num += (pc(i, j) - po(i, oj)) * (pc(i, j) - po(i, oj));
        den += po(i, oj) * po(i, oj);
      }
    }
    out.push_back(std::sqrt(num / den));
  }
  return out;
}

TEST(SensitivityTable, MatchesTheDefinitionOnTheWholeCompressionSet) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(221, true);
  const auto xc = distribute(p.xc, comm);
  for (const std::string strategy : {"greedy", "magnitude", "svd"}) {
    const LayerRule rule = strategy == "svd" ? LayerRule{RankRule::rank, 4} : LayerRule{RankRule::fraction, 0.5};
    const CompressedModel m = compress::compress_model(p.model, xc, strategy, rule);
    const std::vector<double> expected = direct_errors(p.model, m, p.xc);
    for (const index_t batch : {7, 1024}) {
      const compress::SensitivityTable t = compress::sensitivity_table(p.model, m, xc, batch);
      ASSERT_EQ(t.layers.size(), 3U);
      EXPECT_EQ(t.rows, 150);
      EXPECT_EQ(t.params_before, p.model.parameter_count());
      EXPECT_EQ(t.params_after, m.model.parameter_count());
      for (index_t l = 0; l < 3; ++l) {
        const auto& s = t.layers[uz(l)];
        EXPECT_EQ(s.layer, l + 1);
        EXPECT_EQ(s.width_before, p.model.hidden(l).d_out());
        EXPECT_EQ(s.width_after, m.model.hidden(l).d_out());
        EXPECT_EQ(s.params_after, m.model.hidden(l).parameter_count());
        EXPECT_GT(s.relative_error, 0.0);
        EXPECT_NEAR(s.relative_error, expected[uz(l)], 1e3 * eps * std::max(1.0, expected[uz(l)]))
            << strategy << " layer " << l + 1 << " batch " << batch;
      }
    }
  }
}

TEST(SensitivityTable, LayersBeforeTheOnlyCompressedOneHaveNoError) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(231, true);
  const auto xc = distribute(p.xc, comm);
  const std::vector<index_t> last = {2};
  const CompressedModel m = compress::compress_model(p.model, xc, "greedy", LayerRule{RankRule::fraction, 0.5}, last);
  const compress::SensitivityTable t = compress::sensitivity_table(p.model, m, xc);
  // Rows 1 and 2 compare the same products (the third layer keeps W_3(:, C) exactly).
  EXPECT_LE(t.layers[0].relative_error, 10 * eps);
  EXPECT_LE(t.layers[1].relative_error, 10 * eps);
  EXPECT_GT(t.layers[2].relative_error, 1e-6);
  // The uncompressed model: every error is zero.
  const CompressedModel same = compress::compress_model(p.model, xc, "greedy", LayerRule{RankRule::fraction, 1.0});
  for (const auto& s : compress::sensitivity_table(p.model, same, xc).layers) EXPECT_LE(s.relative_error, 1e-12);
}

TEST(ParetoStudy, KeptModelsAreTheModelsOfTheRows) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(241, true);
  compress::ParetoOptions o;
  o.strategies = {"greedy", "svd", "budget-corrected"};
  o.budgets = {0.15, 0.4};
  o.eps_grid = {0.01, 0.05, 0.2, 1.0};
  o.svd_grid = {0.1, 0.3, 0.6};
  o.keep_models = true;
  o.wave_size = 2;  // several waves: models are released between them
  const compress::Scorer scorer = validation_scorer(p, comm);
  const compress::Scorer test = test_scorer(p, comm);
  const compress::ParetoResult r = compress::run_pareto(p.model, distribute(p.xc, comm), scorer, test, o);
  ASSERT_FALSE(r.rows.empty());
  for (const auto& row : r.rows) {
    SCOPED_TRACE(row.strategy + " " + std::to_string(row.budget));
    ASSERT_NE(row.model.network, nullptr);
    const CompressedModel m{*row.model.network, {}, {}, nullptr, {}};
    EXPECT_EQ(m.model.parameter_count(), row.model.params);
    const auto counts = test.score(std::span<const CompressedModel>(&m, 1)).front();
    EXPECT_EQ(counts.correct, row.model.test.correct);
    EXPECT_EQ(scorer.score(std::span<const CompressedModel>(&m, 1)).front().correct, row.model.validation.correct);
  }
  // Without keep_models no model is held.
  o.keep_models = false;
  for (const auto& row : compress::run_pareto(p.model, distribute(p.xc, comm), scorer, test, o).rows)
    EXPECT_EQ(row.model.network, nullptr);
}

bool float32_exact(const nn::Mlp& m) {
  for (index_t l = 0; l < m.num_layers(); ++l) {
    for (const Matrix& f : m.layer(l).factors())
      for (index_t i = 0; i < f.size(); ++i)
        if (static_cast<double>(static_cast<float>(f.values()[uz(i)])) != f.values()[uz(i)]) return false;
    for (double b : m.layer(l).bias())
      if (static_cast<double>(static_cast<float>(b)) != b) return false;
  }
  return true;
}

TEST(CompressNetwork, BudgetModeChoosesTheBestCandidateOnValidationAndMeetsTheBudget) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(251, true);
  const compress::Scorer scorer = validation_scorer(p, comm);
  const compress::Scorer test = test_scorer(p, comm);
  const auto xc = distribute(p.xc, comm);
  compress::CompressRequest r;
  r.budget = 0.3;
  r.budget_strategies = {"greedy-fraction", "budget", "budget-corrected"};
  r.pareto.svd_grid = {0.1, 0.2, 0.4, 0.8};
  const compress::CompressedNetwork n = compress::compress_network(p.model, xc, scorer, test, r);
  EXPECT_EQ(n.mode, "budget");
  ASSERT_EQ(n.candidates.size(), 3U);
  const auto budget = static_cast<std::int64_t>(0.3 * static_cast<double>(p.model.parameter_count()));
  EXPECT_LE(n.compressed.model.parameter_count(), budget);
  std::int64_t best = -1;
  for (const auto& c : n.candidates) best = std::max(best, c.model.validation.correct);
  const auto chosen = std::find_if(n.candidates.begin(), n.candidates.end(),
                                   [&](const compress::ParetoRow& c) { return c.strategy == n.strategy; });
  ASSERT_NE(chosen, n.candidates.end());
  EXPECT_EQ(chosen->model.validation.correct, best);
  EXPECT_EQ(chosen->model.params, n.compressed.model.parameter_count());
  // The returned model is the float32 one, and its scores are its own.
  EXPECT_TRUE(float32_exact(n.compressed.model));
  const CompressedModel direct{n.compressed.model, n.compressed.layers, {}, nullptr, {}};
  EXPECT_EQ(test.score(std::span<const CompressedModel>(&direct, 1)).front().correct, n.test.correct);
  EXPECT_EQ(scorer.score(std::span<const CompressedModel>(&direct, 1)).front().correct, n.validation.correct);
  expect_kept_neurons_index_the_original(p.model, n.compressed, true, "budget mode", true);
  // A budget nothing fits is one clear error.
  r.budget = 1e-6;
  EXPECT_THROW((void)compress::compress_network(p.model, xc, scorer, test, r), Error);
}

TEST(CompressNetwork, PointModeIsTheStrategysModelAndTheMetadataRecordsIt) {
  const auto comm = dist::Comm::world();
  const Problem p = selection_problem(261, true);
  const compress::Scorer scorer = validation_scorer(p, comm);
  const compress::Scorer test = test_scorer(p, comm);
  const auto xc = distribute(p.xc, comm);
  compress::CompressRequest r;
  r.strategy = "greedy";
  r.rule = LayerRule{RankRule::k, 6};
  r.round_to = std::nullopt;
  const compress::CompressedNetwork n = compress::compress_network(p.model, xc, scorer, test, r);
  const CompressedModel m = compress::compress_model(p.model, xc, "greedy", r.rule);
  EXPECT_TRUE(identical_models(n.compressed.model, m.model));
  EXPECT_EQ(n.setting, "k=6");
  compress::CompressionProvenance prov;
  prov.original_sha256 = "abc";
  prov.compression_size = 150;
  prov.validation_size = 240;
  prov.seed = 9;
  const nn::Metadata meta = compress::compression_metadata(p.model, n, r, prov);
  const auto kept = nlohmann::json::parse(meta.at("idprune.kept_neurons"));
  ASSERT_EQ(kept.size(), 3U);
  for (index_t l = 0; l < 3; ++l)
    EXPECT_EQ(kept[uz(l)].get<std::vector<index_t>>(), m.layers[uz(l)].kept_neurons) << "layer " << l + 1;
  EXPECT_EQ(meta.at("idprune.strategy"), "greedy");
  EXPECT_EQ(meta.at("idprune.rule"), "k");
  EXPECT_EQ(meta.at("idprune.value"), "6");
  EXPECT_EQ(meta.at("idprune.original_sha256"), "abc");
  EXPECT_EQ(meta.at("idprune.seed"), "9");
  EXPECT_EQ(meta.at("idprune.compression_size"), "150");
  EXPECT_EQ(std::stod(meta.at("idprune.test_accuracy")), n.test.accuracy());
  EXPECT_EQ(std::stod(meta.at("idprune.validation_accuracy")), n.validation.accuracy());
  EXPECT_EQ(meta.count("idprune.budget"), 0U);
  // corrected: greedy's selection, T fitted to the original activations; the same kept neurons at
  // the first layer (its activations are the original's there).
  r.strategy = "corrected";
  const compress::CompressedNetwork c = compress::compress_network(p.model, xc, scorer, test, r);
  EXPECT_EQ(c.compressed.layers[0].kept_neurons, m.layers[0].kept_neurons);
  // Refused before any work: an unknown strategy, a rule the strategy does not take.
  r.strategy = "joint";
  EXPECT_THROW(compress::check_compress_request(r), Error);
  r.strategy = "greedy";
  r.rule = LayerRule{RankRule::rank, 3};
  EXPECT_THROW(compress::check_compress_request(r), Error);
  r.rule = LayerRule{RankRule::k, 3};
  r.layers = {5};
  EXPECT_THROW(compress::check_compress_request(r, &p.model), Error);
}

}  // namespace
}  // namespace idprune::test
