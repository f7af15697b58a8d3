// Row sources: blocks concatenate to the whole source for every block size, every source agrees with
// the whole-file readers, rank shares partition the rows, and shift augmentation translates images.
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <set>

#include "files.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/idx.hpp"
#include "idprune/data/npy.hpp"
#include "idprune/data/row_source.hpp"
#include "support/matrices.hpp"

using namespace idprune;
using namespace idprune::data;
using namespace idprune::test;
using idprune::test::gaussian;
using la::index_t;

namespace {

/// Bitwise equality of two matrices (the sources promise identical values, not close ones).
void expect_identical(la::ConstMatrixView a, la::ConstMatrixView b, const std::string& what) {
  ASSERT_EQ(a.rows(), b.rows()) << what;
  ASSERT_EQ(a.cols(), b.cols()) << what;
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i)
      ASSERT_EQ(std::bit_cast<std::uint64_t>(a(i, j)), std::bit_cast<std::uint64_t>(b(i, j)))
          << what << " at (" << i << ", " << j << ")";
}

/// The blocks of for_each_block, concatenated in the order delivered; also checks first_row.
la::Matrix concatenated_blocks(const RowSource& s, index_t block_rows) {
  la::Matrix all(s.rows(), s.cols(), std::numeric_limits<double>::quiet_NaN());
  index_t expected_first = 0;
  for_each_block(s, block_rows, [&](la::ConstMatrixView rows, index_t first) {
    EXPECT_EQ(first, expected_first);
    EXPECT_LE(rows.rows(), block_rows);
    EXPECT_GT(rows.rows(), 0);
    all.block(first, 0, rows.rows(), rows.cols()).assign(rows);
    expected_first += rows.rows();
  });
  EXPECT_EQ(expected_first, s.rows());
  return all;
}

void expect_blocks_equal_read_all(const RowSource& s, const std::string& what) {
  const la::Matrix whole = read_all(s);
  for (index_t b : {index_t{1}, index_t{2}, index_t{3}, index_t{7}, s.rows(), s.rows() + 5}) {
    if (b < 1) continue;
    expect_identical(concatenated_blocks(s, b), whole, what + ", block_rows=" + std::to_string(b));
  }
}

/// A folder with IDX train/test files of `n` random images (side x side) each.
void write_idx_folder(const TempDir& dir, std::int64_t n, std::int64_t side, std::uint64_t seed) {
  for (const char* split : {"train", "t10k"}) {
    ByteRows images{n, side * side, random_bytes(static_cast<std::size_t>(n * side * side), seed)};
    write_idx_images(dir.file(std::string(split) + "-images-idx3-ubyte.gz"), images, side, side, true);
    write_idx_labels(dir.file(std::string(split) + "-labels-idx1-ubyte.gz"),
                     random_bytes(static_cast<std::size_t>(n), seed + 1, 10), true);
    ++seed;
  }
}

/// Image `img` of an n x side^2 matrix, translated by (dy, dx) with zero fill, written directly
/// from the definition shifted(y, x) = img(y - dy, x - dx).
std::vector<double> shifted_image(la::ConstMatrixView x, index_t img, index_t side, int dy, int dx) {
  std::vector<double> out(static_cast<std::size_t>(side * side), 0.0);
  for (index_t y = 0; y < side; ++y)
    for (index_t c = 0; c < side; ++c) {
      const index_t sy = y - dy, sc = c - dx;
      if (sy >= 0 && sy < side && sc >= 0 && sc < side)
        out[static_cast<std::size_t>(y * side + c)] = x(img, sy * side + sc);
    }
  return out;
}

}  // namespace

TEST(RowSource, MatrixBlocksConcatenateToReadAllForEveryBlockSize) {
  const la::Matrix x = gaussian(37, 5, 11);
  const RowSource s = matrix_rows(x);
  EXPECT_EQ(s.rows(), 37);
  EXPECT_EQ(s.cols(), 5);
  expect_identical(read_all(s), x, "read_all");
  expect_blocks_equal_read_all(s, "matrix_rows");
}

