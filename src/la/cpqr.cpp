// Column-pivoted QR (Businger–Golub) with early stopping: unblocked, blocked (LAPACK dlaqps
// style) and LAPACK dgeqp3, and the interpolative decomposition built on top.
#include "idprune/la/cpqr.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "idprune/la/blas.hpp"
#include "idprune/la/finite.hpp"
#include "idprune/la/lapack.hpp"

namespace idprune::la {

CpqrMethod parse_cpqr_method(std::string_view name) {
  if (name == "unblocked") return CpqrMethod::unblocked;
  if (name == "blocked") return CpqrMethod::blocked;
  if (name == "lapack") return CpqrMethod::lapack;
  throw Error(detail::concat("unknown CPQR method '", std::string(name), "' (expected unblocked, blocked or lapack)"));
}

std::string_view to_string(CpqrMethod method) {
  switch (method) {
    case CpqrMethod::unblocked:
      return "unblocked";
    case CpqrMethod::blocked:
      return "blocked";
    case CpqrMethod::lapack:
      return "lapack";
  }
  return "unknown";
}

namespace {

using std::size_t;

// Threshold of the safe norm-recomputation test of Drmač and Bujanović (LAPACK Working Note 176,
// as implemented in LAPACK 3.x dlaqp2/dlaqps): a downdated norm is trusted only while
// (1 - (r/vn1)^2) (vn1/vn2)^2 > sqrt(eps), vn2 being the norm when it was last computed exactly.
const double tol3z = std::sqrt(std::numeric_limits<double>::epsilon());

int as_int(index_t v) { return static_cast<int>(v); }

// Working state shared by the two in-house methods: the matrix being reduced in place (A P),
// the pivots, the partial column norms (vn1: current estimate, vn2: last exact value) and tau.
struct Work {
  Matrix a;
  std::vector<index_t> pivots;
  std::vector<double> vn1;
  std::vector<double> vn2;
  std::vector<double> tau;

  explicit Work(ConstMatrixView src) : a(src) {
    const index_t n = a.cols();
    pivots.resize(uz(n));
    vn1.resize(uz(n));
    vn2.resize(uz(n));
    tau.resize(uz(std::min(a.rows(), n)));
    for (index_t j = 0; j < n; ++j) pivots[uz(j)] = j;
    recompute_norms(0);
  }

  [[nodiscard]] index_t m() const { return a.rows(); }
  [[nodiscard]] index_t n() const { return a.cols(); }

  // Exact norms of the trailing columns j..n-1 below row j (the unreduced remainder).
  void recompute_norms(index_t j) {
    for (index_t c = j; c < n(); ++c) {
      vn1[uz(c)] = j < m() ? nrm2(a.col(c).subspan(uz(j))) : 0.0;
      vn2[uz(c)] = vn1[uz(c)];
    }
  }

  // Index in [j, n) of the largest norm estimate (first one on ties, as LAPACK's idamax).
  [[nodiscard]] index_t argmax_norm(index_t j) const {
    index_t best = j;
    for (index_t c = j + 1; c < n(); ++c)
      if (vn1[uz(c)] > vn1[uz(best)]) best = c;
    return best;
  }

