// Data folders: IDX (Fashion-MNIST layout, plain and gzip) and CIFAR-10 batches written here;
// full loads, row ranges and row lists (as MPI ranks read them) against the full load, scaling,
// and the folder-level errors.
#include <gtest/gtest.h>

#include "files.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/sampling.hpp"

using namespace idprune;
using namespace idprune::data;
using namespace idprune::test;

namespace {

constexpr std::int64_t h = 4, w = 3;

struct Fake {
  ByteRows train, test;
  std::vector<std::uint8_t> train_y, test_y;
};

Fake write_idx_folder(const TempDir& dir, bool gz, std::int64_t n_train = 50, std::int64_t n_test = 20) {
  Fake f;
  f.train = {n_train, h * w, random_bytes(static_cast<std::size_t>(n_train * h * w), 1)};
  f.test = {n_test, h * w, random_bytes(static_cast<std::size_t>(n_test * h * w), 2)};
  f.train_y = random_bytes(static_cast<std::size_t>(n_train), 3, 10);
  f.test_y = random_bytes(static_cast<std::size_t>(n_test), 4, 10);
  const std::string ext = gz ? ".gz" : "";
  write_idx_images(dir.file("train-images-idx3-ubyte" + ext), f.train, h, w, gz);
  write_idx_labels(dir.file("train-labels-idx1-ubyte" + ext), f.train_y, gz);
  write_idx_images(dir.file("t10k-images-idx3-ubyte" + ext), f.test, h, w, gz);
  write_idx_labels(dir.file("t10k-labels-idx1-ubyte" + ext), f.test_y, gz);
  return f;
}

/// Expects d to hold rows `rows` of (x, y), scaled by 1/255.
void expect_rows(const Dataset& d, const ByteRows& x, const std::vector<std::uint8_t>& y,
                 const std::vector<std::int64_t>& rows) {
  ASSERT_EQ(d.samples(), static_cast<std::int64_t>(rows.size()));
  ASSERT_EQ(d.features(), x.features);
  ASSERT_EQ(d.y.size(), rows.size());
  for (std::size_t p = 0; p < rows.size(); ++p) {
    const auto i = static_cast<la::index_t>(p);
    EXPECT_EQ(d.y[p], y[static_cast<std::size_t>(rows[p])]) << "position " << p;
    for (std::int64_t j = 0; j < x.features; ++j)
      EXPECT_EQ(d.x(i, j), x.values[static_cast<std::size_t>(rows[p] * x.features + j)] / 255.0);
  }
}

std::vector<std::int64_t> range(std::int64_t begin, std::int64_t count) {
  std::vector<std::int64_t> r(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) r[static_cast<std::size_t>(i)] = begin + i;
  return r;
}

class IdxFolder : public ::testing::TestWithParam<bool> {};

}  // namespace

TEST_P(IdxFolder, LoadsInfoFullRangesAndRows) {
  TempDir dir;
  const Fake f = write_idx_folder(dir, GetParam());
  const DatasetInfo info = dataset_info(dir.path().string(), Split::train);
  EXPECT_EQ(info.format, Format::idx);
  EXPECT_EQ(info.samples, 50);
  EXPECT_EQ(info.features, h * w);
  EXPECT_EQ(info.height, h);
  EXPECT_EQ(info.width, w);
  EXPECT_EQ(info.classes, 10);
  EXPECT_EQ(dataset_info(dir.path().string(), Split::test).samples, 20);

  const Dataset all = load_dataset(dir.path().string(), Split::train);
  expect_rows(all, f.train, f.train_y, range(0, 50));
  for (std::int64_t j = 0; j < all.features(); ++j)
    for (std::int64_t i = 0; i < all.samples(); ++i) ASSERT_TRUE(all.x(i, j) >= 0.0 && all.x(i, j) <= 1.0);
  expect_rows(load_dataset(dir.path().string(), Split::test, 5, 7), f.test, f.test_y, range(5, 7));
  expect_rows(load_dataset(dir.path().string(), Split::test, 15), f.test, f.test_y, range(15, 5));

  // A compression set split over 3 "ranks" in contiguous blocks of the global list: the blocks
  // together are the rows of the whole list.
  const std::vector<std::int64_t> c = sample_compression_set(range(0, 50), 17, 5);
  std::int64_t begin = 0;
  for (const std::int64_t count : {6, 6, 5}) {
    const std::vector<std::int64_t> block(c.begin() + begin, c.begin() + begin + count);
    expect_rows(load_dataset_rows(dir.path().string(), Split::train, block), f.train, f.train_y, block);
    begin += count;
  }
  const RawDataset raw = load_raw_rows(dir.path().string(), Split::train, std::vector<std::int64_t>{49, 0});
  EXPECT_EQ(raw.y, (std::vector<std::uint8_t>{f.train_y[49], f.train_y[0]}));
  EXPECT_ERROR_CONTAINS(load_dataset(dir.path().string(), Split::test, 10, 11), "outside the 20 items");
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxFolder, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "gzip" : "plain"; });

