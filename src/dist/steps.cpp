#include "steps.hpp"

#include <tbb/parallel_for.h>

#include <optional>

#include "idprune/dist/kernels.hpp"
#include "idprune/la/blas.hpp"

namespace idprune::dist::step {

using la::index_t;
using la::Matrix;

void tree_reduce(const Comm& comm, int root, std::span<double> payload,
                 const std::function<void(std::span<double>, std::span<const double>)>& combine) {
  const int size = comm.size();
  const int position = (comm.rank() - root + size) % size;
  std::string error;
  std::vector<double> incoming(payload.size());
  for (int s = 1; s < size; s *= 2) {
    if (position % (2 * s) == s) {
      comm.send(std::span<const double>(payload), (position - s + root) % size, s);
      break;
    }
    if (position + s >= size) continue;
    comm.recv(std::span<double>(incoming), (position + s + root) % size, s);
    if (error.empty()) error = capture_error([&] { combine(payload, incoming); });
  }
  check_collective(comm, error);
}

void check_same_shape(const Comm& comm, std::span<const std::int64_t> shape, const std::string& routine) {
  if (comm.size() == 1) return;
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over the bytes of the values
  for (const std::int64_t v : shape)
    for (int b = 0; b < 8; ++b) h = (h ^ ((static_cast<std::uint64_t>(v) >> (8 * b)) & 0xffU)) * 1099511628211ULL;
  std::string mine;
  for (const std::int64_t v : shape) mine += (mine.empty() ? "" : ", ") + std::to_string(v);
  check_same(comm, h,
             idprune::detail::concat(routine, ": this rank's arguments have the shape [", mine,
                                     "], unlike rank 0's (the same number of matrices, the same column counts and "
                                     "options are needed on every rank)"));
}

std::string single_blas_tasks(std::size_t n, const std::function<void(std::size_t)>& body) {
  std::vector<std::string> errors(n);
  const auto guarded = [&](std::size_t i) { errors[i] = capture_error([&] { body(i); }); };
  // Set only when needed: OpenBLAS's thread count is process-wide, and tasks may already run.
  std::optional<la::ScopedBlasThreads> single;
  if (la::blas_threads() != 1) single.emplace(1);
  if (n <= 1)
    for (std::size_t i = 0; i < n; ++i) guarded(i);
  else
    tbb::parallel_for(std::size_t{0}, n, guarded);
  for (const auto& e : errors)
    if (!e.empty()) return e;
  return {};
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
