#include "idprune/la/rank_estimation.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/lapack.hpp"
#include "idprune/la/svd.hpp"

namespace idprune::la {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();

std::mt19937_64 seeded_rng(std::uint64_t seed, std::uint64_t stream_a = 0, std::uint64_t stream_b = 0) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed),     static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(stream_a), static_cast<std::uint32_t>(stream_a >> 32),
                    static_cast<std::uint32_t>(stream_b), static_cast<std::uint32_t>(stream_b >> 32)};
  return std::mt19937_64(seq);
}

Matrix gaussian_matrix(index_t m, index_t n, double scale, std::mt19937_64& rng) {
  Matrix a(m, n);
  std::normal_distribution<double> normal(0.0, scale);
  for (double& v : a.values()) v = normal(rng);
  return a;
}

/// The first n columns of Q from the QR of a Gaussian dim x n matrix: Haar-distributed orthonormal
/// directions (dgeqrf + dorgqr).
Matrix random_orthonormal_columns(index_t dim, index_t n, std::mt19937_64& rng) {
  Matrix q = gaussian_matrix(dim, n, 1.0, rng);
  if (n == 0) return q;
  const std::vector<double> tau = geqrf(q.view());
  orgqr(q.view(), tau);
  return q;
}

double rms(std::span<const double> x) {
  if (x.empty()) return 0.0;
  return nrm2(x) / std::sqrt(static_cast<double>(x.size()));
}

/// Calls the batched query and checks its answer.
Matrix evaluate(const BatchQuery& query, ConstMatrixView points, index_t& out_dim, index_t& queries) {
  Matrix y = query(points);
  require(y.cols() == points.cols(), "estimate_rank: the query returned ", y.cols(), " outputs for ", points.cols(),
          " points");
  if (out_dim < 0) out_dim = y.rows();
  require(y.rows() == out_dim, "estimate_rank: the query's output size changed from ", out_dim, " to ", y.rows());
  require(all_finite(y), "estimate_rank: the query returned NaN or Inf");
  queries += points.cols();
  return y;
}

/// Points x + s_j * h * D(:, j) for s_j = +1 (first b columns) and -1 (last b columns).
Matrix plus_minus_points(std::span<const double> x, ConstMatrixView directions, double h) {
  const index_t dim = directions.rows();
  const index_t b = directions.cols();
  Matrix points(dim, 2 * b);
  for (index_t j = 0; j < b; ++j) {
    for (index_t i = 0; i < dim; ++i) {
      points(i, j) = x[static_cast<std::size_t>(i)] + h * directions(i, j);
      points(i, b + j) = x[static_cast<std::size_t>(i)] - h * directions(i, j);
    }
  }
  return points;
}

}  // namespace

index_t rank_from_gap(std::span<const double> s, double noise, double noise_factor) {
  require(noise >= 0.0 && noise_factor >= 1.0, "rank_from_gap: noise=", noise,
          " (needs >= 0), noise_factor=", noise_factor, " (needs >= 1)");
  const auto p = static_cast<index_t>(s.size());
  const double floor_level = noise_factor * noise;
  if (p == 0 || s[0] <= floor_level) return 0;
  // s_{p+1} = noise: the virtual singular value that lets a full-rank spectrum show its gap.
  // Values below the noise level are indistinguishable from it, so a gap is measured down to
  // max(s_{i+1}, noise): gaps inside the noise (e.g. between rounding-level values and exact zeros)
  // have ratio <= 1 and never beat the drop from the signal into the noise.
  auto next = [&](index_t i) { return i + 1 < p ? s[static_cast<std::size_t>(i + 1)] : noise; };
  index_t best = 0;
  double best_ratio = -1.0;
  for (index_t i = 0; i < p; ++i) {
    const double lower = next(i);
    if (lower > floor_level) continue;  // this gap does not reach the noise floor
    const double upper = s[static_cast<std::size_t>(i)];
    const double below = std::max(lower, noise);
    const double ratio = below > 0.0 ? upper / below : std::numeric_limits<double>::infinity();
    if (upper > 0.0 && ratio > best_ratio) {
      best_ratio = ratio;
      best = i + 1;
    }
  }
  return best;
}