TEST(Dataset, ToMatrixScalesBatchesAndGathers) {
  const ByteRows rows{3, 2, {0, 255, 51, 102, 1, 254}};
  const la::Matrix m = to_matrix(rows, 1, 2);
  ASSERT_EQ(m.rows(), 2);
  ASSERT_EQ(m.cols(), 2);
  EXPECT_EQ(m(0, 0), 51 / 255.0);
  EXPECT_EQ(m(0, 1), 102 / 255.0);
  EXPECT_EQ(m(1, 1), 254 / 255.0);
  const la::Matrix g = to_matrix(rows, std::vector<std::int64_t>{2, 0});
  EXPECT_EQ(g(0, 0), 1 / 255.0);
  EXPECT_EQ(g(1, 1), 1.0);
  EXPECT_ERROR_CONTAINS(to_matrix(rows, 2, 2), "outside the 3 samples");
  EXPECT_ERROR_CONTAINS(to_matrix(rows, std::vector<std::int64_t>{3}), "index 3");
}

TEST(Dataset, LabelsOutsideTheClassesRejected) {
  TempDir dir;
  Fake f = write_idx_folder(dir, true);
  f.test_y[13] = 10;
  write_idx_labels(dir.file("t10k-labels-idx1-ubyte.gz"), f.test_y, true);
  EXPECT_ERROR_CONTAINS(load_dataset(dir.path().string(), Split::test), "label 10 of item 13");
  EXPECT_ERROR_CONTAINS(load_dataset_rows(dir.path().string(), Split::test, std::vector<std::int64_t>{13}),
                        "label 10 of item 13");
  EXPECT_NO_THROW((void)load_dataset(dir.path().string(), Split::test, 0, 13));
}

TEST(Dataset, FolderErrorsNameWhatIsMissing) {
  TempDir dir;
  EXPECT_ERROR_CONTAINS(dataset_info(dir.file("absent"), Split::train), "not found");
  EXPECT_ERROR_CONTAINS(dataset_info(dir.path().string(), Split::train), "looked for train-images-idx3-ubyte");
  write_idx_folder(dir, true);
  std::filesystem::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
  EXPECT_ERROR_CONTAINS(load_dataset(dir.path().string(), Split::test), "no t10k-labels-idx1-ubyte");
  // Image and label counts disagree.
  write_idx_labels(dir.file("t10k-labels-idx1-ubyte.gz"), std::vector<std::uint8_t>(19, 1), true);
  EXPECT_ERROR_CONTAINS(dataset_info(dir.path().string(), Split::test), "20 images but");
  EXPECT_ERROR_CONTAINS(load_dataset(dir.path().string(), Split::test, 0, 1), "20 images but");
}

TEST(Dataset, Cifar10FolderSpansBatchFiles) {
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "cifar-10-batches-bin");
  ByteRows all{0, 3072, {}};
  std::vector<std::uint8_t> labels;
  const std::vector<std::int64_t> sizes{4, 3, 5};
  for (std::size_t b = 0; b <= sizes.size(); ++b) {
    const std::int64_t n = b < sizes.size() ? sizes[b] : 2;
    const std::vector<std::uint8_t> px = random_bytes(static_cast<std::size_t>(n * 3072), 40 + b);
    std::vector<std::uint8_t> file;
    for (std::int64_t i = 0; i < n; ++i) {
      const auto label = static_cast<std::uint8_t>((7 * i + b) % 10);
      file.push_back(label);
      file.insert(file.end(), px.begin() + i * 3072, px.begin() + (i + 1) * 3072);
      if (b < sizes.size()) labels.push_back(label);
    }
    if (b < sizes.size()) {
      all.values.insert(all.values.end(), px.begin(), px.end());
      all.count += n;
    }
    const std::string name = b < sizes.size() ? "data_batch_" + std::to_string(b + 1) + ".bin" : "test_batch.bin";
    write_bytes((dir.path() / "cifar-10-batches-bin" / name).string(), file);
  }
  const std::string d = dir.path().string();
  const DatasetInfo info = dataset_info(d, Split::train);
  EXPECT_EQ(info.format, Format::cifar10);
  EXPECT_EQ(info.samples, 12);
  EXPECT_EQ(info.features, 3072);
  EXPECT_EQ(info.channels, 3);
  EXPECT_EQ(info.files.size(), 3u);
  EXPECT_EQ(dataset_info(d, Split::test).samples, 2);
  expect_rows(load_dataset(d, Split::train), all, labels, range(0, 12));
  expect_rows(load_dataset(d, Split::train, 2, 7), all, labels, range(2, 7));  // spans all three files
  const std::vector<std::int64_t> rows{11, 0, 5, 5, 3};
  expect_rows(load_dataset_rows(d, Split::train, rows), all, labels, rows);
  EXPECT_ERROR_CONTAINS(load_dataset_rows(d, Split::train, std::vector<std::int64_t>{12}), "row index 12");
  EXPECT_ERROR_CONTAINS(load_dataset(d, Split::train, 10, 3), "outside the 12 train samples");
}
