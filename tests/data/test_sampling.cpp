// Seeded sampling: permutations, uniform subsets without replacement (checked statistically with
// fixed seeds and 6-sigma bounds), the validation split and the compression set.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "files.hpp"
#include "idprune/data/sampling.hpp"

using namespace idprune;
using namespace idprune::data;

namespace {

bool sorted_distinct(const std::vector<std::int64_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), [](auto a, auto b) { return a >= b; }) == v.end();
}

}  // namespace

TEST(Sampling, PermutationIsAPermutationAndReproducible) {
  for (const std::int64_t n : {0, 1, 2, 100}) {
    const std::vector<std::int64_t> p = random_permutation(n, 5);
    std::vector<std::int64_t> s = p;
    std::sort(s.begin(), s.end());
    for (std::int64_t i = 0; i < n; ++i) EXPECT_EQ(s[static_cast<std::size_t>(i)], i);
    EXPECT_EQ(p, random_permutation(n, 5));
  }
  EXPECT_NE(random_permutation(100, 5), random_permutation(100, 6));
}

TEST(Sampling, PermutationIsUniformOverPositions) {
  // P(p[i] = j) = 1/n for a uniform permutation; counts over T seeds are binomial (6-sigma bound).
  constexpr std::int64_t n = 5, T = 6000;
  std::vector<std::vector<double>> count(n, std::vector<double>(n, 0.0));
  for (std::int64_t t = 0; t < T; ++t) {
    const auto p = random_permutation(n, static_cast<std::uint64_t>(t));
    for (std::int64_t i = 0; i < n; ++i)
      count[static_cast<std::size_t>(i)][static_cast<std::size_t>(p[static_cast<std::size_t>(i)])] += 1;
  }
  const double q = 1.0 / n;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      EXPECT_NEAR(count[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)], T * q,
                  6 * std::sqrt(T * q * (1 - q)))
          << "position " << i << " value " << j;
}

TEST(Sampling, SubsetIsSortedDistinctInRangeAndReproducible) {
  for (const auto& [population, n] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {0, 0}, {10, 0}, {10, 10}, {60000, 1000}, {1000000000000LL, 5}}) {
    const std::vector<std::int64_t> s = sample_without_replacement(population, n, 99);
    ASSERT_EQ(static_cast<std::int64_t>(s.size()), n);
    EXPECT_TRUE(sorted_distinct(s));
    if (n > 0) {
      EXPECT_GE(s.front(), 0);
      EXPECT_LT(s.back(), population);
    }
    EXPECT_EQ(s, sample_without_replacement(population, n, 99));
  }
  EXPECT_NE(sample_without_replacement(60000, 100, 1), sample_without_replacement(60000, 100, 2));
  EXPECT_ERROR_CONTAINS(sample_without_replacement(10, 11, 1), "n=11");
  EXPECT_ERROR_CONTAINS(sample_without_replacement(10, -1, 1), "n=-1");
}

TEST(Sampling, SubsetIsUniformInSinglesAndPairs) {
  // Uniform n-subsets of N: each element appears with probability n/N, each pair with
  // n(n-1)/(N(N-1)). Over T seeds the counts are binomial; allow 6 standard deviations.
  constexpr std::int64_t N = 12, n = 4, T = 6000;
  std::vector<double> single(N, 0.0);
  std::vector<std::vector<double>> pair(N, std::vector<double>(N, 0.0));
  for (std::int64_t t = 0; t < T; ++t) {
    const auto s = sample_without_replacement(N, n, static_cast<std::uint64_t>(t));
    for (std::size_t a = 0; a < s.size(); ++a) {
      single[static_cast<std::size_t>(s[a])] += 1;
      for (std::size_t b = a + 1; b < s.size(); ++b)
        pair[static_cast<std::size_t>(s[a])][static_cast<std::size_t>(s[b])] += 1;
    }
  }
  const double p1 = static_cast<double>(n) / N, p2 = static_cast<double>(n * (n - 1)) / (N * (N - 1));
  for (std::int64_t i = 0; i < N; ++i) {
    EXPECT_NEAR(single[static_cast<std::size_t>(i)], T * p1, 6 * std::sqrt(T * p1 * (1 - p1))) << "element " << i;
    for (std::int64_t j = i + 1; j < N; ++j)
      EXPECT_NEAR(pair[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)], T * p2,
                  6 * std::sqrt(T * p2 * (1 - p2)))
          << "pair " << i << "," << j;
  }
}

TEST(Sampling, ValidationSplitPartitionsTheTrainingRows) {
  const TrainValidationSplit s = train_validation_split(60000, 5000, 7);
  EXPECT_EQ(s.validation.size(), 5000u);
  EXPECT_EQ(s.train.size(), 55000u);
  EXPECT_TRUE(sorted_distinct(s.train));
  EXPECT_TRUE(sorted_distinct(s.validation));
  std::vector<std::int64_t> both;
  std::set_intersection(s.train.begin(), s.train.end(), s.validation.begin(), s.validation.end(),
                        std::back_inserter(both));
  EXPECT_TRUE(both.empty()) << "validation rows also in train";
  std::merge(s.train.begin(), s.train.end(), s.validation.begin(), s.validation.end(), std::back_inserter(both));
  for (std::int64_t i = 0; i < 60000; ++i) ASSERT_EQ(both[static_cast<std::size_t>(i)], i);
  const TrainValidationSplit again = train_validation_split(60000, 5000, 7);
  EXPECT_EQ(again.validation, s.validation);
  EXPECT_NE(train_validation_split(60000, 5000, 8).validation, s.validation);
  // The validation rows are spread over the file, not a block at its end.
  EXPECT_LT(s.validation.front(), 1000);
  EXPECT_GT(s.validation.back(), 59000);
  EXPECT_ERROR_CONTAINS(train_validation_split(10, 11, 1), "n_validation=11");
}

TEST(Sampling, CompressionSetComesFromThePoolOnly) {
  const TrainValidationSplit s = train_validation_split(6000, 500, 3);
  const std::vector<std::int64_t> c = sample_compression_set(s.train, 1000, 11);
  EXPECT_EQ(c.size(), 1000u);
  EXPECT_TRUE(sorted_distinct(c));
  EXPECT_TRUE(std::includes(s.train.begin(), s.train.end(), c.begin(), c.end())) << "not a subset of the pool";
  EXPECT_EQ(c, sample_compression_set(s.train, 1000, 11));
  EXPECT_NE(c, sample_compression_set(s.train, 1000, 12));
  // Same seed for split and sample: the streams are separated, so the sample is not the pool prefix.
  const std::vector<std::int64_t> whole = sample_compression_set(s.train, static_cast<std::int64_t>(s.train.size()), 3);
  EXPECT_EQ(whole, s.train);
  EXPECT_ERROR_CONTAINS(sample_compression_set(s.validation, 501, 1), "n_c=501");
  EXPECT_ERROR_CONTAINS(sample_compression_set(std::vector<std::int64_t>{1, 4, 1}, 1, 1), "row 1 more than once");
}
