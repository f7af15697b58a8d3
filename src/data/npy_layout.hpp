#pragma once
// Private to the data layer: where the values of a .npy file are and how to decode one, so that a
// reader can fetch any row without loading the array (row_source.cpp) as well as all of it (npy.cpp).
#include <cstdint>
#include <string>

#include "data/byte_source.hpp"

namespace idprune::data {

struct NpyLayout {
  int ndims = 2;          ///< 1 or 2
  std::int64_t rows = 0;  ///< shape[0]
  std::int64_t cols = 1;  ///< shape[1], 1 for a 1-D array
  int item_bytes = 8;     ///< 8 (float64) or 4 (float32)
  bool fortran_order = false;
  bool swap = false;             ///< stored byte order differs from this machine's
  std::int64_t data_offset = 0;  ///< byte offset of element 0 in the file
  std::string shape;             ///< as NumPy prints it, for messages

  /// Element (i, j) is at data_offset + item_bytes * (C order: i cols + j, Fortran: i + j rows).
  [[nodiscard]] double value(const std::uint8_t* p) const;
};

/// Reads and checks the header of the plain (not gzip) .npy file `src`, positioned at its start,
/// including that the file holds exactly the declared data. Leaves `src` at the first value.
NpyLayout read_npy_layout(io::ByteSource& src);

}  // namespace idprune::data
