#pragma once
// Test matrices with known structure: random Gaussian, prescribed singular values, known rank,
// the Kahan matrix, and zero columns. Every generator takes an explicit seed.
#include <cstdint>
#include <vector>

#include "idprune/la/matrix.hpp"

namespace idprune::test {

using la::index_t;
using la::Matrix;

/// m x n matrix with i.i.d. standard normal entries.
Matrix gaussian(index_t m, index_t n, std::uint64_t seed);
/// Q with orthonormal columns (m x n, m >= n), Haar-distributed.
Matrix random_orthonormal(index_t m, index_t n, std::uint64_t seed);
/// U diag(sigma) V^T with random orthonormal U (m x r) and V (n x r), r = sigma.size().
Matrix with_singular_values(index_t m, index_t n, const std::vector<double>& sigma, std::uint64_t seed);
/// Exactly rank-r m x n matrix (product of Gaussian m x r and r x n factors).
Matrix low_rank(index_t m, index_t n, index_t r, std::uint64_t seed);
/// Kahan's n x n upper-triangular matrix: diag(1, s, ..., s^{n-1}) times the unit upper triangle
/// with -c above the diagonal (c^2 + s^2 = 1). Greedy pivoting keeps the identity order, yet
/// the matrix is nearly rank deficient: the classic counterexample for CPQR rank revealing.
Matrix kahan(index_t n, double c);
/// A fixed permutation of 0..n-1 from the seed (LCG Fisher-Yates, independent of the standard
/// library, so every rank and platform builds the same).
std::vector<index_t> shuffle(index_t n, std::uint64_t seed);
/// m x n Gaussian matrix whose column j has 2-norm top (1 - 0.15 j) DBL_MAX (separated norms at
/// the top of the double range; n <= 6 keeps them positive).
Matrix near_max_norm_columns(index_t m, index_t n, double top, std::uint64_t seed);
/// Sets the given columns of `a` to zero.
void zero_columns(Matrix& a, const std::vector<index_t>& cols);
/// Spectral norm (largest singular value), by LAPACK dgesdd on a copy.
double norm2(la::ConstMatrixView a);

}  // namespace idprune::test
