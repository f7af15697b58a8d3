#pragma once
// IDX files (the MNIST / Fashion-MNIST format, http://yann.lecun.com/exdb/mnist/): a big-endian
// header `00 00 <type> <ndims>`, ndims big-endian uint32 dimensions, then the values in row-major
// order. idprune reads unsigned-byte files (type 0x08): images (ndims 3: count, rows, cols; magic
// 0x00000803) and labels (ndims 1: count; magic 0x00000801). A file starting with the gzip magic
// (1f 8b) is decompressed on the fly (zlib); otherwise it is read as plain bytes.
//
// Every reader checks the magic number, the dimensions and the file length (for gzip: the
// decompressed length and the gzip CRC), and rejects a header whose sizes cannot fit the file before
// allocating anything. Errors are idprune::Error naming the file, the byte offset and the expected
// versus found values.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace idprune::data {

/// What an IDX header declares.
struct IdxInfo {
  int ndims = 0;                   ///< 1 for labels, 3 for images
  std::vector<std::int64_t> dims;  ///< dims[0] = number of items
  bool gzip = false;               ///< the file is gzip-compressed
};

/// A block of unsigned-byte samples, one row per sample: sample i's `features` values are
/// values[i * features, (i + 1) * features). For images features = height * width (row-major pixels).
struct ByteRows {
  std::int64_t count = 0;
  std::int64_t features = 0;
  std::vector<std::uint8_t> values;
};

/// The whole-file header of `path` (reads only the header; for plain files also checks the length).
[[nodiscard]] IdxInfo read_idx_info(const std::string& path);

/// Images [begin, begin + count) of an IDX3 ubyte file; count < 0 means "to the end".
/// `height`/`width` receive the image shape when non-null. The whole file is still validated
/// (length, CRC): a gzip stream is decompressed to its end, skipping the rows not asked for.
[[nodiscard]] ByteRows read_idx_images(const std::string& path, std::int64_t begin = 0, std::int64_t count = -1,
                                       std::int64_t* height = nullptr, std::int64_t* width = nullptr);

/// The images with the given indices, in the order given (duplicates allowed), in one pass over
/// the file. Every index must lie in [0, number of images).
[[nodiscard]] ByteRows read_idx_images_rows(const std::string& path, std::span<const std::int64_t> rows);

/// Labels [begin, begin + count) of an IDX1 ubyte file; count < 0 means "to the end".
[[nodiscard]] std::vector<std::uint8_t> read_idx_labels(const std::string& path, std::int64_t begin = 0,
                                                        std::int64_t count = -1);

/// The labels with the given indices, in the order given.
[[nodiscard]] std::vector<std::uint8_t> read_idx_labels_rows(const std::string& path,
                                                             std::span<const std::int64_t> rows);

/// Writes an IDX3 ubyte image file (count x height x width), gzip-compressed when `gzip`,
/// atomically (temporary file in the same folder, then rename).
void write_idx_images(const std::string& path, const ByteRows& images, std::int64_t height, std::int64_t width,
                      bool gzip);

/// Writes an IDX1 ubyte label file, atomically, gzip-compressed when `gzip`.
void write_idx_labels(const std::string& path, std::span<const std::uint8_t> labels, bool gzip);

}  // namespace idprune::data
