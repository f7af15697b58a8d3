#include "idprune/dist/kernels.hpp"

#include <lapacke.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>

#include "idprune/la/blas.hpp"
#include "idprune/la/lapack.hpp"
#include "idprune/la/svd.hpp"

namespace idprune::dist::kernel {

using la::index_t;
using la::Matrix;

namespace {
/// dgeqrt's and tpqrt_recursive's block size: dgeqrt's fastest of 32..256 for 30000 x 923 on one
/// core (Zen 5, OpenBLAS); tpqrt_recursive's for 3125 x 1024 and 4096 x 512 (Xeon, SkylakeX kernels).
constexpr index_t kLocalRBlock = 64;

/// A rows x cols workspace kept per thread from call to call when it is at most la::kLargeArrayBytes
/// (every row block of local_r_threaded, every node of a 2,000-row compression set): a fresh buffer
/// per call made the copy fault in and zero its pages first (the copy took twice the time of
/// 351f2d3's in a 16-point sweep, measured with perf). Larger ones go to `own`. The view is valid
/// until the thread's next call.
la::MatrixView workspace(index_t rows, index_t cols, Matrix& own) {
  if (static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(double) <= la::kLargeArrayBytes) {
    thread_local Matrix kept;
    kept.reset_uninitialized(rows, cols);
    return kept.view();
  }
  own.reset_uninitialized(rows, cols);
  return own.view();
}

/// A copy of z in workspace(): the input that dgeqrt and the stacking QR overwrite.
la::MatrixView copy_to_workspace(la::ConstMatrixView z, Matrix& own) {
  const la::MatrixView w = workspace(z.rows(), z.cols(), own);
  w.assign(z);
  return w;
}
}  // namespace

Matrix local_r(la::ConstMatrixView z) {
  if (z.rows() == 0 || z.cols() == 0) return Matrix(z.cols(), z.cols());
  // dgeqrt overwrites its input, so it factors a copy.
  Matrix own;
  return local_r_in_place(copy_to_workspace(z, own));
}

namespace {
/// Whether every entry below z's diagonal is exactly zero.
bool upper_triangular(la::ConstMatrixView z) {
  for (index_t j = 0; j < z.cols(); ++j)
    for (index_t i = j + 1; i < z.rows(); ++i)
      if (z(i, j) != 0.0) return false;
  return true;
}
}  // namespace

Matrix local_r_in_place(la::MatrixView z) {
  const index_t m = z.rows();
  const index_t n = z.cols();
  Matrix r(n, n);
  if (m == 0 || n == 0) return r;
  const index_t rows = std::min(m, n);
  if (upper_triangular(z)) {
    // Already R (the tsqr engine's input is each rank's R factor): Householder QR would leave it
    // as it is bit for bit (dlarfg gives tau = 0 when the part below the diagonal is zero, and
    // H = I changes nothing), at 4/3 n^3 flops per factorization.
    for (index_t j = 0; j < n; ++j)
      for (index_t i = 0; i <= std::min(j, rows - 1); ++i) r(i, j) = z(i, j);
    return r;
  }
  const index_t nb = std::min<index_t>(kLocalRBlock, rows);
  Matrix t(nb, rows);
  std::vector<double> work(static_cast<std::size_t>(nb * n));
  const auto to_int = [](index_t v) {
    require(v <= std::numeric_limits<lapack_int>::max(), "dgeqrt: dimension ", v, " exceeds the LAPACK integer");
    return static_cast<lapack_int>(v);
  };
  check_lapack(LAPACKE_dgeqrt_work(LAPACK_COL_MAJOR, to_int(m), to_int(n), to_int(nb), z.data(), to_int(z.ld()),
                                   t.data(), to_int(t.ld()), work.data()),
               "dgeqrt");
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= std::min(j, rows - 1); ++i) r(i, j) = z(i, j);
  return r;
}

index_t threaded_row_block(index_t n) { return std::max<index_t>(4096, 4 * n); }

Matrix local_r_threaded(la::ConstMatrixView z, index_t row_block) {
  // Copying the rows into the workspace that the QR overwrites: the bits of one QR of the blocks.
  return local_r_threaded(
      z.rows(), z.cols(),
      [&](index_t first, la::MatrixView out) { out.assign(z.block(first, 0, out.rows(), z.cols())); }, row_block);
}

