// The scalapack engine: redistribution of the row blocks to a 2-D block-cyclic layout on a BLACS
// grid (one MPI_Alltoallv), ScaLAPACK pdgeqpf, gather of the upper trapezoid of R and of the
// pivots on rank 0, truncation by the la::cpqr stopping rule.
#include "idprune/dist/scalapack.hpp"

#include <algorithm>
#include <climits>
#include <cmath>

#include "idprune/dist/kernels.hpp"
#include "idprune/dist/mpi_interop.hpp"
#include "steps.hpp"

// BLACS: the system context of an MPI communicator.
extern "C" int Csys2blacs_handle(MPI_Comm comm);

namespace idprune::dist::step {

using la::index_t;
using la::Matrix;

namespace {

/// A BLACS process grid over a communicator, released on scope exit.
class BlacsGrid {
 public:
  BlacsGrid(const Comm& comm, int nprow, int npcol) {
    int me = 0;
    int np = 0;
    Cblacs_pinfo(&me, &np);  // initialises BLACS's view of MPI (MPI is already running)
    handle_ = Csys2blacs_handle(native(comm));
    context_ = handle_;
    Cblacs_gridinit(&context_, "Row", nprow, npcol);
    Cblacs_gridinfo(context_, &nprow_, &npcol_, &myrow_, &mycol_);
  }
  ~BlacsGrid() {
    if (myrow_ >= 0) Cblacs_gridexit(context_);
    Cfree_blacs_system_handle(handle_);
  }
  BlacsGrid(const BlacsGrid&) = delete;
  BlacsGrid& operator=(const BlacsGrid&) = delete;

  [[nodiscard]] int context() const { return context_; }
  [[nodiscard]] int nprow() const { return nprow_; }
  [[nodiscard]] int npcol() const { return npcol_; }
  [[nodiscard]] int myrow() const { return myrow_; }
  [[nodiscard]] int mycol() const { return mycol_; }

