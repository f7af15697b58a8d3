#pragma once
// First and second moments of a layer's activations over the compression set, kept as sums so that
// they add over row blocks and over MPI ranks (one MPI_Allreduce of rows, sum and gram):
//
//   rows = m,   sum = Z^T 1 (n),   gram = Z^T Z (n x n, both triangles),
//   mean = sum / m,   variance_j = (gram_jj - sum_j^2 / m) / (m - 1)   (unbiased, as FLAP's).
//
// These are the sufficient statistics of every data-aware method in this layer: the whitening of
// activation-aware low rank (the Gram of a layer's input), FLAP's fluctuation (variance) and bias
// compensation (mean), and the input Hessian of the structured optimal brain surgeon (the Gram).
// Caveat: the variance from raw sums loses relative accuracy like eps * mean_j^2 / variance_j
// (cancellation); it is clamped at 0. ReLU activations of a trained network are far from that limit.
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::compress {

using la::index_t;

struct ActivationMoments {
  index_t rows = 0;         ///< m, the samples summed
  std::vector<double> sum;  ///< Z^T 1, one entry per column (neuron)
  la::Matrix gram;          ///< Z^T Z, symmetric, both triangles stored

  /// Number of columns (neurons) n; 0 for moments of nothing yet.
  [[nodiscard]] index_t cols() const { return static_cast<index_t>(sum.size()); }
  /// sum / rows. Requires rows >= 1.
  [[nodiscard]] std::vector<double> mean() const;
  /// Unbiased per-column variance (gram_jj - sum_j^2 / m) / (m - 1), clamped at 0. Requires rows >= 2.
  [[nodiscard]] std::vector<double> variance() const;
};

/// The moments of the rows of `z` (m x n, m may be 0). Throws idprune::Error on NaN/Inf entries.
[[nodiscard]] ActivationMoments moments(la::ConstMatrixView z);
/// Adds the rows of `block` to `m` (gram by a rank-k update, dsyrk). An empty `m` (no columns)
/// takes the block's width; otherwise the widths must agree. Throws on NaN/Inf entries.
void accumulate(ActivationMoments& m, la::ConstMatrixView block);
/// m <- m + other: the moments of the union of the two row sets. An empty side takes the other's width.
void merge(ActivationMoments& m, const ActivationMoments& other);

}  // namespace idprune::compress
