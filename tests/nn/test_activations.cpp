// Row-blocked forward passes and the hidden activations of a network: bitwise identical for any
// thread count, each layer computed once, streamed blocks equal to the in-memory pass.
#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <bit>
#include <cmath>
#include <limits>

#include "idprune/data/row_source.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/nn/activations.hpp"
#include "idprune/nn/mlp.hpp"
#include "support/matrices.hpp"

namespace {

using idprune::la::index_t;
using idprune::la::Matrix;
using idprune::nn::Activation;
using idprune::nn::DenseLayer;
using idprune::nn::ForwardOptions;
using idprune::nn::Mlp;
using idprune::test::gaussian;

constexpr double eps = std::numeric_limits<double>::epsilon();

std::vector<double> vec(index_t n, std::uint64_t seed) {
  const Matrix g = gaussian(n, 1, seed);
  return {g.values().begin(), g.values().end()};
}

/// Biases, a bias-free layer, a factored layer and an identity hidden layer.
Mlp model() {
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(gaussian(12, 20, 1), vec(20, 2), Activation::relu);
  hidden.emplace_back(std::vector<Matrix>{gaussian(20, 4, 3), gaussian(4, 16, 4)}, vec(16, 5), Activation::relu);
  hidden.emplace_back(gaussian(16, 9, 6), std::vector<double>{}, Activation::identity);
  hidden.emplace_back(gaussian(9, 11, 7), std::vector<double>{}, Activation::relu);
  return Mlp(std::move(hidden), DenseLayer(gaussian(11, 5, 8), vec(5, 9), Activation::identity));
}

void expect_identical(const Matrix& a, const Matrix& b, const std::string& what) {
  ASSERT_EQ(a.rows(), b.rows()) << what;
  ASSERT_EQ(a.cols(), b.cols()) << what;
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i)
      ASSERT_EQ(std::bit_cast<std::uint64_t>(a(i, j)), std::bit_cast<std::uint64_t>(b(i, j)))
          << what << " at (" << i << ", " << j << ")";
}

Matrix abs_of(const Matrix& a) {
  Matrix b = a;
  for (double& v : b.values()) v = std::abs(v);
  return b;
}

/// |layer(h) - y| <= 4 eps (k + 1) (|h| |F_1| ... |F_q| + |b|) entrywise (Higham, eq. 3.13, product
/// after product; ReLU is 1-Lipschitz), k the sum of the inner dimensions: y is layer(h) up to rounding.
void expect_layer_output(const DenseLayer& layer, const Matrix& h, const Matrix& y, const std::string& what) {
  Matrix exact;
  layer.forward(h, exact);
  Matrix magnitude = abs_of(h);
  index_t inner = 0;
  for (const auto& f : layer.factors()) {
    magnitude = idprune::la::matmul(magnitude, abs_of(f));
    inner += f.rows();
  }
  ASSERT_EQ(y.rows(), h.rows()) << what;
  for (index_t j = 0; j < y.cols(); ++j)
    for (index_t i = 0; i < y.rows(); ++i) {
      const double b = layer.has_bias() ? std::abs(layer.bias()[static_cast<std::size_t>(j)]) : 0.0;
      ASSERT_LE(std::abs(y(i, j) - exact(i, j)), 8.0 * eps * static_cast<double>(inner + 1) * (magnitude(i, j) + b))
          << what << " at (" << i << ", " << j << ")";
    }
}

}  // namespace

TEST(Forward, RowBlockedForwardIsBitwiseIdenticalForOneAndTwoThreads) {
  const Mlp m = model();
  const Matrix x = gaussian(1003, 12, 21);
  const ForwardOptions blocked{.block_rows = 64};
  std::vector<Matrix> runs;
  for (const int threads : {1, 2, 1, 2}) {
    const tbb::global_control limit(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads));
    // OpenBLAS left at several threads outside: the blocked pass must still not depend on it.
    const idprune::la::ScopedBlasThreads blas(threads);
    runs.push_back(m.logits(x, blocked));
    Matrix h;
    m.hidden(0).forward(x, h, blocked);
    expect_identical(h, m.hidden_activations(x, 0, blocked), "layer 0, threads " + std::to_string(threads));
  }
  for (std::size_t r = 1; r < runs.size(); ++r) expect_identical(runs[r], runs[0], "run " + std::to_string(r));
}

TEST(Forward, EachRowBlockIsTheLayerOfThatBlockAlone) {
  // The blocks are cut at multiples of block_rows: rows [64 b, 64 b + 64) of the blocked output are
  // the one-product forward pass of exactly those rows.
  const Mlp m = model();
  const Matrix x = gaussian(300, 12, 22);
  for (index_t l = 0; l < m.num_hidden(); ++l) {
    const Matrix h = l == 0 ? x : m.hidden_activations(x, l - 1, {.block_rows = 64});
    Matrix blocked;
    m.hidden(l).forward(h, blocked, {.block_rows = 64});
    for (index_t first = 0; first < h.rows(); first += 64) {
      const index_t count = std::min<index_t>(64, h.rows() - first);
      Matrix alone;
      m.hidden(l).forward(h.view().rows_range(first, count), alone, {.block_rows = 1 << 20});
      expect_identical(Matrix(blocked.view().rows_range(first, count)), alone,
                       "layer " + std::to_string(l) + ", block at " + std::to_string(first));
    }
    expect_layer_output(m.hidden(l), h, blocked, "blocked vs one product, layer " + std::to_string(l));
  }
}

