// Neuron merging: a pruned neuron whose incoming vector is a positive multiple of a kept one's is
// merged with no change of the network's output (ReLU's positive homogeneity); on near-multiples a
// merged network is never worse than plain pruning; the threshold and the norm criteria behave as
// the paper says.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/compress/layer.hpp"
#include "idprune/compress/neuron_merging.hpp"

namespace idprune::test {
namespace {

using compress::NeuronMergingOptions;
using compress::NeuronNorm;

// Next layer's pre-activation relu(X W(:, K) + b(K)) T W_next for a selection K, T.
Matrix merged_output(const Matrix& x, const Matrix& w, const std::vector<double>& b, const Matrix& w_next,
                     const std::vector<index_t>& kept, const Matrix& t) {
  Matrix z = la::matmul(x, la::select_columns(w, kept));
  for (index_t j = 0; j < z.cols(); ++j)
    for (index_t i = 0; i < z.rows(); ++i) z(i, j) = std::max(0.0, z(i, j) + (b.empty() ? 0.0 : b[uz(kept[uz(j)])]));
  return la::matmul(z, la::matmul(t, w_next));
}

Matrix full_output(const Matrix& x, const Matrix& w, const std::vector<double>& b, const Matrix& w_next) {
  std::vector<index_t> all(uz(w.cols()));
  for (index_t j = 0; j < w.cols(); ++j) all[uz(j)] = j;
  return merged_output(x, w, b, w_next, all, Matrix::identity(w.cols()));
}

// T of plain pruning: the identity rows of the kept neurons.
Matrix pruning_rows(const std::vector<index_t>& kept, index_t n) {
  Matrix t(static_cast<index_t>(kept.size()), n, 0.0);
  for (std::size_t i = 0; i < kept.size(); ++i) t(static_cast<index_t>(i), kept[i]) = 1.0;
  return t;
}

double diff_fro(const Matrix& a, const Matrix& b) {
  Matrix d(a);
  la::gemm(-1.0, Matrix::identity(a.rows()), la::Op::none, b, la::Op::none, 1.0, d);
  return norm_fro(d);
}

// Sets neuron `to` of (w, b) to s times neuron `from`, plus `noise` times Gaussian entries.
void make_multiple(Matrix& w, std::vector<double>& b, index_t to, index_t from, double s, double noise,
                   std::uint64_t seed) {
  const Matrix g = gaussian(w.rows() + 1, 1, seed);
  for (index_t i = 0; i < w.rows(); ++i) w(i, to) = s * w(i, from) + noise * g(i, 0);
  if (!b.empty()) b[uz(to)] = s * b[uz(from)] + noise * g(w.rows(), 0);
}

TEST(NeuronMerging, ExactPositiveMultiplesAreMergedWithNoChangeOfOutput) {
  const index_t d_in = 8;
  const index_t n = 6;
  Matrix w = gaussian(d_in, n, 301);
  std::vector<double> b = {0.1, -0.2, 0.3, 0.05, 0.0, 0.0};
  make_multiple(w, b, 4, 1, 2.5, 0.0, 302);
  make_multiple(w, b, 5, 2, 0.3, 0.0, 303);
  const Matrix w_next = gaussian(n, 5, 304);
  const Matrix x = gaussian(30, d_in, 305);
  const std::vector<index_t> kept = {0, 1, 2, 3};
  const auto r = compress::neuron_merging(w, b, kept);
  EXPECT_EQ(r.merged, 2);
  EXPECT_EQ(r.merged_into[4], 1);  // position of neuron 1 in kept
  EXPECT_EQ(r.merged_into[5], 2);
  EXPECT_NEAR(r.scale[4], 2.5, 1e-14);
  EXPECT_NEAR(r.scale[5], 0.3, 1e-14);
  EXPECT_NEAR(r.similarity[4], 1.0, 1e-14);
  const Matrix full = full_output(x, w, b, w_next);
  EXPECT_LE(diff_fro(merged_output(x, w, b, w_next, kept, r.interpolation), full), 1e-13 * norm_fro(full));
  // Plain pruning does change the output here.
  EXPECT_GT(diff_fro(merged_output(x, w, b, w_next, kept, pruning_rows(kept, n)), full), 1e-3 * norm_fro(full));
}

TEST(NeuronMerging, TheInterpolationIsASelectionForTheModelFold) {
  nn::Mlp model = random_mlp(10, {7, 5}, 3, true, 306);
  {
    la::MatrixView w = model.layer(0).factor_values(0);
    std::span<double> b = model.layer(0).bias_values();
    for (index_t i = 0; i < w.rows(); ++i) w(i, 6) = 1.7 * w(i, 3);
    b[6] = 1.7 * b[3];
  }
  const Matrix x = structured_inputs(40, 10, 4, 307);
  const Matrix before = model.logits(x);
  const nn::DenseLayer& layer = model.hidden(0);
  const auto r = compress::neuron_merging(layer.weight(), layer.bias(), std::vector<index_t>{0, 1, 2, 3, 4, 5});
  compress::Selection sel;
  sel.kept = r.kept;
  sel.interpolation = r.interpolation;
  compress::apply_selection(model, 0, sel);
  EXPECT_EQ(model.hidden(0).d_out(), 6);
  EXPECT_LE(max_abs_diff(model.logits(x), before), 1e-12 * std::max(1.0, norm_max(before)));
}

TEST(NeuronMerging, NeverWorseThanPlainPruningOnNearMultiples) {
  for (std::uint64_t seed = 310; seed < 320; ++seed) {
    SCOPED_TRACE(seed);
    const index_t d_in = 12;
    const index_t n = 10;
    Matrix w = gaussian(d_in, n, seed);
    std::vector<double> b(uz(n));
    const Matrix gb = gaussian(n, 1, seed + 100);
    for (index_t j = 0; j < n; ++j) b[uz(j)] = 0.1 * gb(j, 0);
    // Neurons 6..9, the pruned ones, are noisy positive multiples of kept neurons 0..3.
    for (index_t j = 6; j < n; ++j)
      make_multiple(w, b, j, j - 6, 0.5 + 0.2 * static_cast<double>(j - 6), 0.02, seed + j);
    const Matrix w_next = gaussian(n, 4, seed + 200);
    const Matrix x = gaussian(50, d_in, seed + 300);
    const std::vector<index_t> kept = {0, 1, 2, 3, 4, 5};
    const auto r = compress::neuron_merging(w, b, kept);
    const Matrix full = full_output(x, w, b, w_next);
    const double merged = diff_fro(merged_output(x, w, b, w_next, kept, r.interpolation), full);
    const double pruned = diff_fro(merged_output(x, w, b, w_next, kept, pruning_rows(kept, n)), full);
    EXPECT_EQ(r.merged, 4);
    EXPECT_LE(merged, pruned);
    EXPECT_LT(merged, 0.2 * pruned);
  }
}

TEST(NeuronMerging, BelowThresholdNeuronsAreDroppedAndZeroVectorsGiveNoNaN) {
  Matrix w = gaussian(5, 5, 321);
  std::vector<double> b;  // no bias: incoming vectors are the columns alone
  for (index_t i = 0; i < 5; ++i) {
    w(i, 3) = -2.0 * w(i, 0);  // cosine -1 with neuron 0
    w(i, 4) = 0.0;             // a dead neuron
    w(i, 2) = 0.0;             // a kept neuron with no direction
  }
  const std::vector<index_t> kept = {0, 1, 2};
  const auto r = compress::neuron_merging(w, b, kept);
  EXPECT_TRUE(la::all_finite(r.interpolation));
  EXPECT_EQ(r.merged_into[4], -1);
  EXPECT_EQ(r.scale[4], 0.0);
  // Neuron 3's best similarity is with neuron 1 (neuron 0 is opposite): merged only if >= 0.45.
  const bool merged = r.merged_into[3] >= 0;
  EXPECT_EQ(merged, r.similarity[3] >= 0.45);
  for (index_t j = 0; j < 5; ++j) EXPECT_EQ(r.interpolation(2, j), j == 2 ? 1.0 : 0.0);  // receives nothing
  // With no threshold, neuron 3 is merged into its most similar kept neuron, never the opposite one.
  NeuronMergingOptions all;
  all.threshold = -1.0;
  const auto every = compress::neuron_merging(w, b, kept, all);
  EXPECT_EQ(every.merged_into[3], 1);
  EXPECT_EQ(every.merged_into[4], -1);
}

TEST(NeuronMerging, NormCriteriaPickTheLargestIncomingVectors) {
  // Column 0 = (1, 1, 1, 1): l1 4, l2 2.  Column 1 = (3, 0, 0, 0): l1 3, l2 3.  Column 2 small.
  Matrix w(4, 3, 0.0);
  for (index_t i = 0; i < 4; ++i) w(i, 0) = 1.0;
  w(0, 1) = 3.0;
  w(0, 2) = 0.5;
  EXPECT_EQ(compress::norm_selection(w, {}, 1, NeuronNorm::l1), std::vector<index_t>{0});
  EXPECT_EQ(compress::norm_selection(w, {}, 1, NeuronNorm::l2), std::vector<index_t>{1});
  EXPECT_EQ(compress::norm_selection(w, {}, 2, NeuronNorm::l1), (std::vector<index_t>{0, 1}));
  // The bias is part of the incoming vector: a large bias lifts column 2 to the top.
  const std::vector<double> b = {0.0, 0.0, 10.0};
  EXPECT_EQ(compress::norm_selection(w, b, 1, NeuronNorm::l1), std::vector<index_t>{2});
  // Ties go to the lower index.
  Matrix tie(2, 3, 1.0);
  EXPECT_EQ(compress::norm_selection(tie, {}, 2, NeuronNorm::l2), (std::vector<index_t>{0, 1}));
  EXPECT_EQ(compress::parse_neuron_norm("l2"), NeuronNorm::l2);
  EXPECT_THROW((void)compress::parse_neuron_norm("l3"), Error);
}

TEST(NeuronMerging, RefusesBadSelectionsAndShapes) {
  const Matrix w = gaussian(4, 5, 322);
  EXPECT_THROW((void)compress::neuron_merging(w, {}, std::vector<index_t>{}), Error);
  EXPECT_THROW((void)compress::neuron_merging(w, {}, std::vector<index_t>{1, 1}), Error);
  EXPECT_THROW((void)compress::neuron_merging(w, {}, std::vector<index_t>{5}), Error);
  EXPECT_THROW((void)compress::neuron_merging(w, std::vector<double>{1.0}, std::vector<index_t>{0}), Error);
  EXPECT_THROW((void)compress::norm_selection(w, {}, 0), Error);
  EXPECT_THROW((void)compress::norm_selection(w, {}, 6), Error);
  Matrix bad(w);
  bad(0, 0) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)compress::neuron_merging(bad, {}, std::vector<index_t>{0}), Error);
}

}  // namespace
}  // namespace idprune::test
