// MLP forward pass, shapes, counts and predictions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "idprune/la/blas.hpp"
#include "idprune/nn/mlp.hpp"
#include "support/matrices.hpp"

namespace {

using idprune::Error;
using idprune::la::index_t;
using idprune::la::Matrix;
using idprune::nn::Activation;
using idprune::nn::DenseLayer;
using idprune::nn::Mlp;

constexpr double eps = std::numeric_limits<double>::epsilon();

std::vector<double> vec(index_t n, std::uint64_t seed) {
  const Matrix g = idprune::test::gaussian(n, 1, seed);
  return {g.values().begin(), g.values().end()};
}

// A small model with every feature: biases, a bias-free layer, a factored (low-rank) layer,
// an identity hidden layer.
Mlp small_model() {
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(idprune::test::gaussian(9, 7, 1), vec(7, 2), Activation::relu);
  hidden.emplace_back(std::vector<Matrix>{idprune::test::gaussian(7, 3, 3), idprune::test::gaussian(3, 6, 4)},
                      vec(6, 5), Activation::relu);
  hidden.emplace_back(idprune::test::gaussian(6, 5, 6), std::vector<double>{}, Activation::identity);
  hidden.emplace_back(idprune::test::gaussian(5, 8, 7), std::vector<double>{}, Activation::relu);
  DenseLayer classifier(idprune::test::gaussian(8, 4, 8), vec(4, 9), Activation::identity);
  return Mlp(std::move(hidden), std::move(classifier));
}

// Naive y = act(x F_1 ... F_q + b) by explicit loops, and the componentwise error bound
// c * eps * (sum of inner dimensions) * (|x| |F_1| ... |F_q| + |b|) (Higham, Accuracy and Stability,
// eq. 3.13, for each product in turn; ReLU is 1-Lipschitz so the bound survives it).
void naive_layer(const DenseLayer& layer, const Matrix& x, Matrix& y, Matrix& bound) {
  Matrix t = x;
  Matrix abs_t(x.rows(), x.cols());
  for (index_t j = 0; j < x.cols(); ++j)
    for (index_t i = 0; i < x.rows(); ++i) abs_t(i, j) = std::abs(x(i, j));
  index_t inner = 0;
  for (const auto& f : layer.factors()) {
    Matrix next(t.rows(), f.cols());
    Matrix abs_next(t.rows(), f.cols());
    for (index_t i = 0; i < t.rows(); ++i)
      for (index_t j = 0; j < f.cols(); ++j) {
        double s = 0.0;
        double a = 0.0;
        for (index_t k = 0; k < f.rows(); ++k) {
          s += t(i, k) * f(k, j);
          a += abs_t(i, k) * std::abs(f(k, j));
        }
        next(i, j) = s;
        abs_next(i, j) = a;
      }
    inner += f.rows();
    t = std::move(next);
    abs_t = std::move(abs_next);
  }
  y = t;
  bound = Matrix(t.rows(), t.cols());
  for (index_t i = 0; i < t.rows(); ++i)
    for (index_t j = 0; j < t.cols(); ++j) {
      const double b = layer.has_bias() ? layer.bias()[static_cast<std::size_t>(j)] : 0.0;
      y(i, j) += b;
      if (layer.activation() == Activation::relu) y(i, j) = std::max(y(i, j), 0.0);
      bound(i, j) = 4.0 * eps * static_cast<double>(inner + 1) * (abs_t(i, j) + std::abs(b));
    }
}

void expect_within(const Matrix& got, const Matrix& want, const Matrix& bound, const std::string& what) {
  ASSERT_EQ(got.rows(), want.rows()) << what;
  ASSERT_EQ(got.cols(), want.cols()) << what;
  for (index_t j = 0; j < got.cols(); ++j)
    for (index_t i = 0; i < got.rows(); ++i)
      ASSERT_LE(std::abs(got(i, j) - want(i, j)), bound(i, j)) << what << " at (" << i << ", " << j << ")";
}

TEST(Mlp, ForwardMatchesNaiveLoopsLayerByLayer) {
  const Mlp model = small_model();
  const Matrix x = idprune::test::gaussian(13, 9, 10);
  Matrix input = x;
  for (index_t l = 0; l < model.num_hidden(); ++l) {
    Matrix want, bound;
    naive_layer(model.hidden(l), input, want, bound);
    const Matrix got = model.hidden_activations(x, l);
    expect_within(got, want, bound, "hidden layer " + std::to_string(l));
    input = got;  // the next layer is compared on the same input
  }
  Matrix want, bound;
  naive_layer(model.classifier(), input, want, bound);
  expect_within(model.logits(x), want, bound, "logits");
  expect_within(model.logits_from_hidden(input, model.num_hidden() - 1), want, bound, "logits_from_hidden");
}

TEST(Mlp, ReluZeroesNegativeEntriesOnly) {
  const Mlp model = small_model();
  const Matrix x = idprune::test::gaussian(20, 9, 11);
  const Matrix h = model.hidden_activations(x, 0);
  index_t zeros = 0;
  for (double v : h.values()) {
    EXPECT_GE(v, 0.0);
    zeros += v == 0.0;
  }
  EXPECT_GT(zeros, 0);  // Gaussian pre-activations: about half are negative
  // The identity layer keeps negative values.
  const Matrix h2 = model.hidden_activations(x, 2);
  index_t negative = 0;
  for (double v : h2.values()) negative += v < 0.0;
  EXPECT_GT(negative, 0);
}

TEST(Mlp, PredictIsArgmaxOfLogitsWhateverTheBatchSize) {
  const Mlp model = small_model();
  const Matrix x = idprune::test::gaussian(37, 9, 12);
  const Matrix z = model.logits(x);
  const auto all = model.predict(x, 1000);
  ASSERT_EQ(all.size(), 37u);
  for (index_t i = 0; i < z.rows(); ++i)
    for (index_t j = 0; j < z.cols(); ++j) EXPECT_LE(z(i, j), z(i, all[static_cast<std::size_t>(i)]));
  for (index_t batch : {1, 5, 36, 37}) EXPECT_EQ(model.predict(x, batch), all) << "batch " << batch;
}

TEST(Mlp, ArgmaxTakesLowestIndexOnTies) {
  Matrix s(2, 3, 1.0);
  s(1, 2) = 2.0;
  const auto best = idprune::nn::argmax_rows(s);
  EXPECT_EQ(best[0], 0);
  EXPECT_EQ(best[1], 2);
}

TEST(Mlp, SoftmaxRowsSumToOneWithoutOverflow) {
  Matrix z = idprune::test::gaussian(5, 4, 13);
  z(0, 0) = 1000.0;  // exp(1000) overflows; the shifted form must not
  z(1, 1) = -1000.0;
  const Matrix p = idprune::nn::softmax_rows(z);
  for (index_t i = 0; i < p.rows(); ++i) {
    double s = 0.0;
    for (index_t j = 0; j < p.cols(); ++j) {
      EXPECT_TRUE(std::isfinite(p(i, j)));
      s += p(i, j);
    }
    EXPECT_LE(std::abs(s - 1.0), 4 * eps * static_cast<double>(p.cols()));
  }
  EXPECT_LE(std::abs(p(0, 0) - 1.0), 4 * eps);
}

TEST(Mlp, ParameterAndFlopCountsFollowTheWidths) {
  // The reference architecture, no biases: params = sum d_{l-1} d_l, FLOPs = 2 * params.
  const std::vector<index_t> widths{784, 1024, 512, 512, 256, 256, 128, 128, 10};
  std::vector<DenseLayer> hidden;
  index_t expected = 0;
  for (std::size_t l = 0; l + 2 < widths.size(); ++l) {
    hidden.emplace_back(Matrix(widths[l], widths[l + 1], 0.01));
    expected += widths[l] * widths[l + 1];
  }
  DenseLayer classifier(Matrix(128, 10, 0.01), {}, Activation::identity);
  expected += 128 * 10;
  const Mlp model(std::move(hidden), std::move(classifier));
  EXPECT_EQ(model.parameter_count(), expected);
  EXPECT_EQ(model.flops_per_sample(), 2.0 * static_cast<double>(expected));
  EXPECT_EQ(model.widths(), widths);
  EXPECT_EQ(model.layer_parameter_counts().size(), 8u);
  EXPECT_EQ(model.layer_parameter_counts().front(), 784 * 1024);

  // A factored layer counts its factors and bias: 9*7+7 | 7*3+3*6+6 | 30 | 40 | 32+4.
  const Mlp small = small_model();
  const std::vector<index_t> per_layer{9 * 7 + 7, 7 * 3 + 3 * 6 + 6, 6 * 5, 5 * 8, 8 * 4 + 4};
  EXPECT_EQ(small.layer_parameter_counts(), per_layer);
  EXPECT_EQ(small.flops_per_sample(), 2.0 * (9 * 7 + 7 * 3 + 3 * 6 + 6 * 5 + 5 * 8 + 8 * 4));
}

TEST(Mlp, FactoredLayerWeightIsTheProductOfItsFactors) {
  const Mlp model = small_model();
  const auto& layer = model.hidden(1);
  const Matrix w = layer.weight();
  const Matrix p = idprune::la::matmul(layer.factor(0), layer.factor(1));
  ASSERT_EQ(w.rows(), 7);
  ASSERT_EQ(w.cols(), 6);
  for (index_t j = 0; j < w.cols(); ++j)
    for (index_t i = 0; i < w.rows(); ++i) EXPECT_EQ(w(i, j), p(i, j));
}

TEST(Mlp, ShapeMismatchesAreErrors) {
  EXPECT_THROW(DenseLayer(Matrix(3, 4), std::vector<double>(3)), Error);  // bias length != d_out
  EXPECT_THROW(DenseLayer(std::vector<Matrix>{Matrix(3, 4), Matrix(5, 2)}, {}, Activation::relu), Error);
  EXPECT_THROW(DenseLayer(std::vector<Matrix>{}, {}, Activation::relu), Error);
  EXPECT_THROW(DenseLayer(Matrix(0, 4)), Error);
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(Matrix(3, 4));
  hidden.emplace_back(Matrix(5, 2));  // 4 != 5
  EXPECT_THROW(Mlp(hidden, DenseLayer(Matrix(2, 3), {}, Activation::identity)), Error);
  hidden.pop_back();
  EXPECT_THROW(Mlp(hidden, DenseLayer(Matrix(5, 3), {}, Activation::identity)), Error);  // classifier d_in
  EXPECT_THROW(Mlp(hidden, DenseLayer(Matrix(4, 3), {}, Activation::relu)), Error);      // classifier not identity
  const Mlp ok(hidden, DenseLayer(Matrix(4, 3), {}, Activation::identity));
  EXPECT_THROW((void)ok.logits(Matrix(2, 4)), Error);  // input width 4 != 3
  EXPECT_THROW((void)ok.hidden_activations(Matrix(2, 3), 1), Error);
  try {
    (void)ok.logits(Matrix(2, 4));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expects 3"), std::string::npos) << e.what();
  }
}

TEST(Mlp, CountsAreExactIntegers) {
  const std::vector<int> labels{0, 1, 2, 2, 1, 0, 2};
  const std::vector<int> predicted{0, 2, 2, 2, 1, 1, 0};
  const auto counts = idprune::nn::count_correct(predicted, labels, 3);
  EXPECT_EQ(counts.correct, (std::vector<std::int64_t>{1, 1, 2}));
  EXPECT_EQ(counts.total, (std::vector<std::int64_t>{2, 2, 3}));
  EXPECT_EQ(counts.correct_total(), 4);
  EXPECT_DOUBLE_EQ(counts.accuracy(), 4.0 / 7.0);
  EXPECT_DOUBLE_EQ(counts.class_accuracy(2), 2.0 / 3.0);
  EXPECT_EQ(idprune::nn::count_agreement(labels, predicted), 4);
  EXPECT_THROW((void)idprune::nn::count_correct(predicted, labels, 2), Error);  // label 2 >= classes
  EXPECT_THROW((void)idprune::nn::count_agreement(labels, std::vector<int>{1}), Error);
}

}  // namespace
