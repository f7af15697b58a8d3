#pragma once
// A row-distributed matrix: each rank of a communicator owns a contiguous block of rows
// (DESIGN.md, "Parallel model": MPI ranks own rows). Splits may be uneven and ranks may own no
// rows at all; every rank holds the same number of columns.
#include "idprune/dist/comm.hpp"
#include "idprune/la/matrix.hpp"

namespace idprune::dist {

class DistMatrix {
 public:
  /// Rows [row_offset, row_offset + local.rows()) of a global_rows x local.cols() matrix.
  /// Not collective and not validated across ranks: the pivot engines check consistency
  /// collectively before they start (validate() does the same on demand).
  DistMatrix(Comm comm, la::Matrix local, la::index_t row_offset, la::index_t global_rows);

  /// Collective: the global matrix is the concatenation of every rank's `local` in rank order
  /// (offsets by an exclusive prefix sum of the local row counts, one allgather).
  static DistMatrix from_local_rows(Comm comm, la::Matrix local);
  /// Not collective: `local` must hold exactly the rows block_rows(global_rows, size, rank).
  static DistMatrix block_distributed(Comm comm, la::Matrix local, la::index_t global_rows);

  [[nodiscard]] const Comm& comm() const { return comm_; }
  [[nodiscard]] la::ConstMatrixView local() const { return local_.view(); }
  [[nodiscard]] la::MatrixView local() { return local_.view(); }
  [[nodiscard]] la::index_t local_rows() const { return local_.rows(); }
  [[nodiscard]] la::index_t cols() const { return local_.cols(); }
  [[nodiscard]] la::index_t global_rows() const { return global_rows_; }
  [[nodiscard]] la::index_t row_offset() const { return row_offset_; }

  /// Collective consistency check: the same column count and global row count on every rank,
  /// row blocks contiguous in rank order and covering [0, global_rows), and (if check_finite)
  /// no NaN/Inf. Throws CollectiveError on every rank naming the first offending rank.
  void validate(const std::string& routine, bool check_finite = true) const;

  /// Collective: the full global_rows x cols matrix on `root` (an empty 0 x 0 matrix elsewhere).
  [[nodiscard]] la::Matrix gather(int root) const;

 private:
  Comm comm_;
  la::Matrix local_;
  la::index_t row_offset_ = 0;
  la::index_t global_rows_ = 0;
};

}  // namespace idprune::dist
