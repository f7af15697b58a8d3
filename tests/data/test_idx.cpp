// IDX readers: round trips (plain and gzip), row ranges and row lists against the full read, and
// every malformed-input case (magic, type, dimensions, length, truncated or corrupt gzip, absurd sizes).
#include <gtest/gtest.h>

#include <algorithm>

#include "files.hpp"
#include "idprune/data/idx.hpp"

using namespace idprune;
using namespace idprune::data;
using namespace idprune::test;

namespace {

constexpr std::int64_t n_images = 37, height = 5, width = 7, features = height * width;

ByteRows sample_images(std::uint64_t seed) {
  ByteRows r;
  r.count = n_images;
  r.features = features;
  r.values = random_bytes(static_cast<std::size_t>(n_images * features), seed);
  return r;
}

/// A raw IDX image file: header (magic, dims) followed by `payload` bytes.
std::vector<std::uint8_t> idx_images_bytes(std::uint32_t magic, std::uint32_t n, std::uint32_t h, std::uint32_t w,
                                           const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, h);
  put_be32(b, w);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

class IdxFormats : public ::testing::TestWithParam<bool> {};  // parameter: gzip

}  // namespace

TEST_P(IdxFormats, ImagesAndLabelsRoundTrip) {
  const bool gz = GetParam();
  TempDir dir;
  const ByteRows images = sample_images(11);
  const std::vector<std::uint8_t> labels = random_bytes(n_images, 12, 10);
  write_idx_images(dir.file("img"), images, height, width, gz);
  write_idx_labels(dir.file("lab"), labels, gz);
  const std::vector<std::uint8_t> raw = read_bytes(dir.file("img"));
  EXPECT_EQ(raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b, gz);

  const IdxInfo info = read_idx_info(dir.file("img"));
  EXPECT_EQ(info.ndims, 3);
  EXPECT_EQ(info.dims, (std::vector<std::int64_t>{n_images, height, width}));
  EXPECT_EQ(info.gzip, gz);
  std::int64_t h = 0, w = 0;
  const ByteRows back = read_idx_images(dir.file("img"), 0, -1, &h, &w);
  EXPECT_EQ(back.count, n_images);
  EXPECT_EQ(back.features, features);
  EXPECT_EQ(h, height);
  EXPECT_EQ(w, width);
  EXPECT_EQ(back.values, images.values);
  EXPECT_EQ(read_idx_labels(dir.file("lab")), labels);
  EXPECT_EQ(read_idx_info(dir.file("lab")).dims, (std::vector<std::int64_t>{n_images}));
  // No temporary files are left next to the outputs.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 2);
}

TEST_P(IdxFormats, RowRangeEqualsSliceOfFullRead) {
  const bool gz = GetParam();
  TempDir dir;
  const ByteRows images = sample_images(21);
  const std::vector<std::uint8_t> labels = random_bytes(n_images, 22, 10);
  write_idx_images(dir.file("img"), images, height, width, gz);
  write_idx_labels(dir.file("lab"), labels, gz);
  for (const auto& [begin, count] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {0, 0}, {0, 1}, {0, n_images}, {5, 9}, {n_images - 1, 1}, {n_images, 0}, {13, -1}}) {
    const std::int64_t expect = count < 0 ? n_images - begin : count;
    const ByteRows part = read_idx_images(dir.file("img"), begin, count);
    ASSERT_EQ(part.count, expect) << "begin=" << begin;
    const auto first = images.values.begin() + begin * features;
    EXPECT_TRUE(std::equal(part.values.begin(), part.values.end(), first, first + expect * features))
        << "begin=" << begin << " count=" << count;
    EXPECT_EQ(static_cast<std::int64_t>(part.values.size()), expect * features);
    const std::vector<std::uint8_t> lab = read_idx_labels(dir.file("lab"), begin, count);
    EXPECT_EQ(lab, std::vector<std::uint8_t>(labels.begin() + begin, labels.begin() + begin + expect));
  }
  // Contiguous blocks (as MPI ranks take them) concatenate to the whole file.
  std::vector<std::uint8_t> joined;
  for (std::int64_t b = 0; b < n_images; b += 10) {
    const ByteRows part = read_idx_images(dir.file("img"), b, std::min<std::int64_t>(10, n_images - b));
    joined.insert(joined.end(), part.values.begin(), part.values.end());
  }
  EXPECT_EQ(joined, images.values);
}

