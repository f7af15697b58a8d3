#pragma once
// Black-box rank estimation from queries only (the second reference text's "Reducio!" game).
//
// For a map f: R^dim -> R^out that can only be evaluated, the rank estimated here is
//
//   rank(f) = dim span { row spaces of J(x_1), ..., J(x_K) },
//
// the number of input directions f depends on at the base points x_k: if f(x) = g(W x) with W
// r x dim, every Jacobian J(x) = g'(W x) W has its rows in the row space of W, so the stacked
// matrix [J(x_1); ...; J(x_K)] has rank <= r (= r for generic g and base points). For the game
// f(x) = sin(W2 cos(W1 x)), J(x) = diag(cos(W2 u)) W2 diag(-sin(W1 x)) W1 and the rank is r.
//
// Method (query-only):
//  1. Random orthonormal directions D = [d_1 ... d_p] (Q of a Gaussian dim x p matrix), the same at
//     every base point, and K Gaussian base points x_k.
//  2. Jacobian-vector products by central differences, J(x_k) d_j ~ (f(x_k + h d_j) - f(x_k - h d_j)) / 2h,
//     with h = step_factor * max(1, rms(x_k)), step_factor = eps^(1/3) by default: it balances the
//     truncation error (h^2/6) |f'''| against the rounding error eps |f| / h (Dennis & Schnabel,
//     "Numerical Methods for Unconstrained Optimization", sec. 5.6). Stacked: M = [J(x_1) D; ...; J(x_K) D].
//  3. The finite-difference noise level tau is measured, not assumed: the first `noise_probes`
//     directions are differenced again with step 2h; since the central difference error is
//     c h^2 + O(eps/h), |D_h - D_2h| ~ 3 c h^2 bounds the error of D_h. Scaled to all p columns it
//     estimates ||E||_F >= ||E||_2 >= sigma_{r+1}(M) for the error matrix E (Weyl). It is floored by the
//     resolution of the stored outputs, eps |f| / h, which also covers exactly linear maps.
//  4. Singular values s_1 >= ... >= s_p of M (LAPACK dgesdd). With the noise level appended as a
//     virtual s_{p+1} = tau, the rank is the position i of the largest gap s_i / max(s_{i+1}, tau)
//     among the gaps that end at the noise level (s_{i+1} <= noise_factor * tau); 0 when
//     s_1 <= noise_factor * tau. No absolute threshold is needed: a full-rank map shows its largest
//     gap at s_p / tau, a rank-r map between the signal s_r and the noise floor s_{r+1} ~ tau,
//     however badly scaled f is. Values below tau are indistinguishable from noise, hence the
//     max(., tau): gaps inside the noise (down to exact zeros) never count. On the game the drop
//     s_r / tau is >= 2.8e4 while s_{r+1} / tau <= 0.75 (1000 games, default scale).
//  5. Adaptively, p grows by max(direction_block, p/2) until the estimate leaves at least `margin` directions of noise
//     (rank <= p - margin) or p = dim, so low ranks cost few queries.
//
// Limitations: a map whose own singular values have a gap larger than the signal-to-noise gap, or
// whose smallest signal singular value lies within noise_factor of the FD noise, is ambiguous to
// any query-only method; the result carries the singular values and tau so a caller can judge.
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::la {

/// Evaluates a black box at one point x in R^dim; returns f(x) in R^out (out fixed across calls).
using PointQuery = std::function<std::vector<double>(std::span<const double> x)>;
/// Evaluates a black box at the q columns of `points` (dim x q); returns the out x q outputs.
/// Each column counts as one query.
using BatchQuery = std::function<Matrix(ConstMatrixView points)>;

struct RankEstimationOptions {
  index_t base_points = 2;          ///< K: Jacobians at K points are stacked (robust to a point where J is
                                    ///< nearly singular); K >= 2 also makes the noise block tall and well spread
  double base_scale = 1.0;          ///< random base points have N(0, base_scale^2) entries
  index_t initial_directions = 16;  ///< p at the first round (clamped to dim)
  index_t direction_block = 16;     ///< at least this many directions added per round (else p/2)
  index_t margin = 2;               ///< stop once rank <= p - margin (or p == dim)
  double step_factor = 0.0;         ///< h = step_factor * max(1, rms(x)); 0 means eps^(1/3)
  index_t noise_probes = 4;         ///< directions per base point re-differenced with step 2h (>= 1)
  double noise_factor = 10.0;       ///< a gap counts when it drops to <= noise_factor * tau
  std::uint64_t seed = 0;           ///< directions and base points come from this seed only
};

struct RankEstimate {
  index_t rank = 0;
  std::vector<double> singular_values;  ///< of the stacked JVP matrix M, non-increasing
  double noise_level = 0.0;             ///< tau, the estimated ||E||_F of the finite-difference error
  double gap = 0.0;                     ///< s_rank / s_{rank+1} (s_{p+1} = tau); 0 when rank == 0
  index_t queries = 0;                  ///< number of points evaluated
  index_t directions = 0;               ///< p, the number of directions used
  index_t base_points = 0;              ///< K
};

/// Estimates the rank of a black-box map R^dim -> R^out from queries only (see the file comment).
/// Throws idprune::Error on dim < 1, bad options, inconsistent output sizes or non-finite outputs.
RankEstimate estimate_rank(const PointQuery& query, index_t dim, const RankEstimationOptions& opts = {});
/// The same with a batched query (one call per round and base point; preferable when f is a GEMM).
RankEstimate estimate_rank_batched(const BatchQuery& query, index_t dim, const RankEstimationOptions& opts = {});
/// The same at caller-chosen base points (the columns of `base_points`, dim x K; e.g. data samples);
/// opts.base_points and opts.base_scale are ignored.
RankEstimate estimate_rank_at(const BatchQuery& query, ConstMatrixView base_points,
                              const RankEstimationOptions& opts = {});

/// The numerical rank from a non-increasing singular value sequence and a noise level (step 4
/// above): the largest gap s_i / max(s_{i+1}, noise), with s_{p+1} = noise, among the gaps that end at
/// s_{i+1} <= noise_factor * noise; 0 when s_1 <= noise_factor * noise. Exposed for tests.
index_t rank_from_gap(std::span<const double> singular_values, double noise, double noise_factor);

// ---- The reference text's game ------------------------------------------------------------------

/// Hermione's hidden map f(x) = sin(W2 cos(W1 x)), W1 r x dim, W2 dim x r (trig elementwise).
struct RankGameOptions {
  index_t dim = 100;
  index_t min_rank = 1;
  index_t max_rank = -1;  ///< -1 means floor(0.95 * dim) (95 for dim = 100, as in the reference text)
  double w1_scale = 1.0;  ///< W1 entries N(0, w1_scale^2); 1 as numpy.random.randn (the reference states no scale)
  double w2_scale = 1.0;  ///< W2 entries N(0, w2_scale^2)
};

class RankGame {
 public:
  /// Draws r uniformly in [min_rank, max_rank], then W1 and W2, from `rng`.
  RankGame(const RankGameOptions& opts, std::mt19937_64& rng);
  [[nodiscard]] index_t rank() const { return w1_.rows(); }
  [[nodiscard]] index_t dim() const { return w1_.cols(); }
  /// f at the columns of `points` (dim x q): two GEMMs.
  [[nodiscard]] Matrix operator()(ConstMatrixView points) const;

 private:
  Matrix w1_;  // r x dim
  Matrix w2_;  // dim x r
};

struct RankGameFailure {
  index_t game = 0;
  index_t true_rank = 0;
  index_t estimated_rank = 0;
};

struct RankGamesSummary {
  index_t games = 0;
  index_t correct = 0;
  double mean_queries = 0.0;
  index_t max_queries = 0;
  std::vector<RankGameFailure> failures;  ///< in game order
  [[nodiscard]] double fraction_correct() const { return games ? double(correct) / double(games) : 0.0; }
};

/// Plays `games` independent games; game g uses the generator seeded by (seed, g) for the hidden
/// map and the seed (seed, g, 1) for the estimator, so results do not depend on thread count.
/// Games run as TBB tasks with single-threaded BLAS.
RankGamesSummary play_rank_games(index_t games, std::uint64_t seed, const RankGameOptions& game,
                                 const RankEstimationOptions& estimator = {});

}  // namespace idprune::la