TEST(Forward, AllHiddenActivationsEqualTheLayerByLayerPass) {
  const Mlp m = model();
  const Matrix x = gaussian(257, 12, 23);
  const ForwardOptions options{.block_rows = 50};
  const std::vector<Matrix> all = idprune::nn::all_hidden_activations(m, x, options);
  ASSERT_EQ(static_cast<index_t>(all.size()), m.num_hidden());
  Matrix input = x;
  for (index_t l = 0; l < m.num_hidden(); ++l) {
    expect_identical(all[static_cast<std::size_t>(l)], m.hidden_activations(x, l, options),
                     "hidden_activations, layer " + std::to_string(l));
    const Matrix step = m.forward_hidden(input, l, options);
    expect_identical(all[static_cast<std::size_t>(l)], step, "forward_hidden, layer " + std::to_string(l));
    input = step;
  }
  expect_identical(m.logits_from_hidden(all.back(), m.num_hidden() - 1, options), m.logits(x, options), "logits");
}

TEST(Forward, StreamedActivationsEqualTheInMemoryPass) {
  const Mlp m = model();
  const Matrix x = gaussian(101, 12, 24);
  const ForwardOptions options{.block_rows = 4};
  const std::vector<Matrix> memory = idprune::nn::all_hidden_activations(m, x, options);
  for (const index_t block : {index_t{1}, index_t{7}, index_t{8}, index_t{12}, index_t{101}, index_t{500}}) {
    std::vector<Matrix> streamed;
    for (index_t l = 0; l < m.num_hidden(); ++l)
      streamed.emplace_back(x.rows(), m.hidden(l).d_out(), std::numeric_limits<double>::quiet_NaN());
    index_t expected_layer = 0, expected_first = 0;
    idprune::nn::for_each_hidden_activation(
        m, idprune::data::matrix_rows(x), block,
        [&](index_t layer, idprune::la::ConstMatrixView h, index_t first) {
          // Layers 0..L-1 of one block, then the next block.
          EXPECT_EQ(layer, expected_layer);
          EXPECT_EQ(first, expected_first);
          streamed[static_cast<std::size_t>(layer)].block(first, 0, h.rows(), h.cols()).assign(h);
          expected_layer = (layer + 1) % m.num_hidden();
          if (expected_layer == 0) expected_first += h.rows();
        },
        options);
    EXPECT_EQ(expected_first, x.rows());
    const std::string what = "stream blocks of " + std::to_string(block);
    if (block % options.block_rows == 0) {
      // Stream blocks made of whole row blocks: the same products, so the same bits.
      for (std::size_t l = 0; l < memory.size(); ++l) expect_identical(streamed[l], memory[l], what);
    } else {
      for (index_t l = 0; l < m.num_hidden(); ++l) {
        const Matrix& input = l == 0 ? x : streamed[static_cast<std::size_t>(l - 1)];
        expect_layer_output(m.hidden(l), input, streamed[static_cast<std::size_t>(l)], what);
      }
    }
  }
}

TEST(Forward, FlopsAreTwicePerWeightEntryPerRow) {
  const Mlp m = model();
  // Products 12x20, 20x4, 4x16, 16x9, 9x11 and the classifier 11x5.
  const double per_row = 2.0 * (12 * 20 + 20 * 4 + 4 * 16 + 16 * 9 + 9 * 11 + 11 * 5);
  EXPECT_EQ(idprune::nn::forward_flops(m, 1000), 1000 * per_row);
  EXPECT_EQ(idprune::nn::forward_flops(m, 0), 0.0);
  EXPECT_THROW((void)idprune::nn::forward_flops(m, -1), idprune::Error);
}

TEST(Forward, BadArgumentsAreErrors) {
  const Mlp m = model();
  const Matrix x = gaussian(10, 12, 25);
  Matrix y;
  EXPECT_THROW(m.hidden(0).forward(x, y, {.block_rows = 0}), idprune::Error);
  EXPECT_THROW((void)idprune::nn::all_hidden_activations(m, gaussian(3, 11, 1)), idprune::Error);
  EXPECT_THROW(idprune::nn::for_each_hidden_activation(m, idprune::data::matrix_rows(gaussian(3, 11, 1)), 2,
                                                       [](index_t, idprune::la::ConstMatrixView, index_t) {}),
               idprune::Error);
  EXPECT_THROW((void)m.forward_hidden(x, m.num_hidden()), idprune::Error);
}