  void swap_columns(index_t i, index_t j) {
    if (i == j) return;
    cblas_dswap(as_int(m()), a.col(i).data(), 1, a.col(j).data(), 1);
    std::swap(pivots[uz(i)], pivots[uz(j)]);
    std::swap(vn1[uz(i)], vn1[uz(j)]);
    std::swap(vn2[uz(i)], vn2[uz(j)]);
  }
};

// The stopping rule of cpqr.hpp, applied to the norm `beta` of the candidate pivot at step k:
// stop when it is zero or below rel_tol |r_11| (r_11 being beta itself at k = 0).
bool below_tolerance(double beta, double r11, double rel_tol) { return beta == 0.0 || beta <= rel_tol * r11; }

// Fills the result from the reduced matrix after `rank` steps.
CpqrResult finish(Work& w, index_t rank, bool want_q) {
  CpqrResult f;
  const index_t m = w.m();
  const index_t n = w.n();
  f.rank = rank;
  f.pivots = std::move(w.pivots);
  f.r = Matrix(rank, n);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= std::min(j, rank - 1); ++i) f.r(i, j) = w.a(i, j);
  f.diag.resize(uz(rank));
  for (index_t i = 0; i < rank; ++i) f.diag[uz(i)] = std::abs(w.a(i, i));
  // The remainder R22 = A(k:m, k:n) is fully updated: its norms are computed exactly here, not taken
  // from the downdated estimates.
  if (rank < m && rank < n) {
    const ConstMatrixView r22 = w.a.block(rank, rank, m - rank, n - rank);
    for (index_t j = 0; j < r22.cols(); ++j) f.next_diag = std::max(f.next_diag, nrm2(r22.col(j)));
    f.residual_fro = norm_fro(r22);
  }
  if (want_q) {
    f.householder = Matrix(w.a.block(0, 0, m, rank));
    f.tau.assign(w.tau.begin(), w.tau.begin() + static_cast<std::ptrdiff_t>(rank));
  }
  return f;
}

// The textbook algorithm (reference text, Goal 1): at step j pivot the remaining column of largest
// norm, reduce it with a Householder reflector applied to the whole trailing matrix (dgemv + dger),
// and downdate the remaining norms. O(m n k) for k steps.
CpqrResult cpqr_unblocked(ConstMatrixView src, index_t kmax, double rel_tol, bool want_q) {
  Work w(src);
  const index_t m = w.m();
  const index_t n = w.n();
  std::vector<double> work(uz(n));
  double r11 = 0.0;
  bool norms_exact = true;
  index_t j = 0;
  while (j < kmax) {
    const index_t p = w.argmax_norm(j);
    w.swap_columns(j, p);
    const double beta = nrm2(w.a.col(j).subspan(uz(j)));
    if (beta == 0.0 && !norms_exact) {
      // The estimates claimed a nonzero column: recompute them all before concluding that the
      // remainder is exactly zero (the rule never selects a zero diagonal).
      w.recompute_norms(j);
      norms_exact = true;
      continue;
    }
    if (j == 0) r11 = beta;
    if (below_tolerance(beta, r11, rel_tol)) break;
    norms_exact = false;

    double* ajj = &w.a(j, j);
    w.tau[uz(j)] = larfg(*ajj, w.a.col(j).subspan(uz(j) + 1));
    if (j + 1 < n) {
      // A(j:m, j+1:n) <- (I - tau v v^T) A(j:m, j+1:n), v = [1; A(j+1:m, j)].
      const double beta_j = *ajj;
      *ajj = 1.0;
      const index_t rows = m - j;
      const index_t cols = n - j - 1;
      double* trailing = &w.a(j, j + 1);
      const int ld = as_int(w.a.ld());
      cblas_dgemv(CblasColMajor, CblasTrans, as_int(rows), as_int(cols), 1.0, trailing, ld, ajj, 1, 0.0, work.data(),
                  1);
      cblas_dger(CblasColMajor, as_int(rows), as_int(cols), -w.tau[uz(j)], ajj, 1, work.data(), 1, trailing, ld);
      *ajj = beta_j;
    }
    // Norm downdating ||A(j+1:m, l)||^2 = ||A(j:m, l)||^2 - A(j, l)^2, with the safe recomputation
    // test of LAWN 176 (LAPACK dlaqp2).
    for (index_t l = j + 1; l < n; ++l) {
      double& v1 = w.vn1[uz(l)];
      double& v2 = w.vn2[uz(l)];
      if (v1 == 0.0) continue;
      const double t = std::abs(w.a(j, l)) / v1;
      const double temp = std::max(0.0, (1.0 + t) * (1.0 - t));
      const double temp2 = temp * (v1 / v2) * (v1 / v2);
      if (temp2 <= tol3z) {
        v1 = j + 1 < m ? nrm2(w.a.col(l).subspan(uz(j) + 1)) : 0.0;
        v2 = v1;
      } else {
        v1 *= std::sqrt(temp);
      }
    }
    ++j;
  }
  return finish(w, j, want_q);
}

// One panel of the blocked method, LAPACK dlaqps: up to nb steps starting at column `offset`, with
// the trailing update delayed and accumulated as A <- A - V F^T (F = tau-scaled A^T V, corrected
// incrementally), so that only the pivot column and the pivot row are updated inside the panel
// (matrix-vector work) and the rest of the trailing matrix once at the end (one dgemm).
struct PanelOutcome {
  index_t steps = 0;
  bool stop = false;   // the stopping rule fired (or the remainder is exactly zero)
  bool flush = false;  // a zero column had a nonzero estimate: recompute all norms and go on
};

PanelOutcome blocked_panel(Work& w, index_t offset, index_t nb, double& r11, double rel_tol, bool& norms_exact,
                           std::vector<double>& fbuf, std::vector<double>& auxv) {
  const index_t m = w.m();
  const index_t nn = w.n() - offset;  // trailing columns; column c of the panel is global offset + c
  const int lda = as_int(w.a.ld());
  const int ldf = as_int(std::max<index_t>(nn, 1));
  double* a0 = &w.a(0, offset);  // A(:, offset:n)
  auto A = [&](index_t i, index_t c) -> double* { return a0 + i + c * w.a.ld(); };
  double* f = fbuf.data();
  auto F = [&](index_t r, index_t c) -> double* { return f + r + c * ldf; };
  const index_t lastrk = std::min(m, w.n());
  index_t lsticc = -1;  // head of the linked list (through vn2) of columns whose norm must be recomputed
  PanelOutcome out;
  index_t k = 0;  // steps taken in this panel
  while (k < nb && lsticc < 0) {
    const index_t rk = offset + k;  // row of this step
    const index_t p = w.argmax_norm(offset + k) - offset;
    if (p != k) {
      w.swap_columns(offset + p, offset + k);
      cblas_dswap(as_int(k), F(p, 0), ldf, F(k, 0), ldf);
    }
    // Apply the delayed reflectors to the pivot column: A(rk:m, k) -= A(rk:m, 0:k) F(k, 0:k)^T.
    if (k > 0)
      cblas_dgemv(CblasColMajor, CblasNoTrans, as_int(m - rk), as_int(k), -1.0, A(rk, 0), lda, F(k, 0), ldf, 1.0,
                  A(rk, k), 1);
    const double beta = cblas_dnrm2(as_int(m - rk), A(rk, k), 1);
    if (offset + k == 0) r11 = beta;
    if (beta == 0.0 && !(k == 0 && norms_exact)) {
      // The estimates claimed a nonzero column that is exactly zero: they may be stale. End the
      // panel and recompute them all before concluding that the remainder is zero.
      out.flush = true;
      break;
    }
    if (below_tolerance(beta, r11, rel_tol)) {
      out.stop = true;
      break;
    }

    // Generate H_k (dlarfg) and the k-th column of F:
    //   F(k+1:nn, k) = tau A(rk:m, k+1:nn)^T v,  then  F(:, k) -= tau F(:, 0:k) (A(rk:m, 0:k)^T v).
    double& akk = *A(rk, k);
    w.tau[uz(rk)] = larfg(akk, {A(rk + 1, k), uz(m - rk - 1)});
    const double tau = w.tau[uz(rk)];
    const double beta_k = akk;
    akk = 1.0;
    if (k + 1 < nn)
      cblas_dgemv(CblasColMajor, CblasTrans, as_int(m - rk), as_int(nn - k - 1), tau, A(rk, k + 1), lda, A(rk, k), 1,
                  0.0, F(k + 1, k), 1);
    for (index_t r = 0; r <= k; ++r) *F(r, k) = 0.0;
    if (k > 0) {
      cblas_dgemv(CblasColMajor, CblasTrans, as_int(m - rk), as_int(k), -tau, A(rk, 0), lda, A(rk, k), 1, 0.0,
                  auxv.data(), 1);
      // Rows 0..k of F(:, k) are never read for updates, only rows k+1..nn.
      if (k + 1 < nn)
        cblas_dgemv(CblasColMajor, CblasNoTrans, as_int(nn - k - 1), as_int(k), 1.0, F(k + 1, 0), ldf, auxv.data(), 1,
                    1.0, F(k + 1, k), 1);
    }
    // Update the pivot row: A(rk, k+1:nn) -= A(rk, 0:k+1) F(k+1:nn, 0:k+1)^T.
    if (k + 1 < nn)
      cblas_dgemv(CblasColMajor, CblasNoTrans, as_int(nn - k - 1), as_int(k + 1), -1.0, F(k + 1, 0), ldf, A(rk, 0), lda,
                  1.0, A(rk, k + 1), lda);
    // Downdate the partial norms (LAWN 176 test); columns failing it are queued for exact
    // recomputation after the block update, and the panel ends.
    if (rk + 1 < lastrk) {
      for (index_t c = k + 1; c < nn; ++c) {
        double& v1 = w.vn1[uz(offset + c)];
        double& v2 = w.vn2[uz(offset + c)];
        if (v1 == 0.0) continue;
        const double t = std::abs(*A(rk, c)) / v1;
        const double temp = std::max(0.0, (1.0 + t) * (1.0 - t));
        const double temp2 = temp * (v1 / v2) * (v1 / v2);
        if (temp2 <= tol3z) {
          v2 = static_cast<double>(lsticc);
          lsticc = c;
        } else {
          v1 *= std::sqrt(temp);
        }
      }
    }
    akk = beta_k;
    norms_exact = false;
    ++k;
  }
  out.steps = k;
  // Block update of the rest: A(rk:m, c0:nn) -= A(rk:m, 0:k) F(c0:nn, 0:k)^T with rk = offset + k.
  // When the panel ended before reducing column k (stop or flush), that column already received
  // the delayed update above, so the block update starts after it.
  const index_t rk = offset + k;
  const index_t c0 = (out.stop || out.flush) ? k + 1 : k;
  if (k > 0 && rk < m && c0 < nn)
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, as_int(m - rk), as_int(nn - c0), as_int(k), -1.0, A(rk, 0),
                lda, F(c0, 0), ldf, 1.0, A(rk, c0), lda);
  // Exact recomputation of the queued norms.
  while (lsticc >= 0) {
    double& v2 = w.vn2[uz(offset + lsticc)];
    const auto next = static_cast<index_t>(v2);
    w.vn1[uz(offset + lsticc)] = rk < m ? cblas_dnrm2(as_int(m - rk), A(rk, lsticc), 1) : 0.0;
    v2 = w.vn1[uz(offset + lsticc)];
    lsticc = next;
  }
  return out;
}

