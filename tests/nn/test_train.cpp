// The trainer: backpropagation against finite differences, determinism, and learning.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "idprune/nn/train.hpp"
#include "support/matrices.hpp"

namespace {

using idprune::Error;
using idprune::la::index_t;
using idprune::la::Matrix;
using idprune::nn::Activation;
using idprune::nn::DenseLayer;
using idprune::nn::Mlp;

constexpr double eps = std::numeric_limits<double>::epsilon();

std::vector<int> random_labels(index_t n, int classes, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int> y(static_cast<std::size_t>(n));
  for (int& v : y) v = static_cast<int>(gen() % static_cast<std::uint64_t>(classes));
  return y;
}

// Central differences with step h = eps^(1/3) max(1, |p|) have error about
// h^2 |L'''| / 6 + eps |L| / h = O(eps^(2/3)) for O(1) loss and derivatives; c = 100 covers the
// constants. A wrong sign, a missing ReLU mask or a wrong transpose gives O(0.1) differences.
void check_gradient(Mlp model, const Matrix& x, const std::vector<int>& y) {
  idprune::nn::Gradients g;
  const double loss = idprune::nn::loss_and_gradient(model, x, y, g);
  EXPECT_NEAR(loss, idprune::nn::cross_entropy(model, x, y), 4 * eps * std::abs(loss));
  double gmax = 1.0;
  for (const auto& w : g.weight)
    for (double v : w.values()) gmax = std::max(gmax, std::abs(v));
  const double tol = 100 * std::cbrt(eps) * std::cbrt(eps) * gmax;
  std::size_t k = 0;  // the factor's index in g.weight
  for (index_t l = 0; l < model.num_layers(); ++l) {
    auto& layer = model.layer(l);
    for (index_t f = 0; f < layer.factor_count(); ++f, ++k) {
      auto w = layer.factor_values(f);
      for (index_t j = 0; j < w.cols(); ++j)
        for (index_t i = 0; i < w.rows(); ++i) {
          const double p = w(i, j);
          const double h = std::cbrt(eps) * std::max(1.0, std::abs(p));
          w(i, j) = p + h;
          const double up = idprune::nn::cross_entropy(model, x, y);
          w(i, j) = p - h;
          const double down = idprune::nn::cross_entropy(model, x, y);
          w(i, j) = p;
          EXPECT_NEAR(g.weight[k](i, j), (up - down) / (2 * h), tol)
              << "dL/dF layer " << l << " factor " << f << " (" << i << ", " << j << ")";
        }
    }
    auto b = layer.bias_values();
    for (std::size_t k = 0; k < b.size(); ++k) {
      const double p = b[k];
      const double h = std::cbrt(eps) * std::max(1.0, std::abs(p));
      b[k] = p + h;
      const double up = idprune::nn::cross_entropy(model, x, y);
      b[k] = p - h;
      const double down = idprune::nn::cross_entropy(model, x, y);
      b[k] = p;
      EXPECT_NEAR(g.bias[static_cast<std::size_t>(l)][k], (up - down) / (2 * h), tol)
          << "dL/db layer " << l << " " << k;
    }
  }
}

TEST(Train, BackpropagationMatchesFiniteDifferences) {
  const std::vector<index_t> widths{6, 4};
  Mlp model = idprune::nn::initialize_mlp(5, widths, 3, true, 61);
  // Non-zero biases so their gradients and the ReLU masks are exercised off the origin.
  for (index_t l = 0; l < model.num_layers(); ++l) {
    auto b = model.layer(l).bias_values();
    for (std::size_t k = 0; k < b.size(); ++k) b[k] = 0.1 * std::sin(static_cast<double>(7 * l + k));
  }
  check_gradient(model, idprune::test::gaussian(9, 5, 62), random_labels(9, 3, 63));
}

// A factored layer (W = F_1 F_2, as a low-rank layer, and F_1 F_2 F_3) trains its factors: the
// gradient of every factor against finite differences, between ordinary layers.
TEST(Train, BackpropagationThroughFactoredLayersMatchesFiniteDifferences) {
  for (const int q : {2, 3}) {
    SCOPED_TRACE(q);
    std::vector<DenseLayer> hidden;
    std::vector<Matrix> factors;
    factors.push_back(idprune::test::gaussian(5, 3, 71));
    if (q == 3) factors.push_back(idprune::test::gaussian(3, 2, 72));
    factors.push_back(idprune::test::gaussian(q == 3 ? 2 : 3, 6, 73));
    std::vector<double> b1(6);
    for (std::size_t k = 0; k < b1.size(); ++k) b1[k] = 0.1 * std::cos(static_cast<double>(k));
    hidden.emplace_back(std::move(factors), b1, Activation::relu);
    hidden.emplace_back(idprune::test::gaussian(6, 4, 74), std::vector<double>(4, 0.05), Activation::relu);
    Mlp model(std::move(hidden),
              DenseLayer(idprune::test::gaussian(4, 3, 75), std::vector<double>(3, 0.0), Activation::identity));
    check_gradient(model, idprune::test::gaussian(9, 5, 76), random_labels(9, 3, 77));
  }
}

TEST(Train, BackpropagationThroughAnIdentityLayerWithoutBiases) {
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(idprune::test::gaussian(4, 5, 64), std::vector<double>{}, Activation::relu);
  hidden.emplace_back(idprune::test::gaussian(5, 3, 65), std::vector<double>{}, Activation::identity);
  Mlp model(std::move(hidden), DenseLayer(idprune::test::gaussian(3, 4, 66), {}, Activation::identity));
  check_gradient(model, idprune::test::gaussian(6, 4, 67), random_labels(6, 4, 68));
}

TEST(Train, CrossEntropyIsMinusLogSoftmaxOfTheLabel) {
  const std::vector<index_t> widths{5};
  const Mlp model = idprune::nn::initialize_mlp(3, widths, 4, false, 69);
  const Matrix x = idprune::test::gaussian(8, 3, 70);
  const auto y = random_labels(8, 4, 71);
  const Matrix p = idprune::nn::softmax_rows(model.logits(x));
  double want = 0.0;
  for (index_t i = 0; i < 8; ++i) want -= std::log(p(i, y[static_cast<std::size_t>(i)]));
  want /= 8;
  EXPECT_NEAR(idprune::nn::cross_entropy(model, x, y), want, 16 * eps * want);
}

TEST(Train, InitialisationHasHeVarianceAndDependsOnlyOnTheSeed) {
  const std::vector<index_t> widths{1024};
  const Mlp a = idprune::nn::initialize_mlp(784, widths, 10, false, 5);
  const auto& w = a.hidden(0).factor(0).values();
  const auto n = static_cast<double>(w.size());
  double mean = 0.0, sq = 0.0;
  for (double v : w) mean += v;
  mean /= n;
  for (double v : w) sq += (v - mean) * (v - mean);
  const double variance = 2.0 / 784;
  // Sampling error of the mean is sqrt(variance / n); of the variance, variance * sqrt(2 / n): 5 sigma.
  EXPECT_LE(std::abs(mean), 5 * std::sqrt(variance / n));
  EXPECT_LE(std::abs(sq / (n - 1) / variance - 1.0), 5 * std::sqrt(2.0 / n));
  const Mlp b = idprune::nn::initialize_mlp(784, widths, 10, false, 5);
  const Mlp c = idprune::nn::initialize_mlp(784, widths, 10, false, 6);
  EXPECT_EQ(0, std::memcmp(w.data(), b.hidden(0).factor(0).data(), w.size() * sizeof(double)));
  EXPECT_NE(0, std::memcmp(w.data(), c.hidden(0).factor(0).data(), w.size() * sizeof(double)));
}

// Three classes, label = argmax of the first three coordinates: separable by a linear classifier.
void separable_problem(index_t n, std::uint64_t seed, Matrix& x, std::vector<int>& y) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  x = Matrix(n, 4);
  y.assign(static_cast<std::size_t>(n), 0);
  for (index_t i = 0; i < n; ++i) {
    for (index_t j = 0; j < 4; ++j) x(i, j) = u(gen);
    int best = 0;
    for (int c = 1; c < 3; ++c)
      if (x(i, c) > x(i, best)) best = c;
    y[static_cast<std::size_t>(i)] = best;
  }
}

