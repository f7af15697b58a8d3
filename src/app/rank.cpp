#include <algorithm>
#include <array>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "idprune/app/inputs.hpp"
#include "idprune/app/model_options.hpp"
#include "idprune/app/options.hpp"
#include "idprune/app/tools.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"
#include "idprune/la/rank_estimation.hpp"
#include "idprune/la/svd.hpp"
#include "idprune/nn/model_io.hpp"

namespace idprune::app {

int rank_game(const po::variables_map& vm, std::ostream& out) {
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

  out << "games: " << summary.games << " (dim " << dim << ", seed " << seed << ", W1 ~ N(0, " << game.w1_scale
      << "^2), W2 ~ N(0, " << game.w2_scale << "^2), base points " << est.base_points << ")\n"
      << "correct: " << summary.correct << " / " << summary.games << "\n"
      << "fraction correct: " << std::fixed << std::setprecision(4) << summary.fraction_correct() << "\n"
      << "queries per game: mean " << std::setprecision(1) << summary.mean_queries << ", max " << summary.max_queries
      << "\n"
      << "time: " << std::setprecision(2) << seconds << " s\n"
      << "failures: " << summary.failures.size() << "\n";
  for (const auto& f : summary.failures)
    out << "  game " << f.game << ": true rank " << f.true_rank << ", estimated " << f.estimated_rank << "\n";
  return 0;
}

/// The black box x -> h_L(x) of a model's hidden layer, points as columns (the model takes rows).
namespace {
la::BatchQuery layer_query(const nn::Mlp& model, la::index_t layer) {
  return [&model, layer](la::ConstMatrixView points) {
    const la::Matrix rows = la::transpose(points);
    return la::transpose(model.hidden_activations(rows, layer));
  };
}

void print_spectrum_ends(std::ostream& out, const std::vector<double>& s, la::index_t rank) {
  const auto r = static_cast<std::size_t>(rank);
  out << "  s_1 " << s.front();
  if (r >= 1 && r <= s.size()) out << ", s_rank " << s[r - 1];
  if (r < s.size()) out << ", s_{rank+1} " << s[r];
  out << ", s_min " << s.back() << "\n";
}

}  // namespace

int rank_model(const po::variables_map& vm, const dist::Comm& comm, std::ostream& out) {
  const std::string path = vm["model"].as<std::string>();
  la::RankEstimationOptions est;
  est.base_points = vm["base-points"].as<long>();
  est.step_factor = vm["step-factor"].as<double>();
  est.noise_factor = vm["noise-factor"].as<double>();
  const auto seed = vm["seed"].as<unsigned long>();
  est.seed = seed;
  require(est.base_points >= 1, "--base-points=", est.base_points, " (needs >= 1)");
  const long layer = vm["layer"].as<long>();
  const long samples = vm["samples"].as<long>();
  require(layer >= 1, "--layer=", layer, " (needs >= 1)");

  // The inputs on every rank, checked collectively and compared across ranks by content.
  std::string model_sha256;
  const nn::Mlp model = load_model_on_every_rank(comm, "rank", path, model_sha256, model_read_options(vm));
  dist::check_collective(comm, dist::capture_error([&] {
                           require(layer <= model.num_hidden(), "--layer=", layer, " must be in [1, ",
                                   model.num_hidden(), "] (hidden layers of ", path, ", 1-based)");
                         }));
  const la::index_t hidden = layer - 1;
  const la::index_t dim = model.input_dim();
  const la::index_t width = model.hidden(hidden).d_out();
  data::Dataset set;
  if (vm.count("data")) {
    const std::string dir = vm["data"].as<std::string>();
    std::string data_sha256;
    dist::check_collective(
        comm, dist::capture_error([&] {
          dist::inject_fault(comm.rank(), "load-data");
          const data::DatasetInfo info = data::dataset_info(dir, data::Split::train);
          require(info.features == dim, "--data ", dir, " has ", info.features, " features, the model takes ", dim);
          require(samples >= est.base_points && samples <= info.samples, "--samples=", samples, " must be in [",
                  est.base_points, ", ", info.samples, "] (training samples of ", dir, ")");
          data_sha256 = app::data_sha256(dir, std::array<data::Split, 1>{data::Split::train});
          const auto rows = data::sample_without_replacement(info.samples, samples, seed);
          set = data::load_dataset_rows(dir, data::Split::train, rows);
        }));
    check_same_data(comm, "rank", dir, data_sha256);
  }

  out << "model: " << path << " (widths";
  for (const auto w : model.widths()) out << " " << w;
  out << "), hidden layer " << layer << " of width " << width << "\n";

  const la::BatchQuery query = layer_query(model, hidden);
  la::RankEstimate e;
  la::Matrix activations;
  std::string base_text = "x ~ N(0, I)";
  if (vm.count("data")) {
    // Base points: the first K of the sampled rows, as columns.
    const la::Matrix base = la::transpose(set.x.view().rows_range(0, est.base_points));
    e = la::estimate_rank_at(query, base, est);
    activations = model.hidden_activations(set.x, hidden);
    base_text = std::to_string(est.base_points) + " training samples of " + vm["data"].as<std::string>();
  } else {
    e = la::estimate_rank_batched(query, dim, est);
  }
  out << "black-box rank of x -> h_" << layer << "(x): " << e.rank
      << " (of at most min(input dim, K x width) = " << std::min(dim, est.base_points * width)
      << "; base points: " << base_text << ")\n"
      << "  queries " << e.queries << ", directions " << e.directions << ", noise level " << e.noise_level << ", gap "
      << e.gap << "\n";
  print_spectrum_ends(out, e.singular_values, e.rank);

  if (!activations.empty()) {
    const std::vector<double> s = la::singular_values(activations);
    const double rounding = static_cast<double>(std::max(activations.rows(), activations.cols())) *
                            std::numeric_limits<double>::epsilon() * s.front();
    const la::index_t gap_rank = la::rank_from_gap(s, rounding, 1.0);
    out << "activation matrix: " << activations.rows() << " samples x " << activations.cols() << " neurons\n"
        << "  numerical rank (largest gap down to max(n, d) eps s_1 = " << rounding << "): " << gap_rank << "\n"
        << "  singular values above 1e-2 s_1: ";
    for (const double tol : {1e-2, 1e-4, 1e-8}) {
      const auto count = std::count_if(s.begin(), s.end(), [&](double v) { return v > tol * s.front(); });
      if (tol != 1e-2) out << ", above " << tol << " s_1: ";
      out << count;
    }
    out << "\n";
    print_spectrum_ends(out, s, gap_rank);
  }
  return 0;
}

}  // namespace idprune::app