Matrix local_r_threaded(index_t m, index_t n, const RowBlockFill& fill, index_t row_block) {
  require(row_block >= 0, "local_r_threaded: row_block=", row_block, " < 0");
  require(m >= 0 && n >= 0, "local_r_threaded: ", m, " x ", n, " rows");
  const index_t b = row_block > 0 ? row_block : threaded_row_block(n);
  if (m == 0 || n == 0) return Matrix(n, n);
  if (m <= b) {
    Matrix own;
    const la::MatrixView w = workspace(m, n, own);
    fill(0, w);
    return local_r_in_place(w);
  }
  // Blocks of equal height (within a row), as many as a multiple of the lanes, so 1, 2 and 4 threads
  // get equal shares; lane i absorbs blocks i, i + lanes, ... in order, each stacked under the
  // lane's R by la::tpqrt_recursive (as StreamingR): 2 b n^2 flops a block and no
  // triangle-on-triangle combine but the lanes - 1 at the end. One combine per block (13 for
  // 50,000 x 1024) cost a tenth more flops at a lower rate, and the last levels of their tree left
  // cores idle.
  const index_t blocks = ((m + b - 1) / b + r_lanes - 1) / r_lanes * r_lanes;
  std::vector<Matrix> rs(static_cast<std::size_t>(r_lanes));
  // One thread of BLAS per task: the tasks themselves use the cores.
  // Set only when needed: OpenBLAS's thread count is process-wide, and tasks may already run.
  std::optional<la::ScopedBlasThreads> single;
  if (la::blas_threads() != 1) single.emplace(1);
  tbb::parallel_for(index_t{0}, r_lanes, [&](index_t lane) {
    Matrix r;
    for (index_t i = lane; i < blocks; i += r_lanes) {
      const index_t first = part_begin(m, blocks, i);
      const index_t rows = part_begin(m, blocks, i + 1) - first;
      if (i != lane && rows == 0) continue;
      Matrix own;
      const la::MatrixView w = workspace(rows, n, own);
      fill(first, w);
      if (i == lane)
        r = local_r_in_place(w);
      else
        static_cast<void>(la::tpqrt_recursive(r.view(), w, kLocalRBlock));
    }
    rs[static_cast<std::size_t>(lane)] = std::move(r);
  });
  return combine_r_tree(std::move(rs));
}

index_t part_begin(index_t rows, index_t parts, index_t i) {
  require(rows >= 0 && parts >= 1 && i >= 0 && i <= parts, "part_begin: rows=", rows, ", parts=", parts, ", i=", i);
  return i * (rows / parts) + std::min(i, rows % parts);
}

Matrix combine_r_tree(std::vector<Matrix> rs) {
  require(!rs.empty(), "combine_r_tree: no R factor");
  const auto count = static_cast<index_t>(rs.size());
  std::optional<la::ScopedBlasThreads> single;
  if (la::blas_threads() != 1) single.emplace(1);
  // At distance s, factor i (i a multiple of 2 s) absorbs factor i + s.
  for (index_t s = 1; s < count; s *= 2) {
    const index_t pairs = (count - s + 2 * s - 1) / (2 * s);
    tbb::parallel_for(index_t{0}, pairs, [&](index_t p) {
      const index_t i = 2 * s * p;
      combine_r(rs[static_cast<std::size_t>(i)].view(), rs[static_cast<std::size_t>(i + s)].view());
    });
  }
  return std::move(rs.front());
}

StreamingR::StreamingR(index_t cols, index_t tpqrt_block) : tpqrt_block_(tpqrt_block) {
  require(cols >= 0 && tpqrt_block >= 1, "StreamingR: cols=", cols, ", tpqrt_block=", tpqrt_block,
          " (need cols >= 0, tpqrt_block >= 1)");
  r_ = Matrix(cols, cols);
}

