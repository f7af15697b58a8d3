#pragma once
// CIFAR-10 binary batches (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"): each file
// is a sequence of 3073-byte records, one label byte (0..9) followed by 3072 pixel bytes (the 1024
// red values, then green, then blue, each 32 x 32 row-major). data_batch_{1..5}.bin hold 10000
// training records each, test_batch.bin 10000 test records.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "idprune/data/idx.hpp"

namespace idprune::data {

inline constexpr std::int64_t cifar10_features = 3072;
inline constexpr std::int64_t cifar10_record_bytes = 1 + cifar10_features;
inline constexpr int cifar10_classes = 10;

/// Number of records in one batch file; throws unless its length is a positive multiple of 3073.
[[nodiscard]] std::int64_t cifar10_batch_records(const std::string& path);

/// Records [begin, begin + count) of one batch file (count < 0: to the end): pixels into
/// `images` (features = 3072, channel-major as stored) and labels into `labels`. Checks the file
/// length and that every label read is below 10 (the error names the record and its offset).
void read_cifar10_batch(const std::string& path, std::int64_t begin, std::int64_t count, ByteRows& images,
                        std::vector<std::uint8_t>& labels);

/// The records with the given indices (in the order given) of one batch file.
void read_cifar10_batch_rows(const std::string& path, std::span<const std::int64_t> rows, ByteRows& images,
                             std::vector<std::uint8_t>& labels);

}  // namespace idprune::data
