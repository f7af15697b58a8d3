#include "idprune/compress/pareto.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "idprune/compress/chee_heuristic.hpp"
#include "idprune/compress/dense_shape.hpp"
#include "idprune/compress/flap.hpp"
#include "idprune/compress/timing.hpp"

namespace idprune::compress {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

std::vector<double> log_grid(double lo, double hi, int per_decade) {
  std::vector<double> g;
  const int steps = static_cast<int>(std::lround(std::log10(hi / lo) * per_decade));
  for (int i = 0; i <= steps; ++i) g.push_back(lo * std::pow(10.0, static_cast<double>(i) / per_decade));
  return g;
}

std::string setting(const char* name, double v) {
  std::ostringstream os;
  os << name << "=" << v;
  return os.str();
}

std::int64_t budget_params(double fraction, std::int64_t total) {
  // floor, with a guard against fraction * total landing a rounding error below an integer.
  const double x = fraction * static_cast<double>(total);
  return static_cast<std::int64_t>(std::floor(x + 1e-9 * std::max(1.0, x)));
}

/// A compressed model's metrics against the original (validation and test filled by the caller).
ParetoModel describe(const nn::Mlp& original, const CompressedModel& m, std::string label) {
  const ModelMetrics metrics = model_metrics(original, m);
  ParetoModel out;
  out.setting = std::move(label);
  out.params = metrics.params;
  out.params_fraction = metrics.params_fraction;
  out.kept_per_layer = metrics.kept_per_layer;
  out.ranks_per_layer = metrics.ranks_per_layer;
  for (const auto& o : m.layers) out.kept_neurons.push_back(o.kept_neurons);
  return out;
}

/// FLAP's global allocation for every parameter budget: scores from the original network's
/// activation moments and weights, one threshold on the standardised scores; every layer after the
/// first and the classifier counted with the bias the compensation gives them.
std::vector<std::vector<index_t>> flap_widths(CompressionEngine& engine, std::span<const std::int64_t> targets) {
  const nn::Mlp& model = engine.original();
  const index_t L = model.num_hidden();
  std::vector<std::vector<double>> scores;
  for (index_t l = 0; l < L; ++l)
    scores.push_back(flap_scores(engine.original_moments(l), model.layer(l + 1).weight()));
  FlapOptions o;
  o.shape = dense_shape(model);
  for (std::size_t l = 1; l < o.shape.bias.size(); ++l) o.shape.bias[l] = true;
  std::vector<std::vector<index_t>> out;
  for (const std::int64_t t : targets) {
    o.budget = static_cast<double>(t);
    out.push_back(flap_select(scores, o).widths);
  }
  return out;
}

/// Chee et al.'s allocation for every budget, from the CPQR diagonals of the ORIGINAL network's
/// activations (each layer's own factorization: a plan compressing that layer alone).
std::vector<std::vector<index_t>> chee_widths(CompressionEngine& engine,
                                              const std::shared_ptr<const LayerPolicy>& policy,
                                              std::span<const std::int64_t> targets) {
  const nn::Mlp& model = engine.original();
  const index_t L = model.num_hidden();
  std::vector<PointPlan> plans;
  for (index_t l = 0; l < L; ++l) {
    PointPlan p;
    p.policy = policy;
    p.layers.resize(static_cast<std::size_t>(L));
    p.layers[static_cast<std::size_t>(l)] = LayerRule{RankRule::k, 1.0};
    plans.push_back(std::move(p));
  }
  const auto fs = engine.factorizations(plans);
  std::vector<std::vector<double>> diagonals;
  for (index_t l = 0; l < L; ++l)
    diagonals.push_back(fs[static_cast<std::size_t>(l)][static_cast<std::size_t>(l)].diag);
  const DenseShape shape = dense_shape(model);
  std::vector<std::vector<index_t>> out;
  for (const std::int64_t t : targets) {
    CheeAllocationOptions o;
    o.budget = static_cast<double>(t);
    out.push_back(chee_allocation(diagonals, shape, o).widths);
  }
  return out;
}

class Study {
 public:
  Study(const nn::Mlp& model, const dist::DistMatrix& xc, const Scorer& validation, const Scorer& test,
        const ParetoOptions& options, const ParetoHooks& hooks)
      : model_(model), xc_(xc), validation_(validation), test_(test), options_(options), hooks_(hooks) {}