void StreamingR::add_rows(la::ConstMatrixView block) {
  const index_t n = r_.cols();
  require(block.cols() == n, "StreamingR::add_rows: a block of ", block.rows(), " x ", block.cols(), " for an R of ", n,
          " columns");
  rows_seen_ += block.rows();
  if (block.rows() == 0 || n == 0) return;
  scratch_.reset_uninitialized(block.rows(), n);
  scratch_.view().assign(block);
  // B is a full rectangle under the triangle A = R (dtpqrt's L = 0).
  static_cast<void>(la::tpqrt_recursive(r_.view(), scratch_.view(), tpqrt_block_));
}

void combine_r(la::MatrixView r1, la::MatrixView r2, index_t block_size) {
  static_cast<void>(la::tpqrt_triangles(r1, r2, block_size));
  // dtpqrt leaves the strictly lower part of A alone: it is zero already for the R factors built
  // here, which keeps the packed form and later copies exact.
}

TriangleAndRhs least_squares_block(la::ConstMatrixView a, la::ConstMatrixView y) {
  require(a.rows() == y.rows(), "least_squares: A has ", a.rows(), " rows, Y has ", y.rows());
  const index_t m = a.rows();
  const index_t k = a.cols();
  const index_t n = y.cols();
  const index_t r = std::min(m, k);
  TriangleAndRhs out{Matrix(k, k), Matrix(k, n)};
  if (r == 0) return out;
  Matrix qr(a);
  const std::vector<double> tau = la::geqrf(qr.view());
  Matrix c(y);
  if (n > 0)
    la::ormqr(la::Side::left, la::Op::transpose, qr.block(0, 0, m, static_cast<index_t>(tau.size())), tau, c.view());
  for (index_t j = 0; j < k; ++j)
    for (index_t i = 0; i <= std::min(j, r - 1); ++i) out.r(i, j) = qr(i, j);
  if (n > 0) out.c.block(0, 0, r, n).assign(c.block(0, 0, r, n));
  return out;
}

void combine_r_rhs(la::MatrixView r1, la::MatrixView c1, la::MatrixView r2, la::MatrixView c2, index_t block_size) {
  const index_t k = r1.rows();
  const index_t n = c1.cols();
  require(r1.cols() == k && r2.rows() == k && r2.cols() == k && c1.rows() == k && c2.rows() == k && c2.cols() == n,
          "combine_r_rhs: R1 ", r1.rows(), " x ", r1.cols(), ", C1 ", c1.rows(), " x ", c1.cols(), ", R2 ", r2.rows(),
          " x ", r2.cols(), ", C2 ", c2.rows(), " x ", c2.cols());
  if (k == 0) return;
  const Matrix t = la::tpqrt_triangles(r1, r2, block_size);
  if (n == 0) return;
  const auto to_int = [](index_t v) {
    require(v <= std::numeric_limits<lapack_int>::max(), "dtpmqrt: dimension ", v, " exceeds the LAPACK integer");
    return static_cast<lapack_int>(v);
  };
  const index_t nb = t.rows();
  std::vector<double> work(static_cast<std::size_t>(nb * n));
  // Q^T [C1; C2] with Q from the triangle-on-triangle QR above (V = r2, L = k).
  check_lapack(LAPACKE_dtpmqrt_work(LAPACK_COL_MAJOR, 'L', 'T', to_int(k), to_int(n), to_int(k), to_int(k), to_int(nb),
                                    r2.data(), to_int(r2.ld()), t.data(), to_int(t.ld()), c1.data(), to_int(c1.ld()),
                                    c2.data(), to_int(c2.ld()), work.data()),
               "dtpmqrt");
}

