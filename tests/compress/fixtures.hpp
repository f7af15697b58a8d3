#pragma once
// Small models and inputs for the compression tests, generated from explicit seeds: He-initialised
// ReLU MLPs (optionally with random biases) and inputs of low rank, so that hidden activations have
// decaying spectra and the ID has something to compress. Only mathematics is checked with them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "idprune/dist/comm.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/matrix.hpp"
#include "idprune/nn/mlp.hpp"
#include "idprune/nn/train.hpp"
#include "support/matrices.hpp"

namespace idprune::test {

inline constexpr double eps = std::numeric_limits<double>::epsilon();

using la::uz;

/// d_in - hidden... - classes ReLU MLP, weights N(0, 2/d_in); with `bias`, biases N(0, 0.1^2).
inline nn::Mlp random_mlp(index_t d_in, std::vector<index_t> hidden, index_t classes, bool bias, std::uint64_t seed) {
  nn::Mlp m = nn::initialize_mlp(d_in, hidden, classes, bias, seed);
  if (bias) {
    std::mt19937_64 gen(seed ^ 0xb1a5ULL);
    std::normal_distribution<double> normal(0.0, 0.1);
    for (index_t l = 0; l < m.num_layers(); ++l)
      for (double& b : m.layer(l).bias_values()) b = normal(gen);
  }
  return m;
}

/// n x d inputs in [0, 1] of numerical rank about r: a logistic squashing of a rank-r Gaussian
/// product plus small noise (the squashing makes the rows look like images, not exactly low rank).
inline Matrix structured_inputs(index_t n, index_t d, index_t r, std::uint64_t seed) {
  const Matrix a = gaussian(n, r, seed);
  const Matrix b = gaussian(r, d, seed + 1);
  Matrix x = la::matmul(a, b);
  const Matrix noise = gaussian(n, d, seed + 2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(r));
  for (index_t j = 0; j < d; ++j)
    for (index_t i = 0; i < n; ++i) x(i, j) = 1.0 / (1.0 + std::exp(-(scale * x(i, j) + 0.05 * noise(i, j))));
  return x;
}

/// Labels: the argmax of a fixed random linear map of the inputs (a task the model did not learn;
/// only counting is tested with it).
inline std::vector<int> labels_for(const Matrix& x, index_t classes, std::uint64_t seed) {
  const Matrix w = gaussian(x.cols(), classes, seed);
  return nn::argmax_rows(la::matmul(x, w));
}

/// Largest |a - b| entry relative to max(1, |a|) (for logits).
inline double max_abs_diff(const Matrix& a, const Matrix& b) {
  EXPECT_EQ(a.rows(), b.rows());
  EXPECT_EQ(a.cols(), b.cols());
  double d = 0.0;
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) d = std::max(d, std::abs(a(i, j) - b(i, j)));
  return d;
}

/// True when two models have the same shapes and bit-identical parameters.
inline bool identical_models(const nn::Mlp& a, const nn::Mlp& b) {
  if (a.num_layers() != b.num_layers()) return false;
  for (index_t l = 0; l < a.num_layers(); ++l) {
    const auto& la_ = a.layer(l);
    const auto& lb = b.layer(l);
    if (la_.factor_count() != lb.factor_count() || la_.bias() != lb.bias()) return false;
    for (index_t f = 0; f < la_.factor_count(); ++f) {
      const Matrix& fa = la_.factor(f);
      const Matrix& fb = lb.factor(f);
      if (fa.rows() != fb.rows() || fa.cols() != fb.cols()) return false;
      for (index_t i = 0; i < fa.size(); ++i)
        if (fa.values()[static_cast<std::size_t>(i)] != fb.values()[static_cast<std::size_t>(i)]) return false;
    }
  }
  return true;
}

/// This rank's contiguous block of `full` (dist::block_rows), e.g. its labels of a distributed set.
template <class T>
std::vector<T> block_of(const std::vector<T>& full, const dist::Comm& comm) {
  const auto r = dist::block_rows(static_cast<index_t>(full.size()), comm.size(), comm.rank());
  return {full.begin() + r.begin, full.begin() + r.begin + r.count};
}

/// A model with a compression set, a validation split and a test set, identical on every rank.
struct SelectionProblem {
  nn::Mlp model;
  Matrix xc;  ///< full compression set (every rank)
  Matrix xv;
  std::vector<int> yv;
  Matrix xt;
  std::vector<int> yt;
};

/// A small ReLU network (30-24-20-16-5; with `bias`, distinct random biases, so that a bias vector
/// identifies the neurons it belongs to) with a decaying activation spectrum, and labels it
/// predicts well enough that compression changes accuracy visibly: its own predictions with every
/// seventh flipped.
inline SelectionProblem selection_problem(std::uint64_t seed, bool bias = false) {
  SelectionProblem p;
  p.model = random_mlp(30, {24, 20, 16}, 5, bias, seed);
  p.xc = structured_inputs(150, 30, 8, seed + 1);
  p.xv = structured_inputs(240, 30, 8, seed + 2);
  p.xt = structured_inputs(200, 30, 8, seed + 3);
  p.yv = p.model.predict(p.xv);
  p.yt = p.model.predict(p.xt);
  std::mt19937_64 gen(seed + 4);
  for (std::size_t i = 0; i < p.yv.size(); i += 7) p.yv[i] = static_cast<int>(gen() % 5);
  for (std::size_t i = 0; i < p.yt.size(); i += 7) p.yt[i] = static_cast<int>(gen() % 5);
  return p;
}

/// A small model (24-32-24-16-5) with a compression set and labelled test rows, identical on every
/// rank (each rank takes its block where needed).
struct CompressionProblem {
  nn::Mlp model;
  Matrix xc;
  Matrix xt;
  std::vector<int> yt;
};

inline CompressionProblem compression_problem(std::uint64_t seed, bool bias, index_t test_rows) {
  CompressionProblem p;
  p.model = random_mlp(24, {32, 24, 16}, 5, bias, seed);
  p.xc = structured_inputs(150, 24, 8, seed + 1);
  p.xt = structured_inputs(test_rows, 24, 8, seed + 2);
  p.yt = labels_for(p.xt, 5, seed + 3);
  return p;
}

}  // namespace idprune::test