  ParetoResult run() {
    ParetoResult result;
    result.original_params = model_.parameter_count();
    result.original_validation = validation_.original_scores();
    result.original_test = test_.original_scores();
    for (const std::string& name : options_.strategies) {
      const StrategyInfo& info = strategy(name);
      log("pareto: " + name + " ...");
      const Stopwatch watch;
      ParetoCurve curve;
      curve.strategy = name;
      EngineOptions eo = options_.engine;
      eo.complete_factorizations = info.complete_factorizations;
      CompressionEngine engine(model_, xc_, eo);
      const std::shared_ptr<const LayerPolicy> policy = strategy_policy(info, options_.policy);
      std::vector<ParetoRow> rows;
      switch (info.allocation) {
        case Allocation::rule:
          curve.models = rule_sweep(engine, info, policy);
          break;
        case Allocation::spectrum:
          curve.models = refined_sweep(options_.tau_grid, "tau", false, [&](std::span<const double> values) {
            std::vector<PointPlan> plans;
            for (double tau : values) plans.push_back(spectrum_plan(engine, policy, tau));
            return engine.compress(plans);
          });
          break;
        case Allocation::budget:
        case Allocation::tuned:
        case Allocation::chee:
        case Allocation::flap:
          rows = budget_rows(engine, info, policy, curve);
          break;
        case Allocation::hybrid:
          rows = hybrid_rows(engine, info, curve);
          break;
        case Allocation::descent:
          rows = descent_rows(engine, info, policy, curve);
          result.paths.push_back(curve.path);
          result.path_strategies.push_back(name);
          break;
      }
      log_stats(name, engine);
      curve.seconds = watch.seconds();
      if (info.family == Family::sweep) {
        // The best sweep point within each budget, chosen by validation accuracy.
        for (double b : options_.budgets) {
          const std::ptrdiff_t i = select_within(curve.models, budget_params(b, model_.parameter_count()));
          if (i < 0) {
            log("pareto: " + name + " has no model within " + setting("budget", b) + " (extend its grid)");
            continue;
          }
          rows.push_back(ParetoRow{name, b, curve.models[static_cast<std::size_t>(i)], curve.seconds});
        }
      }
      if (!options_.keep_models) {
        for (auto& m : curve.models) m.network.reset();
        for (auto& r : rows) r.model.network.reset();
      }
      if (hooks_.on_strategy) hooks_.on_strategy(curve, rows);
      result.rows.insert(result.rows.end(), rows.begin(), rows.end());
      result.curves.push_back(std::move(curve));
    }
    return result;
  }

 private:
  void log(const std::string& line) const {
    if (hooks_.log) hooks_.log(line);
  }

  void log_stats(const std::string& name, const CompressionEngine& engine) const {
    const EngineStats& st = engine.stats();
    std::ostringstream os;
    os << "pareto: " << name << ": " << st.models << " models, " << st.factorizations << " factorizations, "
       << st.least_squares << " least-squares fits, " << st.cache_hits << " cache hits; seconds: activations "
       << st.activation_seconds << ", factorizations " << st.factorization_seconds << ", least squares "
       << st.least_squares_seconds << ", folds " << st.fold_seconds;
    log(os.str());
  }

  /// A sweep-family strategy with one rank rule on every layer, over its grid.
  std::vector<ParetoModel> rule_sweep(CompressionEngine& engine, const StrategyInfo& info,
                                      const std::shared_ptr<const LayerPolicy>& policy) const {
    const bool fractions = info.pareto_rule == RankRule::fraction;
    const std::vector<double>& grid = fractions ? options_.svd_grid : options_.eps_grid;
    const auto plans_of = [&](std::span<const double> values) {
      std::vector<PointPlan> plans;
      for (double v : values)
        plans.push_back(uniform_plan(policy, model_.num_hidden(), {}, LayerRule{info.pareto_rule, v}));
      return plans;
    };
    // The loosest factorization of the original network, shared by every point of the grid.
    prepare_points(engine, info, plans_of(grid));
    return refined_sweep(grid, fractions ? "fraction" : "eps", fractions, [&](std::span<const double> values) {
      return compress_points(engine, info, plans_of(values));
    });
  }