CpqrResult cpqr_blocked(ConstMatrixView src, index_t kmax, double rel_tol, index_t block_size, bool want_q) {
  Work w(src);
  const index_t n = w.n();
  const index_t nb_max = std::max<index_t>(1, std::min(block_size, kmax));
  std::vector<double> fbuf(uz(std::max<index_t>(n, 1) * nb_max));
  std::vector<double> auxv(uz(nb_max));
  double r11 = 0.0;
  bool norms_exact = true;
  index_t j = 0;
  while (j < kmax) {
    const PanelOutcome o = blocked_panel(w, j, std::min(nb_max, kmax - j), r11, rel_tol, norms_exact, fbuf, auxv);
    j += o.steps;
    if (o.stop) break;
    if (o.flush) {
      w.recompute_norms(j);  // the next panel starts with exact norms and stops if they are all zero
      norms_exact = true;
    }
  }
  return finish(w, j, want_q);
}

// dgeqp3 on a copy, then the first k steps that the stopping rule keeps.
CpqrResult cpqr_lapack(ConstMatrixView src, index_t kmax, double rel_tol, bool want_q) {
  Matrix a(src);
  Geqp3Result g = geqp3(a.view());
  const index_t m = a.rows();
  const index_t n = a.cols();
  const double r11 = kmax > 0 ? std::abs(a(0, 0)) : 0.0;
  index_t k = 0;
  while (k < kmax && !below_tolerance(std::abs(a(k, k)), r11, rel_tol)) ++k;
  CpqrResult f;
  f.rank = k;
  f.pivots = std::move(g.pivots);
  f.r = Matrix(k, n);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i <= std::min(j, k - 1); ++i) f.r(i, j) = a(i, j);
  f.diag.resize(uz(k));
  for (index_t i = 0; i < k; ++i) f.diag[uz(i)] = std::abs(a(i, i));
  // The rows k..min(m,n) of the full R hold R22 reduced further by orthogonal transformations and
  // permutations, which preserve its column norms and Frobenius norm.
  const index_t rows = std::min(m, n) - k;
  if (rows > 0) {
    Matrix r22(rows, n - k);
    for (index_t j = 0; j < n - k; ++j)
      for (index_t i = 0; i <= std::min(j, rows - 1); ++i) r22(i, j) = a(k + i, k + j);
    for (index_t j = 0; j < n - k; ++j) f.next_diag = std::max(f.next_diag, nrm2(r22.col(j)));
    f.residual_fro = norm_fro(r22);
  }
  if (want_q) {
    f.householder = Matrix(a.block(0, 0, m, k));
    f.tau.assign(g.tau.begin(), g.tau.begin() + static_cast<std::ptrdiff_t>(k));
  }
  return f;
}

