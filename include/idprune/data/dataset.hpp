#pragma once
// Labelled image data sets as matrices: one row per sample (X is n x d, so Z = relu(X W) as in the
// mathematics), pixel bytes scaled to [0, 1] by 1/255, integer labels in [0, classes).
//
// A data folder holds either
//   - IDX files (Fashion-MNIST, MNIST): train-images-idx3-ubyte, train-labels-idx1-ubyte,
//     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally with ".gz"; or
//   - CIFAR-10 binary batches: data_batch_1.bin ... data_batch_K.bin (K >= 1, normally 5; the
//     training split is their concatenation in order) and test_batch.bin, directly in the folder
//     or in its subfolder cifar-10-batches-bin/.
// Both formats have 10 classes; a label >= 10 is an error.
//
// Loading takes a row range [begin, begin + count) or an explicit list of rows, so each MPI rank
// reads only its own rows (see sampling.hpp for how the lists are split across ranks).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "idprune/data/idx.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::data {

enum class Split { train, test };
enum class Format { idx, cifar10 };

[[nodiscard]] const char* to_string(Split split);
[[nodiscard]] const char* to_string(Format format);

/// What a folder holds for one split, from the file headers/lengths only.
struct DatasetInfo {
  Format format = Format::idx;
  std::int64_t samples = 0;
  std::int64_t features = 0;
  std::int64_t height = 0;    ///< image height (32 for CIFAR-10)
  std::int64_t width = 0;     ///< image width
  std::int64_t channels = 1;  ///< 3 for CIFAR-10 (features stored channel-major)
  int classes = 10;
  std::vector<std::string> files;  ///< the files the split is read from
};

/// Samples as stored: pixel bytes and label bytes (1 byte per value; 8x smaller than Dataset).
struct RawDataset {
  ByteRows x;                   ///< x.count samples of x.features bytes
  std::vector<std::uint8_t> y;  ///< x.count labels
  int classes = 10;
};

/// Samples as a matrix: x is samples x features with entries byte / 255 in [0, 1].
struct Dataset {
  la::Matrix x;
  std::vector<int> y;
  int classes = 10;

  [[nodiscard]] std::int64_t samples() const { return x.rows(); }
  [[nodiscard]] std::int64_t features() const { return x.cols(); }
};

/// Detects the format of `dir` and describes `split`. Throws naming what was looked for when the
/// folder holds neither format, or when the image and label counts disagree.
[[nodiscard]] DatasetInfo dataset_info(const std::string& dir, Split split);

/// Rows [begin, begin + count) of `split` (count < 0: to the end) as bytes.
[[nodiscard]] RawDataset load_raw(const std::string& dir, Split split, std::int64_t begin = 0, std::int64_t count = -1);
/// The given rows of `split` (any order, duplicates allowed) as bytes, in the order given.
[[nodiscard]] RawDataset load_raw_rows(const std::string& dir, Split split, std::span<const std::int64_t> rows);

/// Rows [begin, begin + count) of `split` (count < 0: to the end), scaled to [0, 1].
[[nodiscard]] Dataset load_dataset(const std::string& dir, Split split, std::int64_t begin = 0,
                                   std::int64_t count = -1);
/// The given rows of `split`, in the order given, scaled to [0, 1].
[[nodiscard]] Dataset load_dataset_rows(const std::string& dir, Split split, std::span<const std::int64_t> rows);

/// Scales bytes to [0, 1] (value / 255).
[[nodiscard]] Dataset to_dataset(const RawDataset& raw);
/// Samples [begin, begin + count) of `rows` as a count x features matrix scaled to [0, 1]
/// (e.g. one mini-batch, without converting the whole set to doubles).
[[nodiscard]] la::Matrix to_matrix(const ByteRows& rows, std::int64_t begin, std::int64_t count);
/// The samples with the given indices into `rows` (e.g. a shuffled mini-batch), scaled to [0, 1].
[[nodiscard]] la::Matrix to_matrix(const ByteRows& rows, std::span<const std::int64_t> indices);

/// Class names, index = label.
[[nodiscard]] std::span<const char* const> fashion_mnist_class_names();
[[nodiscard]] std::span<const char* const> cifar10_class_names();

}  // namespace idprune::data