  /// Every budget allocated together (batched, so TBB runs them in parallel); the time of a row is
  /// the whole allocation's divided by the number of budgets.
  std::vector<ParetoRow> budget_rows(CompressionEngine& engine, const StrategyInfo& info,
                                     const std::shared_ptr<const LayerPolicy>& policy, ParetoCurve& curve) const {
    const Stopwatch watch;
    std::vector<std::int64_t> targets;
    for (double b : options_.budgets) targets.push_back(budget_params(b, model_.parameter_count()));
    std::vector<std::vector<index_t>> widths;
    if (info.allocation == Allocation::tuned)
      widths = tuned_budget_widths(engine, policy, validation_, targets, options_.budget, options_.tune);
    else if (info.allocation == Allocation::chee)
      widths = chee_widths(engine, policy, targets);
    else if (info.allocation == Allocation::flap)
      widths = flap_widths(engine, targets);
    else
      widths = budget_widths(engine, policy, targets, options_.budget);
    std::vector<PointPlan> plans;
    std::vector<std::string> labels;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      plans.push_back(kept_plan(policy, widths[i]));
      labels.push_back(setting("budget", options_.budgets[i]));
    }
    const auto compressed = engine.compress(plans);
    const double per_budget = watch.seconds() / static_cast<double>(widths.size());
    std::vector<ParetoRow> rows;
    for (auto& m : final_models(compressed, labels)) {
      curve.models.push_back(m);
      rows.push_back(ParetoRow{curve.strategy, options_.budgets[rows.size()], std::move(m), per_budget});
    }
    return rows;
  }

  /// hybrid_allocation for every budget (parameters or FLOPs, options_.hybrid.kind), then one test
  /// evaluation per chosen model; the time of a row is the whole allocation's divided evenly.
  std::vector<ParetoRow> hybrid_rows(CompressionEngine& engine, const StrategyInfo& info, ParetoCurve& curve) const {
    const Stopwatch watch;
    HybridOptions ho = options_.hybrid;
    ho.selection = info.policy == "hybrid-obs" ? HybridSelection::obs : HybridSelection::corrected;
    ho.obs_damping = options_.policy.obs_damping;
    ho.intercept = options_.policy.intercept;
    std::vector<std::int64_t> targets;
    for (double b : options_.budgets) targets.push_back(budget_params(b, model_cost(model_, options_.hybrid.kind)));
    const std::vector<HybridChoice> choices = hybrid_allocation(engine, validation_, targets, ho);
    std::vector<PointPlan> plans;
    std::vector<std::string> labels;
    std::vector<double> budgets;
    for (std::size_t i = 0; i < choices.size(); ++i) {
      if (choices[i].widths.empty()) {
        log("pareto: " + curve.strategy + " has no model within " + setting("budget", options_.budgets[i]));
        continue;
      }
      plans.push_back(kept_plan(make_hybrid_policy(choices[i].ranks, ho.selection, ho.obs_damping, ho.intercept),
                                choices[i].widths));
      std::ostringstream label;
      label << "budget=" << options_.budgets[i] << " " << to_string(options_.hybrid.kind)
            << " first-rank=" << choices[i].ranks.front();
      labels.push_back(label.str());
      budgets.push_back(options_.budgets[i]);
    }
    const auto compressed = engine.compress(plans);
    const double per_budget = watch.seconds() / static_cast<double>(std::max<std::size_t>(1, plans.size()));
    std::vector<ParetoRow> rows;
    for (auto& m : final_models(compressed, labels)) {
      curve.models.push_back(m);
      rows.push_back(ParetoRow{curve.strategy, budgets[rows.size()], std::move(m), per_budget});
    }
    return rows;
  }