TEST(RowSource, EmptySourceCallsNothing) {
  const la::Matrix x(0, 4);
  int calls = 0;
  for_each_block(matrix_rows(x), 3, [&](la::ConstMatrixView, index_t) { ++calls; });
  for_each_block(RowSource(), 3, [&](la::ConstMatrixView, index_t) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(read_all(matrix_rows(x)).rows(), 0);
}

TEST(RowSource, NpyCalibrationAgreesWithReadNpyInEveryLayout) {
  TempDir dir;
  const la::Matrix x = gaussian(23, 6, 5);
  const std::string c_order = dir.file("c.npy");
  write_npy(c_order, x);  // float64, C order
  const RowSource s = calibration_rows(c_order);
  expect_identical(read_all(s), read_npy(c_order), "C order float64");
  expect_blocks_equal_read_all(s, "npy C order");

  // Fortran-order float32, written by hand: values exact in float32 so read_npy is the reference.
  std::string header = "{'descr': '<f4', 'fortran_order': True, 'shape': (23, 6), }";
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<std::uint8_t> bytes;
  bytes.reserve(10 + header.size() + 23 * 6 * 4);
  for (const int b :
       std::initializer_list<int>{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<int>(header.size()), 0})
    bytes.push_back(static_cast<std::uint8_t>(b));
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (index_t j = 0; j < 6; ++j)
    for (index_t i = 0; i < 23; ++i) {
      const auto b = std::bit_cast<std::array<std::uint8_t, 4>>(static_cast<float>(x(i, j)));
      bytes.insert(bytes.end(), b.begin(), b.end());
    }
  const std::string fortran = dir.file("f.npy");
  write_bytes(fortran, bytes);
  const RowSource f = calibration_rows(fortran);
  expect_identical(read_all(f), read_npy(fortran), "Fortran order float32");
  expect_blocks_equal_read_all(f, "npy Fortran order");
}

TEST(RowSource, IdxCalibrationAgreesWithImageReaderPlainAndGzip) {
  TempDir dir;
  const std::int64_t n = 19, side = 4;
  ByteRows images{n, side * side, random_bytes(static_cast<std::size_t>(n * side * side), 3)};
  for (const bool gz : {false, true}) {
    const std::string path = dir.file(gz ? "cal.idx.gz" : "cal.idx");
    write_idx_images(path, images, side, side, gz);
    const RowSource s = calibration_rows(path);
    ASSERT_EQ(s.rows(), n);
    ASSERT_EQ(s.cols(), side * side);
    const la::Matrix all = read_all(s);
    for (index_t i = 0; i < n; ++i)
      for (index_t j = 0; j < side * side; ++j)
        ASSERT_EQ(all(i, j), images.values[static_cast<std::size_t>(i * side * side + j)] / 255.0);
    expect_blocks_equal_read_all(s, gz ? "idx gzip" : "idx plain");
    // Reads out of order (backwards in a gzip stream) give the same rows.
    la::Matrix two(2, side * side);
    s.read_rows(12, two.view());
    s.read_rows(3, two.view());
    expect_identical(two, all.block(3, 0, 2, side * side), "backward read");
  }
}

TEST(RowSource, DatasetRowsAgreeWithLoadDataset) {
  TempDir dir;
  write_idx_folder(dir, 17, 5, 21);
  const std::string d = dir.path().string();
  const RowSource all = dataset_rows(d, Split::train);
  expect_identical(read_all(all), load_dataset(d, Split::train).x, "whole split");
  expect_blocks_equal_read_all(all, "dataset_rows");
  const std::vector<std::int64_t> list{16, 3, 3, 0, 9};
  const RowSource listed = dataset_rows(d, Split::test, list);
  expect_identical(read_all(listed), load_dataset_rows(d, Split::test, list).x, "row list");
  expect_blocks_equal_read_all(listed, "dataset_rows list");
  EXPECT_ERROR_CONTAINS(dataset_rows(d, Split::test, {0, 17}), "row 17");
}

TEST(RowSource, RankSharesPartitionTheRowsInOrder) {
  const la::Matrix x = gaussian(7, 3, 2);
  const RowSource s = matrix_rows(x);
  for (int p = 1; p <= 9; ++p) {
    index_t next = 0, smallest = x.rows(), largest = 0;
    for (int r = 0; r < p; ++r) {
      const RowSource share = rank_rows(s, r, p);
      smallest = std::min(smallest, share.rows());
      largest = std::max(largest, share.rows());
      expect_identical(read_all(share), x.block(next, 0, share.rows(), 3),
                       "rank " + std::to_string(r) + " of " + std::to_string(p));
      next += share.rows();
    }
    EXPECT_EQ(next, x.rows()) << "P=" << p;
    EXPECT_LE(largest - smallest, 1) << "P=" << p;
  }
  EXPECT_ERROR_CONTAINS(rank_rows(s, 2, 2), "rank=2");
  EXPECT_ERROR_CONTAINS(rank_rows(s, 0, 0), "nranks=0");
}

TEST(RowSource, ShiftAugmentedTranslatesEveryImageWithZeroFill) {
  const index_t side = 5, n = 3;
  const la::Matrix x = gaussian(n, side * side, 8);
  for (const int radius : {1, 2}) {
    const RowSource s = shift_augmented(matrix_rows(x), radius);
    const index_t v = (2 * radius + 1) * (2 * radius + 1);
    ASSERT_EQ(s.rows(), n * v);
    const la::Matrix all = read_all(s);
    for (index_t img = 0; img < n; ++img) {
      // Variant 0 is the original; the variants are exactly the translations with |dy|,|dx| <= radius.
      std::vector<double> original(x.cols());
      for (index_t j = 0; j < x.cols(); ++j) original[static_cast<std::size_t>(j)] = x(img, j);
      std::vector<double> first(all.cols());
      for (index_t j = 0; j < all.cols(); ++j) first[static_cast<std::size_t>(j)] = all(img * v, j);
      EXPECT_EQ(first, original);
      std::set<std::vector<double>> expected, found;
      for (int dy = -radius; dy <= radius; ++dy)
        for (int dx = -radius; dx <= radius; ++dx) expected.insert(shifted_image(x, img, side, dy, dx));
      for (index_t k = 0; k < v; ++k) {
        std::vector<double> row(all.cols());
        for (index_t j = 0; j < all.cols(); ++j) row[static_cast<std::size_t>(j)] = all(img * v + k, j);
        found.insert(row);
      }
      EXPECT_EQ(found, expected) << "image " << img << ", radius " << radius;
      // The documented order: the original, then (dy, dx) lexicographically, (dy, dx) = (1, 0) moving
      // the content one row down.
      index_t k = 1;
      for (int dy = -radius; dy <= radius; ++dy)
        for (int dx = -radius; dx <= radius; ++dx) {
          if (dy == 0 && dx == 0) continue;
          std::vector<double> row(all.cols());
          for (index_t j = 0; j < all.cols(); ++j) row[static_cast<std::size_t>(j)] = all(img * v + k, j);
          EXPECT_EQ(row, shifted_image(x, img, side, dy, dx))
              << "variant " << k << " (dy=" << dy << ", dx=" << dx << ")";
          ++k;
        }
      EXPECT_EQ(found.size(), static_cast<std::size_t>(v));
    }
    expect_blocks_equal_read_all(s, "shift radius " + std::to_string(radius));
  }
  EXPECT_EQ(shift_augmented(matrix_rows(x), 0).rows(), n);
}

TEST(RowSource, ShiftedSinglePixelMovesToEachNeighbour) {
  // One lit pixel at (2, 3) of a 6 x 6 image: the 9 variants light exactly (2 + dy, 3 + dx).
  const index_t side = 6;
  la::Matrix x(1, side * side);
  x(0, 2 * side + 3) = 1.0;
  const la::Matrix all = read_all(shift_augmented(matrix_rows(x), 1));
  ASSERT_EQ(all.rows(), 9);
  std::set<std::pair<index_t, index_t>> lit;
  for (index_t k = 0; k < 9; ++k) {
    double sum = 0.0;
    for (index_t j = 0; j < all.cols(); ++j) {
      sum += all(k, j);
      if (all(k, j) == 1.0) lit.emplace(j / side - 2, j % side - 3);
    }
    EXPECT_EQ(sum, 1.0) << "variant " << k;
  }
  EXPECT_EQ(lit.size(), 9u);
  for (const auto& [dy, dx] : lit) EXPECT_TRUE(std::abs(dy) <= 1 && std::abs(dx) <= 1) << dy << "," << dx;
  EXPECT_EQ(all(0, 2 * side + 3), 1.0);  // variant 0: the original
}

TEST(RowSource, ComposedSourcesKeepBlocksIdentical) {
  TempDir dir;
  write_idx_folder(dir, 11, 4, 31);
  const RowSource aug = shift_augmented(dataset_rows(dir.path().string(), Split::train), 1);
  const la::Matrix whole = read_all(aug);
  for (int p = 1; p <= 4; ++p) {
    index_t next = 0;
    for (int r = 0; r < p; ++r) {
      // A share may start in the middle of an image's variants.
      const RowSource share = rank_rows(aug, r, p);
      expect_identical(read_all(share), whole.block(next, 0, share.rows(), whole.cols()), "augmented share");
      expect_blocks_equal_read_all(share, "augmented share");
      next += share.rows();
    }
    EXPECT_EQ(next, whole.rows());
  }
  const RowSource inner = aug.row_range(5, 13).row_range(2, 9);
  expect_identical(read_all(inner), whole.block(7, 0, 9, whole.cols()), "nested ranges");
}

TEST(RowSource, ErrorsNameTheProblem) {
  TempDir dir;
  const la::Matrix x = gaussian(4, 10, 1);
  EXPECT_ERROR_CONTAINS(shift_augmented(matrix_rows(x), 1), "not square");
  EXPECT_ERROR_CONTAINS(shift_augmented(matrix_rows(gaussian(2, 9, 1)), 3), "smaller than the image side");
  EXPECT_ERROR_CONTAINS(shift_augmented(matrix_rows(gaussian(2, 9, 1)), -1), "radius=-1");
  EXPECT_ERROR_CONTAINS(for_each_block(matrix_rows(x), 0, [](la::ConstMatrixView, index_t) {}), "block_rows=0");
  la::Matrix out(3, 10);
  EXPECT_ERROR_CONTAINS(matrix_rows(x).read_rows(2, out.view()), "outside");
  la::Matrix narrow(1, 9);
  EXPECT_ERROR_CONTAINS(matrix_rows(x).read_rows(0, narrow.view()), "columns");
  EXPECT_ERROR_CONTAINS(matrix_rows(x).row_range(3, 2), "outside");

  la::Matrix bad = gaussian(5, 3, 2);
  bad(3, 1) = std::numeric_limits<double>::infinity();
  write_npy(dir.file("bad.npy"), bad);
  const RowSource s = calibration_rows(dir.file("bad.npy"));
  la::Matrix ok(3, 3);
  s.read_rows(0, ok.view());  // rows 0..2 are finite
  EXPECT_ERROR_CONTAINS(read_all(s), "index (3, 1)");

  write_npy(dir.file("vec.npy"), gaussian(5, 1, 2));
  // write_npy writes 2-D (5, 1): accepted; a 1-D array is not.
  EXPECT_EQ(calibration_rows(dir.file("vec.npy")).cols(), 1);
  write_idx_labels(dir.file("labels.idx"), std::vector<std::uint8_t>{1, 2}, false);
  EXPECT_ERROR_CONTAINS(calibration_rows(dir.file("labels.idx")), "IDX3");
  write_bytes(dir.file("junk"), {1, 2, 3, 4, 5});
  EXPECT_ERROR_CONTAINS(calibration_rows(dir.file("junk")), "neither");
  EXPECT_ERROR_CONTAINS(calibration_rows(dir.file("missing")), "missing");
}
