#include "idprune/dist/dist_matrix.hpp"

#include <array>
#include <cmath>

#include "idprune/la/finite.hpp"

namespace idprune::dist {

DistMatrix::DistMatrix(Comm comm, la::Matrix local, la::index_t row_offset, la::index_t global_rows)
    : comm_(std::move(comm)), local_(std::move(local)), row_offset_(row_offset), global_rows_(global_rows) {
  require(row_offset >= 0 && global_rows >= 0 && row_offset + local_.rows() <= global_rows, "DistMatrix: rows [",
          row_offset, ", ", row_offset + local_.rows(), ") outside [0, ", global_rows, ")");
}

DistMatrix DistMatrix::from_local_rows(Comm comm, la::Matrix local) {
  const auto counts = comm.allgather<la::index_t>(local.rows());
  la::index_t offset = 0;
  la::index_t total = 0;
  for (int r = 0; r < comm.size(); ++r) {
    if (r < comm.rank()) offset += counts[static_cast<std::size_t>(r)];
    total += counts[static_cast<std::size_t>(r)];
  }
  return {std::move(comm), std::move(local), offset, total};
}

DistMatrix DistMatrix::block_distributed(Comm comm, la::Matrix local, la::index_t global_rows) {
  const RowRange range = block_rows(global_rows, comm.size(), comm.rank());
  require(local.rows() == range.count, "DistMatrix::block_distributed: rank ", comm.rank(), " holds ", local.rows(),
          " rows, its block of ", global_rows, " rows over ", comm.size(), " ranks has ", range.count);
  return {std::move(comm), std::move(local), range.begin, global_rows};
}

void DistMatrix::validate(const std::string& routine, bool check_finite) const {
  const std::array<la::index_t, 4> mine = {row_offset_, local_.rows(), local_.cols(), global_rows_};
  const auto all = comm_.allgather(std::span<const la::index_t>(mine));
  // Every rank sees the same table, so every rank finds the same (first) inconsistency.
  std::string error;
  int offender = 0;
  la::index_t next_row = 0;
  for (int r = 0; r < comm_.size() && error.empty(); ++r) {
    offender = r;
    const auto* e = &all[static_cast<std::size_t>(r) * 4];
    if (e[2] != all[2])
      error = idprune::detail::concat(routine, ": rank ", r, " holds ", e[2], " columns, rank 0 holds ", all[2]);
    else if (e[3] != all[3])
      error =
          idprune::detail::concat(routine, ": rank ", r, " says the matrix has ", e[3], " rows, rank 0 says ", all[3]);
    else if (e[0] != next_row)
      error = idprune::detail::concat(routine, ": rank ", r, " starts at row ", e[0], ", expected row ", next_row,
                                      " (row blocks must be contiguous in rank order)");
    next_row += e[1];
  }
  if (error.empty() && next_row != all[3])
    error = idprune::detail::concat(routine, ": the row blocks cover ", next_row, " rows, the matrix has ", all[3]);
  if (!error.empty()) throw CollectiveError(offender, error);
  if (!check_finite) return;
  // The first bad entry of this rank, in global row numbering; every rank learns of it.
  check_collective(comm_, la::non_finite_message(local_, routine, row_offset_));
}

la::Matrix DistMatrix::gather(int root) const {
  const auto counts = comm_.allgather<la::index_t>(local_.rows());
  const auto values = comm_.gatherv(std::span<const double>(local_.values()), root);
  if (comm_.rank() != root) return {};
  la::index_t total = 0;
  for (auto c : counts) total += c;
  la::Matrix full(total, local_.cols());
  // Rank r's block arrives column-major with leading dimension counts[r].
  std::size_t pos = 0;
  la::index_t row = 0;
  for (auto c : counts) {
    if (c > 0 && local_.cols() > 0)
      full.block(row, 0, c, local_.cols()).assign(la::ConstMatrixView(values.data() + pos, c, local_.cols()));
    pos += static_cast<std::size_t>(c * local_.cols());
    row += c;
  }
  return full;
}

}  // namespace idprune::dist