  /// The descent path on the validation split, then one test evaluation per selected model.
  std::vector<ParetoRow> descent_rows(CompressionEngine& engine, const StrategyInfo& info,
                                      const std::shared_ptr<const LayerPolicy>& policy, ParetoCurve& curve) const {
    std::vector<SearchPoint> path =
        validation_descent(engine, policy, validation_, options_.descent, [&](const SearchPoint& p) {
          if (p.step % 10 == 0) {
            std::ostringstream os;
            os << "pareto: " << info.name << " step " << p.step << ", " << p.params_fraction * 100.0
               << "% of the parameters, validation accuracy " << p.validation.accuracy() << " (" << p.seconds << " s)";
            log(os.str());
          }
        });
    std::vector<PointPlan> plans;
    std::vector<std::string> labels;
    std::vector<double> budgets;
    std::vector<double> found;
    for (double b : options_.budgets) {
      const std::ptrdiff_t i = best_within(path, budget_params(b, model_.parameter_count()));
      if (i < 0) continue;
      plans.push_back(kept_plan(policy, path[static_cast<std::size_t>(i)].kept));
      labels.push_back(setting("budget", b));
      budgets.push_back(b);
      found.push_back(path[static_cast<std::size_t>(i)].seconds);
    }
    std::vector<ParetoRow> rows;
    const std::vector<ParetoModel> models = final_models(engine.compress(plans), labels);
    for (std::size_t i = 0; i < models.size(); ++i) {
      curve.models.push_back(models[i]);
      rows.push_back(ParetoRow{curve.strategy, budgets[i], models[i], found[i]});
    }
    curve.path = std::move(path);
    return rows;
  }

  /// Validation and test metrics of final models (the only place test data are read).
  std::vector<ParetoModel> final_models(const std::vector<CompressedModel>& models,
                                        const std::vector<std::string>& labels) const {
    const std::vector<Scores> val = validation_.score(models);
    const std::vector<Scores> tst = test_.score(models);
    std::vector<ParetoModel> out;
    for (std::size_t i = 0; i < models.size(); ++i) {
      ParetoModel m = describe(model_, models[i], labels[i]);
      m.validation = val[i];
      m.test = tst[i];
      m.network = std::make_shared<const nn::Mlp>(models[i].model);
      out.push_back(std::move(m));
    }
    return out;
  }

  /// A sweep over `grid` (values that make models smaller as they grow, or larger when
  /// `increasing`), then `options_.refine` rounds of bisection: for each budget, the geometric mean
  /// of the two adjacent values whose models bracket it, all of a round compressed as one batch.
  /// So every budget gets a model just within it (greedy is compared at its best, not at the
  /// mercy of the grid). `compress` makes the models of a list of values (collective).
  std::vector<ParetoModel> refined_sweep(
      const std::vector<double>& grid, const char* name, bool increasing,
      const std::function<std::vector<CompressedModel>(std::span<const double>)>& compress) const {
    std::vector<ParetoModel> out;
    std::vector<std::pair<double, std::int64_t>> seen;  // (value, params)
    const auto run_values = [&](const std::vector<double>& values) {
      const std::size_t wave = std::max<std::size_t>(1, options_.wave_size);
      for (std::size_t begin = 0; begin < values.size(); begin += wave) {
        const std::size_t end = std::min(values.size(), begin + wave);
        const std::span<const double> part(values.data() + begin, end - begin);
        std::vector<std::string> labels;
        for (double v : part) labels.push_back(setting(name, v));
        std::vector<ParetoModel> models = final_models(compress(part), labels);
        for (std::size_t i = 0; i < models.size(); ++i) {
          seen.emplace_back(part[i], models[i].params);
          out.push_back(std::move(models[i]));
        }
        release_unselected(out);
      }
    };
    run_values(grid);
    for (int round = 0; round < options_.refine; ++round) {
      std::sort(seen.begin(), seen.end());
      std::vector<double> fresh;
      for (double b : options_.budgets) {
        const std::int64_t target = budget_params(b, model_.parameter_count());
        for (std::size_t i = 0; i + 1 < seen.size(); ++i) {
          const auto [v0, p0] = seen[i];
          const auto [v1, p1] = seen[i + 1];
          const bool brackets = increasing ? (p0 <= target && p1 > target) : (p0 > target && p1 <= target);
          if (!brackets || !(v0 > 0.0) || v1 <= v0 * (1.0 + 1e-12)) continue;
          const double mid = std::sqrt(v0 * v1);
          if (std::find(fresh.begin(), fresh.end(), mid) == fresh.end()) fresh.push_back(mid);
        }
      }
      if (fresh.empty()) break;
      std::sort(fresh.begin(), fresh.end());
      run_values(fresh);
    }
    return out;
  }

