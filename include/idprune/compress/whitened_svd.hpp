#pragma once
// Activation-aware low rank (SVD-LLM: Wang et al., "SVD-LLM: Truncation-aware Singular Value
// Decomposition for Large Language Model Compression", ICLR 2025; ASVD: Yuan et al. 2023): replace
// a layer's weight W (d_in x d_out) by A B (A d_in x r, B r x d_out) minimising the error of the
// layer's OUTPUT on the compression set, not of the weight:
//
//   min over rank-r A B of ||X W - X A B||_F,    X (m x d_in) the layer's inputs.
//
// Only G = X^T X enters: for any R with R^T R = G, ||X M||_F = ||R M||_F for every M, so the
// problem is min ||R W - R A B||_F, solved by the truncated SVD R W = P S Q^T (Eckart–Young):
// R A B = P_r S_r Q_r^T with B = S_r Q_r^T and R A = P_r, and the optimal error is
// sum_{i > r} s_i^2 (the trailing singular values of R W, equal to those of X W).
//
// Whitening factor: SVD-LLM uses the Cholesky factor of G, which does not exist when X is rank
// deficient (dead inputs such as the always-black border pixels of Fashion-MNIST, dead ReLUs feeding
// the next layer). Here R comes from the symmetric eigendecomposition G = U diag(lambda) U^T
// (computed as the SVD of G, which is the eigendecomposition for a symmetric positive semidefinite
// matrix): R = diag(sqrt(lambda_q)) U_q^T over the q eigenvalues above null_tol * lambda_1, and
// A = R^+ P_r = U_q diag(lambda_q^{-1/2}) P_r. P_r lies in the range of R W, inside the range of R,
// so R A = P_r holds exactly and the optimum is attained for singular G too; A has no component in
// the null space of X (directions the compression set never excites are mapped to 0, the
// minimum-norm choice). Accuracy: G squares X's condition number, so input directions with
// singular values below about sqrt(null_tol) sigma_1(X) are treated as absent.
#include <vector>

#include "idprune/compress/moments.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::compress {

struct WhitenedSvdOptions {
  index_t rank = 1;  ///< r, 1 <= r <= min(d_in, d_out)
  /// Damping: factor G + ridge * (trace(G) / d_in) I instead of G, i.e. minimise
  /// ||X (W - A B)||_F^2 + lambda ||W - A B||_F^2, which pulls A B towards W in the directions the
  /// compression set barely excites (0: the pure output-error optimum).
  double ridge = 0.0;
  /// Eigenvalues of the (damped) Gram at or below null_tol * lambda_max are null directions.
  /// Negative: d_in * machine epsilon (the rounding level of a symmetric eigensolver).
  double null_tol = -1.0;
  /// Moments overload only: whiten with the centred Gram X_c^T X_c, X_c = X - 1 mean^T, and return
  /// bias_shift = mean^T (W - A B), so that with b' = b + bias_shift the layer's mean output over the
  /// compression set is exact and the error is ||X_c (W - A B)||_F^2 (never above the uncentred one).
  bool center = false;
};

struct WhitenedSvdResult {
  la::Matrix a;  ///< d_in x r, = U_q diag(lambda_q^{-1/2}) P_r (zero columns past effective_rank)
  la::Matrix b;  ///< r x d_out, = S_r Q_r^T (zero rows past effective_rank)
  /// Singular values of the whitened weight R W, non-increasing (min(q, d_out) of them).
  std::vector<double> singular_values;
  /// sum_{i > r} s_i^2: the optimal ||X W - X A B||_F^2 (plus the ridge term when ridge > 0;
  /// with center, the centred error).
  double output_error_sq = 0.0;
  index_t whitening_rank = 0;      ///< q, the numerical rank of the (damped) Gram
  index_t effective_rank = 0;      ///< min(r, number of nonzero s_i); a and b are padded with zeros to r
  std::vector<double> bias_shift;  ///< center: mean^T (W - A B), d_out entries; else empty
};

/// Activation-aware rank-r factorization of `w` (d_in x d_out) for inputs with Gram `gram`
/// (d_in x d_in, symmetric positive semidefinite, e.g. ActivationMoments::gram of the layer's
/// inputs). options.center needs the moments overload. Throws idprune::Error on shape mismatches,
/// r out of range, NaN/Inf, negative ridge.
[[nodiscard]] WhitenedSvdResult whitened_svd(la::ConstMatrixView gram, la::ConstMatrixView w,
                                             const WhitenedSvdOptions& options);
/// The same from the moments of the layer's inputs (rows >= 1); honours options.center.
[[nodiscard]] WhitenedSvdResult whitened_svd(const ActivationMoments& inputs, la::ConstMatrixView w,
                                             const WhitenedSvdOptions& options);

}  // namespace idprune::compress
