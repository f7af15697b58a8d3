#pragma once
// Neuron merging (Kim, Kim, Park, Jeon, "Neuron Merging: Compensating for Pruned Neurons",
// NeurIPS 2020), data-free, for a ReLU layer followed by a dense layer:
//
//   layer l:  z = relu(x W + b),  W d_in x n;   next layer: z W_next,  W_next n x n_next.
//
// Neuron j's incoming vector is v_j = [W(:, j); b_j] (W(:, j) alone when the layer has no bias).
// ReLU is positively homogeneous: if v_j = s v_i with s > 0 then z_j = s z_i, so neuron j can be
// deleted and its outgoing row folded into neuron i's, W_next(i, :) += s W_next(j, :), without
// changing the network. For an approximate match, each pruned neuron j is merged into the kept
// neuron i of largest cosine similarity cos(v_j, v_i), when that similarity is >= threshold, with
// s = ||v_j|| / ||v_i||; otherwise it is simply dropped. The result is a k x n matrix T (the paper's
// "scaling matrix", transposed) with T(:, kept) = I and T(i, j) = s for a merge of j into kept[i], so
// the compressed layer is W(:, kept), b(kept) and the next layer T W_next: the same fold as the
// interpolative decomposition's (compress::Selection with this T as its interpolation).
//
// Selection (the paper's pruning criteria, as in the authors' code): keep the k neurons with the
// largest norm of v_j (the l1 norm by default, the paper's and its scripts' default; l2 available).
// The authors' LeNet-300-100 script merges with threshold 0.45, the default here.
#include <span>
#include <string_view>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::compress {

using la::index_t;

enum class NeuronNorm { l1, l2 };
/// Parses "l1" | "l2"; throws idprune::Error otherwise.
[[nodiscard]] NeuronNorm parse_neuron_norm(std::string_view name);

/// Norms ||v_j|| (l1 or l2) of the incoming vectors v_j = [W(:, j); b_j] (bias empty: W(:, j)).
[[nodiscard]] std::vector<double> incoming_norms(la::ConstMatrixView w, std::span<const double> bias, NeuronNorm norm);

/// The norm criterion: the k neurons with the largest incoming_norms (ties: lower index), ascending.
/// Requires 1 <= k <= n.
[[nodiscard]] std::vector<index_t> norm_selection(la::ConstMatrixView w, std::span<const double> bias, index_t k,
                                                  NeuronNorm norm = NeuronNorm::l1);

struct NeuronMergingOptions {
  /// Merge a pruned neuron only when its best cosine similarity is >= this (the authors' LeNet-300-100
  /// setting). Values <= -1 merge every pruned neuron into its most similar kept neuron.
  double threshold = 0.45;
};

struct NeuronMergingResult {
  std::vector<index_t> kept;  ///< ascending original indices (as given)
  la::Matrix interpolation;   ///< T, kept.size() x n: T(:, kept) = I, T(i, j) = s_j for j merged into kept[i]
  /// Per neuron j: the position in `kept` of the neuron it was merged into (itself for kept neurons),
  /// -1 when it was dropped (best similarity below the threshold, or a zero incoming vector).
  std::vector<index_t> merged_into;
  std::vector<double> similarity;  ///< per neuron: the best cosine similarity with a kept neuron (1 for kept ones)
  std::vector<double> scale;       ///< per neuron: s_j = ||v_j|| / ||v_i|| when merged, 1 for kept, 0 for dropped
  index_t merged = 0;              ///< number of pruned neurons merged
};

/// Merges every neuron not in `kept` (ascending or not; duplicates and out-of-range indices are
/// errors) into the kept ones. `w` is W (d_in x n), `bias` b (n entries, or empty for none).
/// Neurons with a zero incoming vector output relu(0) = 0 and are dropped (nothing to merge); a
/// kept neuron with a zero incoming vector receives no merges (its direction is undefined).
/// Ties in similarity go to the lower kept index. Throws idprune::Error on bad shapes or NaN/Inf.
[[nodiscard]] NeuronMergingResult neuron_merging(la::ConstMatrixView w, std::span<const double> bias,
                                                 std::span<const index_t> kept,
                                                 const NeuronMergingOptions& options = {});

}  // namespace idprune::compress