  /// Drops the network of every sweep point that is not select_within's choice for any budget now.
  /// Such a point never becomes the choice later: a later point replaces the choice only by beating
  /// it. So a sweep holds at most one network per budget beyond the wave in flight.
  void release_unselected(std::vector<ParetoModel>& models) const {
    std::vector<char> selected(models.size(), 0);
    for (double b : options_.budgets) {
      const std::ptrdiff_t i = select_within(models, budget_params(b, model_.parameter_count()));
      if (i >= 0) selected[static_cast<std::size_t>(i)] = 1;
    }
    for (std::size_t i = 0; i < models.size(); ++i)
      if (selected[i] == 0) models[i].network.reset();
  }

  const nn::Mlp& model_;
  const dist::DistMatrix& xc_;
  const Scorer& validation_;
  const Scorer& test_;
  const ParetoOptions& options_;
  const ParetoHooks& hooks_;
};
}  // namespace

void check_pareto_options(const ParetoOptions& options) {
  require(!options.strategies.empty(), "pareto: no strategy given");
  require(!options.budgets.empty(), "pareto: no budget given");
  bool eps = false;
  bool tau = false;
  bool fractions = false;
  bool descent = false;
  bool tune = false;
  bool budget = false;
  for (const auto& s : options.strategies) {
    const StrategyInfo& info = strategy(s);  // throws for an unknown name, listing the known ones
    eps = eps || (info.allocation == Allocation::rule && info.pareto_rule == RankRule::eps);
    fractions = fractions || (info.allocation == Allocation::rule && info.pareto_rule == RankRule::fraction);
    tau = tau || info.allocation == Allocation::spectrum;
    descent = descent || info.allocation == Allocation::descent;
    tune = tune || info.allocation == Allocation::tuned;
    budget = budget || info.allocation == Allocation::budget || info.allocation == Allocation::tuned ||
             info.allocation == Allocation::hybrid;
  }
  for (double b : options.budgets)
    require(b > 0.0 && b <= 1.0, "pareto: budget ", b, " outside (0, 1] (a fraction of the parameters)");
  const auto check_grid = [](const std::vector<double>& grid, const char* name, RankRule rule) {
    require(!grid.empty(), "pareto: --", name, " is empty");
    for (double v : grid) check_rule_value(LayerRule{rule, v});
  };
  if (eps) check_grid(options.eps_grid, "eps-grid", RankRule::eps);
  if (fractions) check_grid(options.svd_grid, "svd-grid", RankRule::fraction);
  if (tau) {
    require(!options.tau_grid.empty(), "pareto: --tau-grid is empty");
    for (double t : options.tau_grid)
      require(std::isfinite(t) && t >= 0.0, "pareto: --tau-grid value ", t, " (needs a finite value >= 0)");
  }
  if (descent) {
    const DescentOptions& d = options.descent;
    require(d.step > 0.0 && d.step < 1.0, "pareto: --step=", d.step, " outside (0, 1)");
    require(d.max_shrink > 0.0 && d.max_shrink < 1.0, "pareto: descent max_shrink=", d.max_shrink, " outside (0, 1)");
    require(d.stop_fraction > 0.0 && d.stop_fraction <= 1.0, "pareto: descent stop_fraction=", d.stop_fraction,
            " outside (0, 1]");
  }
  if (budget)
    require(options.budget.iterations >= 1, "pareto: --budget-iterations=", options.budget.iterations, " (needs >= 1)");
  if (tune) {
    require(options.tune.rounds >= 0, "pareto: --tune-rounds=", options.tune.rounds, " (needs >= 0)");
    require(options.tune.factor > 1.0, "pareto: tune factor=", options.tune.factor, " (needs > 1)");
  }
  require(options.wave_size >= 1, "pareto: wave size ", options.wave_size, " (needs >= 1)");
  require(options.refine >= 0, "pareto: --refine=", options.refine, " (needs >= 0)");
}

std::vector<double> default_eps_grid() { return log_grid(1e-3, 10.0, 6); }
std::vector<double> default_tau_grid() { return log_grid(1e-4, 1.0, 6); }
std::vector<double> default_svd_grid() { return log_grid(1e-2, 1.0, 6); }

