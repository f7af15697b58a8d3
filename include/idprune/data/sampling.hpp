#pragma once
// Seeded index sampling: the validation split held out of the training set, the compression set
// drawn from the rest, and permutations. Every function takes its seed explicitly and gives the same
// indices on every platform and compiler (std::mt19937_64 with its own unbiased bounded draw, not
// std::uniform_int_distribution, whose algorithm is implementation-defined).
//
// MPI: the index lists are global and identical on every rank; rank r takes the contiguous block
// list[begin, begin + count) given by dist::block_rows(list.size(), size, r) and reads only those rows
// (load_dataset_rows). Concatenating the blocks in rank order gives the global list, so results do not
// depend on the number of ranks.
#include <cstdint>
#include <span>
#include <vector>

namespace idprune::data {

/// A random permutation of 0..n-1 (Fisher-Yates, Knuth TAOCP vol. 2, Algorithm 3.4.2P).
[[nodiscard]] std::vector<std::int64_t> random_permutation(std::int64_t n, std::uint64_t seed);

/// n distinct indices drawn uniformly from 0..population-1 (a uniform random n-subset: sampling
/// without replacement), returned sorted ascending. Requires 0 <= n <= population.
[[nodiscard]] std::vector<std::int64_t> sample_without_replacement(std::int64_t population, std::int64_t n,
                                                                   std::uint64_t seed);

/// The training set split into a part used for fitting/compression and a held-out validation part
/// (for searches over compression parameters). Both sorted ascending, disjoint, union 0..n_train-1.
struct TrainValidationSplit {
  std::vector<std::int64_t> train;
  std::vector<std::int64_t> validation;
};

/// validation = the last n_validation entries of random_permutation(n_train, seed), train = the rest.
/// Indices refer to rows of the training split only: the test set is never part of this.
[[nodiscard]] TrainValidationSplit train_validation_split(std::int64_t n_train, std::int64_t n_validation,
                                                          std::uint64_t seed);

/// The compression set: n_c distinct entries of `pool` (e.g. TrainValidationSplit::train, or all
/// training rows) chosen uniformly at random without replacement, sorted ascending.
[[nodiscard]] std::vector<std::int64_t> sample_compression_set(std::span<const std::int64_t> pool, std::int64_t n_c,
                                                               std::uint64_t seed);

}  // namespace idprune::data