// Cost model of the tall-matrix QR preprocessing. Each CPQR step streams the whole trailing
// matrix through a matrix-vector product (memory bound once A leaves the caches), so k steps on
// m x n cost about k m n memory-speed operations, against 2 m n^2 BLAS-3 operations for dgeqrf
// (far faster per operation) plus k steps on the n x n R0. Measured (2 cores, 4000 x 1000 and
// 16000 x 500): the break-even is near k = n / 5, and for the full factorization near
// m n = 2.5e5 (2 MB: in cache the matrix-vector work is fast too). So: from k = n / 4 on, when
// R0 is much smaller than A (m >= 2n) and A has at least 2^19 entries (4 MB). kmax counts, not
// the rank a tolerance will pick: with rel_tol alone (kmax = n) a large tall input is always
// reduced first, costing about n / 5 direct steps at worst and saving most of the work when
// many steps follow.
constexpr index_t kPreprocessMinEntries = index_t{1} << 19;

bool use_tall_qr_preprocessing(index_t m, index_t n, index_t kmax, const CpqrOptions& opts) {
  return opts.tall_qr_preprocessing && !opts.want_q && m >= 2 * n && 4 * kmax >= n && m * n >= kPreprocessMinEntries;
}

// The method dispatch of cpqr() (after its checks).
CpqrResult factor(ConstMatrixView a, const CpqrOptions& opts) {
  const index_t m = a.rows();
  const index_t n = a.cols();
  const index_t kmax = opts.max_rank < 0 ? std::min(m, n) : opts.max_rank;
  switch (opts.method) {
    case CpqrMethod::unblocked:
      return cpqr_unblocked(a, kmax, opts.rel_tol, opts.want_q);
    case CpqrMethod::blocked:
      if (use_tall_qr_preprocessing(m, n, kmax, opts)) {
        // A = Q0 R0: every column norm and inner product of A is that of R0, so the greedy
        // pivots, R and the remainder norms are those of CPQR(R0).
        Matrix r0(a);
        (void)geqrf(r0.view());
        for (index_t j = 0; j < n; ++j)
          for (index_t i = j + 1; i < n; ++i) r0(i, j) = 0.0;  // only the top n x n block is read
        return cpqr_blocked(r0.block(0, 0, n, n), kmax, opts.rel_tol, opts.block_size, false);
      }
      return cpqr_blocked(a, kmax, opts.rel_tol, opts.block_size, opts.want_q);
    case CpqrMethod::lapack:
      return cpqr_lapack(a, kmax, opts.rel_tol, opts.want_q);
  }
  throw Error("cpqr: unknown method");
}

}  // namespace

