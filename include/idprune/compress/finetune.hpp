#pragma once
// Optional short fine-tuning of a compressed model (nn::train: Adam on the mean cross-entropy), for
// results that are reported APART from the post-training ones (columns or keys with a "_finetuned"
// suffix), never in their place. The rows passed in must be training rows outside the validation
// split: validation selects, the test set only reports, and neither may have been trained on.
//
// Every rank that calls it with the same rows, options and BLAS thread count gets the same model
// (nn::train is deterministic for a seed), so under MPI each rank fine-tunes its own copy on the
// whole training split and the models agree bit for bit without communication.
#include <optional>
#include <span>
#include <vector>

#include "idprune/compress/export.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/la/matrix.hpp"
#include "idprune/nn/mlp.hpp"
#include "idprune/nn/model_io.hpp"
#include "idprune/nn/train.hpp"

namespace idprune::compress {

struct FinetuneResult {
  nn::Mlp model;                        ///< the fine-tuned model: the same shapes, biases where it had them
  std::vector<nn::EpochReport> epochs;  ///< one per epoch (training loss and accuracy as trained)
};

/// Fine-tunes a copy of `model` for options.epochs (>= 1) epochs on the rows `x` with labels `y`.
/// Throws idprune::Error when a layer is factored (an svd layer: fine-tuning its two factors is not
/// implemented), when epochs < 1, or when x and y disagree.
[[nodiscard]] FinetuneResult finetune(const nn::Mlp& model, la::ConstMatrixView x, std::span<const int> y,
                                      const nn::TrainOptions& options);

struct FinetunedNetwork {
  nn::Mlp model;  ///< fine-tuned, rounded as round_to says (what a file of it holds)
  Scores validation;
  Scores test;
  std::vector<nn::EpochReport> epochs;
};

/// Collective (the scores): finetune() of network.compressed.model on the training rows x, y (the
/// same on every rank), rounded to round_to, scored on `validation` and `test` as the compressed
/// model was.
[[nodiscard]] FinetunedNetwork finetune_network(const CompressedNetwork& network, la::ConstMatrixView x,
                                                std::span<const int> y, const nn::TrainOptions& options,
                                                const Scorer& validation, const Scorer& test,
                                                std::optional<nn::Dtype> round_to);

/// Rescales the inner dimension of each pair of consecutive factors of a factored layer,
/// F_f(:, k) d_k and F_{f+1}(k, :) / d_k with d_k = sqrt(||F_{f+1}(k, :)|| / ||F_f(:, k)||), so
/// that both sides of every inner index carry the same norm; the product is unchanged (to
/// rounding). finetune() balances before training: Adam moves every parameter by about the
/// learning rate whatever its scale, and a whitened low-rank layer keeps S^-1 in one factor.
void balance_factors(nn::DenseLayer& layer);

/// Collective (the scores): finetune() of `model` on the training rows x, y (the same
/// on every rank), scored on `validation` and `test` without rounding (as pareto scores its models).
[[nodiscard]] FinetunedNetwork finetune_and_score(const nn::Mlp& model, la::ConstMatrixView x, std::span<const int> y,
                                                  const nn::TrainOptions& options, const Scorer& validation,
                                                  const Scorer& test);

}  // namespace idprune::compress
