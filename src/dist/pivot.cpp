// Public entry points of the distributed pivot selection: collective validation, dispatch to the
// engine's distributed step, rank-0 pivot selection, broadcast of the result.
#include "idprune/dist/pivot.hpp"

#include <lapacke.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "idprune/dist/collectives.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/dist/kernels.hpp"
#include "idprune/dist/tsqr.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"
#include "steps.hpp"

namespace idprune::dist {

using la::index_t;
using la::Matrix;

double gram_min_rel_tol(index_t n) {
  return std::sqrt(static_cast<double>(std::max<index_t>(n, 1)) * std::numeric_limits<double>::epsilon());
}

PivotEngine parse_pivot_engine(std::string_view name) {
  if (name == "tsqr") return PivotEngine::tsqr;
  if (name == "gram") return PivotEngine::gram;
  if (name == "sketch") return PivotEngine::sketch;
  if (name == "scalapack") return PivotEngine::scalapack;
  if (name == "lapack") return PivotEngine::lapack;
  throw Error(
      idprune::detail::concat("unknown pivot engine '", name, "' (expected tsqr, gram, sketch, scalapack or lapack)"));
}

std::string_view to_string(PivotEngine engine) {
  switch (engine) {
    case PivotEngine::tsqr:
      return "tsqr";
    case PivotEngine::gram:
      return "gram";
    case PivotEngine::sketch:
      return "sketch";
    case PivotEngine::scalapack:
      return "scalapack";
    case PivotEngine::lapack:
      return "lapack";
  }
  return "?";
}

namespace {

/// What rank 0 computes and broadcasts.
struct Outcome {
  la::CpqrResult f;
  Matrix t;  ///< the interpolation matrix, when asked for
};

/// The same checks on every rank with the same data, hence the same verdict everywhere.
std::string option_error(const DistMatrix& z, const la::CpqrOptions& opts, const EngineOptions& eng) {
  const index_t kmax = std::min(z.global_rows(), z.cols());
  const std::string where = idprune::detail::concat("distributed_cpqr (engine ", to_string(eng.engine), ")");
  if (opts.max_rank < -1 || opts.max_rank > kmax)
    return idprune::detail::concat(where, ": max_rank=", opts.max_rank, " outside [-1, min(m, n)=", kmax, "] for a ",
                                   z.global_rows(), " x ", z.cols(), " matrix");
  if (!(opts.rel_tol >= 0.0) || !std::isfinite(opts.rel_tol))
    return idprune::detail::concat(where, ": rel_tol=", opts.rel_tol, " must be finite and >= 0");
  if (opts.want_q) return where + ": want_q is not supported (Q stays distributed)";
  if (opts.block_size < 1) return idprune::detail::concat(where, ": block_size=", opts.block_size, " < 1");
  switch (eng.engine) {
    case PivotEngine::gram:
      if (opts.rel_tol > 0.0 && opts.rel_tol < gram_min_rel_tol(z.cols()))
        return idprune::detail::concat(where, ": rel_tol=", opts.rel_tol, " is below the Gram engine's accuracy limit ",
                                       gram_min_rel_tol(z.cols()), " = sqrt(n eps) for n=", z.cols(),
                                       " (pivoted Cholesky of Z^T Z cannot resolve smaller |r_kk|/|r_11|); use the "
                                       "tsqr engine");
      break;
    case PivotEngine::sketch:
      if (eng.oversampling < 0) return idprune::detail::concat(where, ": oversampling=", eng.oversampling, " < 0");
      if (eng.sketch_initial_rank < 1)
        return idprune::detail::concat(where, ": sketch_initial_rank=", eng.sketch_initial_rank, " < 1");
      break;
    case PivotEngine::scalapack:
      if (eng.scalapack_block < 1)
        return idprune::detail::concat(where, ": scalapack_block=", eng.scalapack_block, " < 1");
      if (eng.scalapack_grid_rows < 0 ||
          (eng.scalapack_grid_rows > 0 && z.comm().size() % eng.scalapack_grid_rows != 0))
        return idprune::detail::concat(where, ": scalapack_grid_rows=", eng.scalapack_grid_rows,
                                       " does not divide the ", z.comm().size(), " ranks");
      break;
    case PivotEngine::tsqr:
      if (eng.tpqrt_block < 1) return idprune::detail::concat(where, ": tpqrt_block=", eng.tpqrt_block, " < 1");
      break;
    case PivotEngine::lapack:
      break;
  }
  return {};
}

/// Result of a matrix with no rows or no columns: nothing to select (the same on every rank).
la::CpqrResult empty_result(index_t n) {
  la::CpqrResult f;
  f.pivots.resize(static_cast<std::size_t>(n));
  std::iota(f.pivots.begin(), f.pivots.end(), index_t{0});
  f.r = Matrix(0, n);
  return f;
}

/// Sketch engine, rank 0's part: CPQR of the scaled sketch Y / sqrt(l) (Y = Omega Z, l rows),
/// at most k steps, with the stopping rule applied to unbiased estimates of Z's residual norms.
/// For Gaussian Omega, a residual r of Z (orthogonal to the selected columns) and the selected
/// columns are sketched independently, so after j steps the sketched residual keeps on average
/// (l - j) / l of ||r||^2: |r_{j+1,j+1}(Y)| sqrt(l / (l - j)) estimates |r_{j+1,j+1}(Z)| (without
/// the correction the tolerance fires early as j approaches l). Rows of R, diag, next_diag and
/// residual_fro carry the correction (T = R11^{-1} R12 is unchanged by row scaling).
la::CpqrResult sketch_cpqr(const Matrix& y, const la::CpqrOptions& opts, index_t k) {
  const index_t l = y.rows();
  Matrix scaled(y);
  // E ||Omega x||^2 = l ||x||^2 for l rows of standard normals: scale so that norms are preserved.
  const double scale = l > 0 ? 1.0 / std::sqrt(static_cast<double>(l)) : 1.0;
  for (double& v : scaled.values()) v *= scale;
  const auto correction = [l](index_t j) {
    return j < l ? std::sqrt(static_cast<double>(l) / static_cast<double>(l - j)) : 1.0;
  };
  la::CpqrOptions o = opts;
  o.max_rank = std::min({k, l, scaled.cols()});
  o.rel_tol = 0.0;
  la::CpqrResult f = la::cpqr(scaled, o);
  index_t rank = f.rank;
  if (opts.rel_tol > 0.0 && f.rank > 0) {
    for (index_t j = 1; j < f.rank; ++j) {
      if (f.diag[static_cast<std::size_t>(j)] * correction(j) <= opts.rel_tol * f.diag[0]) {
        rank = j;
        break;
      }
    }
  }
  if (rank < f.rank) {  // redo with the final rank: next_diag and residual_fro then refer to it
    o.max_rank = rank;
    f = la::cpqr(scaled, o);
  }
  for (index_t j = 0; j < f.rank; ++j) {
    f.diag[static_cast<std::size_t>(j)] *= correction(j);
    for (index_t c = 0; c < f.r.cols(); ++c) f.r(j, c) *= correction(j);
  }
  f.next_diag *= correction(f.rank);
  f.residual_fro *= correction(f.rank);
  return f;
}

/// The exponent e with which the Gram engine scales Z by 2^-e (collective: one allreduce). 0 while
/// the largest |entry| lies in [2^-400, 2^400], where the squares can neither overflow (even summed
/// over 2^200 rows) nor push a resolvable entry (>= 1e-8 of the largest) below the normal range;
/// else the exponent that brings the largest entry into [1/2, 1).
int gram_scale_exponent(const DistMatrix& z) {
  const double amax = z.comm().max(la::norm_max(z.local()));
  constexpr double high = 0x1p400;
  constexpr double low = 0x1p-400;
  if (amax == 0.0 || (amax >= low && amax <= high)) return 0;
  return std::ilogb(amax) + 1;
}

/// a * 2^power, entry by entry (exact unless an entry leaves the normal range).
Matrix scaled_copy(la::ConstMatrixView a, int power) {
  Matrix out(a);
  for (double& v : out.values()) v = std::ldexp(v, power);
  return out;
}

/// "" when every global column norm of Z is representable, else the message naming the first
/// column whose norm overflows (collective: two reductions of n values; the same verdict everywhere).
/// Norms are combined dnrm2-style, ||z_j|| = s_j sqrt(sum_p (||z_pj|| / s_j)^2) with s_j the
/// largest local norm, so that no square overflows on the way.
std::string column_norm_error(const DistMatrix& z, const std::string& where, double& max_norm) {
  const la::ConstMatrixView a = z.local();
  const index_t n = a.cols();
  std::vector<double> local(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j) local[static_cast<std::size_t>(j)] = la::nrm2(a.col(j));
  std::vector<double> scale(local);
  z.comm().allreduce_max(std::span<double>(scale));
  std::vector<double> ssq(static_cast<std::size_t>(n), 0.0);
  for (std::size_t j = 0; j < ssq.size(); ++j)
    if (scale[j] > 0.0 && std::isfinite(scale[j])) ssq[j] = (local[j] / scale[j]) * (local[j] / scale[j]);
  z.comm().allreduce_sum(std::span<double>(ssq));
  max_norm = 0.0;
  for (std::size_t j = 0; j < ssq.size(); ++j) {
    const double norm = scale[j] * std::sqrt(ssq[j]);
    if (!std::isfinite(norm))
      return idprune::detail::concat(where, ": column ", j,
                                     " has a 2-norm above the largest double (1.8e308); scale the input down");
    max_norm = std::max(max_norm, norm);
  }
  return {};
}

/// What an engine says when its intermediate (R of tsqr, the sketch Y) overflowed.
std::string overflow_error(const EngineOptions& eng) {
  return idprune::detail::concat("distributed_cpqr (engine ", to_string(eng.engine),
                                 "): the factorization overflowed (column norms within a small factor of the "
                                 "largest double, 1.8e308); scale the input down");
}

/// tsqr's local step: the R of this rank's rows (`scratch` is overwritten by their QR), failures
/// checked collectively.
Matrix tsqr_local_r(const Comm& comm, la::MatrixView scratch) {
  Matrix r;
  check_collective(comm, capture_error([&] { r = kernel::local_r_in_place(scratch); }));
  return r;
}

/// tsqr's tree: the R factors end on rank 0, where the pivots are chosen.
TsqrOptions tree_options(const EngineOptions& eng) {
  TsqrOptions t;
  t.tpqrt_block = eng.tpqrt_block;
  t.broadcast = false;
  t.root = step::root;
  return t;
}

/// Runs the engine (no T yet); the Outcome is meaningful on rank 0 only.
/// `scratch` is either empty or z's own local block, which the engine may then overwrite (saves
/// tsqr a copy of the block when z is a temporary).
Outcome run_engine(const DistMatrix& z, la::MatrixView scratch, const la::CpqrOptions& opts, const EngineOptions& eng,
                   EngineStats& stats) {
  const Comm& comm = z.comm();
  const bool is_root = comm.rank() == step::root;
  const index_t m = z.global_rows();
  const index_t n = z.cols();
  Outcome out;
  std::string error;
  switch (eng.engine) {
    case PivotEngine::tsqr: {
      // Local QR of each row block, the R factors combined up a binary tree by dtpqrt on
      // [R1; R2] (dist/tsqr.hpp), blocked CPQR of the final n x n R on rank 0. Exact: CPQR of R
      // and of Z choose the same pivots and have the same ||R22|| in exact arithmetic.
      Matrix copy;
      if (scratch.rows() != z.local_rows() || scratch.cols() != n) {
        copy = Matrix(z.local());
        scratch = copy.view();
      }
      std::vector<Matrix> rs;
      rs.push_back(tsqr_local_r(comm, scratch));
      const Matrix r = std::move(tsqr_combine(comm, std::move(rs), tree_options(eng)).front());
      // CPQR of R (only its first min(m, n) rows can be non-zero) selects Z's pivots.
      error = capture_error([&] {
        if (!is_root) return;
        require(la::all_finite(r), overflow_error(eng));
        out.f = la::cpqr(r.block(0, 0, std::min(m, n), n), opts);
      });
      break;
    }
    case PivotEngine::gram: {
      // Reduction of the local Gram matrices Z_p^T Z_p (dsyrk), pivoted Cholesky (dpstrf) of
      // Z^T Z on rank 0 with early stop. Greedy Cholesky pivoting equals greedy column pivoting
      // of Z, but the Gram matrix squares the condition: diagonals |r_kk| / |r_11| below about
      // sqrt(n eps) are rounding noise. Hence rel_tol must be 0 or >= gram_min_rel_tol(n)
      // (option_error), and the engine always stops once |r_{k+1,k+1}| <= gram_min_rel_tol(n)
      // |r_11| (with max_rank alone it may then return a smaller rank on numerically
      // rank-deficient input, as la::cpqr does at a zero diagonal). Near the limit the ID error
      // agrees with the exact engines to a relative O(eps / rel_tol^2) (R from Cholesky carries
      // errors of order eps ||Z||^2 / r_kk); far above it (rel_tol >= 1e-4) to 1e-7 or better.
      //
      // Z^T Z squares the entries: it overflows for entries above about 1e154 and loses entries
      // below about 1e-154 to underflow. Scaling Z by a power of two 2^-e (exact) that brings
      // its largest entry into [1/2, 1) keeps every Gram entry below m and every entry that the
      // engine can resolve (relative size >= gram_min_rel_tol) far above the underflow
      // threshold; R, diag and the remainder norms are scaled back by 2^e (T is unchanged), so
      // entries of 1e300 or 1e-300 work. What remains: entries below about 2^-500 times the
      // largest square to zero, far below the floor gram_min_rel_tol(n) the engine never
      // selects under anyway.
      const int e = gram_scale_exponent(z);
      Matrix scaled;
      if (e != 0) scaled = scaled_copy(z.local(), -e);
      Matrix g = step::gram_reduce(comm, e != 0 ? la::ConstMatrixView(scaled) : z.local());
      error = capture_error([&] {
        if (!is_root) return;
        // dpstrf knows only n: cap the rank at min(m, n) as la::cpqr does.
        la::CpqrOptions o = opts;
        o.max_rank = opts.max_rank < 0 ? std::min(m, n) : opts.max_rank;
        out.f = kernel::pivoted_cholesky_cpqr(g.view(), o, gram_min_rel_tol(n));
        if (e != 0) la::unscale_result(out.f, e);
      });
      break;
    }
    case PivotEngine::sketch: {
      // Randomized ID: Y = Omega Z with Omega Gaussian ((k + p) x m), one reduction of the local
      // Omega_p Z_p, CPQR of Y on rank 0 (sketch_cpqr). Omega's entries come from a counter-based
      // generator keyed by (seed, row of Omega, global row of Z), so Y does not depend on the
      // number of ranks. With max_rank = k the sketch has k + p rows; with only rel_tol the rank
      // is found adaptively: start at k = sketch_initial_rank and double k (adding rows to Omega,
      // keeping the earlier ones) until CPQR of Y stops by tolerance before k steps or k reaches
      // min(m, n). The pivots and T are those of Y; diag, next_diag and residual_fro estimate Z's.
      const index_t kcap = std::min(m, n);
      // Adaptive only under a tolerance rule without max_rank; otherwise k is known up front.
      const bool adaptive = opts.max_rank < 0 && opts.rel_tol > 0.0;
      index_t k = adaptive ? std::min(kcap, eng.sketch_initial_rank) : (opts.max_rank < 0 ? kcap : opts.max_rank);
      Matrix y(0, n);  // rank 0: the rows of Omega Z so far
      index_t old_rows = 0;
      while (true) {
        const index_t l = k + eng.oversampling;
        Matrix extra = step::sketch_reduce(comm, z.local(), z.row_offset(), eng.seed, old_rows, l - old_rows);
        std::int64_t done = 1;
        error = capture_error([&] {
          if (!is_root) return;
          Matrix grown(l, n);
          grown.block(0, 0, old_rows, n).assign(y);
          grown.block(old_rows, 0, l - old_rows, n).assign(extra);
          y = std::move(grown);
          require(la::all_finite(y), overflow_error(eng));
          out.f = sketch_cpqr(y, opts, k);
          // Adaptive: the rank is final once the tolerance (or a zero diagonal) stopped CPQR of
          // the sketch before k steps, or k covers every possible rank.
          done = (!adaptive || out.f.rank < k || k >= kcap) ? 1 : 0;
        });
        check_collective(comm, error);
        error.clear();
        comm.bcast(std::span<std::int64_t>(&done, 1), step::root);
        stats.sketch_rows = l;
        old_rows = l;
        if (done != 0) break;
        k = std::min(2 * k, kcap);
      }
      break;
    }
    case PivotEngine::scalapack: {
      // Redistribution to a 2-D block-cyclic layout on a BLACS grid, ScaLAPACK pdgeqpf (full
      // factorization, unblocked norm updates), truncated afterwards by the same rule.
      out.f = step::scalapack_cpqr(z, opts, eng);
      break;
    }
    case PivotEngine::lapack: {
      // Gather Z on rank 0, dgeqp3 there: the reference.
      const Matrix full = z.gather(step::root);
      error = capture_error([&] {
        if (!is_root) return;
        la::CpqrOptions o = opts;
        o.method = la::CpqrMethod::lapack;
        out.f = la::cpqr(full, o);
      });
      break;
    }
  }
  check_collective(comm, error);
  return out;
}

/// Columns that are non-zero on some rank (one reduction of n flags; the same list everywhere).
std::vector<index_t> live_columns(const DistMatrix& z) {
  const la::ConstMatrixView a = z.local();
  std::vector<int> flag(static_cast<std::size_t>(a.cols()), 0);
  for (index_t j = 0; j < a.cols(); ++j) {
    const auto col = a.col(j);
    flag[static_cast<std::size_t>(j)] = std::any_of(col.begin(), col.end(), [](double v) { return v != 0.0; });
  }
  z.comm().allreduce_max(std::span<int>(flag));
  std::vector<index_t> live;
  for (index_t j = 0; j < a.cols(); ++j)
    if (flag[static_cast<std::size_t>(j)] != 0) live.push_back(j);
  return live;
}

/// The CPQR of Z from that of its live columns Z(:, live): pivots mapped back with the dead
/// columns appended, zero columns of R for them (their norms are zero; diag and residuals unchanged).
la::CpqrResult expand_columns(la::CpqrResult fc, const std::vector<index_t>& live, index_t n) {
  la::CpqrResult f;
  f.rank = fc.rank;
  std::vector<char> is_live(static_cast<std::size_t>(n), 0);
  for (const index_t j : live) is_live[static_cast<std::size_t>(j)] = 1;
  for (const index_t p : fc.pivots) f.pivots.push_back(live[static_cast<std::size_t>(p)]);
  for (index_t j = 0; j < n; ++j)
    if (is_live[static_cast<std::size_t>(j)] == 0) f.pivots.push_back(j);
  f.r = Matrix(fc.rank, n);
  if (fc.rank > 0) f.r.block(0, 0, fc.rank, fc.r.cols()).assign(fc.r);
  f.diag = std::move(fc.diag);
  f.next_diag = fc.next_diag;
  f.residual_fro = fc.residual_fro;
  return f;
}

/// Broadcasts rank 0's Outcome (three messages: sizes, integers, doubles).
void bcast_outcome(const Comm& comm, Outcome& out, bool want_id) {
  if (!want_id) {
    broadcast(comm, out.f, step::root);
    return;
  }
  la::InterpolativeDecomposition id;
  id.interpolation = std::move(out.t);
  id.factorization = std::move(out.f);
  broadcast(comm, id, step::root);
  out.f = std::move(id.factorization);
  out.t = std::move(id.interpolation);
}

/// One matrix's way through select(), in three stages, so that distributed_cpqr_batch can run the
/// local factorizations of several matrices in parallel between collective stages:
///  1. prologue (collective): checks, the fault point, dead columns, and the engine's collective
///     reduction; other engines and special cases finish here, tsqr (when deferred) stops after
///     its local R, and distributed_cpqr_batch runs one tree for every deferred matrix;
///  2. local (rank 0, no MPI): CPQR of the reduced R;
///  3. epilogue (collective): the local stage's error, overflow check, T, broadcast.
/// Each stage adds the bytes it sent to the job's statistics (a batch's shared tree is split in
/// proportion to the matrices' R sizes), so that a batch reports what each matrix cost.
struct Job {
  Outcome out;
  EngineStats stats;
  bool done = false;          ///< the outcome is final (nothing but the statistics left)
  bool local = false;         ///< stage 2 pending: factor `r` with `opts`
  bool unreduced = false;     ///< tsqr, deferred: `r` still holds the (compacted) input, not its R
  bool broadcast = false;     ///< stage 3 needs the overflow check, T and the broadcast
  std::vector<index_t> live;  ///< compacted input: its live columns (empty: all columns)
  index_t rows = 0;           ///< global rows of the engine's input
  la::CpqrOptions opts;       ///< the options of the engine's input (max_rank capped to live columns)
  Matrix r;                   ///< tsqr: the local R (stage 1), then the reduced R (rank 0)
  std::string error;          ///< stage 2's failure (rank 0)
};

Outcome select(const DistMatrix& z, const la::CpqrOptions& opts, const EngineOptions& eng, bool want_id,
               EngineStats* stats);

/// Adds the bytes `comm` sends during its lifetime to `total`.
class ByteCount {
 public:
  ByteCount(const Comm& comm, std::uint64_t& total) : comm_(comm), total_(total), start_(comm.bytes_sent()) {}
  ~ByteCount() { total_ += comm_.bytes_sent() - start_; }
  ByteCount(const ByteCount&) = delete;
  ByteCount& operator=(const ByteCount&) = delete;

