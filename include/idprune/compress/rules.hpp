#pragma once
// Rank rules (DESIGN.md, "Compression strategies"; the reference text's "practical simplification"
// for the eps rule).
//
// A rank rule says how many neurons (columns of W_l) a compressed hidden layer keeps:
//   eps       the smallest k with |r_{k+1,k+1}| / |r_11| <= eps / ||W_{l+1}||_2 (CPQR diagonal of the
//             layer's activations; W_{l+1} is the next layer's weight as it stands when layer l is
//             compressed, i.e. the original one, since folds only ever change the layer after);
//   k         min(k, width), never beyond a zero CPQR diagonal (a dead neuron);
//   fraction  ceil(f * width), 0 < f <= 1, never beyond a zero CPQR diagonal;
//   rank      the svd strategy's rank r of W_l = U_r (S_r V_r^T), at most min(d_in, d_out).
// Every compressed layer keeps at least one neuron (a layer of width 0 cannot be represented).
#include <cstdint>
#include <string_view>

#include "idprune/la/cpqr.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::compress {

using la::index_t;

enum class RankRule { eps, k, fraction, rank };

[[nodiscard]] std::string_view to_string(RankRule rule);
/// Parse "eps" | "k" | "fraction" | "rank"; throw idprune::Error naming the accepted values otherwise.
[[nodiscard]] RankRule parse_rank_rule(std::string_view name);

/// The rule of one compressed layer.
struct LayerRule {
  RankRule rule = RankRule::eps;
  double value = 0.0;
};

/// Throws idprune::Error unless the value suits the rule: eps finite and >= 0, k and rank integers
/// >= 1, 0 < fraction <= 1. (Which rules a strategy takes is the policy's check.)
void check_rule_value(const LayerRule& rule);

/// Neurons kept by a k or fraction rule on a layer of `width` neurons: min(k, width) or
/// ceil(f * width) (at least 1). Throws for eps and rank.
[[nodiscard]] index_t kept_count(const LayerRule& rule, index_t width);

/// Rank r of the svd strategy for a d_in x d_out weight: min(r, min(d_in, d_out)) for the rank
/// rule, ceil(f * min(d_in, d_out)) for the fraction rule (at least 1).
[[nodiscard]] index_t svd_rank(const LayerRule& rule, index_t d_in, index_t d_out);

/// The CPQR stopping rule that realises an eps/k/fraction rule on activations Z (rows x width)
/// feeding a next layer of spectral norm next_norm: eps gives rel_tol = eps / next_norm (1 when
/// next_norm = 0: the layer's output is ignored), k and fraction give max_rank = kept_count
/// capped at min(rows, width).
[[nodiscard]] la::CpqrOptions cpqr_stopping_rule(const LayerRule& rule, index_t rows, index_t width, double next_norm);

/// The loosest of two stopping rules (the one that runs at least as many steps as either): one
/// factorization run with it serves both, by the prefix property of CPQR (the first k pivots and
/// rows of R do not depend on later steps). rel_tol 0 and max_rank -1 mean "no limit".
[[nodiscard]] la::CpqrOptions loosest(const la::CpqrOptions& a, const la::CpqrOptions& b);

/// A layer keeps at least one neuron: a rule asking for none (rel_tol >= 1) still runs one step;
/// max_rank is capped at `cap` (the most steps a CPQR of that matrix can take).
[[nodiscard]] la::CpqrOptions at_least_one_step(la::CpqrOptions rule, index_t cap);

/// Every CPQR step up to the numerical rank: |r_{k+1,k+1}| <= max(rows, cols) eps |r_11| (the
/// usual rank threshold, as LAPACK's xGELSY uses); later pivots would be rounding noise.
[[nodiscard]] la::CpqrOptions complete_rule(index_t rows, index_t cols, la::CpqrMethod method);

/// True when a factorization computed with `done` has run every step `needed` may ask for.
[[nodiscard]] bool covers(const la::CpqrOptions& done, const la::CpqrOptions& needed);

/// The rank `rule` selects from a CPQR computed with a looser rule: the smallest k <= f.rank with
/// k == rule.max_rank, or |r_{k+1,k+1}| <= rule.rel_tol |r_11| (rel_tol > 0), or r_{k+1,k+1} = 0,
/// or k == f.rank (|r_{k+1,k+1}| is f.diag[k] for k < f.rank and f.next_diag at k = f.rank).
[[nodiscard]] index_t prefix_rank(const la::CpqrResult& f, const la::CpqrOptions& rule);

}  // namespace idprune::compress
