// Float32 inference: sgemm against the exact product, the float32 forward pass against float64
// within the propagated rounding-error bound, predictions, threads, and the benchmark's shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "idprune/la/blas.hpp"
#include "idprune/nn/inference.hpp"
#include "support/matrices.hpp"

namespace {

using idprune::Error;
using idprune::la::index_t;
using idprune::la::Matrix;
using idprune::la::Op;
using idprune::nn::Activation;
using idprune::nn::DenseLayer;
using idprune::nn::Float32Batch;
using idprune::nn::Float32Mlp;
using idprune::nn::Mlp;

constexpr double u32 = 0x1p-24;  // float32 unit roundoff

Matrix uniform(index_t m, index_t n, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  Matrix a(m, n);
  for (double& v : a.values()) v = d(gen);
  return a;
}

std::vector<double> uniform_vector(index_t n, std::uint64_t seed) {
  const Matrix a = uniform(n, 1, -0.1, 0.1, seed);
  return std::vector<double>(a.values().begin(), a.values().end());
}

Matrix scaled(Matrix a, double s) {
  for (double& v : a.values()) v *= s;
  return a;
}

// He-scaled random MLP 64 -> 48 (bias) -> [48 -> 12 -> 40] (bias) -> 32 (identity, no bias) -> 10
// (bias): every kind of layer the float32 path handles.
Mlp test_model(std::uint64_t seed) {
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(scaled(idprune::test::gaussian(64, 48, seed), std::sqrt(2.0 / 64)), uniform_vector(48, seed + 1),
                      Activation::relu);
  hidden.emplace_back(std::vector<Matrix>{scaled(idprune::test::gaussian(48, 12, seed + 2), std::sqrt(2.0 / 48)),
                                          scaled(idprune::test::gaussian(12, 40, seed + 3), std::sqrt(1.0 / 12))},
                      uniform_vector(40, seed + 4), Activation::relu);
  hidden.emplace_back(scaled(idprune::test::gaussian(40, 32, seed + 5), std::sqrt(2.0 / 40)), std::vector<double>{},
                      Activation::identity);
  return Mlp(std::move(hidden), DenseLayer(scaled(idprune::test::gaussian(32, 10, seed + 6), std::sqrt(1.0 / 32)),
                                           uniform_vector(10, seed + 7), Activation::identity));
}

TEST(Sgemm, ErrorIsWithinGammaKOfTheExactProductForEveryTransposeAndLeadingDimension) {
  const index_t m = 37, n = 23, k = 301;
  for (const Op op_a : {Op::none, Op::transpose})
    for (const Op op_b : {Op::none, Op::transpose}) {
      // Stored with padding rows (leading dimension larger than the rows).
      const index_t a_rows = op_a == Op::none ? m : k, a_cols = op_a == Op::none ? k : m;
      const index_t b_rows = op_b == Op::none ? k : n, b_cols = op_b == Op::none ? n : k;
      const index_t lda = a_rows + 3, ldb = b_rows + 5, ldc = m + 2;
      const Matrix ad = idprune::test::gaussian(lda, a_cols, 11), bd = idprune::test::gaussian(ldb, b_cols, 12);
      std::vector<float> a(ad.values().begin(), ad.values().end()), b(bd.values().begin(), bd.values().end());
      std::vector<float> c(static_cast<std::size_t>(ldc * n), 7.0f);
      idprune::la::sgemm(m, n, k, 1.0f, a.data(), lda, op_a, b.data(), ldb, op_b, 0.0f, c.data(), ldc);
      const double gamma = k * u32 / (1 - k * u32);
      const auto at = [&](index_t i, index_t p) {  // op(A)(i, p) of the float values, in double
        return static_cast<double>(op_a == Op::none ? a[static_cast<std::size_t>(i + p * lda)]
                                                    : a[static_cast<std::size_t>(p + i * lda)]);
      };
      const auto bt = [&](index_t p, index_t j) {
        return static_cast<double>(op_b == Op::none ? b[static_cast<std::size_t>(p + j * ldb)]
                                                    : b[static_cast<std::size_t>(j + p * ldb)]);
      };
      for (index_t j = 0; j < n; ++j) {
        for (index_t i = 0; i < m; ++i) {
          double exact = 0.0, magnitude = 0.0;
          for (index_t p = 0; p < k; ++p) {
            exact += at(i, p) * bt(p, j);
            magnitude += std::abs(at(i, p) * bt(p, j));
          }
          EXPECT_LE(std::abs(c[static_cast<std::size_t>(i + j * ldc)] - exact), gamma * magnitude * (1 + 1e-6))
              << "op_a " << (op_a == Op::none) << " op_b " << (op_b == Op::none) << " (" << i << ", " << j << ")";
        }
        for (index_t i = m; i < ldc; ++i) EXPECT_EQ(c[static_cast<std::size_t>(i + j * ldc)], 7.0f) << "padding";
      }
    }
  std::vector<float> a(12), b(12), c(12);
  EXPECT_THROW(idprune::la::sgemm(4, 3, 3, 1.0f, a.data(), 3, Op::none, b.data(), 3, Op::none, 0.0f, c.data(), 4),
               Error);  // lda 3 < m 4
  EXPECT_THROW(idprune::la::sgemm(-1, 3, 3, 1.0f, a.data(), 3, Op::none, b.data(), 3, Op::none, 0.0f, c.data(), 4),
               Error);
}

TEST(Float32Inference, LogitsAreWithinThePropagatedRoundingBoundOfFloat64) {
  const Mlp model = test_model(100);
  const Float32Mlp f32(model);
  EXPECT_EQ(f32.parameter_count(), model.parameter_count());
  const Matrix x = uniform(3000, 64, 0.0, 1.0, 101);
  const Matrix exact = model.logits(x);
  const Matrix bound = idprune::nn::float32_error_bound(model, x);
  const Float32Batch got = f32.logits(idprune::nn::to_float32(x));
  ASSERT_EQ(got.rows, exact.rows());
  ASSERT_EQ(got.cols, exact.cols());
  double worst = 0.0, largest_bound = 0.0, largest_logit = 0.0, largest_error = 0.0;
  for (index_t j = 0; j < exact.cols(); ++j)
    for (index_t i = 0; i < exact.rows(); ++i) {
      const double err = std::abs(static_cast<double>(got(i, j)) - exact(i, j));
      EXPECT_LE(err, bound(i, j)) << "(" << i << ", " << j << ")";
      worst = std::max(worst, err / bound(i, j));
      largest_error = std::max(largest_error, err);
      largest_bound = std::max(largest_bound, bound(i, j));
      largest_logit = std::max(largest_logit, std::abs(exact(i, j)));
    }
  // The componentwise bound adds |x| |W| along every path, ignoring cancellation, so it is far from
  // tight (about 100x the logits' rounding per layer here). The stated float32 tolerance: the
  // first-order estimate u * (sum of the products' inner dimensions, 64 + 48 + 12 + 40 + 32) times the
  // logits' scale.
  const double tolerance = u32 * (64 + 48 + 12 + 40 + 32) * largest_logit;
  EXPECT_LE(largest_error, tolerance);
  std::cout << "largest error " << largest_error << " (tolerance " << tolerance << "); largest error / bound " << worst
            << "; largest bound " << largest_bound << " for logits up to " << largest_logit << "\n";
}

TEST(Float32Inference, PredictionsAgreeWithFloat64AndDisagreeOnlyOnNearTies) {
  const Mlp model = test_model(200);
  const Float32Mlp f32(model);
  const Matrix x = uniform(10000, 64, 0.0, 1.0, 201);
  const std::vector<int> want = model.predict(x);
  const std::vector<int> got = f32.predict(idprune::nn::to_float32(x));
  const Matrix exact = model.logits(x);
  const Matrix bound = idprune::nn::float32_error_bound(model, x);
  std::size_t agree = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (got[i] == want[i]) {
      ++agree;
      continue;
    }
    // A different class is only possible when the two logits are within their error bounds.
    const auto r = static_cast<index_t>(i);
    EXPECT_LE(exact(r, want[i]) - exact(r, got[i]), bound(r, want[i]) + bound(r, got[i])) << "sample " << i;
  }
  EXPECT_GE(static_cast<double>(agree), 0.999 * static_cast<double>(want.size())) << agree << " of " << want.size();
}