TEST(Train, ReducesLossOnASeparableProblem) {
  Matrix x;
  std::vector<int> y;
  separable_problem(300, 72, x, y);
  const std::vector<index_t> widths{16};
  Mlp model = idprune::nn::initialize_mlp(4, widths, 3, true, 73);
  const double before = idprune::nn::cross_entropy(model, x, y);
  idprune::nn::TrainOptions options;
  options.epochs = 40;
  options.batch_size = 16;
  options.learning_rate = 1e-2;
  int calls = 0;
  const auto history = idprune::nn::train(model, x, y, options, [&](const auto& report, const Mlp&) {
    ++calls;
    EXPECT_EQ(report.epoch, calls);
  });
  ASSERT_EQ(history.size(), 40u);
  EXPECT_EQ(calls, 40);
  const double after = idprune::nn::cross_entropy(model, x, y);
  EXPECT_LT(after, 0.25 * before) << "before " << before << ", after " << after;
  EXPECT_LT(history.back().loss, history.front().loss);
  EXPECT_GE(idprune::nn::count_correct(model.predict(x), y, 3).accuracy(), 0.9);
  // Cosine schedule: the first epoch runs at the full rate, later ones below it.
  EXPECT_EQ(history.front().learning_rate, options.learning_rate);
  EXPECT_LT(history.back().learning_rate, 0.01 * options.learning_rate);
}

