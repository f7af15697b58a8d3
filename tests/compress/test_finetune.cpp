// Fine-tuning a compressed model: the shapes stay, the training loss goes down, the same inputs
// give the same model, and factored (svd) layers are refused.
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "idprune/compress/finetune.hpp"
#include "idprune/compress/layer.hpp"

namespace idprune::test {
namespace {

TEST(Finetune, KeepsTheShapesLowersTheTrainingLossAndIsReproducible) {
  const nn::Mlp model = random_mlp(12, {16, 8}, 3, true, 601);
  const Matrix x = structured_inputs(200, 12, 4, 602);
  const std::vector<int> y = labels_for(x, 3, 603);
  nn::TrainOptions o;
  o.epochs = 3;
  o.batch_size = 32;
  o.learning_rate = 1e-2;
  const auto a = compress::finetune(model, x, y, o);
  EXPECT_EQ(a.model.widths(), model.widths());
  EXPECT_EQ(a.model.parameter_count(), model.parameter_count());
  ASSERT_EQ(a.epochs.size(), 3u);
  EXPECT_LT(nn::cross_entropy(a.model, x, y), nn::cross_entropy(model, x, y));
  const auto b = compress::finetune(model, x, y, o);
  EXPECT_TRUE(identical_models(a.model, b.model));
}

TEST(Finetune, RefusesBadInputsAndTrainsTheFactorsOfALowRankLayer) {
  nn::Mlp model = random_mlp(12, {16, 8}, 3, false, 611);
  const Matrix x = structured_inputs(50, 12, 4, 612);
  const std::vector<int> y = labels_for(x, 3, 613);
  nn::TrainOptions o;
  o.epochs = 1;
  EXPECT_THROW((void)compress::finetune(model, x, std::vector<int>(y.begin(), y.end() - 1), o), Error);
  o.epochs = 0;
  EXPECT_THROW((void)compress::finetune(model, x, y, o), Error);
  o.epochs = 1;
  model.layer(1) = compress::svd_layer(model.hidden(1), la::svd(model.hidden(1).weight()), 4);
  const compress::FinetuneResult r = compress::finetune(model, x, y, o);
  const nn::DenseLayer& before = model.layer(1);
  const nn::DenseLayer& after = r.model.layer(1);
  ASSERT_EQ(after.factor_count(), 2);
  bool changed = false;
  for (index_t f = 0; f < 2; ++f) {
    ASSERT_EQ(after.factor(f).rows(), before.factor(f).rows());
    ASSERT_EQ(after.factor(f).cols(), before.factor(f).cols());
    for (index_t j = 0; j < after.factor(f).cols(); ++j)
      for (index_t i = 0; i < after.factor(f).rows(); ++i)
        changed = changed || after.factor(f)(i, j) != before.factor(f)(i, j);
  }
  EXPECT_TRUE(changed) << "the low-rank factors were not trained";
}

// Balancing keeps the product and gives both sides of every inner index the same norm, whatever
// the scales the factors came with (one scaled by 1e-6, the other by 1e6).
TEST(Finetune, BalancedFactorsKeepTheProductWithEqualNorms) {
  Matrix a = gaussian(7, 3, 621);
  Matrix b = gaussian(3, 5, 622);
  for (double& v : a.values()) v *= 1e-6;
  for (double& v : b.values()) v *= 1e6;
  const Matrix product = la::matmul(a, b);
  nn::DenseLayer layer(std::vector<Matrix>{a, b}, {}, nn::Activation::relu);
  compress::balance_factors(layer);
  const Matrix after = la::matmul(layer.factor(0), layer.factor(1));
  for (index_t j = 0; j < product.cols(); ++j)
    for (index_t i = 0; i < product.rows(); ++i)
      EXPECT_NEAR(after(i, j), product(i, j), 8 * std::numeric_limits<double>::epsilon() * la::norm_fro(product));
  for (index_t k = 0; k < 3; ++k) {
    double na = 0.0;
    double nb = 0.0;
    for (index_t i = 0; i < 7; ++i) na += layer.factor(0)(i, k) * layer.factor(0)(i, k);
    for (index_t j = 0; j < 5; ++j) nb += layer.factor(1)(k, j) * layer.factor(1)(k, j);
    EXPECT_NEAR(std::sqrt(na), std::sqrt(nb), 1e-12 * std::sqrt(nb)) << k;
  }
}

}  // namespace
}  // namespace idprune::test