CpqrResult cpqr(ConstMatrixView a, const CpqrOptions& opts) {
  const index_t m = a.rows();
  const index_t n = a.cols();
  const index_t full = std::min(m, n);
  require(opts.max_rank >= -1 && opts.max_rank <= full, "cpqr: max_rank=", opts.max_rank,
          " outside [0, min(m, n)=", full, "] (or -1 for min(m, n)) for a ", m, " x ", n, " matrix");
  require(std::isfinite(opts.rel_tol) && opts.rel_tol >= 0.0, "cpqr: rel_tol=", opts.rel_tol,
          " must be finite and >= 0");
  require(opts.block_size >= 1, "cpqr: block_size=", opts.block_size, " must be >= 1");
  const std::string what = detail::concat("cpqr: the ", m, " x ", n, " input matrix");
  if (const std::string bad = non_finite_message(a, what); !bad.empty()) throw Error(bad);
  if (const std::string bad = column_norm_overflow_message(a, what); !bad.empty()) throw Error(bad);
  double max_norm = 0.0;
  for (index_t j = 0; j < n; ++j) max_norm = std::max(max_norm, nrm2(a.col(j)));
  CpqrResult f;
  if (max_norm > kHugeColumnNorm) {
    // Norms near the overflow threshold: factor 2^-16 A, whose intermediates cannot overflow.
    Matrix scaled(a);
    for (double& v : scaled.values()) v = std::ldexp(v, -kHugeScaleExponent);
    f = factor(scaled, opts);
    unscale_result(f, kHugeScaleExponent);
  } else {
    f = factor(a, opts);
  }
  if (const std::string bad = overflow_message(f, what); !bad.empty()) throw Error(bad);
  return f;
}

Matrix cpqr_q(const CpqrResult& f) {
  require(f.householder.cols() == f.rank && static_cast<index_t>(f.tau.size()) == f.rank,
          "cpqr_q: the factorization carries no Householder data (compute it with want_q = true)");
  Matrix q(f.householder);
  orgqr(q.view(), f.tau);
  return q;
}

