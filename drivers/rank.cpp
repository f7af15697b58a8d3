// `idprune rank`: black-box rank estimation (the second reference text's "Reducio!" game).
#include <chrono>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/rank_estimation.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"([--trials N --seed S [--dim D]]

Estimates the rank of a map that can only be queried (la::estimate_rank):
  Jacobian-vector products by central differences, (f(x+h d) - f(x-h d)) / 2h with
  h = eps^(1/3) * max(1, rms(x)), along random orthonormal directions d at K random base points
  x ~ N(0, I), stacked into M = [J(x_1) D; ...; J(x_K) D]. Its singular values show the rank as
  the largest gap s_i / s_{i+1} that drops to the finite-difference noise level tau, which is
  measured (the first directions re-differenced with step 2h), not assumed; tau is appended as a
  virtual s_{p+1}, so a full-rank map shows its gap at s_p / tau. Directions are added in rounds
  (16, then p/2 more each round) until the estimate leaves 2 directions of noise or all dim
  are used; a query is one evaluation of f.

The game (--trials): Hermione picks r uniformly in [1, floor(0.95 dim)] (= [1, 95] for dim 100)
and W1 (r x dim), W2 (dim x r) with i.i.d. N(0, 1) entries (numpy.random.randn; the reference text states no
distribution; --w1-scale/--w2-scale change the standard deviations); f(x) = sin(W2 cos(W1 x)).
Prints the fraction of correct answers, queries per game (mean, max) and every failure.
Game g draws from the seed (S, g), so results do not depend on the number of threads.)";

int run_game(const po::variables_map& vm) {
  const long trials = vm["trials"].as<long>();
  const long dim = vm["dim"].as<long>();
  require(trials >= 1, "--trials=", trials, " (needs >= 1)");
  require(dim >= 1, "--dim=", dim, " (needs >= 1)");
  la::RankGameOptions game;
  game.dim = dim;
  game.w1_scale = vm["w1-scale"].as<double>();
  game.w2_scale = vm["w2-scale"].as<double>();
  require(game.w1_scale > 0.0 && game.w2_scale > 0.0, "--w1-scale=", game.w1_scale, ", --w2-scale=", game.w2_scale,
          " (need > 0)");
  la::RankEstimationOptions est;
  est.base_points = vm["base-points"].as<long>();
  est.step_factor = vm["step-factor"].as<double>();
  est.noise_factor = vm["noise-factor"].as<double>();
  const auto seed = vm["seed"].as<unsigned long>();

  const auto start = std::chrono::steady_clock::now();
  const la::RankGamesSummary summary = la::play_rank_games(trials, seed, game, est);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::cout << "games: " << summary.games << " (dim " << dim << ", seed " << seed << ", W1 ~ N(0, " << game.w1_scale
            << "^2), W2 ~ N(0, " << game.w2_scale << "^2), base points " << est.base_points << ")\n"
            << "correct: " << summary.correct << " / " << summary.games << "\n"
            << "fraction correct: " << std::fixed << std::setprecision(4) << summary.fraction_correct() << "\n"
            << "queries per game: mean " << std::setprecision(1) << summary.mean_queries << ", max "
            << summary.max_queries << "\n"
            << "time: " << std::setprecision(2) << seconds << " s\n"
            << "failures: " << summary.failures.size() << "\n";
  for (const auto& f : summary.failures)
    std::cout << "  game " << f.game << ": true rank " << f.true_rank << ", estimated " << f.estimated_rank << "\n";
  return 0;
}

}  // namespace

int run_rank(const std::vector<std::string>& args) {
  po::options_description options("rank options");
  options.add_options()("trials", po::value<long>()->default_value(1000), "number of games to play")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the games and the estimator")(
      "dim", po::value<long>()->default_value(100), "input and output dimension of the hidden map")(
      "w1-scale", po::value<double>()->default_value(1.0), "standard deviation of the entries of W1")(
      "w2-scale", po::value<double>()->default_value(1.0), "standard deviation of the entries of W2")(
      "base-points", po::value<long>()->default_value(2), "K, base points whose Jacobians are stacked")(
      "step-factor", po::value<double>()->default_value(0.0), "h / max(1, rms(x)); 0 means eps^(1/3)")(
      "noise-factor", po::value<double>()->default_value(10.0),
      "a gap counts when it drops to <= this multiple of the measured noise level");
  po::variables_map vm;
  if (!parse("rank", kUsage, options, args, vm)) return 0;
  return run_game(vm);
}

}  // namespace idprune::cli