TEST(Float32Inference, BatchSizeAndThreadsDoNotChangeTheResultBeyondRounding) {
  const Mlp model = test_model(300);
  const Float32Mlp f32(model);
  const Matrix x = uniform(257, 64, 0.0, 1.0, 301);
  const Matrix bound = idprune::nn::float32_error_bound(model, x);
  const Matrix exact = model.logits(x);
  const Float32Batch whole = f32.logits(idprune::nn::to_float32(x), {2});
  idprune::nn::InferenceWorkspace ws;
  Float32Batch one;
  for (index_t i = 0; i < x.rows(); i += 37) {
    f32.logits(idprune::nn::to_float32(x.view().rows_range(i, 1)), one, ws);  // the same workspace reused
    ASSERT_EQ(one.rows, 1);
    for (index_t j = 0; j < exact.cols(); ++j) {
      EXPECT_LE(std::abs(static_cast<double>(one(0, j)) - exact(i, j)), bound(i, j)) << i;
      EXPECT_LE(std::abs(static_cast<double>(whole(i, j)) - exact(i, j)), bound(i, j)) << i;
    }
  }
  EXPECT_EQ(f32.logits(Float32Batch(0, 64)).rows, 0);
  EXPECT_THROW((void)f32.logits(Float32Batch(3, 63)), Error);
  EXPECT_THROW((void)f32.logits(Float32Batch(3, 64), {0}), Error);
  Mlp huge = model;
  huge.layer(0).factor_values(0)(0, 0) = 1e39;  // beyond float32
  EXPECT_THROW((void)Float32Mlp(huge), Error);
}

