#include "idprune/la/lapack.hpp"

#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "idprune/la/blas.hpp"

namespace idprune::la {
namespace {

// LAPACK takes 32-bit integers: refuse sizes that do not fit instead of truncating them.
lapack_int to_int(index_t v, const char* routine) {
  require(v >= 0 && v <= INT_MAX, routine, ": dimension ", v, " does not fit LAPACK's 32-bit integers");
  return static_cast<lapack_int>(v);
}

// Workspace size from a LAPACK query (lwork = -1 returns the optimum in work[0]).
lapack_int query_size(double w) { return std::max<lapack_int>(1, static_cast<lapack_int>(w)); }

}  // namespace

std::vector<double> geqrf(MatrixView a) {
  const index_t m = a.rows();
  const index_t n = a.cols();
  std::vector<double> tau(static_cast<std::size_t>(std::min(m, n)));
  if (m == 0 || n == 0) return tau;
  const lapack_int mi = to_int(m, "dgeqrf");
  const lapack_int ni = to_int(n, "dgeqrf");
  const lapack_int lda = to_int(a.ld(), "dgeqrf");
  double query = 0.0;
  check_lapack(LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, mi, ni, a.data(), lda, tau.data(), &query, -1), "dgeqrf");
  std::vector<double> work(static_cast<std::size_t>(query_size(query)));
  check_lapack(LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, mi, ni, a.data(), lda, tau.data(), work.data(),
                                   static_cast<lapack_int>(work.size())),
               "dgeqrf");
  return tau;
}

void orgqr(MatrixView a, std::span<const double> tau) {
  const index_t m = a.rows();
  const index_t n = a.cols();
  const auto k = static_cast<index_t>(tau.size());
  require(m >= n && n >= k, "dorgqr: need m >= n >= k, got m=", m, " n=", n, " k=", k);
  if (n == 0) return;
  const lapack_int mi = to_int(m, "dorgqr");
  const lapack_int ni = to_int(n, "dorgqr");
  const lapack_int ki = to_int(k, "dorgqr");
  const lapack_int lda = to_int(a.ld(), "dorgqr");
  double query = 0.0;
  check_lapack(LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, mi, ni, ki, a.data(), lda, tau.data(), &query, -1), "dorgqr");
  std::vector<double> work(static_cast<std::size_t>(query_size(query)));
  check_lapack(LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, mi, ni, ki, a.data(), lda, tau.data(), work.data(),
                                   static_cast<lapack_int>(work.size())),
               "dorgqr");
}

void ormqr(Side side, Op op, ConstMatrixView v, std::span<const double> tau, MatrixView c) {
  const auto k = static_cast<index_t>(tau.size());
  const index_t order = side == Side::left ? c.rows() : c.cols();
  require(v.rows() == order && v.cols() >= k && k <= order, "dormqr: reflectors ", v.rows(), " x ", v.cols(),
          " with k=", k, " do not match C ", c.rows(), " x ", c.cols(), side == Side::left ? " (left)" : " (right)");
  if (c.empty() || k == 0) return;
  const char side_c = side == Side::left ? 'L' : 'R';
  const char trans_c = op == Op::none ? 'N' : 'T';
  const lapack_int mi = to_int(c.rows(), "dormqr");
  const lapack_int ni = to_int(c.cols(), "dormqr");
  const lapack_int ki = to_int(k, "dormqr");
  const lapack_int lda = to_int(v.ld(), "dormqr");
  const lapack_int ldc = to_int(c.ld(), "dormqr");
  double query = 0.0;
  check_lapack(LAPACKE_dormqr_work(LAPACK_COL_MAJOR, side_c, trans_c, mi, ni, ki, v.data(), lda, tau.data(), c.data(),
                                   ldc, &query, -1),
               "dormqr");
  std::vector<double> work(static_cast<std::size_t>(query_size(query)));
  check_lapack(LAPACKE_dormqr_work(LAPACK_COL_MAJOR, side_c, trans_c, mi, ni, ki, v.data(), lda, tau.data(), c.data(),
                                   ldc, work.data(), static_cast<lapack_int>(work.size())),
               "dormqr");
}

Geqp3Result geqp3(MatrixView a) {
  const index_t m = a.rows();
  const index_t n = a.cols();
  Geqp3Result out;
  out.tau.assign(static_cast<std::size_t>(std::min(m, n)), 0.0);
  out.pivots.resize(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j) out.pivots[static_cast<std::size_t>(j)] = j;
  if (m == 0 || n == 0) return out;
  const lapack_int mi = to_int(m, "dgeqp3");
  const lapack_int ni = to_int(n, "dgeqp3");
  const lapack_int lda = to_int(a.ld(), "dgeqp3");
  std::vector<lapack_int> jpvt(static_cast<std::size_t>(n), 0);  // 0: every column is free
  double query = 0.0;
  check_lapack(LAPACKE_dgeqp3_work(LAPACK_COL_MAJOR, mi, ni, a.data(), lda, jpvt.data(), out.tau.data(), &query, -1),
               "dgeqp3");
  std::vector<double> work(static_cast<std::size_t>(query_size(query)));
  check_lapack(LAPACKE_dgeqp3_work(LAPACK_COL_MAJOR, mi, ni, a.data(), lda, jpvt.data(), out.tau.data(), work.data(),
                                   static_cast<lapack_int>(work.size())),
               "dgeqp3");
  for (index_t j = 0; j < n; ++j) out.pivots[static_cast<std::size_t>(j)] = jpvt[static_cast<std::size_t>(j)] - 1;
  return out;
}

