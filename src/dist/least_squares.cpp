// Distributed least squares: local QR blocks (kernel::least_squares_block), a tree of
// triangle-on-triangle combines (kernel::combine_r_rhs), the solve on the root
// (kernel::solve_upper), one broadcast.
#include "idprune/dist/least_squares.hpp"

#include <algorithm>

#include "idprune/dist/kernels.hpp"
#include "idprune/la/finite.hpp"
#include "steps.hpp"

namespace idprune::dist {

using la::index_t;
using la::Matrix;

namespace {

/// Writes [packed upper triangle of r | c] to `out` and back.
void pack_block(const kernel::TriangleAndRhs& b, std::span<double> out) {
  const std::vector<double> packed = kernel::pack_upper(b.r);
  std::copy(packed.begin(), packed.end(), out.begin());
  std::copy(b.c.values().begin(), b.c.values().end(), out.begin() + static_cast<std::ptrdiff_t>(packed.size()));
}
void unpack_block(std::span<const double> in, kernel::TriangleAndRhs& b) {
  const index_t k = b.r.rows();
  const auto tri = static_cast<std::size_t>(k * (k + 1) / 2);
  kernel::unpack_upper(in.first(tri), b.r.view());
  std::copy(in.begin() + static_cast<std::ptrdiff_t>(tri), in.end(), b.c.values().begin());
}

}  // namespace

std::vector<Matrix> least_squares(const Comm& comm, std::span<const LeastSquaresProblem> problems,
                                  const LeastSquaresOptions& opts) {
  constexpr int root = 0;
  const std::size_t np = problems.size();
  std::vector<kernel::TriangleAndRhs> blocks(np);
  std::string error;
  if (opts.tpqrt_block < 1) error = idprune::detail::concat("least_squares: tpqrt_block=", opts.tpqrt_block, " < 1");
  if (error.empty())
    error = step::single_blas_tasks(np, [&](std::size_t i) {
      const LeastSquaresProblem& p = problems[i];
      require(p.a.rows() == p.y.rows(), "least_squares: problem ", i, ": A has ", p.a.rows(), " rows on this rank, Y ",
              p.y.rows());
      for (const auto& [m, name] : {std::pair{p.a, "A"}, std::pair{p.y, "Y"}})
        if (const std::string bad = la::non_finite_message(
                m, idprune::detail::concat("least_squares: problem ", i, ", ", name, " (this rank's rows)"));
            !bad.empty())
          throw Error(bad);
      blocks[i] = kernel::least_squares_block(p.a, p.y);
    });
  check_collective(comm, error);
  std::vector<std::int64_t> shape = {static_cast<std::int64_t>(np), opts.tpqrt_block};
  std::vector<std::size_t> offset = {0};
  for (const LeastSquaresProblem& p : problems) {
    const index_t k = p.a.cols();
    const index_t n = p.y.cols();
    shape.push_back(k);
    shape.push_back(n);
    offset.push_back(offset.back() + static_cast<std::size_t>(k * (k + 1) / 2 + k * n));
  }
  step::check_same_shape(comm, shape, "least_squares");

  if (comm.size() > 1) {
    std::vector<double> payload(offset.back());
    const auto part = [&](std::span<double> all, std::size_t i) {
      return all.subspan(offset[i], offset[i + 1] - offset[i]);
    };
    for (std::size_t i = 0; i < np; ++i) pack_block(blocks[i], part(payload, i));
    step::tree_reduce(comm, root, payload, [&](std::span<double> mine, std::span<const double> incoming) {
      const std::string e = step::single_blas_tasks(np, [&](std::size_t i) {
        const index_t k = blocks[i].r.rows();
        const index_t n = blocks[i].c.cols();
        kernel::TriangleAndRhs a{Matrix(k, k), Matrix(k, n)};
        kernel::TriangleAndRhs b{Matrix(k, k), Matrix(k, n)};
        unpack_block(part(mine, i), a);
        unpack_block(incoming.subspan(offset[i], offset[i + 1] - offset[i]), b);
        kernel::combine_r_rhs(a.r.view(), a.c.view(), b.r.view(), b.c.view(), opts.tpqrt_block);
        pack_block(a, part(mine, i));
      });
      require(e.empty(), e);
    });
    if (comm.rank() == root)
      for (std::size_t i = 0; i < np; ++i) unpack_block(part(payload, i), blocks[i]);
  }

  std::vector<Matrix> out(np);
  check_collective(comm, capture_error([&] {
                     if (comm.rank() != root) return;
                     const std::string e = step::single_blas_tasks(np, [&](std::size_t i) {
                       out[i] = kernel::solve_upper(std::move(blocks[i].r), std::move(blocks[i].c));
                     });
                     require(e.empty(), e);
                   }));
  if (comm.size() == 1) return out;
  std::vector<double> values;
  for (std::size_t i = 0; i < np; ++i) {
    if (comm.rank() != root) out[i] = Matrix(problems[i].a.cols(), problems[i].y.cols());
    values.insert(values.end(), out[i].values().begin(), out[i].values().end());
  }
  comm.bcast(std::span<double>(values), root);
  std::size_t pos = 0;
  for (Matrix& t : out) {
    std::copy(values.begin() + static_cast<std::ptrdiff_t>(pos),
              values.begin() + static_cast<std::ptrdiff_t>(pos + static_cast<std::size_t>(t.size())),
              t.values().begin());
    pos += static_cast<std::size_t>(t.size());
  }
  return out;
}

}  // namespace idprune::dist