 private:
  int handle_ = -1;
  int context_ = -1;
  int nprow_ = -1;
  int npcol_ = -1;
  int myrow_ = -1;
  int mycol_ = -1;
};

int to_int(index_t v, const char* what) {
  require(v >= 0 && v <= INT_MAX, "scalapack engine: ", what, "=", v, " does not fit a Fortran integer");
  return static_cast<int>(v);
}

/// Global indices owned by process `proc` of `p` in a block-cyclic layout of `extent` indices.
std::vector<index_t> owned_indices(index_t extent, index_t nb, int proc, int p) {
  std::vector<index_t> out;
  for (index_t b = static_cast<index_t>(proc) * nb; b < extent; b += nb * p)
    for (index_t g = b; g < std::min(extent, b + nb); ++g) out.push_back(g);
  return out;
}

/// Process rows: the given count, or P / (largest divisor of P not above sqrt(P)) — at least as
/// many process rows as columns, since activations are tall.
int grid_rows(int size, int requested) {
  if (requested > 0) return requested;
  int cols = 1;
  for (int c = 1; c * c <= size; ++c)
    if (size % c == 0) cols = c;
  return size / cols;
}

}  // namespace

la::CpqrResult scalapack_cpqr(const DistMatrix& z, const la::CpqrOptions& opts, const EngineOptions& engine) {
  const Comm& comm = z.comm();
  const index_t m = z.global_rows();
  const index_t n = z.cols();
  const index_t nb = engine.scalapack_block;
  const int nprow = grid_rows(comm.size(), engine.scalapack_grid_rows);
  const int npcol = comm.size() / nprow;
  require(nprow * npcol == comm.size(), "scalapack engine: grid of ", nprow, " process rows does not divide ",
          comm.size(), " ranks");
  const int mi = to_int(m, "rows");
  const int ni = to_int(n, "columns");
  const int nbi = to_int(nb, "block size");

  const BlacsGrid grid(comm, nprow, npcol);
  // Where each rank sits on the grid and which rows each rank holds (every rank knows everything).
  const std::array<index_t, 4> mine = {grid.myrow(), grid.mycol(), z.row_offset(), z.local_rows()};
  const auto table = comm.allgather(std::span<const index_t>(mine));
  const auto entry = [&](int r, int field) { return table[static_cast<std::size_t>(r) * 4 + field]; };
  std::vector<int> rank_of(static_cast<std::size_t>(nprow * npcol), -1);
  for (int r = 0; r < comm.size(); ++r) rank_of[static_cast<std::size_t>(entry(r, 0) * npcol + entry(r, 1))] = r;

  // Redistribution: send to each rank the entries of my rows in its row set and its column set,
  // ordered column by column, rows ascending; the receiver walks the same order.
  const la::ConstMatrixView local = z.local();
  std::vector<std::int64_t> send_counts(static_cast<std::size_t>(comm.size()), 0);
  std::vector<double> send;
  send.reserve(static_cast<std::size_t>(local.rows() * n));
  std::vector<std::vector<index_t>> col_sets(static_cast<std::size_t>(npcol));
  for (int pc = 0; pc < npcol; ++pc) col_sets[static_cast<std::size_t>(pc)] = owned_indices(n, nb, pc, npcol);
  for (int dest = 0; dest < comm.size(); ++dest) {
    const auto pr = static_cast<int>(entry(dest, 0));
    const auto& cols = col_sets[static_cast<std::size_t>(entry(dest, 1))];
    const std::size_t before = send.size();
    for (index_t j : cols)
      for (index_t i = 0; i < local.rows(); ++i)
        if (kernel::cyclic_owner(z.row_offset() + i, nb, nprow) == pr) send.push_back(local(i, j));
    send_counts[static_cast<std::size_t>(dest)] = static_cast<std::int64_t>(send.size() - before);
  }
  const int myrow = grid.myrow();
  const int mycol = grid.mycol();
  const int zero = 0;
  const index_t loc_rows = numroc_(&mi, &nbi, &myrow, &zero, &nprow);
  const index_t loc_cols = numroc_(&ni, &nbi, &mycol, &zero, &npcol);
  const auto& my_cols = col_sets[static_cast<std::size_t>(mycol)];
  std::vector<std::int64_t> recv_counts(static_cast<std::size_t>(comm.size()), 0);
  for (int src = 0; src < comm.size(); ++src) {
    index_t rows_in_mine = 0;
    for (index_t g = entry(src, 2); g < entry(src, 2) + entry(src, 3); ++g)
      if (kernel::cyclic_owner(g, nb, nprow) == myrow) ++rows_in_mine;
    recv_counts[static_cast<std::size_t>(src)] = rows_in_mine * static_cast<index_t>(my_cols.size());
  }
  const auto recv = comm.alltoallv(std::span<const double>(send), send_counts, recv_counts);
  Matrix a(std::max<index_t>(loc_rows, 1), std::max<index_t>(loc_cols, 1));
  {
    std::size_t pos = 0;
    for (int src = 0; src < comm.size(); ++src)
      for (index_t j : my_cols)
        for (index_t g = entry(src, 2); g < entry(src, 2) + entry(src, 3); ++g)
          if (kernel::cyclic_owner(g, nb, nprow) == myrow)
            a(kernel::cyclic_local(g, nb, nprow), kernel::cyclic_local(j, nb, npcol)) = recv[pos++];
  }

  // pdgeqpf on the whole matrix (it has no early stop; the rank rule is applied afterwards).
  std::vector<int> ipiv(static_cast<std::size_t>(std::max<index_t>(loc_cols, 1)), 0);
  std::string error = capture_error([&] {
    std::array<int, 9> desc{};
    const int lld = to_int(std::max<index_t>(loc_rows, 1), "local leading dimension");
    const int ctxt = grid.context();
    int info = 0;
    descinit_(desc.data(), &mi, &ni, &nbi, &nbi, &zero, &zero, &ctxt, &lld, &info);
    check_lapack(info, "descinit");
    std::vector<double> tau(static_cast<std::size_t>(std::max<index_t>(loc_cols, 1)));
    const int one = 1;
    int lwork = -1;
    double query = 0.0;
    pdgeqpf_(&mi, &ni, a.data(), &one, &one, desc.data(), ipiv.data(), tau.data(), &query, &lwork, &info);
    check_lapack(info, "pdgeqpf (workspace query)");
    lwork = static_cast<int>(query) + 1;
    std::vector<double> work(static_cast<std::size_t>(lwork));
    pdgeqpf_(&mi, &ni, a.data(), &one, &one, desc.data(), ipiv.data(), tau.data(), work.data(), &lwork, &info);
    check_lapack(info, "pdgeqpf");
  });
  check_collective(comm, error);

  // Gather the upper trapezoid of R (rows < min(m, n)) and, from process row 0, the pivots.
  const index_t kmin = std::min(m, n);
  const auto row_set = [&](int pr) { return owned_indices(m, nb, pr, nprow); };
  std::vector<double> r_part;
  for (index_t j : my_cols)
    for (index_t g : row_set(myrow))
      if (g < kmin && g <= j)
        r_part.push_back(a(kernel::cyclic_local(g, nb, nprow), kernel::cyclic_local(j, nb, npcol)));
  std::vector<index_t> piv_part;
  if (myrow == 0)
    for (index_t lc = 0; lc < loc_cols; ++lc) piv_part.push_back(ipiv[static_cast<std::size_t>(lc)] - 1);  // 1-based
  const auto r_all = comm.gatherv(std::span<const double>(r_part), root);
  const auto piv_all = comm.gatherv(std::span<const index_t>(piv_part), root);
  la::CpqrResult f;
  error = capture_error([&] {
    if (comm.rank() != root) return;
    Matrix r(kmin, n);
    std::vector<index_t> pivots(static_cast<std::size_t>(n), -1);
    std::size_t rpos = 0;
    std::size_t ppos = 0;
    for (int src = 0; src < comm.size(); ++src) {
      const auto pr = static_cast<int>(entry(src, 0));
      const auto& cols = col_sets[static_cast<std::size_t>(entry(src, 1))];
      const auto rows = row_set(pr);
      for (index_t j : cols)
        for (index_t g : rows)
          if (g < kmin && g <= j) r(g, j) = r_all[rpos++];
      if (pr == 0)
        for (index_t j : cols) pivots[static_cast<std::size_t>(j)] = piv_all[ppos++];
    }
    f = kernel::truncate_pivoted_r(r, std::move(pivots), opts);
  });
  check_collective(comm, error);
  return f;
}

}  // namespace idprune::dist::step