TEST(InferenceBenchmark, TimesEveryModelAtEveryBatch) {
  const std::vector<Mlp> models{test_model(400), test_model(401)};
  idprune::nn::InferenceBenchOptions options;
  options.batches = {1, 17};
  options.repetitions = 3;
  const auto r = idprune::nn::benchmark_inference(models, {"a", "b"}, options);
  ASSERT_EQ(r.models.size(), 2u);
  EXPECT_FALSE(r.blas_core.empty());
  for (const auto& m : r.models) {
    ASSERT_EQ(m.timings.size(), 2u);
    EXPECT_EQ(m.parameters, models[0].parameter_count());
    for (std::size_t b = 0; b < 2; ++b) {
      EXPECT_EQ(m.timings[b].batch, options.batches[b]);
      EXPECT_EQ(m.timings[b].repetitions, 3);
      EXPECT_LE(m.timings[b].min_seconds, m.timings[b].median_seconds);
      EXPECT_LE(m.timings[b].median_seconds, m.timings[b].max_seconds);
      EXPECT_GT(m.timings[b].samples_per_second(), 0.0);
    }
  }
  std::vector<DenseLayer> other_hidden;
  other_hidden.emplace_back(Matrix(5, 4, 1.0));
  const Mlp other(std::move(other_hidden), DenseLayer(Matrix(4, 2, 1.0), {}, Activation::identity));
  EXPECT_THROW((void)idprune::nn::benchmark_inference({models[0], other}, {"a", "other"}, options), Error);
  EXPECT_THROW((void)idprune::nn::benchmark_inference(models, {"a"}, options), Error);
  options.batches = {0};
  EXPECT_THROW((void)idprune::nn::benchmark_inference(models, {"a", "b"}, options), Error);
}

}  // namespace