TEST_P(IdxFormats, RowListEqualsGatherInGivenOrder) {
  const bool gz = GetParam();
  TempDir dir;
  const ByteRows images = sample_images(31);
  const std::vector<std::uint8_t> labels = random_bytes(n_images, 32, 10);
  write_idx_images(dir.file("img"), images, height, width, gz);
  write_idx_labels(dir.file("lab"), labels, gz);
  const std::vector<std::int64_t> rows{30, 2, 2, 36, 0, 17, 2};  // unsorted, with duplicates
  const ByteRows got = read_idx_images_rows(dir.file("img"), rows);
  const std::vector<std::uint8_t> got_labels = read_idx_labels_rows(dir.file("lab"), rows);
  ASSERT_EQ(got.count, static_cast<std::int64_t>(rows.size()));
  for (std::size_t p = 0; p < rows.size(); ++p) {
    const auto src = images.values.begin() + rows[p] * features;
    EXPECT_TRUE(std::equal(src, src + features, got.values.begin() + static_cast<std::int64_t>(p) * features))
        << "position " << p << " row " << rows[p];
    EXPECT_EQ(got_labels[p], labels[static_cast<std::size_t>(rows[p])]);
  }
  EXPECT_EQ(read_idx_images_rows(dir.file("img"), {}).count, 0);
  EXPECT_ERROR_CONTAINS(read_idx_images_rows(dir.file("img"), std::vector<std::int64_t>{3, n_images}), "row index 37");
  EXPECT_ERROR_CONTAINS(read_idx_labels_rows(dir.file("lab"), std::vector<std::int64_t>{-1}), "row index -1");
}

TEST_P(IdxFormats, RowRangeOutsideFileRejected) {
  TempDir dir;
  write_idx_images(dir.file("img"), sample_images(41), height, width, GetParam());
  EXPECT_ERROR_CONTAINS(read_idx_images(dir.file("img"), 30, 8), "outside the 37 items");
  EXPECT_ERROR_CONTAINS(read_idx_images(dir.file("img"), -1, 2), "outside the 37 items");
  EXPECT_ERROR_CONTAINS(read_idx_images(dir.file("img"), 38, -1), "outside the 37 items");
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxFormats, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "gzip" : "plain"; });

TEST(Idx, BadMagicTypeAndDimensionsRejected) {
  TempDir dir;
  const std::vector<std::uint8_t> payload(2 * 3 * 4, 7);
  const std::string f = dir.file("bad");
  for (const bool gz : {false, true}) {
    auto put = [&](const std::vector<std::uint8_t>& b) { write_bytes(f, gz ? gzip_bytes(b) : b); };
    put(idx_images_bytes(0x12345678, 2, 3, 4, payload));
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "not an IDX file");
    EXPECT_ERROR_CONTAINS(read_idx_images(f), f);
    put(idx_images_bytes(0x00000D03, 2, 3, 4, payload));  // float32 IDX
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "data type 0xd");
    put(idx_images_bytes(0x00000804, 2, 3, 4, payload));  // 4 dimensions
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "has 4 dimensions");
    put(idx_images_bytes(0x00000803, 2, 0, 4, {}));  // empty images
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "must be positive");
    // A label file is not an image file, and vice versa.
    write_idx_labels(f, std::vector<std::uint8_t>{1, 2, 3}, gz);
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "expected 3");
    put(idx_images_bytes(0x00000803, 2, 3, 4, payload));
    EXPECT_ERROR_CONTAINS(read_idx_labels(f), "expected 1");
    // Too short for the header.
    put({0x00, 0x00, 0x08});
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "truncated");
    put({0x00, 0x00, 0x08, 0x03, 0, 0, 0, 2, 0, 0});
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "truncated");
  }
}

TEST(Idx, WrongFileLengthRejected) {
  TempDir dir;
  const std::string f = dir.file("img");
  const std::vector<std::uint8_t> payload = random_bytes(2 * 3 * 4, 5);
  for (const bool gz : {false, true}) {
    auto put = [&](const std::vector<std::uint8_t>& b) { write_bytes(f, gz ? gzip_bytes(b) : b); };
    std::vector<std::uint8_t> shortened(payload.begin(), payload.end() - 1);
    put(idx_images_bytes(0x00000803, 2, 3, 4, shortened));
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "truncated");
    // Even a range that lies before the missing byte is rejected: the whole file is validated.
    EXPECT_ERROR_CONTAINS(read_idx_images(f, 0, 1), "truncated");
    std::vector<std::uint8_t> longer = payload;
    longer.push_back(0);
    put(idx_images_bytes(0x00000803, 2, 3, 4, longer));
    EXPECT_ERROR_CONTAINS(read_idx_images(f), "1 unexpected bytes");
    EXPECT_ERROR_CONTAINS(read_idx_images(f, 0, 1), "1 unexpected bytes");
  }
}

