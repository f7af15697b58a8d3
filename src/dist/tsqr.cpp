// TSQR: local R factors (kernel::local_r) combined up step::tree_reduce, several matrices per
// message.
#include "idprune/dist/tsqr.hpp"

#include <algorithm>

#include "idprune/dist/kernels.hpp"
#include "idprune/la/finite.hpp"
#include "steps.hpp"

namespace idprune::dist {

using la::index_t;
using la::Matrix;

namespace {

std::size_t packed_size(index_t n) { return static_cast<std::size_t>(n * (n + 1) / 2); }

/// The tree over this rank's R factors; `error` is this rank's failure so far (checked here
/// collectively before anything is sent).
std::vector<Matrix> reduce_factors(const Comm& comm, std::vector<Matrix> rs, const TsqrOptions& opts, std::string error,
                                   const char* routine) {
  if (error.empty())
    error = capture_error([&] {
      require(opts.tpqrt_block >= 1, routine, ": tpqrt_block=", opts.tpqrt_block, " < 1");
      require(opts.root >= 0 && opts.root < comm.size(), routine, ": root=", opts.root, " outside [0, ", comm.size(),
              ")");
      for (std::size_t i = 0; i < rs.size(); ++i)
        require(rs[i].rows() == rs[i].cols(), routine, ": R factor ", i, " is ", rs[i].rows(), " x ", rs[i].cols(),
                ", not square");
    });
  check_collective(comm, error);
  std::vector<std::int64_t> shape = {static_cast<std::int64_t>(rs.size()), opts.root, opts.broadcast ? 1 : 0,
                                     opts.tpqrt_block};
  std::vector<std::size_t> offset = {0};
  for (const Matrix& r : rs) {
    shape.push_back(r.cols());
    offset.push_back(offset.back() + packed_size(r.cols()));
  }
  step::check_same_shape(comm, shape, routine);

  const bool keeps = comm.rank() == opts.root || opts.broadcast;
  std::vector<double> payload;
  const auto part = [&](std::span<const double> all, std::size_t i) {
    return all.subspan(offset[i], offset[i + 1] - offset[i]);
  };
  if (comm.size() > 1) {
    payload.resize(offset.back());
    for (std::size_t i = 0; i < rs.size(); ++i) {
      const std::vector<double> packed = kernel::pack_upper(rs[i]);
      std::copy(packed.begin(), packed.end(), payload.begin() + static_cast<std::ptrdiff_t>(offset[i]));
    }
    step::tree_reduce(comm, opts.root, payload, [&](std::span<double> mine, std::span<const double> incoming) {
      const std::string e = step::single_blas_tasks(rs.size(), [&](std::size_t i) {
        const index_t n = rs[i].cols();
        Matrix a(n, n);
        Matrix b(n, n);
        kernel::unpack_upper(part(mine, i), a.view());
        kernel::unpack_upper(part(incoming, i), b.view());
        kernel::combine_r(a.view(), b.view(), opts.tpqrt_block);
        const std::vector<double> packed = kernel::pack_upper(a);
        std::copy(packed.begin(), packed.end(), mine.begin() + static_cast<std::ptrdiff_t>(offset[i]));
      });
      require(e.empty(), e);
    });
    if (comm.rank() == opts.root)
      for (std::size_t i = 0; i < rs.size(); ++i) kernel::unpack_upper(part(payload, i), rs[i].view());
  }
  // Inf/NaN in R: NaN/Inf input, or column norms so close to overflow that Householder
  // intermediates overflowed.
  check_collective(comm, capture_error([&] {
                     if (comm.rank() != opts.root) return;
                     for (std::size_t i = 0; i < rs.size(); ++i)
                       require(la::all_finite(rs[i]), routine, ": the R factor of matrix ", i,
                               " is not finite: NaN/Inf in the input, or column norms near the largest double "
                               "(1.8e308: scale the input down)");
                   }));
  if (comm.size() > 1 && opts.broadcast) {
    comm.bcast(std::span<double>(payload), opts.root);
    for (std::size_t i = 0; i < rs.size(); ++i) kernel::unpack_upper(part(payload, i), rs[i].view());
  }
  if (!keeps)
    for (Matrix& r : rs) r = Matrix();
  return rs;
}

}  // namespace

std::vector<Matrix> tsqr_reduce(const Comm& comm, std::span<const la::ConstMatrixView> locals,
                                const TsqrOptions& opts) {
  std::vector<Matrix> rs(locals.size());
  const std::string error = step::single_blas_tasks(locals.size(), [&](std::size_t i) {
    rs[i] = opts.threaded_local ? kernel::local_r_threaded(locals[i]) : kernel::local_r(locals[i]);
  });
  return reduce_factors(comm, std::move(rs), opts, error, "tsqr_reduce");
}

std::vector<Matrix> tsqr_combine(const Comm& comm, std::vector<Matrix> local_r, const TsqrOptions& opts) {
  return reduce_factors(comm, std::move(local_r), opts, std::string(), "tsqr_combine");
}

}  // namespace idprune::dist
