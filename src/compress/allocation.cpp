#include "idprune/compress/allocation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "idprune/compress/timing.hpp"

namespace idprune::compress {

namespace {
using la::uz;

/// Parameters saved by removing one neuron of hidden layer l (its column of W_l, its bias entry,
/// its row of W_{l+1}).
std::int64_t neuron_cost(const nn::Mlp& original, std::span<const index_t> k, index_t l, bool intercepts = false) {
  const index_t L = original.num_hidden();
  const index_t before = l == 0 ? original.input_dim() : k[uz(l - 1)];
  const index_t after = l + 1 < L ? k[uz(l + 1)] : original.num_classes();
  return before + after + (original.hidden(l).has_bias() || (intercepts && l > 0) ? 1 : 0);
}

std::vector<index_t> widths_of(const CompressedModel& m) {
  std::vector<index_t> k;
  for (const auto& o : m.layers) k.push_back(o.kept);
  return k;
}

double objective_value(const Scores& s, Objective o) {
  return o == Objective::cross_entropy ? s.cross_entropy() : 1.0 - s.accuracy();
}
}  // namespace

std::vector<double> relative_tail(const la::CpqrResult& f) {
  const index_t r = f.rank;
  const auto n = static_cast<index_t>(f.pivots.size());
  require(f.r.rows() == r && f.r.cols() == n, "relative_tail: R is ", f.r.rows(), " x ", f.r.cols(), " for rank ", r,
          " and ", n, " columns");
  std::vector<double> tail(uz(r + 1), 0.0);
  tail[uz(r)] = f.residual_fro * f.residual_fro;
  for (index_t i = r - 1; i >= 0; --i) {
    double row = 0.0;
    for (index_t j = i; j < n; ++j) row += f.r(i, j) * f.r(i, j);
    tail[uz(i)] = tail[uz(i + 1)] + row;
  }
  const double total = tail.front();
  for (double& t : tail) t = total > 0.0 ? t / total : 0.0;
  return tail;
}

std::vector<index_t> allocate_budget(const nn::Mlp& original, std::span<const std::vector<double>> tails,
                                     std::span<const double> weights, std::int64_t budget, bool intercepts) {
  const index_t L = original.num_hidden();
  require(static_cast<index_t>(tails.size()) == L && static_cast<index_t>(weights.size()) == L,
          "allocate_budget: ", tails.size(), " tails and ", weights.size(), " weights for ", L, " hidden layers");
  std::vector<index_t> k(uz(L));
  std::vector<index_t> cap(uz(L));
  for (index_t l = 0; l < L; ++l) {
    require(!tails[uz(l)].empty(), "allocate_budget: empty tail for layer ", l + 1);
    cap[uz(l)] = std::clamp<index_t>(static_cast<index_t>(tails[uz(l)].size()) - 1, 1, original.hidden(l).d_out());
    k[uz(l)] = cap[uz(l)];
  }
  const std::vector<index_t> ones(uz(L), 1);
  const std::int64_t floor_params = parameter_count_with_widths(original, ones, intercepts);
  require(floor_params <= budget, "allocate_budget: a budget of ", budget,
          " parameters is below the smallest network (one neuron per layer: ", floor_params, ")");
  // e_l(k): the estimated error of layer l at k kept (0 beyond the tail: exact there).
  const auto err = [&](index_t l, index_t kk) {
    const auto& t = tails[uz(l)];
    return weights[uz(l)] * (uz(kk) < t.size() ? t[uz(kk)] : 0.0);
  };
  std::int64_t params = parameter_count_with_widths(original, k, intercepts);
  while (params > budget) {
    index_t best = -1;
    double best_ratio = std::numeric_limits<double>::infinity();
    for (index_t l = 0; l < L; ++l) {
      if (k[uz(l)] <= 1) continue;
      const double added = err(l, k[uz(l)] - 1) - err(l, k[uz(l)]);
      const double ratio = added / static_cast<double>(neuron_cost(original, k, l, intercepts));
      if (ratio < best_ratio) {
        best_ratio = ratio;
        best = l;
      }
    }
    require(best >= 0, "allocate_budget: internal error, no layer left to shrink");
    params -= neuron_cost(original, k, best, intercepts);
    --k[uz(best)];
  }
  // Add back what still fits: the largest error reduction per parameter first.
  while (true) {
    index_t best = -1;
    double best_ratio = -1.0;
    for (index_t l = 0; l < L; ++l) {
      if (k[uz(l)] >= cap[uz(l)]) continue;
      const std::int64_t cost = neuron_cost(original, k, l, intercepts);
      if (params + cost > budget) continue;
      const double ratio = (err(l, k[uz(l)]) - err(l, k[uz(l)] + 1)) / static_cast<double>(cost);
      if (ratio > best_ratio) {
        best_ratio = ratio;
        best = l;
      }
    }
    if (best < 0) break;
    params += neuron_cost(original, k, best, intercepts);
    ++k[uz(best)];
  }
  return k;
}

std::vector<std::vector<index_t>> budget_widths(CompressionEngine& engine,
                                                const std::shared_ptr<const LayerPolicy>& policy,
                                                std::span<const std::int64_t> budgets, const BudgetOptions& options) {
  require(options.iterations >= 1, "budget_widths: iterations=", options.iterations, " (needs >= 1)");
  const nn::Mlp& original = engine.original();
  const index_t L = original.num_hidden();
  std::vector<index_t> full;
  for (index_t l = 0; l < L; ++l) full.push_back(original.hidden(l).d_out());
  std::vector<std::vector<index_t>> k(budgets.size(), full);
  std::vector<char> done(budgets.size(), 0);
  const std::vector<double> weights(uz(L), 1.0);
  for (int it = 0; it < options.iterations; ++it) {
    // One batch for every budget still moving: their factorizations run as parallel tasks.
    std::vector<std::size_t> open;
    std::vector<PointPlan> plans;
    for (std::size_t b = 0; b < budgets.size(); ++b)
      if (done[b] == 0) {
        open.push_back(b);
        plans.push_back(kept_plan(policy, k[b]));
      }
    if (open.empty()) break;
    const auto fs = engine.factorizations(plans);
    for (std::size_t i = 0; i < open.size(); ++i) {
      std::vector<std::vector<double>> tails;
      for (const auto& f : fs[i]) tails.push_back(relative_tail(f));
      std::vector<index_t> next = allocate_budget(original, tails, weights, budgets[open[i]], policy->adds_biases());
      if (next == k[open[i]]) done[open[i]] = 1;
      k[open[i]] = std::move(next);
    }
  }
  return k;
}

std::vector<index_t> budget_widths(CompressionEngine& engine, const std::shared_ptr<const LayerPolicy>& policy,
                                   std::int64_t budget, const BudgetOptions& options) {
  const std::vector<std::int64_t> one = {budget};
  return budget_widths(engine, policy, one, options).front();
}

std::vector<std::vector<index_t>> tuned_budget_widths(CompressionEngine& engine,
                                                      const std::shared_ptr<const LayerPolicy>& policy,
                                                      const Scorer& validation, std::span<const std::int64_t> budgets,
                                                      const BudgetOptions& budget, const TuneOptions& options) {
  require(options.rounds >= 0, "tuned_budget_widths: rounds=", options.rounds, " (needs >= 0)");
  require(options.factor > 1.0, "tuned_budget_widths: factor=", options.factor, " (needs > 1)");
  const nn::Mlp& original = engine.original();
  const index_t L = original.num_hidden();
  const std::size_t nb = budgets.size();
  std::vector<std::vector<index_t>> k = budget_widths(engine, policy, budgets, budget);
  std::vector<std::vector<double>> w(nb, std::vector<double>(uz(L), 1.0));
  std::vector<std::vector<std::vector<double>>> tails(nb);
  std::vector<double> score(nb, 0.0);
  const auto refresh = [&](const std::vector<std::size_t>& which) {
    // Tails of the accepted allocations (their own upstream compression) and their scores.
    std::vector<PointPlan> plans;
    for (std::size_t b : which) plans.push_back(kept_plan(policy, k[b]));
    const auto fs = engine.factorizations(plans);
    const auto scores = validation.score(engine.compress(plans));
    for (std::size_t i = 0; i < which.size(); ++i) {
      tails[which[i]].clear();
      for (const auto& f : fs[i]) tails[which[i]].push_back(relative_tail(f));
      score[which[i]] = objective_value(scores[i], options.objective);
    }
  };
  std::vector<std::size_t> all(nb);
  for (std::size_t b = 0; b < nb; ++b) all[b] = b;
  refresh(all);
  double factor = options.factor;
  for (int round = 0; round < options.rounds; ++round) {
    struct Candidate {
      std::size_t budget;
      std::vector<double> weights;
      std::vector<index_t> kept;
    };
    std::vector<Candidate> cands;
    for (std::size_t b = 0; b < nb; ++b)
      for (index_t l = 0; l < L; ++l)
        for (const double s : {factor, 1.0 / factor}) {
          std::vector<double> wl = w[b];
          wl[uz(l)] *= s;
          std::vector<index_t> kk = allocate_budget(original, tails[b], wl, budgets[b], policy->adds_biases());
          if (kk == k[b] || std::any_of(cands.begin(), cands.end(),
                                        [&](const Candidate& c) { return c.budget == b && c.kept == kk; }))
            continue;
          cands.push_back(Candidate{b, std::move(wl), std::move(kk)});
        }
    if (cands.empty()) break;
    std::vector<PointPlan> plans;
    for (const auto& c : cands) plans.push_back(kept_plan(policy, c.kept));
    const auto scores = validation.score(engine.compress(plans));
    std::vector<std::ptrdiff_t> best(nb, -1);
    std::vector<double> best_value = score;
    for (std::size_t i = 0; i < cands.size(); ++i) {
      const double v = objective_value(scores[i], options.objective);
      if (v < best_value[cands[i].budget]) {
        best_value[cands[i].budget] = v;
        best[cands[i].budget] = static_cast<std::ptrdiff_t>(i);
      }
    }
    std::vector<std::size_t> moved;
    for (std::size_t b = 0; b < nb; ++b) {
      if (best[b] < 0) continue;
      Candidate& c = cands[static_cast<std::size_t>(best[b])];
      w[b] = std::move(c.weights);
      k[b] = std::move(c.kept);
      moved.push_back(b);
    }
    if (!moved.empty()) refresh(moved);
    factor = std::sqrt(factor);
  }
  return k;
}

PointPlan spectrum_plan(CompressionEngine& engine, const std::shared_ptr<const LayerPolicy>& policy, double tau) {
  require(tau >= 0.0 && std::isfinite(tau), "spectrum_plan: tau=", tau, " (needs a finite value >= 0)");
  PointPlan p;
  p.policy = policy;
  for (index_t l = 0; l < engine.original().num_hidden(); ++l)
    p.layers.emplace_back(LayerRule{RankRule::eps, tau * engine.next_norm(l)});
  return p;
}

std::string_view to_string(Objective objective) {
  return objective == Objective::cross_entropy ? "cross-entropy" : "error-rate";
}

Objective parse_objective(std::string_view name) {
  if (name == "cross-entropy" || name == "ce") return Objective::cross_entropy;
  if (name == "error-rate" || name == "accuracy") return Objective::error_rate;
  throw Error(detail::concat("parse_objective: '", name, "' is not one of cross-entropy, error-rate"));
}

std::vector<SearchPoint> validation_descent(CompressionEngine& engine, const std::shared_ptr<const LayerPolicy>& policy,
                                            const Scorer& validation, const DescentOptions& options,
                                            const std::function<void(const SearchPoint&)>& on_step) {
  require(options.step > 0.0 && options.step < 1.0, "validation_descent: step=", options.step, " outside (0, 1)");
  require(options.max_shrink > 0.0 && options.max_shrink < 1.0, "validation_descent: max_shrink=", options.max_shrink,
          " outside (0, 1)");
  require(options.stop_fraction > 0.0 && options.stop_fraction <= 1.0,
          "validation_descent: stop_fraction=", options.stop_fraction, " outside (0, 1]");
  const Stopwatch watch;
  const nn::Mlp& original = engine.original();
  const index_t L = original.num_hidden();
  const std::int64_t total = original.parameter_count();

  std::vector<index_t> start = options.start;
  if (start.empty())
    for (index_t l = 0; l < L; ++l) start.push_back(original.hidden(l).d_out());
  require(static_cast<index_t>(start.size()) == L, "validation_descent: ", start.size(), " starting widths for ", L,
          " hidden layers");

  const auto point_of = [&](const CompressedModel& m, const Scores& s, std::size_t step) {
    SearchPoint p;
    p.kept = widths_of(m);
    p.params = m.model.parameter_count();
    p.params_fraction = static_cast<double>(p.params) / static_cast<double>(total);
    p.validation = s;
    p.step = step;
    p.seconds = watch.seconds();
    return p;
  };

  std::vector<SearchPoint> path;
  {
    const std::vector<PointPlan> plans = {kept_plan(policy, start)};
    const auto models = engine.compress(plans);
    const auto scores = validation.score(models);
    path.push_back(point_of(models.front(), scores.front(), 0));
    if (on_step) on_step(path.back());
  }
  for (std::size_t step = 1; step <= options.max_steps; ++step) {
    const SearchPoint& cur = path.back();
    if (cur.params_fraction <= options.stop_fraction) break;
    std::vector<PointPlan> plans;
    std::vector<index_t> moved;
    for (index_t l = 0; l < L; ++l) {
      const index_t k = cur.kept[uz(l)];
      if (k <= 1) continue;
      std::vector<index_t> next = cur.kept;
      // Every candidate removes about step * params parameters (so candidates are compared at equal
      // cost), but at most max_shrink of the layer's neurons (moves stay local) and at least one.
      const double cost = static_cast<double>(neuron_cost(original, cur.kept, l, policy->adds_biases()));
      const auto wanted = static_cast<index_t>(std::ceil(options.step * static_cast<double>(cur.params) / cost));
      const auto cap = static_cast<index_t>(std::floor(options.max_shrink * static_cast<double>(k)));
      const index_t drop = std::max<index_t>(1, std::min(wanted, cap));
      next[uz(l)] = std::max<index_t>(1, k - drop);
      plans.push_back(kept_plan(policy, next));
      moved.push_back(l);
    }
    if (plans.empty()) break;
    const auto models = engine.compress(plans);
    const auto scores = validation.score(models);
    const double here = objective_value(cur.validation, options.objective);
    std::ptrdiff_t best = -1;
    double best_ratio = std::numeric_limits<double>::infinity();
    for (std::size_t c = 0; c < models.size(); ++c) {
      const std::int64_t saved = cur.params - models[c].model.parameter_count();
      if (saved <= 0) continue;
      const double ratio = (objective_value(scores[c], options.objective) - here) / static_cast<double>(saved);
      if (ratio < best_ratio) {
        best_ratio = ratio;
        best = static_cast<std::ptrdiff_t>(c);
      }
    }
    if (best < 0) break;
    path.push_back(point_of(models[uz(best)], scores[uz(best)], step));
    if (on_step) on_step(path.back());
  }
  return path;
}

std::ptrdiff_t best_within(std::span<const SearchPoint> path, std::int64_t budget) {
  std::ptrdiff_t best = -1;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const SearchPoint& p = path[i];
    if (p.params > budget) continue;
    if (best < 0) {
      best = static_cast<std::ptrdiff_t>(i);
      continue;
    }
    const SearchPoint& b = path[static_cast<std::size_t>(best)];
    if (p.validation.correct > b.validation.correct ||
        (p.validation.correct == b.validation.correct && p.params < b.params))
      best = static_cast<std::ptrdiff_t>(i);
  }
  return best;
}

}  // namespace idprune::compress