RankEstimate estimate_rank_at(const BatchQuery& query, ConstMatrixView base_points, const RankEstimationOptions& opts) {
  const index_t dim = base_points.rows();
  const index_t nbase = base_points.cols();
  require(static_cast<bool>(query), "estimate_rank: empty query function");
  require(dim >= 1, "estimate_rank: dim=", dim, " (needs >= 1)");
  require(nbase >= 1, "estimate_rank: ", nbase, " base points (needs >= 1)");
  require(all_finite(base_points), "estimate_rank: base points have NaN or Inf entries");
  require(opts.initial_directions >= 1 && opts.direction_block >= 1 && opts.margin >= 0,
          "estimate_rank: initial_directions=", opts.initial_directions, ", direction_block=", opts.direction_block,
          " (need >= 1), margin=", opts.margin, " (needs >= 0)");
  require(opts.noise_probes >= 1, "estimate_rank: noise_probes=", opts.noise_probes, " (needs >= 1)");
  require(opts.step_factor >= 0.0 && std::isfinite(opts.step_factor), "estimate_rank: step_factor=", opts.step_factor,
          " (needs a finite value >= 0)");
  require(opts.noise_factor >= 1.0, "estimate_rank: noise_factor=", opts.noise_factor, " (needs >= 1)");

  auto rng = seeded_rng(opts.seed, 0x6469726563ULL);  // stream "direc"
  const Matrix directions = random_orthonormal_columns(dim, dim, rng);
  const double step_factor = opts.step_factor > 0.0 ? opts.step_factor : std::cbrt(kEps);

  std::vector<double> steps(static_cast<std::size_t>(nbase));
  for (index_t k = 0; k < nbase; ++k)
    steps[static_cast<std::size_t>(k)] = step_factor * std::max(1.0, rms(base_points.col(k)));

  RankEstimate result;
  result.base_points = nbase;
  index_t out_dim = -1;
  // Column blocks of M per base point: jvp[k] is out x p, column j ~ J(x_k) d_j.
  std::vector<Matrix> jvp(static_cast<std::size_t>(nbase));
  double probe_sq = 0.0;     // sum of ||D_h - D_2h||^2 over the probes
  double rounding_sq = 0.0;  // sum over all columns of (eps / 2h)^2 (||f(x+)||^2 + ||f(x-)||^2)
  index_t probes = 0;

  index_t p = 0;
  index_t target = std::min(dim, opts.initial_directions);
  for (;;) {
    const index_t b = target - p;
    const ConstMatrixView new_dirs = directions.view().cols_range(p, b);
    for (index_t k = 0; k < nbase; ++k) {
      const auto ku = static_cast<std::size_t>(k);
      const double h = steps[ku];
      const Matrix y = evaluate(query, plus_minus_points(base_points.col(k), new_dirs, h), out_dim, result.queries);
      Matrix grown(out_dim, target);
      if (p > 0) grown.view().cols_range(0, p).assign(jvp[ku]);
      for (index_t j = 0; j < b; ++j) {
        const auto yp = y.col(j);
        const auto ym = y.col(b + j);
        auto col = grown.col(p + j);
        for (index_t i = 0; i < out_dim; ++i) {
          const auto iu = static_cast<std::size_t>(i);
          col[iu] = (yp[iu] - ym[iu]) / (2.0 * h);
        }
        const double scale = kEps / (2.0 * h);
        const double np = nrm2(yp);
        const double nm = nrm2(ym);
        rounding_sq += scale * scale * (np * np + nm * nm);
      }
      jvp[ku] = std::move(grown);
    }
    if (probes == 0) {
      // Noise probes: the first directions again with step 2h (once; the estimate scales with p).
      const index_t m = std::min(opts.noise_probes, target);
      for (index_t k = 0; k < nbase; ++k) {
        const auto ku = static_cast<std::size_t>(k);
        const double h2 = 2.0 * steps[ku];
        const Matrix y = evaluate(query, plus_minus_points(base_points.col(k), directions.view().cols_range(0, m), h2),
                                  out_dim, result.queries);
        for (index_t j = 0; j < m; ++j) {
          const auto yp = y.col(j);
          const auto ym = y.col(m + j);
          const auto col = jvp[ku].col(j);
          for (index_t i = 0; i < out_dim; ++i) {
            const auto iu = static_cast<std::size_t>(i);
            const double diff = col[iu] - (yp[iu] - ym[iu]) / (2.0 * h2);
            probe_sq += diff * diff;
          }
        }
      }
      probes = m;
    }
    p = target;

    // M = [J(x_1) D; ...; J(x_K) D], (K out) x p.
    Matrix stacked(nbase * out_dim, p);
    for (index_t k = 0; k < nbase; ++k)
      stacked.block(k * out_dim, 0, out_dim, p).assign(jvp[static_cast<std::size_t>(k)]);
    result.singular_values = singular_values(stacked);
    // ||E||_F^2 ~ p * (mean squared column error): the probes sample nbase * probes column blocks of
    // the p * nbase in M.
    const double measured = std::sqrt(probe_sq * static_cast<double>(p) / static_cast<double>(probes));
    result.noise_level = std::max(measured, std::sqrt(rounding_sq));
    result.rank = rank_from_gap(result.singular_values, result.noise_level, opts.noise_factor);
    result.directions = p;
    if (p == dim || result.rank + opts.margin <= p) break;
    // Grow by max(block, p / 2): geometric, so large ranks need O(log) SVDs, at most 1.5x the queries.
    target = std::min(dim, p + std::max(opts.direction_block, p / 2));
  }

  const auto& s = result.singular_values;
  if (result.rank > 0) {
    const auto r = static_cast<std::size_t>(result.rank);
    const double lower = r < s.size() ? s[r] : result.noise_level;
    result.gap = lower > 0.0 ? s[r - 1] / lower : std::numeric_limits<double>::infinity();
  }
  return result;
}