double larfg(double& alpha, std::span<double> x) {
  double tau = 0.0;
  const lapack_int n = to_int(static_cast<index_t>(x.size()) + 1, "dlarfg");
  // x may be empty (a 1 x 1 reflector); dlarfg then returns tau = 0 without touching x.
  double dummy = 0.0;
  check_lapack(LAPACKE_dlarfg_work(n, &alpha, x.empty() ? &dummy : x.data(), 1, &tau), "dlarfg");
  return tau;
}

Matrix tpqrt(MatrixView a, MatrixView b, index_t l, index_t block_size) {
  const index_t n = a.cols();
  const index_t m = b.rows();
  require(a.rows() == n && b.cols() == n, "dtpqrt: A must be n x n and B m x n, got A ", a.rows(), " x ", a.cols(),
          ", B ", b.rows(), " x ", b.cols());
  require(l >= 0 && l <= std::min(m, n), "dtpqrt: l=", l, " outside [0, min(m, n)=", std::min(m, n), "]");
  require(block_size >= 1, "dtpqrt: block_size=", block_size, " < 1");
  const index_t nb = std::min(block_size, std::max<index_t>(n, 1));
  Matrix t(nb, n);
  if (n == 0) return t;
  std::vector<double> work(static_cast<std::size_t>(nb * n));
  check_lapack(LAPACKE_dtpqrt_work(LAPACK_COL_MAJOR, to_int(m, "dtpqrt"), to_int(n, "dtpqrt"), to_int(l, "dtpqrt"),
                                   to_int(nb, "dtpqrt"), a.data(), to_int(a.ld(), "dtpqrt"), b.data(),
                                   to_int(b.ld(), "dtpqrt"), t.data(), to_int(t.ld(), "dtpqrt"), work.data()),
               "dtpqrt");
  return t;
}

namespace {

/// The panel of tpqrt_recursive: [A; B] = (I - V T V^T) [R; 0] for A n x n upper triangular, B
/// m x n, V = [I; W]; R overwrites A, W overwrites B, T (n x n, upper) is the block reflector.
/// Split the columns in halves 1 and 2: factor half 1; apply its reflector to half 2, which reads
/// only A12 and B2 (V1 is zero in A22's rows); factor half 2; and
/// T12 = -T11 (V1^T V2) T22 with V1^T V2 = W1^T W2 (the identity parts lie in different rows).
void tpqrt_panel(MatrixView a, MatrixView b, MatrixView t) {
  const index_t n = a.cols();
  const index_t m = b.rows();
  if (n == 1) {
    t(0, 0) = larfg(a(0, 0), std::span<double>(b.data(), static_cast<std::size_t>(m)));
    return;
  }
  const index_t n1 = n / 2;
  const index_t n2 = n - n1;
  const MatrixView t11 = t.block(0, 0, n1, n1);
  const MatrixView t12 = t.block(0, n1, n1, n2);
  const MatrixView t22 = t.block(n1, n1, n2, n2);
  const MatrixView a12 = a.block(0, n1, n1, n2);
  const MatrixView b1 = b.cols_range(0, n1);
  const MatrixView b2 = b.cols_range(n1, n2);
  tpqrt_panel(a.block(0, 0, n1, n1), b1, t11);
  // [A12; B2] <- (I - V1 T11^T V1^T) [A12; B2], T12 as the workspace.
  t12.assign(a12);
  gemm(1.0, b1, Op::transpose, b2, Op::none, 1.0, t12);
  trmm_upper(Side::left, 1.0, t11, Op::transpose, t12);
  for (index_t j = 0; j < n2; ++j)
    for (index_t i = 0; i < n1; ++i) a12(i, j) -= t12(i, j);
  gemm(-1.0, b1, Op::none, t12, Op::none, 1.0, b2);
  tpqrt_panel(a.block(n1, n1, n2, n2), b2, t22);
  gemm(1.0, b1, Op::transpose, b2, Op::none, 0.0, t12);
  trmm_upper(Side::left, -1.0, t11, Op::none, t12);
  trmm_upper(Side::right, 1.0, t22, Op::none, t12);
}

/// [A; B] <- (I - V T V^T)^T [A; B] for V = [I; W] (the panel's reflectors, W = m x k in B's rows)
/// and T k x k upper: dtprfb('L', 'T', 'F', 'C') with L = 0, in dlarfb's transposed form. dtprfb
/// forms X = A + W^T B (k x n), whose dgemm packs the large B for every panel and ran at two
/// thirds of the rate of the update B -= W X; dlarfb's X^T = A^T + B^T W runs at 0.8 of it
/// (OpenBLAS, 3125 x 960 x 64). `work` is n x k.
void apply_stacked_reflector(ConstMatrixView w, ConstMatrixView t, MatrixView a, MatrixView b, MatrixView work) {
  const index_t n = a.cols();
  const index_t k = a.rows();
  for (index_t j = 0; j < k; ++j)
    for (index_t i = 0; i < n; ++i) work(i, j) = a(j, i);
  gemm(1.0, b, Op::transpose, w, Op::none, 1.0, work);
  trmm_upper(Side::right, 1.0, t, Op::none, work);
  for (index_t j = 0; j < n; ++j)
    for (index_t i = 0; i < k; ++i) a(i, j) -= work(j, i);
  gemm(-1.0, w, Op::none, work, Op::transpose, 1.0, b);
}

}  // namespace

