#include "idprune/data/sampling.hpp"

#include <algorithm>
#include <random>
#include <unordered_set>

#include "idprune/la/error.hpp"

namespace idprune::data {

namespace {

/// SplitMix64 finaliser (Steele, Lea, Flood 2014): turns (seed, purpose) into well-separated
/// engine seeds, so the same user seed gives unrelated streams for the validation split and the
/// compression set.
std::uint64_t mix(std::uint64_t seed, std::uint64_t purpose) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (purpose + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

enum Purpose : std::uint64_t {
  permutation_stream = 1,
  subset_stream = 2,
  validation_stream = 3,
  compression_stream = 4
};

/// Uniform integer in [0, range) by rejection, identical on every platform (unlike
/// std::uniform_int_distribution). Requires range >= 1.
std::int64_t uniform_below(std::mt19937_64& engine, std::uint64_t range) {
  // Accept x below the largest multiple of range not exceeding 2^64, then reduce.
  const std::uint64_t rem = (UINT64_MAX % range + 1) % range;  // 2^64 mod range
  for (;;) {
    const std::uint64_t x = engine();
    if (x <= UINT64_MAX - rem) return static_cast<std::int64_t>(x % range);
  }
}

std::vector<std::int64_t> permutation_from(std::mt19937_64& engine, std::int64_t n) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const std::int64_t j = uniform_below(engine, static_cast<std::uint64_t>(i) + 1);
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

/// Floyd's algorithm (Bentley & Floyd, "A sample of brilliance", CACM 30(9), 1987): a uniform
/// n-subset of [0, population) in O(n) memory, whatever the population.
std::vector<std::int64_t> floyd_subset(std::mt19937_64& engine, std::int64_t population, std::int64_t n) {
  std::unordered_set<std::int64_t> chosen;
  chosen.reserve(static_cast<std::size_t>(n));
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::int64_t j = population - n; j < population; ++j) {
    const std::int64_t t = uniform_below(engine, static_cast<std::uint64_t>(j) + 1);
    const std::int64_t pick = chosen.insert(t).second ? t : j;
    if (pick == j) chosen.insert(j);
    out.push_back(pick);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::int64_t> random_permutation(std::int64_t n, std::uint64_t seed) {
  require(n >= 0, "random_permutation: n=", n, " < 0");
  std::mt19937_64 engine(mix(seed, permutation_stream));
  return permutation_from(engine, n);
}

std::vector<std::int64_t> sample_without_replacement(std::int64_t population, std::int64_t n, std::uint64_t seed) {
  require(population >= 0 && n >= 0 && n <= population, "sample_without_replacement: n=", n,
          " must lie in [0, population=", population, "]");
  std::mt19937_64 engine(mix(seed, subset_stream));
  return floyd_subset(engine, population, n);
}

TrainValidationSplit train_validation_split(std::int64_t n_train, std::int64_t n_validation, std::uint64_t seed) {
  require(n_train >= 0 && n_validation >= 0 && n_validation <= n_train,
          "train_validation_split: n_validation=", n_validation, " must lie in [0, n_train=", n_train, "]");
  std::mt19937_64 engine(mix(seed, validation_stream));
  const std::vector<std::int64_t> p = permutation_from(engine, n_train);
  const auto cut = p.begin() + (n_train - n_validation);
  TrainValidationSplit split{{p.begin(), cut}, {cut, p.end()}};
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  return split;
}

std::vector<std::int64_t> sample_compression_set(std::span<const std::int64_t> pool, std::int64_t n_c,
                                                 std::uint64_t seed) {
  const auto n = static_cast<std::int64_t>(pool.size());
  require(n_c >= 0 && n_c <= n, "sample_compression_set: n_c=", n_c, " must lie in [0, pool size=", n, "]");
  std::vector<std::int64_t> sorted(pool.begin(), pool.end());
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  require(dup == sorted.end(), "sample_compression_set: the pool lists row ", dup == sorted.end() ? 0 : *dup,
          " more than once");
  std::mt19937_64 engine(mix(seed, compression_stream));
  std::vector<std::int64_t> picks = floyd_subset(engine, n, n_c);
  for (std::int64_t& k : picks) k = pool[static_cast<std::size_t>(k)];
  std::sort(picks.begin(), picks.end());
  return picks;
}

}  // namespace idprune::data
