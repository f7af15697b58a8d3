#pragma once
// Output-aware neuron selection: choose the neurons C of hidden layer l that best preserve what the
// next layer sees, Z W_{l+1}, instead of Z itself (the ID's target). With Z the activations over the
// compression set (m x n) and W = W_{l+1} (n x d), the greedy forward selection
//
//   C_{s+1} = C_s + argmax_j || (G_s W)(j, :) ||_2^2 / G_s(j, j),
//   G_s = Z^T (I - P_{C_s}) Z   (the Schur complement of G = Z^T Z on C_s),
//
// adds at each step the neuron whose residual column q_j = (I - P_{C_s}) z_j removes the most of
// the residual ||(I - P_C) Z W||_F^2 (the decrease is (q_j^T Z W)^2 / ||q_j||^2 and
// q_j^T Z W = (G_s W)(j, :)): forward selection for least squares with a matrix right-hand side
// (Couvreur & Bresler 2000; the column-subset analogue of the OBS-style greedy of ZipLM, Kurtic et
// al. 2023, with reconstruction by least squares). For fixed C, min_X ||Z W - Z(:, C) X||_F is
// attained at X = T W with T = argmin ||Z - Z(:, C) T||_F, so the engine's least-squares T
// completes the selection. Everything is read from the Gram matrix G, which sums over row blocks
// and ranks; the Schur complements are rank-one downdates as in pivoted Cholesky, so the
// selection is exact to about sqrt(eps) relative to the largest activation norm (DESIGN.md, the
// gram engine's caveat).
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::compress {

struct OutputSelection {
  std::vector<la::index_t> order;  ///< the selected neurons in the order chosen (not sorted)
  /// Residual ||(I - P_C) Z W||_F^2 after each step (from the Gram matrix; to rounding).
  std::vector<double> residual;
};

/// k steps of the greedy output-aware selection from `gram` = Z^T Z (n x n, symmetric) and
/// `w_next` (n x d). Neurons whose residual column is numerically zero (dead or dependent: G_s(j, j)
/// <= n eps max_i G(i, i)) are taken last, by index, when fewer than k others remain. Requires
/// 1 <= k <= n; throws idprune::Error on shapes that do not match or non-finite entries.
[[nodiscard]] OutputSelection output_aware_selection(const la::Matrix& gram, la::ConstMatrixView w_next, la::index_t k);

}  // namespace idprune::compress