Matrix solve_upper(Matrix r11, Matrix r12) {
  const index_t k = r11.rows();
  require(r11.cols() == k && r12.rows() == k, "solve_upper: R11 ", r11.rows(), " x ", r11.cols(), ", R12 ", r12.rows(),
          " x ", r12.cols());
  double dmax = 0.0;
  double dmin = std::numeric_limits<double>::infinity();
  for (index_t i = 0; i < k; ++i) {
    dmax = std::max(dmax, std::abs(r11(i, i)));
    dmin = std::min(dmin, std::abs(r11(i, i)));
  }
  const double eps = std::numeric_limits<double>::epsilon();
  if (dmax == 0.0) {
    r12.view().fill(0.0);
    return r12;
  }
  if (dmin > static_cast<double>(k) * eps * dmax) {
    la::trsm_upper_left(r11, la::Op::none, r12.view());
    return r12;
  }
  const la::Svd s = la::svd(r11);
  Matrix utr = la::matmul(s.u, r12, la::Op::transpose);
  const double cut = static_cast<double>(k) * eps * s.s.front();
  for (index_t i = 0; i < utr.rows(); ++i) {
    const double si = s.s[static_cast<std::size_t>(i)];
    for (index_t j = 0; j < utr.cols(); ++j) utr(i, j) = si > cut ? utr(i, j) / si : 0.0;
  }
  return la::matmul(s.vt, utr, la::Op::transpose);
}

std::vector<double> pack_upper(la::ConstMatrixView a) {
  require(a.rows() == a.cols(), "pack_upper: matrix must be square, got ", a.rows(), " x ", a.cols());
  const index_t n = a.rows();
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(n * (n + 1) / 2));
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= j; ++i) out.push_back(a(i, j));
  return out;
}

void unpack_upper(std::span<const double> packed, la::MatrixView a) {
  const index_t n = a.rows();
  require(a.cols() == n && static_cast<index_t>(packed.size()) == n * (n + 1) / 2, "unpack_upper: ", packed.size(),
          " values for a ", a.rows(), " x ", a.cols(), " matrix");
  std::size_t pos = 0;
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < n; ++i) a(i, j) = i <= j ? packed[pos++] : 0.0;
}

index_t stopping_rank(std::span<const double> diag, const la::CpqrOptions& opts) {
  auto kmax = static_cast<index_t>(diag.size());
  if (opts.max_rank >= 0) kmax = std::min(kmax, opts.max_rank);
  for (index_t k = 0; k < kmax; ++k) {
    const double next = std::abs(diag[static_cast<std::size_t>(k)]);
    if (next == 0.0) return k;
    if (opts.rel_tol > 0.0 && next <= opts.rel_tol * std::abs(diag[0])) return k;
  }
  return kmax;
}

la::CpqrResult truncate_pivoted_r(la::ConstMatrixView r, std::vector<index_t> pivots, const la::CpqrOptions& opts) {
  const index_t rows = r.rows();
  const index_t n = r.cols();
  require(rows <= n && static_cast<index_t>(pivots.size()) == n, "truncate_pivoted_r: R ", rows, " x ", n, ", ",
          pivots.size(), " pivots");
  std::vector<double> diag(static_cast<std::size_t>(rows));
  for (index_t i = 0; i < rows; ++i) diag[static_cast<std::size_t>(i)] = std::abs(r(i, i));
  const index_t k = stopping_rank(diag, opts);
  la::CpqrResult f;
  f.rank = k;
  f.pivots = std::move(pivots);
  f.r = Matrix(k, n);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= std::min(j, k - 1); ++i) f.r(i, j) = r(i, j);
  f.diag.assign(diag.begin(), diag.begin() + k);
  f.next_diag = k < rows ? diag[static_cast<std::size_t>(k)] : 0.0;
  // ||R22||_F over the upper trapezoid of the trailing block, with dlassq-style scaling.
  Matrix r22(rows - k, n - k);
  for (index_t j = k; j < n; ++j)
    for (index_t i = k; i <= std::min(j, rows - 1); ++i) r22(i - k, j - k) = r(i, j);
  f.residual_fro = la::norm_fro(r22);
  return f;
}

