#pragma once
// Thin typed wrappers over CBLAS (OpenBLAS) for the level-2/3 operations idprune uses, and
// control of OpenBLAS's own thread pool. No hand-written kernels: every product goes to BLAS.
#include <string>

#include "idprune/la/matrix.hpp"

namespace idprune::la {

enum class Op { none, transpose };
/// Which side of B a triangular or orthogonal factor multiplies (trmm_upper, ormqr).
enum class Side { left, right };

/// C <- alpha op(A) op(B) + beta C  (dgemm). Shapes are checked.
void gemm(double alpha, ConstMatrixView a, Op op_a, ConstMatrixView b, Op op_b, double beta, MatrixView c);
/// C <- alpha op(A) op(B) + beta C in single precision (sgemm), for float32 inference (idprune's
/// numerics are double: la::Matrix). Column-major raw arrays: op(A) is m x k, op(B) k x n, C m x n,
/// each stored with its leading dimension (>= max(1, rows of the stored array)), checked.
void sgemm(index_t m, index_t n, index_t k, float alpha, const float* a, index_t lda, Op op_a, const float* b,
           index_t ldb, Op op_b, float beta, float* c, index_t ldc);
/// Returns op(A) op(B) as a new matrix.
[[nodiscard]] Matrix matmul(ConstMatrixView a, ConstMatrixView b, Op op_a = Op::none, Op op_b = Op::none);
/// y <- alpha op(A) x + beta y  (dgemv).
void gemv(double alpha, ConstMatrixView a, Op op_a, std::span<const double> x, double beta, std::span<double> y);
/// C <- alpha A^T A + beta C, upper triangle only (dsyrk). C is n x n for A m x n.
void syrk_upper(double alpha, ConstMatrixView a, double beta, MatrixView c);
/// Solves op(R) X = B in place for upper-triangular R (dtrsm, left side, non-unit diagonal).
void trsm_upper_left(ConstMatrixView r, Op op_r, MatrixView b);
/// B <- alpha op(T) B (side left) or B <- alpha B op(T) (side right) for upper-triangular T
/// (dtrmm, non-unit diagonal; only T's upper triangle is read).
void trmm_upper(Side side, double alpha, ConstMatrixView t, Op op_t, MatrixView b);
/// Euclidean norm of a vector (dnrm2: scaled, so no overflow).
[[nodiscard]] double nrm2(std::span<const double> x);

/// OpenBLAS's current thread count.
[[nodiscard]] int blas_threads();
/// Sets OpenBLAS's thread count for subsequent calls (process-wide).
void set_blas_threads(int threads);
/// Name of the OpenBLAS kernel set in use (e.g. "Haswell", "SkylakeX"), for benchmark records.
[[nodiscard]] std::string blas_core_name();

/// Sets OpenBLAS to `threads` for its lifetime and restores the previous count afterwards.
/// Use ScopedBlasThreads(1) around TBB regions so BLAS never oversubscribes the cores.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int threads) : previous_(blas_threads()) { set_blas_threads(threads); }
  ~ScopedBlasThreads() { set_blas_threads(previous_); }
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int previous_;
};

}  // namespace idprune::la