Matrix tpqrt_recursive(MatrixView a, MatrixView b, index_t block_size) {
  const index_t n = a.cols();
  const index_t m = b.rows();
  require(a.rows() == n && b.cols() == n, "tpqrt_recursive: A must be n x n and B m x n, got A ", a.rows(), " x ",
          a.cols(), ", B ", b.rows(), " x ", b.cols());
  require(block_size >= 1, "tpqrt_recursive: block_size=", block_size, " < 1");
  const index_t nb = std::min(block_size, std::max<index_t>(n, 1));
  Matrix t(nb, n);
  if (n == 0 || m == 0) return t;  // no rows below A: Q = I, T = 0 (as dtpqrt)
  Matrix work(n, nb);
  for (index_t j = 0; j < n; j += nb) {
    const index_t jb = std::min(nb, n - j);
    // dtpqrt's layout: the panel's T in rows 0..jb of columns j..j+jb. The panel writes only its
    // upper triangle, so the part below stays zero.
    const MatrixView tj = t.block(0, j, jb, jb);
    tpqrt_panel(a.block(j, j, jb, jb), b.cols_range(j, jb), tj);
    const index_t rest = n - j - jb;
    if (rest > 0)
      apply_stacked_reflector(b.cols_range(j, jb), tj, a.block(j, j + jb, jb, rest), b.cols_range(j + jb, rest),
                              work.block(0, 0, rest, jb));
  }
  return t;
}

Matrix tpqrt_triangles(MatrixView r1, MatrixView r2, index_t block_size) {
  require(r1.rows() == r1.cols() && r2.rows() == r2.cols() && r1.rows() == r2.rows(),
          "tpqrt_triangles: R1 and R2 must both be n x n, got R1 ", r1.rows(), " x ", r1.cols(), ", R2 ", r2.rows(),
          " x ", r2.cols());
  return tpqrt(r1, r2, r2.rows(), block_size);
}

void potrf_upper(MatrixView a) {
  require(a.rows() == a.cols(), "dpotrf: matrix must be square, got ", a.rows(), " x ", a.cols());
  if (a.rows() == 0) return;
  const lapack_int info =
      LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', to_int(a.rows(), "dpotrf"), a.data(), to_int(a.ld(), "dpotrf"));
  if (info > 0) throw Error(detail::concat("dpotrf: the leading minor of order ", info, " is not positive definite"));
  check_lapack(info, "dpotrf");
}

PivotedCholeskyResult pstrf_upper(MatrixView a, double tol) {
  require(a.rows() == a.cols(), "dpstrf: matrix must be square, got ", a.rows(), " x ", a.cols());
  require(!std::isnan(tol), "dpstrf: tol is NaN");
  const index_t n = a.rows();
  PivotedCholeskyResult out;
  out.pivots.resize(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j) out.pivots[static_cast<std::size_t>(j)] = j;
  if (n == 0) return out;
  std::vector<lapack_int> piv(static_cast<std::size_t>(n), 0);
  std::vector<double> work(static_cast<std::size_t>(2 * n));
  lapack_int rank = 0;
  const lapack_int info = LAPACKE_dpstrf_work(LAPACK_COL_MAJOR, 'U', to_int(n, "dpstrf"), a.data(),
                                              to_int(a.ld(), "dpstrf"), piv.data(), &rank, tol, work.data());
  // info = 1 only reports that the stopping test fired before step n (rank < n): a result, not a failure.
  if (info != 1) check_lapack(info, "dpstrf");
  out.rank = rank;
  for (index_t j = 0; j < n; ++j) out.pivots[static_cast<std::size_t>(j)] = piv[static_cast<std::size_t>(j)] - 1;
  return out;
}

}  // namespace idprune::la
