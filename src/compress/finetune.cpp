#include "idprune/compress/finetune.hpp"

#include <cmath>
#include <string>

#include "idprune/dist/comm.hpp"
#include "idprune/la/error.hpp"

namespace idprune::compress {

void balance_factors(nn::DenseLayer& layer) {
  for (la::index_t f = 0; f + 1 < layer.factor_count(); ++f) {
    la::MatrixView a = layer.factor_values(f);
    la::MatrixView b = layer.factor_values(f + 1);
    for (la::index_t k = 0; k < a.cols(); ++k) {
      double na = 0.0;
      double nb = 0.0;
      for (la::index_t i = 0; i < a.rows(); ++i) na += a(i, k) * a(i, k);
      for (la::index_t j = 0; j < b.cols(); ++j) nb += b(k, j) * b(k, j);
      if (!(na > 0.0 && nb > 0.0)) continue;  // a zero (or NaN) side: nothing to balance
      const double d = std::sqrt(std::sqrt(nb / na));
      if (!std::isfinite(d) || d == 0.0) continue;
      for (la::index_t i = 0; i < a.rows(); ++i) a(i, k) *= d;
      for (la::index_t j = 0; j < b.cols(); ++j) b(k, j) /= d;
    }
  }
}

FinetuneResult finetune(const nn::Mlp& model, la::ConstMatrixView x, std::span<const int> y,
                        const nn::TrainOptions& options) {
  require(options.epochs >= 1, "finetune: epochs=", options.epochs, " (needs >= 1)");
  require(x.rows() == static_cast<la::index_t>(y.size()), "finetune: ", x.rows(), " training rows but ", y.size(),
          " labels");
  require(x.rows() >= 1, "finetune: no training rows");
  FinetuneResult out;
  out.model = model;
  for (la::index_t l = 0; l < out.model.num_layers(); ++l) balance_factors(out.model.layer(l));
  out.epochs = nn::train(out.model, x, y, options);
  return out;
}

namespace {
/// The fine-tuned model (rounded as round_to says), then its scores on both sets.
FinetunedNetwork tune_and_score(const nn::Mlp& model, std::vector<LayerOutcome> layers, la::ConstMatrixView x,
                                std::span<const int> y, const nn::TrainOptions& options, const Scorer& validation,
                                const Scorer& test, std::optional<nn::Dtype> round_to) {
  FinetunedNetwork out;
  std::string error = dist::capture_error([&] {
    FinetuneResult r = finetune(model, x, y, options);
    if (round_to == nn::Dtype::f32) round_to_float32(r.model);
    const std::string bad = nn::non_finite_parameter(r.model);
    require(bad.empty(), "the fine-tuned model has a non-finite or (float32) overflowing parameter: ", bad);
    out.model = std::move(r.model);
    out.epochs = std::move(r.epochs);
  });
  dist::check_collective(validation.comm(), error);
  // Scored as it is (no shared products: its first layer is no longer columns of the original's).
  CompressedModel m;
  m.model = out.model;
  m.layers = std::move(layers);
  const std::span<const CompressedModel> one(&m, 1);
  out.validation = validation.score(one).front();
  out.test = test.score(one).front();
  return out;
}
}  // namespace

FinetunedNetwork finetune_and_score(const nn::Mlp& model, la::ConstMatrixView x, std::span<const int> y,
                                    const nn::TrainOptions& options, const Scorer& validation, const Scorer& test) {
  return tune_and_score(model, {}, x, y, options, validation, test, std::nullopt);
}

FinetunedNetwork finetune_network(const CompressedNetwork& network, la::ConstMatrixView x, std::span<const int> y,
                                  const nn::TrainOptions& options, const Scorer& validation, const Scorer& test,
                                  std::optional<nn::Dtype> round_to) {
  return tune_and_score(network.compressed.model, network.compressed.layers, x, y, options, validation, test, round_to);
}

}  // namespace idprune::compress