Matrix interpolation_matrix(const CpqrResult& f) {
  const index_t k = f.rank;
  const auto n = static_cast<index_t>(f.pivots.size());
  require(f.r.rows() == k && f.r.cols() == n && k <= n, "interpolation_matrix: R is ", f.r.rows(), " x ", f.r.cols(),
          ", expected rank x n = ", k, " x ", n);
  for (index_t i = 0; i < k; ++i)
    require(f.r(i, i) != 0.0 && std::isfinite(f.r(i, i)), "interpolation_matrix: R11(", i, ",", i, ") = ", f.r(i, i),
            " (R11 must be nonsingular)");
  // X = R11^{-1} R12 by a triangular solve (dtrsm), never an explicit inverse. With R11 = D U,
  // D = diag(R11): X = U^{-1} (D^{-1} R12), the rows divided by r_ii first and U unit triangular.
  // dtrsm itself multiplies by reciprocals 1 / r_ii, which overflow for subnormal r_ii (columns
  // of 1e-310: Inf * 0 = NaN in T); a division r_ij / r_ii is exact in range, and greedy pivoting
  // keeps |r_ij| <= |r_ii|, so U and D^{-1} R12 have entries of order 1 whatever the scale of A.
  Matrix u(f.r.block(0, 0, k, k));
  Matrix x(f.r.block(0, k, k, n - k));
  for (index_t i = 0; i < k; ++i) {
    const double d = u(i, i);
    for (index_t j = i; j < k; ++j) u(i, j) /= d;
    for (index_t j = 0; j < n - k; ++j) x(i, j) /= d;
  }
  if (k > 0 && n > k)
    cblas_dtrsm(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasUnit, as_int(k), as_int(n - k), 1.0, u.data(),
                as_int(u.ld()), x.data(), as_int(x.ld()));
  Matrix t(k, n);
  for (index_t i = 0; i < k; ++i) t(i, f.pivots[uz(i)]) = 1.0;  // T(:, C) = I exactly
  for (index_t j = 0; j < n - k; ++j) {
    const index_t col = f.pivots[uz(k + j)];
    for (index_t i = 0; i < k; ++i) t(i, col) = x(i, j);
  }
  return t;
}

InterpolativeDecomposition interpolative_decomposition(CpqrResult f) {
  InterpolativeDecomposition id;
  id.skeleton = f.skeleton();
  id.interpolation = interpolation_matrix(f);
  id.factorization = std::move(f);
  return id;
}

InterpolativeDecomposition interpolative_decomposition(ConstMatrixView a, const CpqrOptions& opts) {
  return interpolative_decomposition(cpqr(a, opts));
}

Matrix basic_least_squares(const CpqrResult& f, ConstMatrixView b) {
  const index_t k = f.rank;
  const auto n = static_cast<index_t>(f.pivots.size());
  require(f.householder.cols() == k && static_cast<index_t>(f.tau.size()) == k,
          "basic_least_squares: the factorization carries no Householder data (compute it with want_q = true)");
  require(b.rows() == f.householder.rows(), "basic_least_squares: b has ", b.rows(), " rows, A has ",
          f.householder.rows());
  for (index_t i = 0; i < k; ++i)
    require(f.r(i, i) != 0.0, "basic_least_squares: R11(", i, ",", i, ") = 0 (R11 must be nonsingular)");
  // A(:, C) = Q1 R11, so z = R11^{-1} Q1^T b minimizes ||A(:, C) z - b||.
  Matrix qtb(b);
  ormqr(Side::left, Op::transpose, f.householder, f.tau, qtb.view());
  Matrix z(qtb.block(0, 0, k, b.cols()));
  trsm_upper_left(f.r.block(0, 0, k, k), Op::none, z.view());
  Matrix x(n, b.cols());
  for (index_t c = 0; c < b.cols(); ++c)
    for (index_t i = 0; i < k; ++i) x(f.pivots[uz(i)], c) = z(i, c);
  return x;
}

Matrix basic_least_squares(ConstMatrixView a, ConstMatrixView b, const CpqrOptions& opts) {
  require(b.rows() == a.rows(), "basic_least_squares: b has ", b.rows(), " rows, A has ", a.rows());
  require(all_finite(b), "basic_least_squares: b has NaN or Inf entries");
  CpqrOptions o = opts;
  o.want_q = true;
  return basic_least_squares(cpqr(a, o), b);
}

}  // namespace idprune::la