ParetoResult run_pareto(const nn::Mlp& model, const dist::DistMatrix& compression_set, const Scorer& validation,
                        const Scorer& test, const ParetoOptions& options, const ParetoHooks& hooks) {
  check_pareto_options(options);
  require(validation.samples() > 0, "run_pareto: the validation set is empty");
  Study study(model, compression_set, validation, test, options, hooks);
  return study.run();
}

std::ptrdiff_t select_within(std::span<const ParetoModel> models, std::int64_t budget) {
  std::ptrdiff_t best = -1;
  for (std::size_t i = 0; i < models.size(); ++i) {
    const ParetoModel& m = models[i];
    if (m.params > budget) continue;
    if (best < 0) {
      best = static_cast<std::ptrdiff_t>(i);
      continue;
    }
    const ParetoModel& b = models[static_cast<std::size_t>(best)];
    if (m.validation.correct > b.validation.correct ||
        (m.validation.correct == b.validation.correct && m.params < b.params))
      best = static_cast<std::ptrdiff_t>(i);
  }
  return best;
}

double interpolate_test_accuracy(std::span<const ParetoModel> models, double fraction) {
  std::vector<std::pair<double, double>> pts;
  for (const auto& m : models) pts.emplace_back(m.params_fraction, m.test.accuracy());
  std::sort(pts.begin(), pts.end());
  if (pts.empty() || fraction < pts.front().first) return nan;
  for (std::size_t i = 1; i < pts.size(); ++i) {
    if (fraction > pts[i].first) continue;
    const auto [x0, y0] = pts[i - 1];
    const auto [x1, y1] = pts[i];
    return x1 > x0 ? y0 + (y1 - y0) * (fraction - x0) / (x1 - x0) : std::max(y0, y1);
  }
  return pts.back().second;
}

std::vector<ParetoComparison> compare_with_greedy(const ParetoResult& result) {
  const ParetoCurve* greedy = nullptr;
  for (const auto& c : result.curves)
    if (c.strategy == "greedy") greedy = &c;
  std::vector<ParetoComparison> out;
  if (greedy == nullptr) return out;
  const double target = result.original_test.accuracy() - 0.01;
  const auto within = [&](const ParetoCurve& c) {
    double best = nan;
    for (const auto& m : c.models)
      if (m.test.accuracy() >= target && !(m.params_fraction >= best)) best = m.params_fraction;
    return best;
  };
  const double greedy_within = within(*greedy);
  std::vector<double> budgets;
  for (const auto& r : result.rows)
    if (std::find(budgets.begin(), budgets.end(), r.budget) == budgets.end()) budgets.push_back(r.budget);
  std::sort(budgets.begin(), budgets.end());
  for (const auto& c : result.curves) {
    ParetoComparison cmp;
    cmp.strategy = c.strategy;
    cmp.budgets = budgets;
    double sum = 0.0;
    int count = 0;
    cmp.min_gain = std::numeric_limits<double>::infinity();
    cmp.max_gain = -std::numeric_limits<double>::infinity();
    for (double b : budgets) {
      double acc = nan;
      for (const auto& r : result.rows)
        if (r.strategy == c.strategy && r.budget == b) acc = r.model.test.accuracy();
      const double g = interpolate_test_accuracy(greedy->models, b);
      cmp.test_accuracy.push_back(acc);
      cmp.greedy.push_back(g);
      const double gain = acc - g;
      cmp.gain.push_back(gain);
      if (std::isnan(acc)) {
        cmp.min_gain = -std::numeric_limits<double>::infinity();  // no model: not at least greedy
        continue;
      }
      if (std::isnan(g)) continue;  // greedy has no model this small: nothing to compare
      sum += gain;
      ++count;
      cmp.min_gain = std::min(cmp.min_gain, gain);
      cmp.max_gain = std::max(cmp.max_gain, gain);
    }
    cmp.mean_gain = count > 0 ? sum / count : nan;
    cmp.within_one_point = within(c);
    cmp.within_one_point_ratio = cmp.within_one_point / greedy_within;
    out.push_back(std::move(cmp));
  }
  return out;
}

}  // namespace idprune::compress