 private:
  const Comm& comm_;
  std::uint64_t& total_;
  std::uint64_t start_;
};

/// Stage 1: the checks every engine shares. Robustness (tests/dist/mpi_adversarial.cpp, every
/// engine, 1..4 ranks): near-tied norms, exact duplicate columns, columns from 1e-300 to 1e300, a
/// single row (ranks without rows), a single column and the zero matrix give finite results, a
/// valid permutation and, column by column, an ID residual within 8 max(m, n) eps ||z_j|| of
/// dgeqp3's at the same rank. NaN/Inf anywhere is one CollectiveError on every rank naming the
/// global (row, column) of the first bad entry; so is a column whose 2-norm overflows a double
/// (checked with scaled norms first) and a result that overflowed on the way (norms within a
/// small factor of 1.8e308). `deferrable`: tsqr may stop after its local R and leave the tree and the CPQR to the
/// batch.
void prologue(Job& job, const DistMatrix& z, const la::CpqrOptions& opts, const EngineOptions& eng, bool want_id,
              bool deferrable) {
  const Comm& comm = z.comm();
  const ByteCount count(comm, job.stats.bytes_sent);
  z.validate(idprune::detail::concat("distributed_cpqr (engine ", to_string(eng.engine), ")"));
  if (const auto error = option_error(z, opts, eng); !error.empty()) throw CollectiveError(0, error);
  const std::string where = idprune::detail::concat("distributed_cpqr (engine ", to_string(eng.engine), ")");
  double max_norm = 0.0;
  if (const auto error = column_norm_error(z, where, max_norm); !error.empty()) throw CollectiveError(0, error);
  if (max_norm > la::kHugeColumnNorm) {
    // Norms near the overflow threshold (the same verdict on every rank): select on 2^-16 Z, whose
    // intermediates (Householder, sketch, Gram) cannot overflow, then scale R and the norms back
    // on every rank alike (T is scale-free).
    const DistMatrix scaled(comm, scaled_copy(z.local(), -la::kHugeScaleExponent), z.row_offset(), z.global_rows());
    EngineStats inner;
    job.out = select(scaled, opts, eng, want_id, &inner);
    job.stats.sketch_rows = inner.sketch_rows;
    la::unscale_result(job.out.f, la::kHugeScaleExponent);
    check_collective(comm, la::overflow_message(job.out.f, where));
    job.done = true;
    return;
  }
  // Test facility (IDPRUNE_FAULT, dist/fault.hpp): a failure on one rank while the others go on
  // into the engine's collectives. After the rescaling above, which recurses: one count per call.
  static std::atomic<long> calls{0};
  inject_fault(comm.rank(), "engine", calls++);
  const index_t n = z.cols();
  if (z.global_rows() == 0 || n == 0) {
    job.out.f = empty_result(n);
    if (want_id) job.out.t = Matrix(0, n);
    job.done = true;
    return;
  }
  job.broadcast = true;
  const bool compact =
      eng.engine == PivotEngine::tsqr || eng.engine == PivotEngine::gram || eng.engine == PivotEngine::sketch;
  std::vector<index_t> live = compact ? live_columns(z) : std::vector<index_t>{};
  if (compact && live.empty()) {
    job.out.f = empty_result(n);  // every column is zero: nothing to select
    return;
  }
  job.opts = opts;
  job.rows = z.global_rows();
  const bool dead = compact && static_cast<index_t>(live.size()) < n;
  if (dead) {
    // Dead columns (zero on every rank) have zero norm, so greedy pivoting never takes them
    // before it stops: factor only the live columns and put the dead ones last.
    if (job.opts.max_rank >= 0)
      job.opts.max_rank = std::min<index_t>(job.opts.max_rank, static_cast<index_t>(live.size()));
    job.live = std::move(live);
  }
  Matrix compacted = dead ? la::select_columns(z.local(), job.live) : Matrix();
  if (deferrable && eng.engine == PivotEngine::tsqr) {
    // run_engine's tsqr case up to its local R, which the batch computes for all its matrices at
    // once (a compacted R is no longer triangular: a QR of n^3 flops each, serial here).
    job.r = dead ? std::move(compacted) : Matrix(z.local());
    job.unreduced = true;
    job.local = true;
    return;
  }
  std::optional<DistMatrix> zc;
  if (dead) zc.emplace(comm, std::move(compacted), z.row_offset(), z.global_rows());
  job.out = run_engine(zc ? *zc : z, zc ? zc->local() : la::MatrixView(), job.opts, eng, job.stats);
}

/// The local R factors of a batch's deferred tsqr inputs, as tasks when there are several (BLAS
/// single-threaded inside); then each job's error agreed on in order, as tsqr_local_r does.
void reduce_local(std::span<Job> jobs, std::span<const DistMatrix> zs) {
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < jobs.size(); ++i)
    if (jobs[i].unreduced) todo.push_back(i);
  std::vector<std::string> errors(todo.size());
  const auto reduce = [&](std::size_t t) {
    Job& job = jobs[todo[t]];
    errors[t] = capture_error([&] { job.r = kernel::local_r_in_place(job.r.view()); });
    job.unreduced = false;
  };
  if (todo.size() > 1 && tbb::this_task_arena::max_concurrency() > 1) {
    const la::ScopedBlasThreads single(1);
    tbb::parallel_for(std::size_t{0}, todo.size(), reduce);
  } else {
    for (std::size_t t = 0; t < todo.size(); ++t) reduce(t);
  }
  for (std::size_t t = 0; t < todo.size(); ++t) check_collective(zs[todo[t]].comm(), errors[t]);
}

/// Stage 2 (no MPI; rank 0 only does work).
void local_stage(Job& job, const Comm& comm, const EngineOptions& eng) {
  if (!job.local) return;
  job.error = capture_error([&] {
    if (comm.rank() != step::root) return;
    require(la::all_finite(job.r), overflow_error(eng));
    // CPQR of R (only its first min(m, n) rows can be non-zero) selects Z's pivots.
    job.out.f = la::cpqr(job.r.block(0, 0, std::min(job.rows, job.r.cols()), job.r.cols()), job.opts);
  });
  job.r = Matrix();
}

/// Stage 3, the collective part: the local stage's error, the overflow check, T, the broadcast.
void finish(Job& job, const DistMatrix& z, const EngineOptions& eng, bool want_id) {
  const Comm& comm = z.comm();
  const ByteCount count(comm, job.stats.bytes_sent);
  if (job.local) check_collective(comm, job.error);
  if (job.done || !job.broadcast) return;
  const index_t n = z.cols();
  const std::string where = idprune::detail::concat("distributed_cpqr (engine ", to_string(eng.engine), ")");
  if (!job.live.empty() && comm.rank() == step::root) job.out.f = expand_columns(std::move(job.out.f), job.live, n);
  // Inf/NaN in the result (column norms within a small factor of the largest double, where
  // Householder, sketch or unscaling intermediates overflow) is a clear error, not pivots.
  check_collective(comm, capture_error([&] {
                     if (comm.rank() != step::root) return;
                     if (const std::string bad = la::overflow_message(job.out.f, where); !bad.empty()) throw Error(bad);
                     if (want_id) job.out.t = la::interpolation_matrix(job.out.f);
                   }));
  bcast_outcome(comm, job.out, want_id);
}

/// Stage 3.
Outcome epilogue(Job& job, const DistMatrix& z, const EngineOptions& eng, bool want_id, EngineStats* stats) {
  finish(job, z, eng, want_id);
  if (stats != nullptr) *stats = job.stats;
  return std::move(job.out);
}

Outcome select(const DistMatrix& z, const la::CpqrOptions& opts, const EngineOptions& eng, bool want_id,
               EngineStats* stats) {
  Job job;
  prologue(job, z, opts, eng, want_id, false);
  return epilogue(job, z, eng, want_id, stats);
}

}  // namespace

