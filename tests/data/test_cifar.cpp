// CIFAR-10 binary batches: round trip from bytes written here, ranges and row lists, and the
// malformed cases (length not a multiple of 3073, empty file, label out of range).
#include <gtest/gtest.h>

#include "files.hpp"
#include "idprune/data/cifar.hpp"

using namespace idprune;
using namespace idprune::data;
using namespace idprune::test;

namespace {

/// `n` records with random pixels and labels label(i) = (3 i + 1) mod 10.
std::vector<std::uint8_t> cifar_records(std::int64_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> pixels = random_bytes(static_cast<std::size_t>(n * cifar10_features), seed);
  std::vector<std::uint8_t> out;
  for (std::int64_t i = 0; i < n; ++i) {
    out.push_back(static_cast<std::uint8_t>((3 * i + 1) % 10));
    out.insert(out.end(), pixels.begin() + i * cifar10_features, pixels.begin() + (i + 1) * cifar10_features);
  }
  return out;
}

}  // namespace

TEST(Cifar10, BatchRoundTripRangesAndRows) {
  TempDir dir;
  const std::string f = dir.file("data_batch_1.bin");
  const std::vector<std::uint8_t> bytes = cifar_records(9, 3);
  write_bytes(f, bytes);
  EXPECT_EQ(cifar10_batch_records(f), 9);
  ByteRows images;
  std::vector<std::uint8_t> labels;
  read_cifar10_batch(f, 0, -1, images, labels);
  ASSERT_EQ(images.count, 9);
  ASSERT_EQ(images.features, cifar10_features);
  for (std::int64_t i = 0; i < 9; ++i) {
    EXPECT_EQ(labels[static_cast<std::size_t>(i)], bytes[static_cast<std::size_t>(i * cifar10_record_bytes)]);
    EXPECT_TRUE(std::equal(images.values.begin() + i * cifar10_features,
                           images.values.begin() + (i + 1) * cifar10_features,
                           bytes.begin() + i * cifar10_record_bytes + 1))
        << "record " << i;
  }
  ByteRows part;
  std::vector<std::uint8_t> part_labels;
  read_cifar10_batch(f, 4, 3, part, part_labels);
  EXPECT_EQ(part.values, std::vector<std::uint8_t>(images.values.begin() + 4 * cifar10_features,
                                                   images.values.begin() + 7 * cifar10_features));
  EXPECT_EQ(part_labels, std::vector<std::uint8_t>(labels.begin() + 4, labels.begin() + 7));
  const std::vector<std::int64_t> rows{8, 0, 8, 3};
  read_cifar10_batch_rows(f, rows, part, part_labels);
  for (std::size_t p = 0; p < rows.size(); ++p) {
    EXPECT_EQ(part_labels[p], labels[static_cast<std::size_t>(rows[p])]);
    EXPECT_TRUE(std::equal(part.values.begin() + static_cast<std::int64_t>(p) * cifar10_features,
                           part.values.begin() + static_cast<std::int64_t>(p + 1) * cifar10_features,
                           images.values.begin() + rows[p] * cifar10_features));
  }
  EXPECT_ERROR_CONTAINS(read_cifar10_batch(f, 7, 3, part, part_labels), "outside the 9 records");
  EXPECT_ERROR_CONTAINS(read_cifar10_batch_rows(f, std::vector<std::int64_t>{9}, part, part_labels), "row index 9");
}

TEST(Cifar10, GzipBatchReadLikePlain) {
  TempDir dir;
  const std::vector<std::uint8_t> bytes = cifar_records(4, 8);
  write_bytes(dir.file("plain.bin"), bytes);
  write_bytes(dir.file("packed.bin"), gzip_bytes(bytes));
  ByteRows a, b;
  std::vector<std::uint8_t> la, lb;
  read_cifar10_batch(dir.file("plain.bin"), 1, 2, a, la);
  read_cifar10_batch(dir.file("packed.bin"), 1, 2, b, lb);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(la, lb);
}

TEST(Cifar10, MalformedBatchesRejected) {
  TempDir dir;
  const std::string f = dir.file("data_batch_1.bin");
  std::vector<std::uint8_t> bytes = cifar_records(3, 4);
  bytes.pop_back();  // truncated last record
  write_bytes(f, bytes);
  EXPECT_ERROR_CONTAINS(cifar10_batch_records(f), "not a positive multiple of the 3073-byte");
  EXPECT_ERROR_CONTAINS(cifar10_batch_records(f), f);
  bytes.push_back(0);
  bytes.push_back(0);  // one byte too many
  write_bytes(f, bytes);
  EXPECT_ERROR_CONTAINS(cifar10_batch_records(f), "9220 bytes");
  write_bytes(f, {});
  EXPECT_ERROR_CONTAINS(cifar10_batch_records(f), "0 bytes");
  bytes = cifar_records(3, 4);
  bytes[2 * cifar10_record_bytes] = 10;  // label of record 2
  write_bytes(f, bytes);
  ByteRows images;
  std::vector<std::uint8_t> labels;
  EXPECT_ERROR_CONTAINS(read_cifar10_batch(f, 0, -1, images, labels), "record 2 (offset 6146) has label 10");
  EXPECT_NO_THROW(read_cifar10_batch(f, 0, 2, images, labels));  // records 0 and 1 are fine
}
