#pragma once
// Reproducible row-distributed test matrices for benchmarks and tests: every row is a function of
// (seed, global row index) and of small factors every rank rebuilds from the seed, so each rank
// generates only its own rows and the global matrix does not depend on the number of ranks.
#include <cstdint>
#include <string_view>

#include "idprune/dist/dist_matrix.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::dist {

enum class GeneratedKind {
  /// Z = X diag(s) V + noise N: X (m x r) and N standard normal, V (r x n) with unit-variance
  /// entries scaled by 1/sqrt(r), s_i = 10^(-decades * i / r). Numerical rank about r.
  low_rank_plus_noise,
  /// Activation-like: Z = relu(X diag(s) W + b), X (m x d) standard normal, s_i = feature_decay^i
  /// (decaying feature scales, like the spectrum of real inputs), W (d x n) standard normal, the
  /// whole scaled to unit pre-activation variance,
  /// b_j = bias (negative: mostly zeros), and a fraction of dead neurons (b_j = -inf: zero columns).
  /// Redundant neurons, as in trained layers that pruning compresses: column j of W is
  /// U(:, j mod (n / redundancy)) + perturbation * G(:, j) with U, G standard normal, so groups of
  /// `redundancy` neurons respond almost alike (numerical rank about n / redundancy at tolerances
  /// above the perturbation).
  relu_activations,
};

/// Parses "lowrank" | "relu"; throws idprune::Error otherwise.
GeneratedKind parse_generated_kind(std::string_view name);
std::string_view to_string(GeneratedKind kind);

struct GeneratorOptions {
  GeneratedKind kind = GeneratedKind::relu_activations;
  std::uint64_t seed = 1;
  la::index_t inner = 0;       ///< r (low rank) or d (features); 0: max(1, n / 8)
  double decades = 4.0;        ///< low rank: s runs from 1 down to 10^-decades
  double noise = 1e-9;         ///< low rank: noise level (entries of N scaled by this)
  double feature_decay = 0.9;  ///< relu: ratio of consecutive feature scales
  la::index_t redundancy = 4;  ///< relu: neurons per group of near-duplicates (1: none)
  double perturbation = 1e-3;  ///< relu: relative difference within a group
  double bias = -1.0;          ///< relu: bias of the live neurons (pre-activations are ~N(0, 1))
  double dead_fraction = 0.1;  ///< relu: fraction of dead neurons (chosen from the seed)
};

/// Rows [row_begin, row_begin + rows) of the global (any) x cols test matrix.
[[nodiscard]] la::Matrix generate_rows(const GeneratorOptions& opts, la::index_t row_begin, la::index_t rows,
                                       la::index_t cols);

/// The global_rows x cols test matrix, block-row distributed over comm (not collective).
[[nodiscard]] DistMatrix generate_distributed(const Comm& comm, const GeneratorOptions& opts, la::index_t global_rows,
                                              la::index_t cols);

}  // namespace idprune::dist
