#pragma once
// NumPy .npy files (format versions 1.0-3.0) holding 1-D or 2-D arrays of float32/float64
// (little or big endian), C or Fortran order. Read into column-major la::Matrix: a (rows, cols)
// array becomes a rows x cols matrix whatever its storage order; a 1-D array of length n becomes n x 1.
#include <string>

#include "idprune/la/matrix.hpp"

namespace idprune::data {

/// Reads `path`. Throws idprune::Error naming the file and the problem (bad magic, unsupported
/// dtype or rank, header too long, truncated data, NaN/Inf when `require_finite`).
la::Matrix read_npy(const std::string& path, bool require_finite = true);

/// Writes `a` as a float64 C-order (rows, cols) array, atomically (temporary file, then rename).
void write_npy(const std::string& path, la::ConstMatrixView a);

}  // namespace idprune::data
