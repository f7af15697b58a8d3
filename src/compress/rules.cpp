#include "idprune/compress/rules.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "idprune/la/error.hpp"

namespace idprune::compress {

std::string_view to_string(RankRule rule) {
  switch (rule) {
    case RankRule::eps:
      return "eps";
    case RankRule::k:
      return "k";
    case RankRule::fraction:
      return "fraction";
    case RankRule::rank:
      return "rank";
  }
  return "?";
}

RankRule parse_rank_rule(std::string_view name) {
  if (name == "eps") return RankRule::eps;
  if (name == "k") return RankRule::k;
  if (name == "fraction") return RankRule::fraction;
  if (name == "rank") return RankRule::rank;
  throw Error(detail::concat("unknown rank rule '", name, "' (expected eps, k, fraction or rank)"));
}

namespace {
bool is_positive_integer(double v) { return std::isfinite(v) && v >= 1.0 && v == std::floor(v) && v < 1e15; }
}  // namespace

void check_rule_value(const LayerRule& rule) {
  switch (rule.rule) {
    case RankRule::eps:
      require(std::isfinite(rule.value) && rule.value >= 0.0, "rank rule eps: value ", rule.value,
              " must be finite and >= 0");
      break;
    case RankRule::k:
      require(is_positive_integer(rule.value), "rank rule k: value ", rule.value, " must be an integer >= 1");
      break;
    case RankRule::fraction:
      require(std::isfinite(rule.value) && rule.value > 0.0 && rule.value <= 1.0, "rank rule fraction: value ",
              rule.value, " must be in (0, 1]");
      break;
    case RankRule::rank:
      require(is_positive_integer(rule.value), "rank rule rank: value ", rule.value, " must be an integer >= 1");
      break;
  }
}

namespace {
index_t ceil_fraction(double f, index_t n) {
  // ceil(f n) with a guard against f n landing a rounding error above an integer (0.3 * 10).
  const double x = f * static_cast<double>(n);
  auto c = static_cast<index_t>(std::ceil(x));
  if (c > 0 && std::abs(x - static_cast<double>(c - 1)) <= 4.0 * 2.220446049250313e-16 * x) --c;
  return std::clamp<index_t>(c, 1, n);
}
}  // namespace

index_t kept_count(const LayerRule& rule, index_t width) {
  require(width >= 1, "kept_count: width ", width, " < 1");
  switch (rule.rule) {
    case RankRule::k:
      return std::min(static_cast<index_t>(rule.value), width);
    case RankRule::fraction:
      return ceil_fraction(rule.value, width);
    default:
      throw Error(detail::concat("kept_count: rule ", to_string(rule.rule), " does not fix a count"));
  }
}

index_t svd_rank(const LayerRule& rule, index_t d_in, index_t d_out) {
  const index_t full = std::min(d_in, d_out);
  require(full >= 1, "svd_rank: empty weight ", d_in, " x ", d_out);
  switch (rule.rule) {
    case RankRule::rank:
      return std::min(static_cast<index_t>(rule.value), full);
    case RankRule::fraction:
      return ceil_fraction(rule.value, full);
    default:
      throw Error(detail::concat("svd_rank: rule ", to_string(rule.rule), " does not apply to the svd strategy"));
  }
}

la::CpqrOptions cpqr_stopping_rule(const LayerRule& rule, index_t rows, index_t width, double next_norm) {
  la::CpqrOptions o;
  const index_t cap = std::min(rows, width);
  switch (rule.rule) {
    case RankRule::eps:
      // rel_tol = eps / ||W_next||_2; a zero next layer ignores this layer's output entirely.
      o.rel_tol = next_norm > 0.0 ? rule.value / next_norm : 1.0;
      if (!std::isfinite(o.rel_tol)) o.rel_tol = 1.0;
      o.max_rank = -1;
      break;
    case RankRule::k:
    case RankRule::fraction:
      o.max_rank = std::min(kept_count(rule, width), cap);
      break;
    case RankRule::rank:
      throw Error("cpqr_stopping_rule: the rank rule belongs to the svd strategy");
  }
  return o;
}

la::CpqrOptions loosest(const la::CpqrOptions& a, const la::CpqrOptions& b) {
  la::CpqrOptions o = a;
  o.rel_tol = (a.rel_tol == 0.0 || b.rel_tol == 0.0) ? 0.0 : std::min(a.rel_tol, b.rel_tol);
  o.max_rank = (a.max_rank < 0 || b.max_rank < 0) ? -1 : std::max(a.max_rank, b.max_rank);
  return o;
}

bool covers(const la::CpqrOptions& done, const la::CpqrOptions& needed) {
  const bool tol_ok = done.rel_tol == 0.0 || (needed.rel_tol > 0.0 && needed.rel_tol >= done.rel_tol);
  const bool rank_ok = done.max_rank < 0 || (needed.max_rank >= 0 && needed.max_rank <= done.max_rank);
  // A factorization stopped by either limit has run every step the other limit would need only
  // when both are at least as loose.
  return tol_ok && rank_ok;
}

index_t prefix_rank(const la::CpqrResult& f, const la::CpqrOptions& rule) {
  const index_t r = f.rank;
  if (r == 0) return 0;
  const double r11 = f.diag.front();
  for (index_t k = 0; k < r; ++k) {
    if (rule.max_rank >= 0 && k == rule.max_rank) return k;
    const double next = f.diag[static_cast<std::size_t>(k)];
    if (next == 0.0) return k;
    if (rule.rel_tol > 0.0 && next <= rule.rel_tol * r11) return k;
  }
  return r;
}

la::CpqrOptions at_least_one_step(la::CpqrOptions o, index_t cap) {
  if (o.rel_tol >= 1.0) {
    o.rel_tol = 0.0;
    o.max_rank = o.max_rank < 0 ? 1 : std::max<index_t>(1, o.max_rank);
  }
  if (o.max_rank > cap) o.max_rank = cap;
  return o;
}

la::CpqrOptions complete_rule(index_t rows, index_t cols, la::CpqrMethod method) {
  la::CpqrOptions o;
  o.max_rank = -1;
  o.rel_tol = static_cast<double>(std::max(rows, cols)) * std::numeric_limits<double>::epsilon();
  o.method = method;
  return o;
}

}  // namespace idprune::compress
