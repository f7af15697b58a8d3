// `idprune rank`: black-box rank estimation (the second reference text's "Reducio!" game).
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/tools.hpp"
#include "idprune/dist/collectives.hpp"
#include "idprune/la/error.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"([--trials N --seed S [--dim D]] | --model M --layer L [--data D]

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
Game g draws from the seed (S, g), so results do not depend on the number of threads.

A model layer (--model M --layer L, L = 1 for the first hidden layer): the map x -> h_L(x) from the
input to the activations of hidden layer L is the black box; the result is the number of input
directions the layer's activations depend on at the base points (K training samples of --data,
drawn with --seed, else x ~ N(0, I)). A ReLU network is piecewise linear: the central differences
are exact (no truncation) unless x +- h d crosses a kink, which the small h makes rare.
With --data it also reports the activation matrix Z = h_L(X) of --samples training samples
(samples x width): its singular values, the number above 1e-2, 1e-4, 1e-8 of s_1, and the
numerical rank from the largest gap down to the rounding level max(samples, width) eps s_1.
Under mpirun every rank computes the same estimate (each must read the same model and data,
compared by content) and rank 0 prints it.

Examples:
  idprune rank --trials 100 --seed 1
  idprune rank --model data/models/fashion-mnist-small.safetensors --layer 1 --data data/fashion-mnist-small)";
}  // namespace

int run_rank(const std::vector<std::string>& args) {
  po::options_description options("rank options");
  options.add_options()("trials", po::value<long>()->default_value(1000), "number of games to play")(
      "seed", po::value<unsigned long>()->default_value(1), "seed of the games and the estimator")(
      "dim", po::value<long>()->default_value(100), "input and output dimension of the hidden map")(
      "w1-scale", real(1.0), "standard deviation of the entries of W1")("w2-scale", real(1.0),
                                                                        "standard deviation of the entries of W2")(
      "base-points", po::value<long>()->default_value(2), "K, base points whose Jacobians are stacked")(
      "step-factor", real(0.0), "h / max(1, rms(x)); 0 means eps^(1/3)")(
      "noise-factor", real(10.0), "a gap counts when it drops to <= this multiple of the measured noise level")(
      "model", path(), "model file (safetensors) or .npy folder: estimate a layer's rank")(
      "layer", po::value<long>(), "hidden layer of --model, 1-based")(
      "data", path(), "data folder (IDX or CIFAR-10): base points and activation matrix")(
      "samples", po::value<long>()->default_value(1000), "training samples for the activation matrix (--data)");
  add_layer_order_option(options);
  po::variables_map vm;
  if (!parse("rank", kUsage, options, args, vm)) return 0;
  const auto comm = dist::Comm::world();
  // Every rank computes; rank 0 prints.
  std::ostringstream discarded;
  std::ostream& out = comm.rank() == 0 ? std::cout : discarded;
  if (vm.count("model") || vm.count("layer")) {
    require(vm.count("model") && vm.count("layer"), "--model and --layer go together");
    require(vm["trials"].defaulted(), "--trials plays the game; it does not combine with --model");
    return app::rank_model(vm, comm, out);
  }
  require(!vm.count("data"), "--data needs --model and --layer");
  // The same computation on every rank: a failure is reported once, by every rank together.
  int rc = 0;
  dist::check_collective(comm, dist::capture_error([&] { rc = app::rank_game(vm, out); }));
  return rc;
}

}  // namespace idprune::cli
