#include "idprune/compress/hybrid.hpp"

#include <algorithm>
#include <cmath>

#include "idprune/compress/policy.hpp"

namespace idprune::compress {

namespace {
using la::uz;

/// The shape allocate_budget counts for a rank-r first layer: its d_0 x k_1 weight becomes
/// r x k_1 (the d_0 r of the first factor are fixed and taken off the budget by the caller);
/// without biases when FLOPs are counted (then a budget of F FLOPs is F / 2 weights).
nn::Mlp shape_model(const nn::Mlp& original, index_t first_inputs, bool biases) {
  const auto dense = [&](const nn::DenseLayer& d, index_t inputs) {
    return nn::DenseLayer(la::Matrix(inputs, d.d_out()), biases ? d.bias() : std::vector<double>{}, d.activation());
  };
  std::vector<nn::DenseLayer> hidden;
  for (index_t l = 0; l < original.num_hidden(); ++l)
    hidden.push_back(dense(original.hidden(l), l == 0 ? first_inputs : original.hidden(l).d_in()));
  return nn::Mlp(std::move(hidden), dense(original.classifier(), original.classifier().d_in()));
}
}  // namespace

std::int64_t model_cost(const nn::Mlp& model, BudgetKind kind) {
  return kind == BudgetKind::parameters ? static_cast<std::int64_t>(model.parameter_count())
                                        : std::llround(model.flops_per_sample());
}

std::vector<HybridChoice> hybrid_allocation(CompressionEngine& engine, const Scorer& validation,
                                            std::span<const std::int64_t> budgets, const HybridOptions& options) {
  require(options.budget.iterations >= 1, "hybrid: budget iterations=", options.budget.iterations, " (needs >= 1)");
  require(!options.first_layer_ranks.empty(), "hybrid: no first-layer rank to try");
  for (index_t r : options.first_layer_ranks) require(r >= 0, "hybrid: first-layer rank ", r, " (needs >= 0)");
  const nn::Mlp& original = engine.original();
  const index_t L = original.num_hidden();
  const index_t d0 = original.input_dim();
  const bool flops = options.kind == BudgetKind::flops;
  // The intercepts' biases cost parameters, not FLOPs (biases are free when FLOPs are counted).
  const bool intercepts = options.intercept && !flops;
  std::vector<index_t> full;
  for (index_t l = 0; l < L; ++l) full.push_back(original.hidden(l).d_out());
  const std::vector<double> weights(uz(L), 1.0);
  const std::vector<index_t> ones(uz(L), 1);

  struct Candidate {
    std::size_t budget;
    index_t rank;
    std::vector<index_t> widths;
  };
  std::vector<Candidate> cands;
  for (const index_t r : options.first_layer_ranks) {
    const nn::Mlp shape = shape_model(original, r > 0 ? r : d0, !flops);
    const std::shared_ptr<const LayerPolicy> policy =
        make_hybrid_policy(r > 0 ? std::vector<index_t>{r} : std::vector<index_t>{}, options.selection,
                           options.obs_damping, options.intercept);
    // The budget left for the counted shape; budgets too small for one neuron per layer are skipped.
    std::vector<std::size_t> open;
    std::vector<std::int64_t> left;
    for (std::size_t b = 0; b < budgets.size(); ++b) {
      const std::int64_t rest = (flops ? budgets[b] / 2 : budgets[b]) - (r > 0 ? d0 * r : 0);
      if (parameter_count_with_widths(shape, ones, intercepts) > rest) continue;
      open.push_back(b);
      left.push_back(rest);
    }
    std::vector<std::vector<index_t>> k(open.size(), full);
    std::vector<char> done(open.size(), 0);
    // The budget strategy's fixed-point iteration (allocation.hpp), with this rank's layer costs.
    for (int it = 0; it < options.budget.iterations; ++it) {
      std::vector<std::size_t> moving;
      std::vector<PointPlan> plans;
      for (std::size_t i = 0; i < open.size(); ++i)
        if (done[i] == 0) {
          moving.push_back(i);
          plans.push_back(kept_plan(policy, k[i]));
        }
      if (moving.empty()) break;
      const auto fs = engine.factorizations(plans);
      for (std::size_t j = 0; j < moving.size(); ++j) {
        const std::size_t i = moving[j];
        std::vector<std::vector<double>> tails;
        for (const auto& f : fs[j]) tails.push_back(relative_tail(f));
        std::vector<index_t> next = allocate_budget(shape, tails, weights, left[i], intercepts);
        if (next == k[i]) done[i] = 1;
        k[i] = std::move(next);
      }
    }
    for (std::size_t i = 0; i < open.size(); ++i) cands.push_back(Candidate{open[i], r, std::move(k[i])});
  }

  std::vector<PointPlan> plans;
  for (const auto& c : cands)
    plans.push_back(kept_plan(make_hybrid_policy(c.rank > 0 ? std::vector<index_t>{c.rank} : std::vector<index_t>{},
                                                 options.selection, options.obs_damping, options.intercept),
                              c.widths));
  const std::vector<CompressedModel> models = engine.compress(plans);
  const std::vector<Scores> scores = validation.score(models);
  std::vector<HybridChoice> out(budgets.size());
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const std::int64_t cost = model_cost(models[i].model, options.kind);
    HybridChoice& best = out[cands[i].budget];
    if (cost > budgets[cands[i].budget]) continue;  // never: the allocation counts an upper bound
    const bool better = best.widths.empty() || scores[i].correct > best.validation.correct ||
                        (scores[i].correct == best.validation.correct && cost < best.cost);
    if (!better) continue;
    best.widths = cands[i].widths;
    best.ranks.assign(uz(L), 0);
    best.ranks[0] = cands[i].rank;
    best.validation = scores[i];
    best.cost = cost;
  }
  return out;
}

}  // namespace idprune::compress