TEST(Idx, TruncatedOrCorruptGzipRejected) {
  TempDir dir;
  const std::string f = dir.file("img.gz");
  write_idx_images(f, sample_images(51), height, width, true);
  const std::vector<std::uint8_t> good = read_bytes(f);
  // Cut in the middle of the deflate stream, and cut only the 8-byte trailer (CRC-32, length).
  for (const std::size_t keep : {good.size() / 2, good.size() - 8, good.size() - 1}) {
    write_bytes(f, std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep)));
    SCOPED_TRACE("keep=" + std::to_string(keep));
    EXPECT_ERROR_CONTAINS(read_idx_images(f), f);
    EXPECT_ERROR_CONTAINS(read_idx_images(f, 0, 1), f);
  }
  // A wrong CRC-32 in the trailer.
  std::vector<std::uint8_t> bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 0xff;
  write_bytes(f, bad_crc);
  EXPECT_ERROR_CONTAINS(read_idx_images(f), "gzip data is corrupt");
  EXPECT_ERROR_CONTAINS(read_idx_images_rows(f, std::vector<std::int64_t>{0}), "gzip data is corrupt");
}

TEST(Idx, AbsurdHeaderSizesRejectedBeforeAllocating) {
  TempDir dir;
  const std::string f = dir.file("img");
  const std::vector<std::uint8_t> payload(24, 1);
  for (const bool gz : {false, true}) {
    auto put = [&](const std::vector<std::uint8_t>& b) { write_bytes(f, gz ? gzip_bytes(b) : b); };
    // 4e9 images of 28 x 28 (3 TB): must fail on the header, not by allocating (bad_alloc) or reading.
    put(idx_images_bytes(0x00000803, 4000000000u, 28, 28, payload));
    const std::string msg = error_of([&] { (void)read_idx_images(f); });
    EXPECT_NE(msg.find(gz ? "more than a" : "truncated: header declares"), std::string::npos) << msg;
    EXPECT_ERROR_CONTAINS(read_idx_info(f), "3136000000000 data bytes");
    EXPECT_ERROR_CONTAINS(read_idx_images(f, 0, 1), "data bytes");
    EXPECT_ERROR_CONTAINS(read_idx_images_rows(f, std::vector<std::int64_t>{0}), "data bytes");
    std::vector<std::uint8_t> lab;
    put_be32(lab, 0x00000801);
    put_be32(lab, 0xffffffffu);
    put(lab);
    EXPECT_ERROR_CONTAINS(read_idx_labels(f), "4294967295 data bytes");
  }
}

TEST(Idx, MissingFileOrFolderNamed) {
  TempDir dir;
  EXPECT_ERROR_CONTAINS(read_idx_images(dir.file("nope")), "nope: cannot open");
  EXPECT_ERROR_CONTAINS(read_idx_images(dir.path().string()), "is a folder");
}

// Found by fuzz_idx: a file of zero images may declare any image size (0 data bytes fit any file), so
// the row list must be checked before room for the rows is allocated (here 2 x 2^62 bytes).
TEST(Idx, RowListIntoEmptyFileRejectedBeforeAllocating) {
  TempDir dir;
  const std::string f = dir.file("img");
  for (const bool gz : {false, true}) {
    const auto bytes = idx_images_bytes(0x00000803, 0, 0x80000000u, 0x80000000u, {});
    write_bytes(f, gz ? gzip_bytes(bytes) : bytes);
    EXPECT_EQ(read_idx_info(f).dims[0], 0);
    EXPECT_ERROR_CONTAINS(read_idx_images_rows(f, std::vector<std::int64_t>{0, 0}), f + ": row index 0");
    EXPECT_ERROR_CONTAINS(read_idx_images_rows(f, std::vector<std::int64_t>{0, 0}), "outside [0, 0)");
    std::vector<std::uint8_t> lab;
    put_be32(lab, 0x00000801);
    put_be32(lab, 0);
    write_bytes(f, gz ? gzip_bytes(lab) : lab);
    EXPECT_ERROR_CONTAINS(read_idx_labels_rows(f, std::vector<std::int64_t>{3}), "outside [0, 0)");
  }
}
