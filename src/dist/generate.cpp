#include "idprune/dist/generate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "idprune/dist/kernels.hpp"
#include "idprune/la/blas.hpp"

namespace idprune::dist {

using la::index_t;
using la::Matrix;

GeneratedKind parse_generated_kind(std::string_view name) {
  if (name == "lowrank") return GeneratedKind::low_rank_plus_noise;
  if (name == "relu") return GeneratedKind::relu_activations;
  throw Error(idprune::detail::concat("unknown matrix kind '", name, "' (expected lowrank or relu)"));
}

std::string_view to_string(GeneratedKind kind) {
  return kind == GeneratedKind::low_rank_plus_noise ? "lowrank" : "relu";
}

namespace {
// Independent generators for the separate random ingredients (distinct seeds from one seed).
constexpr std::uint64_t rows_key = 0x0123'4567'89ab'cdefULL;
constexpr std::uint64_t factor_key = 0xfedc'ba98'7654'3210ULL;
constexpr std::uint64_t noise_key = 0x0f1e'2d3c'4b5a'6978ULL;
constexpr std::uint64_t dead_key = 0x5a5a'a5a5'3c3c'c3c3ULL;
constexpr std::uint64_t perturbation_key = 0x1357'9bdf'2468'ace0ULL;

/// Rows of X: row g is stream g of the generator (inner values).
Matrix factor_rows(std::uint64_t seed, index_t row_begin, index_t rows, index_t inner) {
  // Generated as inner x rows (one contiguous stream per row), then transposed.
  return la::transpose(kernel::gaussian_test_block(seed ^ rows_key, 0, inner, row_begin, rows));
}
}  // namespace

Matrix generate_rows(const GeneratorOptions& opts, index_t row_begin, index_t rows, index_t cols) {
  require(row_begin >= 0 && rows >= 0 && cols >= 0, "generate_rows: row_begin=", row_begin, ", rows=", rows,
          ", cols=", cols);
  const index_t inner = opts.inner > 0 ? opts.inner : std::max<index_t>(1, cols / 8);
  // The shared factor (inner x cols): column j is stream j, identical on every rank.
  Matrix v = kernel::gaussian_test_block(opts.seed ^ factor_key, 0, inner, 0, cols);
  Matrix x = factor_rows(opts.seed, row_begin, rows, inner);
  Matrix z(rows, cols);
  if (opts.kind == GeneratedKind::low_rank_plus_noise) {
    for (index_t i = 0; i < inner; ++i) {
      const double s = std::pow(10.0, -opts.decades * static_cast<double>(i) / static_cast<double>(inner)) /
                       std::sqrt(static_cast<double>(inner));
      for (index_t j = 0; j < cols; ++j) v(i, j) *= s;
    }
    la::gemm(1.0, x, la::Op::none, v, la::Op::none, 0.0, z.view());
    if (opts.noise != 0.0) {
      // Noise row g is stream g of its own generator, so it too is partition independent.
      const Matrix n = la::transpose(kernel::gaussian_test_block(opts.seed ^ noise_key, 0, cols, row_begin, rows));
      for (index_t j = 0; j < cols; ++j)
        for (index_t i = 0; i < rows; ++i) z(i, j) += opts.noise * n(i, j);
    }
    return z;
  }
  // Redundant neurons: W(:, j) = U(:, j mod groups) + perturbation * G(:, j).
  if (opts.redundancy > 1 && cols > 0) {
    const index_t groups = std::max<index_t>(1, cols / opts.redundancy);
    const Matrix u(v);
    const Matrix g = kernel::gaussian_test_block(opts.seed ^ perturbation_key, 0, inner, 0, cols);
    for (index_t j = 0; j < cols; ++j)
      for (index_t i = 0; i < inner; ++i) v(i, j) = u(i, j % groups) + opts.perturbation * g(i, j);
  }
  // relu(X diag(s) W + b); dividing by sqrt(sum_i s_i^2) makes the pre-activation variance 1.
  double total = 0.0;
  for (index_t i = 0; i < inner; ++i) total += std::pow(opts.feature_decay, 2.0 * static_cast<double>(i));
  for (index_t i = 0; i < inner; ++i) {
    const double s = std::pow(opts.feature_decay, static_cast<double>(i)) / std::sqrt(total);
    for (index_t j = 0; j < cols; ++j) v(i, j) *= s;
  }
  la::gemm(1.0, x, la::Op::none, v, la::Op::none, 0.0, z.view());
  const kernel::CounterGaussian dead(opts.seed ^ dead_key);
  for (index_t j = 0; j < cols; ++j) {
    // Dead neuron j when a standard normal falls below the dead_fraction quantile.
    const double u = 0.5 * std::erfc(-dead.value(static_cast<std::uint64_t>(j), 0) / std::sqrt(2.0));
    const bool is_dead = u < opts.dead_fraction;
    for (double& e : z.col(j)) e = is_dead ? 0.0 : std::max(0.0, e + opts.bias);
  }
  return z;
}

DistMatrix generate_distributed(const Comm& comm, const GeneratorOptions& opts, index_t global_rows, index_t cols) {
  const RowRange r = block_rows(global_rows, comm.size(), comm.rank());
  return {comm, generate_rows(opts, r.begin, r.count, cols), r.begin, global_rows};
}

}  // namespace idprune::dist