la::CpqrResult pivoted_cholesky_cpqr(la::MatrixView gram, const la::CpqrOptions& opts, double floor_rel_tol) {
  const index_t n = gram.rows();
  require(gram.cols() == n, "pivoted_cholesky_cpqr: Gram matrix must be square, got ", n, " x ", gram.cols());
  std::vector<double> g_diag(static_cast<std::size_t>(n));
  double max_diag = 0.0;
  for (index_t i = 0; i < n; ++i) {
    g_diag[static_cast<std::size_t>(i)] = gram(i, i);
    max_diag = std::max(max_diag, gram(i, i));
  }
  const double t = std::max(opts.rel_tol, floor_rel_tol);
  // dpstrf's test is "pivot <= tol" on the squared norm r_{k+1,k+1}^2: the relative rule squared.
  const double tol = t * t * max_diag;
  const la::PivotedCholeskyResult pc = la::pstrf_upper(gram, tol);
  index_t k = pc.rank;
  if (opts.max_rank >= 0) k = std::min(k, opts.max_rank);

  la::CpqrResult f;
  f.rank = k;
  f.pivots = pc.pivots;
  f.r = Matrix(k, n);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= std::min(j, k - 1); ++i) f.r(i, j) = gram(i, j);
  f.diag.resize(static_cast<std::size_t>(k));
  for (index_t i = 0; i < k; ++i) f.diag[static_cast<std::size_t>(i)] = std::abs(f.r(i, i));
  // Schur complement diagonal of the remaining columns, from the original diagonal of G (the
  // trailing block dpstrf leaves behind is only partially updated).
  double next_sq = 0.0;
  double sum_sq = 0.0;
  for (index_t i = k; i < n; ++i) {
    double d = g_diag[static_cast<std::size_t>(f.pivots[static_cast<std::size_t>(i)])];
    for (index_t l = 0; l < k; ++l) d -= f.r(l, i) * f.r(l, i);
    d = std::max(d, 0.0);
    next_sq = std::max(next_sq, d);
    sum_sq += d;
  }
  f.next_diag = std::sqrt(next_sq);
  f.residual_fro = std::sqrt(sum_sq);
  return f;
}

namespace {
// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}
constexpr std::uint64_t golden_gamma = 0x9e3779b97f4a7c15ULL;

// One Box–Muller pair number q of a stream: (r cos(2 pi u2), r sin(2 pi u2)).
inline void normal_pair(std::uint64_t key, std::uint64_t q, double& c, double& s) {
  const std::uint64_t x1 = mix64(key + (2 * q + 1) * golden_gamma);
  const std::uint64_t x2 = mix64(key + (2 * q + 2) * golden_gamma);
  const double u1 = static_cast<double>((x1 >> 11U) + 1) * 0x1.0p-53;  // (0, 1]: log is finite
  const double u2 = static_cast<double>(x2 >> 11U) * 0x1.0p-53;        // [0, 1)
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  c = radius * std::cos(angle);
  s = radius * std::sin(angle);
}
}  // namespace

double CounterGaussian::value(std::uint64_t stream, std::uint64_t index) const {
  double c = 0.0;
  double s = 0.0;
  normal_pair(mix64(seed_ ^ mix64(stream + golden_gamma)), index >> 1U, c, s);
  return (index & 1U) != 0 ? s : c;
}

void CounterGaussian::fill(std::uint64_t stream, std::uint64_t first, std::span<double> out) const {
  const std::uint64_t key = mix64(seed_ ^ mix64(stream + golden_gamma));
  std::size_t t = 0;
  std::uint64_t index = first;
  double c = 0.0;
  double s = 0.0;
  if ((index & 1U) != 0 && t < out.size()) {  // odd start: the sine half of a pair
    normal_pair(key, index >> 1U, c, s);
    out[t++] = s;
    ++index;
  }
  for (; t + 1 < out.size(); t += 2, index += 2) {
    normal_pair(key, index >> 1U, c, s);
    out[t] = c;
    out[t + 1] = s;
  }
  if (t < out.size()) {
    normal_pair(key, index >> 1U, c, s);
    out[t] = c;
  }
}

Matrix gaussian_test_block(std::uint64_t seed, index_t i0, index_t l, index_t g0, index_t m) {
  require(i0 >= 0 && l >= 0 && g0 >= 0 && m >= 0, "gaussian_test_block: i0=", i0, ", l=", l, ", g0=", g0, ", m=", m);
  Matrix omega(l, m);
  const CounterGaussian gen(seed);
  for (index_t c = 0; c < m; ++c)
    gen.fill(static_cast<std::uint64_t>(g0 + c), static_cast<std::uint64_t>(i0), omega.col(c));
  return omega;
}

}  // namespace idprune::dist::kernel
