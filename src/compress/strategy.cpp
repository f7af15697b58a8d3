#include "idprune/compress/strategy.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "idprune/la/error.hpp"

namespace idprune::compress {

namespace {
using R = RankRule;

const std::vector<StrategyInfo>& registry() {
  // clang-format off
  static const std::vector<StrategyInfo> list = {
      // name, family, policy, allocation, pareto rule, description, sweep rules, complete factorizations,
      // counts from greedy
      {"greedy", Family::sweep, "id", Allocation::rule, R::eps,
       "ID of each layer's activations in turn, T folded into the next layer (the reference text)",
       {R::eps, R::k, R::fraction}},
      {"greedy-fraction", Family::sweep, "id", Allocation::rule, R::fraction,
       "greedy with every layer keeping the same fraction of its neurons", {}},
      {"magnitude", Family::sweep, "magnitude", Allocation::rule, R::eps,
       "the neurons with the largest outgoing weight norms, no correction (eps: greedy's counts)",
       {R::eps, R::k, R::fraction}, false, true},
      {"random", Family::sweep, "random", Allocation::rule, R::eps,
       "seeded random neurons with a least-squares correction (eps: greedy's counts)",
       {R::eps, R::k, R::fraction}, false, true},
      {"merging", Family::sweep, "merging", Allocation::rule, R::fraction,
       "neuron merging (Kim et al. 2020): l1-norm pruning, pruned neurons merged into their most similar "
       "kept neuron; data-free",
       {R::k, R::fraction}},
      {"output", Family::sweep, "output", Allocation::rule, R::fraction,
       "neurons chosen greedily to preserve the next layer's input Z W_next (forward selection on the Gram "
       "matrix), least-squares T",
       {R::k, R::fraction}},
      {"flap", Family::sweep, "flap", Allocation::rule, R::fraction,
       "FLAP (An et al. 2024) in every layer alike: the neurons of largest fluctuation Var(z_j) "
       "||W_next(j,:)||^2, no interpolation, the next bias compensated for the mean",
       {R::k, R::fraction}},
      {"svd", Family::sweep, "svd", Allocation::rule, R::fraction,
       "each layer's weight replaced by its rank-r truncated SVD U_r (S_r V_r^T)", {R::rank, R::fraction}},
      {"whitened-svd", Family::sweep, "whitened-svd", Allocation::rule, R::fraction,
       "activation-aware low rank (SVD-LLM/ASVD): each W replaced by the rank-r A B minimising "
       "||H W - H A B||_F on its inputs H", {R::rank, R::fraction}},
      {"obs", Family::sweep, "obs", Allocation::rule, R::fraction,
       "structured optimal brain surgeon (ZipLM/SlimGPT): neurons removed one at a time by the least "
       "increase of the next layer's output error, the remaining rows refitted", {R::k, R::fraction}},
      {"corrected", Family::sweep, "corrected", Allocation::rule, R::eps,
       "greedy's neurons, T fitted to the original network's activations (errors do not accumulate)",
       {R::eps, R::k, R::fraction}, true},
      {"spectrum", Family::sweep, "id", Allocation::spectrum, R::eps,
       "one relative tolerance tau on every layer's own CPQR spectrum (swept over tau)", {}, true},
      {"spectrum-corrected", Family::sweep, "corrected", Allocation::spectrum, R::eps,
       "spectrum with the corrected interpolation", {}, true},
      {"budget", Family::budget, "id", Allocation::budget, R::k,
       "a parameter budget allocated from the CPQR diagonals (no labels)", {}, true},
      {"budget-corrected", Family::budget, "corrected", Allocation::budget, R::k,
       "budget with the corrected interpolation", {}, true},
      {"budget-output", Family::budget, "output-corrected", Allocation::budget, R::k,
       "budget's allocation with output-aware neurons and the corrected interpolation", {}, true},
      {"flap-global", Family::budget, "flap", Allocation::flap, R::k,
       "FLAP (An et al. 2024): one global threshold on the per-layer standardised fluctuation scores "
       "until the budget, bias compensation",
       {}},
      {"hybrid", Family::budget, "hybrid", Allocation::hybrid, R::k,
       "budget-corrected's neurons with the first layer's kept columns factored (whitened low rank), "
       "the rank chosen on the validation split; --budget-kind params|flops", {}, true},
      {"hybrid-obs", Family::budget, "hybrid-obs", Allocation::hybrid, R::k,
       "hybrid with structured OBS's neurons (T still fitted to the original's activations)", {}, true},
      {"chee", Family::budget, "id", Allocation::chee, R::k,
       "Chee et al. (2022): shrink by 5% the layer with the least |r_kk/r_11| per parameter saved, "
       "until the budget",
       {}, true},
      {"tuned", Family::budget, "id", Allocation::tuned, R::k,
       "budget with per-layer error weights tuned on the validation split", {}, true},
      {"tuned-corrected", Family::budget, "corrected", Allocation::tuned, R::k,
       "tuned with the corrected interpolation", {}, true},
      {"tuned-output", Family::budget, "output-corrected", Allocation::tuned, R::k,
       "tuned with output-aware neurons and the corrected interpolation", {}, true},
      {"descent", Family::search, "id", Allocation::descent, R::k,
       "marginal-gain descent on the validation split: each step shrinks the layer that costs least "
       "validation loss per parameter",
       {}, true},
      {"descent-corrected", Family::search, "corrected", Allocation::descent, R::k,
       "descent with the corrected interpolation", {}, true},
      {"descent-output", Family::search, "output-corrected", Allocation::descent, R::k,
       "descent with output-aware neurons and the corrected interpolation", {}, true},
  };
  // clang-format on
  return list;
}

constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kAliases = {
    {{"joint", "descent"}, {"joint-corrected", "descent-corrected"}}};
}  // namespace

std::string_view to_string(Family family) {
  switch (family) {
    case Family::sweep:
      return "sweep";
    case Family::budget:
      return "budget";
    case Family::search:
      return "search";
  }
  return "?";
}

std::span<const StrategyInfo> strategies() { return registry(); }

std::string strategy_names(bool sweep_only) {
  std::string out;
  for (const auto& s : registry())
    if (!sweep_only || !s.sweep_rules.empty()) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

const StrategyInfo& strategy(std::string_view name) {
  for (const auto& [alias, target] : kAliases)
    if (name == alias) name = target;
  for (const auto& s : registry())
    if (s.name == name) return s;
  throw Error(detail::concat("unknown strategy '", name, "' (known: ", strategy_names(), ")"));
}

std::string strategy_help(bool sweep_only) {
  std::string out;
  for (const auto& s : registry()) {
    if (sweep_only && s.sweep_rules.empty()) continue;
    std::array<char, 64> head{};
    std::snprintf(head.data(), head.size(), "  %-19s %-7s ", std::string(s.name).c_str(),
                  std::string(to_string(s.family)).c_str());
    out += head.data() + std::string(s.description) + "\n";
  }
  return out;
}

std::shared_ptr<const LayerPolicy> strategy_policy(const StrategyInfo& info, const PolicyOptions& options) {
  return make_policy(info.policy, options);
}

namespace {
bool has_eps(const PointPlan& p) {
  return std::any_of(p.layers.begin(), p.layers.end(), [](const auto& r) { return r && r->rule == RankRule::eps; });
}

std::vector<PointPlan> as_id_plans(std::span<const PointPlan> plans, const std::shared_ptr<const LayerPolicy>& id) {
  std::vector<PointPlan> out;
  for (const auto& p : plans)
    if (has_eps(p)) out.push_back(PointPlan{id, p.layers});
  return out;
}
}  // namespace

void prepare_points(CompressionEngine& engine, const StrategyInfo& info, std::span<const PointPlan> plans) {
  if (!info.counts_from_greedy) {
    engine.prepare(plans);
    return;
  }
  std::vector<PointPlan> direct;
  for (const auto& p : plans)
    if (!has_eps(p)) direct.push_back(p);
  engine.prepare(direct);
  engine.prepare(as_id_plans(plans, make_policy("id")));
}

std::vector<CompressedModel> compress_points(CompressionEngine& engine, const StrategyInfo& info,
                                             std::span<const PointPlan> plans) {
  if (!info.counts_from_greedy) return engine.compress(plans);
  std::vector<PointPlan> resolved(plans.begin(), plans.end());
  const std::vector<PointPlan> id_plans = as_id_plans(plans, make_policy("id"));
  if (!id_plans.empty()) {
    const std::vector<CompressedModel> greedy = engine.compress(id_plans);
    std::size_t i = 0;
    for (auto& plan : resolved) {
      if (!has_eps(plan)) continue;
      for (std::size_t l = 0; l < plan.layers.size(); ++l)
        if (plan.layers[l] && plan.layers[l]->rule == RankRule::eps)
          plan.layers[l] = LayerRule{RankRule::k, static_cast<double>(greedy[i].layers[l].kept)};
      ++i;
    }
  }
  // Magnitude and random report no tolerance: their counts are greedy's, their rule k.
  return engine.compress(resolved);
}

CompressedModel compress_model(const nn::Mlp& model, const dist::DistMatrix& compression_set, std::string_view name,
                               const LayerRule& rule, std::span<const index_t> layers, const EngineOptions& engine,
                               const PolicyOptions& policy) {
  const StrategyInfo& info = strategy(name);
  require(info.family == Family::sweep && info.allocation == Allocation::rule, "compress_model: ", info.name,
          " is not a one-rule strategy");
  EngineOptions o = engine;
  o.complete_factorizations = o.complete_factorizations || info.complete_factorizations;
  CompressionEngine e(model, compression_set, o);
  const std::vector<PointPlan> plans = {uniform_plan(strategy_policy(info, policy), model.num_hidden(), layers, rule)};
  return std::move(compress_points(e, info, plans).front());
}

}  // namespace idprune::compress
