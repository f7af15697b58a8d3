#pragma once
// Test problems for the low-rank study (reference text, Goal 3): the Gaussian kernel matrix of
// random points, G_ij = exp(-gamma ||x_i - x_j||^2), whose singular values decay quickly.
#include <cstdint>

#include "idprune/la/matrix.hpp"

namespace idprune::la {

/// n points drawn i.i.d. uniformly from [0, 1)^dim, one per row (n x dim). The generator is
/// std::mt19937_64 seeded with `seed`, each coordinate taking its top 53 bits, so the points are
/// the same on every platform and standard library.
Matrix uniform_points(index_t n, index_t dim, std::uint64_t seed);

/// G_ij = exp(-gamma ||x_i - x_j||^2) for the rows x_i of `points` (symmetric, unit diagonal).
Matrix gaussian_kernel(ConstMatrixView points, double gamma);

/// The reference text's kernel matrix: n uniform points in the unit square, gamma = 2.
Matrix kernel_study_matrix(index_t n, std::uint64_t seed);

}  // namespace idprune::la
