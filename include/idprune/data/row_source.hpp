#pragma once
// Row sources: a compression set (or any set of input rows) delivered block by block, so that a set
// larger than memory can be forwarded and reduced with O(block_rows x features) memory.
//
// A RowSource is a fixed sequence of `rows()` samples of `cols()` features (doubles, samples as rows,
// as everywhere in idprune). Row i is a deterministic function of the source and i alone: how the rows
// are grouped into blocks never changes a value, so
//     concatenation of the blocks of for_each_block(s, B, ...) == read_all(s)   for every B >= 1.
// Sources compose: rank_rows() takes a contiguous share of another source, shift_augmented() expands
// each image into its shifted copies. A file-backed source reads only the rows asked for (positioned
// reads; a gzip file is decompressed sequentially, never held whole), so each MPI rank reads only
// its own rows.
//
// A RowSource is a cheap handle (copies share the underlying reader) and read_rows() may be called
// from several threads at once.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "idprune/data/dataset.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::data {

using la::index_t;

namespace detail {
class RowSourceImpl;  // src/data/row_source.cpp: one implementation per kind of source
}  // namespace detail

class RowSource {
 public:
  RowSource() = default;
  explicit RowSource(std::shared_ptr<const detail::RowSourceImpl> impl);

  [[nodiscard]] index_t rows() const;
  [[nodiscard]] index_t cols() const;
  /// Rows [begin, begin + out.rows()) of the source into `out`, which must have cols() columns.
  void read_rows(index_t begin, la::MatrixView out) const;
  /// Rows [begin, begin + count) as a source.
  [[nodiscard]] RowSource row_range(index_t begin, index_t count) const;

 private:
  std::shared_ptr<const detail::RowSourceImpl> impl_;
};

/// Calls block(rows, first_row) for the consecutive blocks [first_row, first_row + rows.rows()) of
/// `source`, each of min(block_rows, rows left) rows, in order; `rows` is valid during the call only
/// (one buffer of block_rows x cols is reused). Nothing is called for an empty source.
void for_each_block(const RowSource& source, index_t block_rows,
                    const std::function<void(la::ConstMatrixView rows, index_t first_row)>& block);

/// Every row of `source` as one rows() x cols() matrix.
[[nodiscard]] la::Matrix read_all(const RowSource& source);

/// The rows of a matrix held by the caller, who keeps it alive (and unchanged) while the source is used.
[[nodiscard]] RowSource matrix_rows(la::ConstMatrixView x);

/// Every row of `split` of the data folder `dir` (see dataset.hpp), scaled to [0, 1]. Loads the bytes
/// of the rows it is asked for on first read (1 byte per feature, 8x less than doubles).
[[nodiscard]] RowSource dataset_rows(const std::string& dir, Split split);
/// The given rows of `split`, in the order given (e.g. a compression set from sample_compression_set).
[[nodiscard]] RowSource dataset_rows(const std::string& dir, Split split, std::vector<std::int64_t> rows);

/// Calibration inputs from a file: a .npy array (float32/float64, 2-D samples x features, C or
/// Fortran order; values as stored, NaN/Inf rejected when read) or an IDX3 ubyte image file (plain or
/// gzip; pixels scaled to [0, 1] as in dataset.hpp). The format is recognised by its magic bytes.
/// Rows are read when asked for, never the whole file at once.
[[nodiscard]] RowSource calibration_rows(const std::string& path);

/// Each image of `source` followed by its shifted copies: for every shift (dy, dx) with
/// max(|dy|, |dx|) <= radius, the image translated by dy rows down and dx columns right with zero
/// fill, (2 radius + 1)^2 variants per image (radius 1: the original and its 8 one-pixel shifts).
/// Row i is variant i % V of image i / V, variant 0 the original, the others in lexicographic order of
/// (dy, dx). Images are square, side = sqrt(cols()); any other width is an error. radius 0 = source.
[[nodiscard]] RowSource shift_augmented(const RowSource& source, int radius);

/// The contiguous share of rows of `rank` among `nranks` (dist::block_rows: the first rows % nranks
/// ranks get one row more, a rank may get none). Concatenating the shares in rank order gives `source`.
[[nodiscard]] RowSource rank_rows(const RowSource& source, int rank, int nranks);

}  // namespace idprune::data