la::CpqrResult distributed_cpqr(const DistMatrix& z, const la::CpqrOptions& opts, const EngineOptions& engine,
                                EngineStats* stats) {
  return select(z, opts, engine, false, stats).f;
}

std::vector<la::CpqrResult> distributed_cpqr_batch(std::span<const DistMatrix> zs,
                                                   std::span<const la::CpqrOptions> opts, const EngineOptions& engine,
                                                   std::span<EngineStats> stats) {
  require(opts.size() == zs.size() && (stats.empty() || stats.size() == zs.size()),
          "distributed_cpqr_batch: ", zs.size(), " matrices, ", opts.size(), " option sets, ", stats.size(),
          " statistics");
  std::vector<Job> jobs(zs.size());
  for (std::size_t i = 0; i < zs.size(); ++i) prologue(jobs[i], zs[i], opts[i], engine, false, true);
  reduce_local(jobs, zs);
  std::vector<std::size_t> deferred;  // the same list on every rank: each decision was collective
  for (std::size_t i = 0; i < jobs.size(); ++i)
    if (jobs[i].local) deferred.push_back(i);
  if (!deferred.empty()) {
    // tsqr: one tree for every deferred matrix (every matrix is on the same ranks).
    const Comm& comm = zs[deferred.front()].comm();
    std::vector<Matrix> rs;
    std::vector<std::uint64_t> sizes;  // entries of each R: its share of the tree's bytes
    std::uint64_t weight = 0;
    for (const std::size_t i : deferred) {
      sizes.push_back(static_cast<std::uint64_t>(jobs[i].r.size()));
      weight += sizes.back();
      rs.push_back(std::move(jobs[i].r));
    }
    std::uint64_t tree_bytes = 0;
    {
      const ByteCount count(comm, tree_bytes);
      rs = tsqr_combine(comm, std::move(rs), tree_options(engine));
    }
    for (std::size_t d = 0; d < deferred.size(); ++d) {
      Job& job = jobs[deferred[d]];
      job.stats.bytes_sent += weight > 0 ? tree_bytes * sizes[d] / weight : tree_bytes / deferred.size();
      job.r = std::move(rs[d]);
    }
  }
  const std::size_t pending = deferred.size();
  if (pending > 1 && tbb::this_task_arena::max_concurrency() > 1) {
    // One CPQR per task, BLAS single-threaded inside (no oversubscription).
    const la::ScopedBlasThreads single(1);
    tbb::parallel_for(std::size_t{0}, jobs.size(), [&](std::size_t i) { local_stage(jobs[i], zs[i].comm(), engine); });
  } else {
    for (std::size_t i = 0; i < jobs.size(); ++i) local_stage(jobs[i], zs[i].comm(), engine);
  }
  std::vector<la::CpqrResult> out;
  out.reserve(zs.size());
  for (std::size_t i = 0; i < zs.size(); ++i)
    out.push_back(epilogue(jobs[i], zs[i], engine, false, stats.empty() ? nullptr : &stats[i]).f);
  return out;
}

