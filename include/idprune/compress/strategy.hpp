#pragma once
// The strategy registry: every compression strategy idprune knows, with its family, its selection
// policy and a one-line description. Command-line help, option checks, the README's tables and the
// report's legend read this list; nothing else names strategies.
//
// Families:
//   sweep    one rule value per model (eps, fraction or tau), swept over a grid; `pareto` keeps the
//            sweep point with the best validation accuracy within each budget
//   budget   one model per parameter budget, allocated from the CPQR diagonals (allocation.hpp)
//   search   a search on the validation split (allocation.hpp's validation_descent)
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "idprune/compress/engine.hpp"
#include "idprune/compress/policy.hpp"
#include "idprune/compress/rules.hpp"

namespace idprune::compress {

enum class Family { sweep, budget, search };
[[nodiscard]] std::string_view to_string(Family family);

/// How the per-layer sizes of a strategy's models are chosen.
enum class Allocation {
  rule,      ///< one rank rule for every layer (a sweep value)
  spectrum,  ///< one relative tolerance tau on every layer's own CPQR spectrum
  budget,    ///< allocate_budget from the CPQR diagonals
  tuned,     ///< the budget allocation with per-layer weights tuned on the validation split
  descent,   ///< validation_descent
  chee,      ///< Chee et al.'s per-layer heuristic from the original network's CPQR diagonals
  flap,      ///< FLAP's one global threshold on the standardised fluctuation scores (flap.hpp)
  hybrid,    ///< hybrid_allocation (hybrid.hpp): budget neurons plus a whitened low-rank first layer
};

struct StrategyInfo {
  std::string_view name;
  Family family = Family::sweep;
  std::string_view policy;  ///< make_policy name (policy.hpp)
  Allocation allocation = Allocation::rule;
  RankRule pareto_rule = RankRule::eps;  ///< sweep family: the rule `pareto` sweeps (eps, fraction; tau for spectrum)
  std::string_view description;
  /// sweep family: the rank rules `idprune sweep` accepts (empty: not a `sweep` strategy).
  std::vector<RankRule> sweep_rules;
  /// Factorizations up to the numerical rank (allocations read whole diagonals; a k rule is capped
  /// at the numerical rank), instead of the loosest rule of the plans.
  bool complete_factorizations = false;
  /// eps rules become the per-layer counts greedy's eps rule keeps (magnitude, random: equal sizes).
  bool counts_from_greedy = false;
};

/// Every strategy, in canonical order.
[[nodiscard]] std::span<const StrategyInfo> strategies();
/// The entry of `name` (aliases: joint -> descent, joint-corrected -> descent-corrected); throws
/// idprune::Error listing the known names otherwise.
[[nodiscard]] const StrategyInfo& strategy(std::string_view name);
/// The names of the strategies that `idprune sweep` takes / of every strategy, joined by ", ".
[[nodiscard]] std::string strategy_names(bool sweep_only = false);
/// One line per strategy ("  name   family   description"), for --help.
[[nodiscard]] std::string strategy_help(bool sweep_only = false);

/// The policy of a strategy (seed: random's draws; intercept: corrected's fit).
[[nodiscard]] std::shared_ptr<const LayerPolicy> strategy_policy(const StrategyInfo& info,
                                                                 const PolicyOptions& options = {});

/// Collective: the models of a sweep-family strategy's plans. For counts_from_greedy strategies the
/// eps rules are first resolved to the counts the id policy keeps at them (one id compression of
/// those plans), then the strategy's policy runs with k rules.
[[nodiscard]] std::vector<CompressedModel> compress_points(CompressionEngine& engine, const StrategyInfo& info,
                                                           std::span<const PointPlan> plans);
/// Collective: prepare() for the plans compress_points will run (the id plans for counts_from_greedy).
void prepare_points(CompressionEngine& engine, const StrategyInfo& info, std::span<const PointPlan> plans);

/// Collective convenience for one model: `strategy` (a sweep-family name) with `rule` on `layers`
/// (0-based; empty means all).
[[nodiscard]] CompressedModel compress_model(const nn::Mlp& model, const dist::DistMatrix& compression_set,
                                             std::string_view strategy, const LayerRule& rule,
                                             std::span<const index_t> layers = {}, const EngineOptions& engine = {},
                                             const PolicyOptions& policy = {});

}  // namespace idprune::compress
