#pragma once
// Structured optimal brain surgeon for neurons (Hassibi & Stork's OBS applied to whole rows, as in
// ZipLM: Kurtic, Frantar, Alistarh, NeurIPS 2023, and SlimGPT: Ling et al., NeurIPS 2024). Layer l's
// activations Z (m x n) feed the next layer's weight W (n x n_next); removing neuron set S and
// re-fitting the remaining rows minimises the next layer's pre-activation error
//
//   E(S) = min over W' of ||Z W - Z(:, K) W'||_F^2 (+ lambda ||W - P_K W'||_F^2),   K = complement of S,
//
// whose Hessian in W' is H = Z^T Z + lambda I. Greedy backward elimination: with H^{-1} of the
// current set, removing neuron j costs exactly
//
//   cost_j = ||W(j, :)||_2^2 / [H^{-1}]_jj,
//   W <- W - H^{-1}(:, j) W(j, :) / [H^{-1}]_jj,      H^{-1} <- H^{-1} - H^{-1}(:, j) H^{-1}(j, :) / [H^{-1}]_jj,
//
// (the Schur-complement downdate of the inverse when row and column j leave H); the cheapest
// neuron is removed until k remain. Then W' = T W with T = H_KK^{-1} H_{K,:} (k x n, T(:, K) = I):
// the least-squares (ridge when lambda > 0) interpolation of Z by Z(:, K), so the result is a
// compress::Selection like the ID's, with an output-aware choice of K.
// Dead neurons (zero columns of Z, G_jj = 0) change nothing when removed and are removed first, at
// cost 0, in index order; H is then factored on the live neurons only.
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::compress {

using la::index_t;

struct StructuredObsOptions {
  /// lambda = damping * mean(diag G) over the live neurons (SparseGPT / ZipLM's 1% dampening): keeps
  /// H^{-1} well conditioned and pulls W' towards W in the directions the compression set barely
  /// excites. 0 gives the pure least-squares optimum and requires the live neurons' Gram to be
  /// positive definite (no exact duplicates among live neurons).
  double damping = 0.01;
};

struct StructuredObsResult {
  std::vector<index_t> kept;     ///< K, ascending
  la::Matrix interpolation;      ///< T = H_KK^{-1} H_{K,:}, k x n; a dead kept neuron's row is its identity row
  la::Matrix weights;            ///< W' = T W, k x n_next: the next layer's new weight
  std::vector<index_t> removed;  ///< neurons in order of removal (dead ones first)
  /// The increase of the objective at each removal (0 for dead neurons); with damping = 0 their sum
  /// is E(S) = ||Z W - Z(:, K) W'||_F^2.
  std::vector<double> removal_costs;
  double lambda = 0.0;  ///< the absolute damping used
};

/// Greedy structured OBS down to k neurons, from the Gram G = Z^T Z of the layer's activations
/// (n x n, e.g. ActivationMoments::gram) and the next layer's weight W (n x n_next; the product of
/// its factors when factored). Requires 1 <= k <= n, finite inputs, damping >= 0. Throws
/// idprune::Error (saying to raise damping) when the damped live Gram is not positive definite.
[[nodiscard]] StructuredObsResult structured_obs(la::ConstMatrixView gram, la::ConstMatrixView w_next, index_t k,
                                                 const StructuredObsOptions& options = {});

}  // namespace idprune::compress