la::InterpolativeDecomposition distributed_id(const DistMatrix& z, const la::CpqrOptions& opts,
                                              const EngineOptions& engine, EngineStats* stats) {
  Outcome out = select(z, opts, engine, true, stats);
  la::InterpolativeDecomposition id;
  id.skeleton = out.f.skeleton();
  id.interpolation = std::move(out.t);
  id.factorization = std::move(out.f);
  return id;
}

IdError id_error(const DistMatrix& z, const la::InterpolativeDecomposition& id) {
  const Comm& comm = z.comm();
  const index_t n = z.cols();
  std::array<double, 2> local = {0.0, 0.0};  // ||E_p||_F^2 and a local failure flag
  Matrix g(n, n);
  std::string error = capture_error([&] {
    require(id.interpolation.cols() == n && id.interpolation.rows() == static_cast<index_t>(id.skeleton.size()),
            "id_error: T is ", id.interpolation.rows(), " x ", id.interpolation.cols(), " for ", id.skeleton.size(),
            " skeleton columns of a matrix with ", n, " columns");
    // E_p = Z_p - Z_p(:, C) T, the local rows of the ID residual.
    Matrix e(z.local());
    if (!id.skeleton.empty() && e.rows() > 0)
      la::gemm(-1.0, la::select_columns(z.local(), id.skeleton), la::Op::none, id.interpolation, la::Op::none, 1.0,
               e.view());
    const double fro = la::norm_fro(e);
    local[0] = fro * fro;
    la::syrk_upper(1.0, e, 0.0, g.view());
  });
  check_collective(comm, error);
  comm.allreduce_sum(std::span<double>(local.data(), 1));
  auto packed = kernel::pack_upper(g);
  comm.reduce_sum(std::span<double>(packed), step::root);
  double lambda_max = 0.0;
  error = capture_error([&] {
    if (comm.rank() != step::root || n == 0) return;
    kernel::unpack_upper(packed, g.view());
    // Largest eigenvalue of E^T E = ||E||_2^2, to a relative accuracy of about eps (dsyevr).
    std::vector<double> w(static_cast<std::size_t>(n));
    std::vector<lapack_int> isuppz(2);
    lapack_int found = 0;
    const auto ni = static_cast<lapack_int>(n);
    const lapack_int info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'N', 'I', 'U', ni, g.data(), ni, 0.0, 0.0, ni, ni, 0.0,
                                           &found, w.data(), nullptr, 1, isuppz.data());
    check_lapack(info, "dsyevr");
    lambda_max = std::max(w[0], 0.0);
  });
  check_collective(comm, error);
  comm.bcast(std::span<double>(&lambda_max, 1), step::root);
  return {std::sqrt(lambda_max), std::sqrt(local[0])};
}

}  // namespace idprune::dist