TEST(Train, SameSeedGivesBitwiseSameWeights) {
  Matrix x;
  std::vector<int> y;
  separable_problem(203, 74, x, y);  // 203 = 12 full batches of 16 and a partial one
  const std::vector<index_t> widths{8, 6};
  idprune::nn::TrainOptions options;
  options.epochs = 3;
  options.batch_size = 16;
  options.seed = 75;
  const auto run = [&](std::uint64_t shuffle_seed) {
    Mlp model = idprune::nn::initialize_mlp(4, widths, 3, true, 76);
    auto o = options;
    o.seed = shuffle_seed;
    (void)idprune::nn::train(model, x, y, o);
    return model;
  };
  const Mlp a = run(75);
  const Mlp b = run(75);
  const Mlp c = run(77);
  bool all_same_as_c = true;
  for (index_t l = 0; l < a.num_layers(); ++l) {
    const auto& wa = a.layer(l).factor(0).values();
    EXPECT_EQ(0, std::memcmp(wa.data(), b.layer(l).factor(0).data(), wa.size() * sizeof(double))) << "layer " << l;
    EXPECT_EQ(0, std::memcmp(a.layer(l).bias().data(), b.layer(l).bias().data(), a.layer(l).bias().size() * 8));
    all_same_as_c = all_same_as_c && std::memcmp(wa.data(), c.layer(l).factor(0).data(), wa.size() * 8) == 0;
  }
  EXPECT_FALSE(all_same_as_c);  // another shuffle seed visits the batches in another order
}

TEST(Train, RejectsBadInputs) {
  const std::vector<index_t> widths{3};
  Mlp model = idprune::nn::initialize_mlp(2, widths, 2, false, 78);
  const Matrix x(4, 2, 0.5);
  idprune::nn::TrainOptions options;
  EXPECT_THROW((void)idprune::nn::train(model, x, std::vector<int>{0, 1, 2, 0}, options), Error);  // label 2
  EXPECT_THROW((void)idprune::nn::train(model, x, std::vector<int>{0, 1, 1}, options), Error);     // 3 labels
  EXPECT_THROW((void)idprune::nn::train(model, Matrix(4, 3), std::vector<int>{0, 1, 1, 0}, options), Error);
  options.batch_size = 0;
  EXPECT_THROW((void)idprune::nn::train(model, x, std::vector<int>{0, 1, 1, 0}, options), Error);
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(std::vector<Matrix>{Matrix(2, 1, 1.0), Matrix(1, 3, 1.0)}, std::vector<double>{},
                      Activation::relu);
  Mlp factored(std::move(hidden), DenseLayer(Matrix(3, 2, 1.0), {}, Activation::identity));
  // A factored layer is trainable (its factors are the parameters) and keeps its shapes.
  EXPECT_NO_THROW((void)idprune::nn::train(factored, x, std::vector<int>{0, 1, 1, 0}, {}));
  EXPECT_EQ(factored.layer(0).factor_count(), 2);
  EXPECT_EQ(factored.layer(0).factor(0).cols(), 1);
  EXPECT_THROW((void)idprune::nn::parse_lr_schedule("step"), Error);
}

}  // namespace
