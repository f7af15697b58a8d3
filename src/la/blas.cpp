#include "idprune/la/blas.hpp"

#include <cblas.h>

#include <algorithm>
#include <limits>

namespace idprune::la {
namespace {
CBLAS_TRANSPOSE cblas_op(Op op) { return op == Op::none ? CblasNoTrans : CblasTrans; }
index_t op_rows(ConstMatrixView a, Op op) { return op == Op::none ? a.rows() : a.cols(); }
index_t op_cols(ConstMatrixView a, Op op) { return op == Op::none ? a.cols() : a.rows(); }
}  // namespace

void gemm(double alpha, ConstMatrixView a, Op op_a, ConstMatrixView b, Op op_b, double beta, MatrixView c) {
  const index_t m = op_rows(a, op_a);
  const index_t k = op_cols(a, op_a);
  const index_t n = op_cols(b, op_b);
  require(op_rows(b, op_b) == k && c.rows() == m && c.cols() == n, "gemm: shapes op(A) ", m, " x ", k, ", op(B) ",
          op_rows(b, op_b), " x ", n, ", C ", c.rows(), " x ", c.cols());
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // dgemm with k = 0 still scales C; do it explicitly so beta = 0 clears NaNs as BLAS specifies.
    for (index_t j = 0; j < n; ++j)
      for (double& v : c.col(j)) v = beta == 0.0 ? 0.0 : beta * v;
    return;
  }
  cblas_dgemm(CblasColMajor, cblas_op(op_a), cblas_op(op_b), static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a.data(), static_cast<int>(a.ld()), b.data(), static_cast<int>(b.ld()), beta,
              c.data(), static_cast<int>(c.ld()));
}

void sgemm(index_t m, index_t n, index_t k, float alpha, const float* a, index_t lda, Op op_a, const float* b,
           index_t ldb, Op op_b, float beta, float* c, index_t ldc) {
  const index_t a_rows = op_a == Op::none ? m : k;
  const index_t b_rows = op_b == Op::none ? k : n;
  constexpr index_t int_max = std::numeric_limits<int>::max();
  require(m >= 0 && n >= 0 && k >= 0 && m <= int_max && n <= int_max && k <= int_max, "sgemm: m=", m, ", n=", n,
          ", k=", k, " must be in [0, ", int_max, "]");
  require(lda >= std::max<index_t>(1, a_rows) && ldb >= std::max<index_t>(1, b_rows) &&
              ldc >= std::max<index_t>(1, m) && lda <= int_max && ldb <= int_max && ldc <= int_max,
          "sgemm: leading dimensions lda=", lda, ", ldb=", ldb, ", ldc=", ldc, " for op(A) ", m, " x ", k, ", op(B) ",
          k, " x ", n, ", C ", m, " x ", n);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (index_t j = 0; j < n; ++j)
      for (index_t i = 0; i < m; ++i) c[i + j * ldc] = beta == 0.0f ? 0.0f : beta * c[i + j * ldc];
    return;
  }
  cblas_sgemm(CblasColMajor, cblas_op(op_a), cblas_op(op_b), static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}

Matrix matmul(ConstMatrixView a, ConstMatrixView b, Op op_a, Op op_b) {
  Matrix c = Matrix::uninitialized(op_rows(a, op_a), op_cols(b, op_b));
  gemm(1.0, a, op_a, b, op_b, 0.0, c.view());
  return c;
}

void gemv(double alpha, ConstMatrixView a, Op op_a, std::span<const double> x, double beta, std::span<double> y) {
  require(static_cast<index_t>(x.size()) == op_cols(a, op_a) && static_cast<index_t>(y.size()) == op_rows(a, op_a),
          "gemv: op(A) ", op_rows(a, op_a), " x ", op_cols(a, op_a), ", x ", x.size(), ", y ", y.size());
  if (y.empty()) return;
  if (x.empty()) {
    for (double& v : y) v = beta == 0.0 ? 0.0 : beta * v;
    return;
  }
  cblas_dgemv(CblasColMajor, cblas_op(op_a), static_cast<int>(a.rows()), static_cast<int>(a.cols()), alpha, a.data(),
              static_cast<int>(a.ld()), x.data(), 1, beta, y.data(), 1);
}

void syrk_upper(double alpha, ConstMatrixView a, double beta, MatrixView c) {
  require(c.rows() == a.cols() && c.cols() == a.cols(), "syrk_upper: A ", a.rows(), " x ", a.cols(), ", C ", c.rows(),
          " x ", c.cols());
  if (a.cols() == 0) return;
  if (a.rows() == 0) {
    for (index_t j = 0; j < c.cols(); ++j)
      for (index_t i = 0; i <= j; ++i) c(i, j) = beta == 0.0 ? 0.0 : beta * c(i, j);
    return;
  }
  cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, static_cast<int>(a.cols()), static_cast<int>(a.rows()), alpha,
              a.data(), static_cast<int>(a.ld()), beta, c.data(), static_cast<int>(c.ld()));
}

void trsm_upper_left(ConstMatrixView r, Op op_r, MatrixView b) {
  require(r.rows() == r.cols() && r.rows() == b.rows(), "trsm_upper_left: R ", r.rows(), " x ", r.cols(), ", B ",
          b.rows(), " x ", b.cols());
  if (b.empty()) return;
  cblas_dtrsm(CblasColMajor, CblasLeft, CblasUpper, cblas_op(op_r), CblasNonUnit, static_cast<int>(b.rows()),
              static_cast<int>(b.cols()), 1.0, r.data(), static_cast<int>(r.ld()), b.data(), static_cast<int>(b.ld()));
}

void trmm_upper(Side side, double alpha, ConstMatrixView t, Op op_t, MatrixView b) {
  const index_t order = side == Side::left ? b.rows() : b.cols();
  require(t.rows() == t.cols() && t.rows() == order, "trmm_upper: T ", t.rows(), " x ", t.cols(), ", B ", b.rows(),
          " x ", b.cols(), side == Side::left ? " (T on the left)" : " (T on the right)");
  if (b.empty()) return;
  cblas_dtrmm(CblasColMajor, side == Side::left ? CblasLeft : CblasRight, CblasUpper, cblas_op(op_t), CblasNonUnit,
              static_cast<int>(b.rows()), static_cast<int>(b.cols()), alpha, t.data(), static_cast<int>(t.ld()),
              b.data(), static_cast<int>(b.ld()));
}

double nrm2(std::span<const double> x) {
  if (x.empty()) return 0.0;
  return cblas_dnrm2(static_cast<int>(x.size()), x.data(), 1);
}

int blas_threads() { return openblas_get_num_threads(); }
void set_blas_threads(int threads) { openblas_set_num_threads(threads < 1 ? 1 : threads); }
std::string blas_core_name() { return openblas_get_corename(); }

}  // namespace idprune::la
