#pragma once
// Compression of one hidden layer (DESIGN.md, "The mathematics"):
//
//   Z = act(H W_l + 1 b_l^T)           activations of the compression set entering layer l + 1,
//   Z P = Q R,  C = first k pivots,    T = [I, R11^{-1} R12] P^T  (k x n),  Z(:, C) T ≈ Z,
//   W_l <- W_l(:, C),  b_l <- b_l(C),  W_{l+1} <- T W_{l+1}.
//
// Because the activation is entrywise, act(H W_l(:, C) + b_l(C)) = Z(:, C) exactly, so the
// compressed network computes Z(:, C) T W_{l+1} ≈ Z W_{l+1}, with error at most
// ||R22||_2 ||W_{l+1}||_2 on the compression set (the reference text's bound with a = W_{l+1}).
// The classifier absorbs the last hidden layer's T and is never pruned.
//
// The baselines produce models of the same kind: `magnitude` keeps the neurons whose outgoing
// weights (rows of W_{l+1}) have the largest norms and folds nothing; `random` keeps seeded random
// neurons with the least-squares correction T = argmin ||Z - Z(:, C) T||_F; `svd` replaces W_l by
// the two factors U_r and S_r V_r^T (activation after the second).
#include <cstdint>
#include <span>
#include <vector>

#include "idprune/compress/rules.hpp"
#include "idprune/la/cpqr.hpp"
#include "idprune/la/svd.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::compress {

/// Kept neurons of a layer and the matrix folded into the next layer.
struct Selection {
  std::vector<index_t> kept;  ///< C, ascending original column indices of the layer
  la::Matrix interpolation;   ///< T, kept.size() x width; row i belongs to neuron kept[i]
  /// T is rows of the identity (no correction, the magnitude baseline): the fold selects rows of
  /// W_{l+1} instead of multiplying.
  bool identity_rows = false;
};

/// The selection of the first k CPQR steps (k <= f.rank): C = the first k pivots, sorted ascending,
/// and T = [I, R11^{-1} R12] P^T from the leading k rows of f.r (a triangular solve). Requires
/// k >= 1 and a nonsingular R11 (true for k <= prefix_rank, which never passes a zero diagonal).
[[nodiscard]] Selection id_selection(const la::CpqrResult& f, index_t k);

/// Selection when every neuron is dead on the compression set (Z = 0, CPQR rank 0): neuron 0 is
/// kept with T = 0, so the next layer sees exactly what it saw, zero (documented behaviour).
[[nodiscard]] Selection dead_layer_selection(index_t width);

/// W_l <- W_l(:, C) (the last factor's columns when W_l is factored), b_l <- b_l(C),
/// W_{l+1} <- T W_{l+1} (its first factor; the classifier when l is the last hidden layer).
void apply_selection(nn::Mlp& model, index_t layer, const Selection& selection);

/// The two layers after a selection: layer l keeps W_l(:, C) (the last factor's columns when it is
/// factored) and b_l(C); layer l + 1 becomes T W_{l+1} (its first factor), plus the bias shift
/// t W_{l+1} when `shift` (1 x width, an intercept of the fit) is not empty.
struct FoldedLayers {
  nn::DenseLayer layer;
  nn::DenseLayer next;
};
[[nodiscard]] FoldedLayers fold_selection(const nn::DenseLayer& layer, const nn::DenseLayer& next,
                                          const Selection& selection, std::span<const double> shift = {});

/// Row norms of the next layer's weight, ||W_{l+1}(i, :)||_2: the magnitude of neuron i's outgoing weights.
[[nodiscard]] std::vector<double> outgoing_norms(const nn::DenseLayer& next);
/// The magnitude baseline: the k neurons with the largest outgoing norms (ties: lower index), sorted
/// ascending, T = the rows of the identity for them (no correction).
[[nodiscard]] Selection magnitude_selection(const nn::DenseLayer& next, index_t k);

/// The random baseline's columns: the first k entries of a seeded permutation of 0..width-1
/// (seed mixed with the layer index, so every layer draws its own; nested in k), sorted ascending.
[[nodiscard]] std::vector<index_t> random_columns(index_t width, index_t k, std::uint64_t seed, index_t layer);

/// The svd baseline: layer W = U S V^T (thin SVD `w_svd` of layer.weight()) replaced by the two factors
/// U_r (d_in x r) and S_r V_r^T (r x d_out), bias and activation kept. r(d_in + d_out) weights.
[[nodiscard]] nn::DenseLayer svd_layer(const nn::DenseLayer& layer, const la::Svd& w_svd, index_t r);

}  // namespace idprune::compress
