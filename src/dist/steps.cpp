#include "steps.hpp"

#include "idprune/dist/kernels.hpp"
#include "idprune/la/blas.hpp"

namespace idprune::dist::step {

using la::index_t;
using la::Matrix;

la::Matrix tsqr_reduce(const Comm& comm, la::MatrixView local, index_t tpqrt_block) {
  const index_t n = local.cols();
  Matrix r;
  check_collective(comm, capture_error([&] { r = kernel::local_r_in_place(local); }));
  // Binary reduction tree (works for any size: a rank without a partner at some level just
  // carries its R up). A local failure in a combine is recorded and the tree completed with the
  // (meaningless) data, so that every rank reaches the check below instead of blocking.
  std::string error;
  Matrix incoming(n, n);
  std::vector<double> packed(static_cast<std::size_t>(n * (n + 1) / 2));
  for (int s = 1; s < comm.size(); s *= 2) {
    if (comm.rank() % (2 * s) == s) {
      const auto mine = kernel::pack_upper(r);
      comm.send(std::span<const double>(mine), comm.rank() - s, s);
      break;
    }
    const int partner = comm.rank() + s;
    if (partner >= comm.size()) continue;
    comm.recv(std::span<double>(packed), partner, s);
    if (!error.empty()) continue;
    error = capture_error([&] {
      kernel::unpack_upper(packed, incoming.view());
      kernel::combine_r(r.view(), incoming.view(), tpqrt_block);
    });
  }
  check_collective(comm, error);
  if (comm.rank() != root) return {};
  return r;
}

la::Matrix gram_reduce(const Comm& comm, la::ConstMatrixView local) {
  const index_t n = local.cols();
  std::vector<double> packed;
  check_collective(comm, capture_error([&] {
                     Matrix g(n, n);
                     la::syrk_upper(1.0, local, 0.0, g.view());
                     packed = kernel::pack_upper(g);
                   }));
  // Only the upper triangle travels: n (n + 1) / 2 values per rank, independent of the rows.
  comm.reduce_sum(std::span<double>(packed), root);
  if (comm.rank() != root) return {};
  Matrix g(n, n);
  kernel::unpack_upper(packed, g.view());
  return g;
}

la::Matrix sketch_reduce(const Comm& comm, la::ConstMatrixView local, index_t row_offset, std::uint64_t seed,
                         index_t i0, index_t l) {
  const index_t n = local.cols();
  Matrix y(l, n);
  check_collective(comm, capture_error([&] {
                     if (local.rows() == 0) return;
                     const Matrix omega = kernel::gaussian_test_block(seed, i0, l, row_offset, local.rows());
                     la::gemm(1.0, omega, la::Op::none, local, la::Op::none, 0.0, y.view());
                   }));
  comm.reduce_sum(y.values(), root);
  if (comm.rank() != root) return {};
  return y;
}

}  // namespace idprune::dist::step
