#include "idprune/la/matrix.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace idprune::la {

namespace {
constexpr std::size_t kTwoMiB = std::size_t{2} << 20;
}  // namespace

void* allocate_large_array(std::size_t bytes) {
  if (bytes > SIZE_MAX - kTwoMiB) throw std::bad_alloc();
  const std::size_t rounded = (bytes + kTwoMiB - 1) / kTwoMiB * kTwoMiB;
  void* p = std::aligned_alloc(kTwoMiB, rounded);  // NOLINT(cppcoreguidelines-no-malloc)
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

bool retain_freed_memory() noexcept {
#if defined(__GLIBC__)
  // Fixing either value also ends glibc's dynamic threshold (which would otherwise move with the
  // sizes freed).
  const bool threshold = mallopt(M_MMAP_THRESHOLD, 256 << 20) == 1;
  const bool trim = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return threshold && trim;
#else
  return false;
#endif
}

void free_large_array(void* p, std::size_t /*bytes*/) noexcept {
  std::free(p);  // NOLINT(cppcoreguidelines-no-malloc)
}

void MatrixView::assign(ConstMatrixView src) const {
  require(src.rows() == rows_ && src.cols() == cols_, "MatrixView::assign: shape ", src.rows(), " x ", src.cols(),
          " into ", rows_, " x ", cols_);
  for (index_t j = 0; j < cols_; ++j) {
    if (rows_ > 0) std::memmove(data_ + j * ld_, src.data() + j * src.ld(), sizeof(double) * rows_);
  }
}

Matrix Matrix::identity(index_t n) {
  Matrix m(n, n);
  for (index_t i = 0; i < n; ++i) m(i, i) = 1.0;
  return m;
}

Matrix transpose(ConstMatrixView a) {
  Matrix t = Matrix::uninitialized(a.cols(), a.rows());
  for (index_t j = 0; j < a.cols(); ++j)
    for (index_t i = 0; i < a.rows(); ++i) t(j, i) = a(i, j);
  return t;
}

Matrix select_columns(ConstMatrixView a, std::span<const index_t> cols) {
  Matrix out = Matrix::uninitialized(a.rows(), static_cast<index_t>(cols.size()));
  for (std::size_t c = 0; c < cols.size(); ++c) {
    require(cols[c] >= 0 && cols[c] < a.cols(), "select_columns: column ", cols[c], " out of range [0, ", a.cols(),
            ")");
    out.view().cols_range(static_cast<index_t>(c), 1).assign(a.cols_range(cols[c], 1));
  }
  return out;
}

Matrix select_rows(ConstMatrixView a, std::span<const index_t> rows) {
  Matrix out = Matrix::uninitialized(static_cast<index_t>(rows.size()), a.cols());
  for (const index_t r : rows)
    require(r >= 0 && r < a.rows(), "select_rows: row ", r, " out of range [0, ", a.rows(), ")");
  if (rows.empty()) return out;
  for (index_t j = 0; j < a.cols(); ++j) {  // column by column: contiguous writes and reads
    const double* src = a.col(j).data();
    double* dst = out.col(j).data();
    for (std::size_t r = 0; r < rows.size(); ++r) dst[r] = src[rows[r]];
  }
  return out;
}

bool all_finite(ConstMatrixView a) {
  for (index_t j = 0; j < a.cols(); ++j)
    for (double v : a.col(j))
      if (!std::isfinite(v)) return false;
  return true;
}

double norm_fro(ConstMatrixView a) {
  // LAPACK dlassq-style scaled sum of squares.
  double scale = 0.0;
  double ssq = 1.0;
  for (index_t j = 0; j < a.cols(); ++j) {
    for (double v : a.col(j)) {
      if (v == 0.0) continue;
      const double av = std::abs(v);
      if (scale < av) {
        ssq = 1.0 + ssq * (scale / av) * (scale / av);
        scale = av;
      } else {
        ssq += (av / scale) * (av / scale);
      }
    }
  }
  return scale * std::sqrt(ssq);
}

double norm_max(ConstMatrixView a) {
  double m = 0.0;
  for (index_t j = 0; j < a.cols(); ++j)
    for (double v : a.col(j)) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace idprune::la