RankEstimate estimate_rank_batched(const BatchQuery& query, index_t dim, const RankEstimationOptions& opts) {
  require(dim >= 1, "estimate_rank: dim=", dim, " (needs >= 1)");
  require(opts.base_points >= 1, "estimate_rank: base_points=", opts.base_points, " (needs >= 1)");
  require(opts.base_scale > 0.0 && std::isfinite(opts.base_scale), "estimate_rank: base_scale=", opts.base_scale,
          " (needs a finite value > 0)");
  auto rng = seeded_rng(opts.seed, 0x62617365ULL);  // stream "base"
  const Matrix base = gaussian_matrix(dim, opts.base_points, opts.base_scale, rng);
  return estimate_rank_at(query, base, opts);
}

RankEstimate estimate_rank(const PointQuery& query, index_t dim, const RankEstimationOptions& opts) {
  require(static_cast<bool>(query), "estimate_rank: empty query function");
  const BatchQuery batched = [&query](ConstMatrixView points) {
    Matrix y;
    for (index_t j = 0; j < points.cols(); ++j) {
      const std::vector<double> v = query(points.col(j));
      if (j == 0) y.reset(static_cast<index_t>(v.size()), points.cols());
      require(static_cast<index_t>(v.size()) == y.rows(), "estimate_rank: the query's output size changed from ",
              y.rows(), " to ", v.size());
      std::copy(v.begin(), v.end(), y.col(j).begin());
    }
    return y;
  };
  return estimate_rank_batched(batched, dim, opts);
}

// ---- The game -------------------------------------------------------------------------------------

RankGame::RankGame(const RankGameOptions& opts, std::mt19937_64& rng) {
  require(opts.dim >= 1, "RankGame: dim=", opts.dim, " (needs >= 1)");
  const index_t max_rank = opts.max_rank < 0 ? std::max<index_t>(1, (95 * opts.dim) / 100) : opts.max_rank;
  require(opts.min_rank >= 1 && opts.min_rank <= max_rank && max_rank <= opts.dim, "RankGame: rank range [",
          opts.min_rank, ", ", max_rank, "] must satisfy 1 <= min <= max <= dim=", opts.dim);
  require(opts.w1_scale > 0.0 && opts.w2_scale > 0.0 && std::isfinite(opts.w1_scale) && std::isfinite(opts.w2_scale),
          "RankGame: scales w1=", opts.w1_scale, ", w2=", opts.w2_scale, " (need finite values > 0)");
  std::uniform_int_distribution<index_t> pick(opts.min_rank, max_rank);
  const index_t r = pick(rng);
  w1_ = gaussian_matrix(r, opts.dim, opts.w1_scale, rng);
  w2_ = gaussian_matrix(opts.dim, r, opts.w2_scale, rng);
}

Matrix RankGame::operator()(ConstMatrixView points) const {
  require(points.rows() == dim(), "RankGame: points have ", points.rows(), " rows, the game dim is ", dim());
  Matrix hidden = matmul(w1_, points);
  for (double& v : hidden.values()) v = std::cos(v);
  Matrix out = matmul(w2_, hidden);
  for (double& v : out.values()) v = std::sin(v);
  return out;
}

RankGamesSummary play_rank_games(index_t games, std::uint64_t seed, const RankGameOptions& game,
                                 const RankEstimationOptions& estimator) {
  require(games >= 1, "play_rank_games: games=", games, " (needs >= 1)");
  struct Outcome {
    index_t true_rank = 0;
    index_t estimated = 0;
    index_t queries = 0;
  };
  std::vector<Outcome> outcomes(static_cast<std::size_t>(games));
  {
    ScopedBlasThreads single(1);  // games are the parallel unit; BLAS stays single-threaded inside
    tbb::parallel_for(tbb::blocked_range<index_t>(0, games), [&](const tbb::blocked_range<index_t>& range) {
      for (index_t g = range.begin(); g != range.end(); ++g) {
        auto rng = seeded_rng(seed, static_cast<std::uint64_t>(g));
        const RankGame hidden(game, rng);
        RankEstimationOptions opts = estimator;
        // A distinct estimator seed per game, derived from (seed, g) only.
        opts.seed = seeded_rng(seed, static_cast<std::uint64_t>(g), 1)();
        const RankEstimate est =
            estimate_rank_batched([&hidden](ConstMatrixView x) { return hidden(x); }, hidden.dim(), opts);
        outcomes[static_cast<std::size_t>(g)] = {hidden.rank(), est.rank, est.queries};
      }
    });
  }
  RankGamesSummary summary;
  summary.games = games;
  double total_queries = 0.0;
  for (index_t g = 0; g < games; ++g) {
    const Outcome& o = outcomes[static_cast<std::size_t>(g)];
    total_queries += static_cast<double>(o.queries);
    summary.max_queries = std::max(summary.max_queries, o.queries);
    if (o.estimated == o.true_rank)
      ++summary.correct;
    else
      summary.failures.push_back({g, o.true_rank, o.estimated});
  }
  summary.mean_queries = total_queries / static_cast<double>(games);
  return summary;
}

}  // namespace idprune::la
