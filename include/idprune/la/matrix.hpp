#pragma once
// Dense column-major matrices of doubles and non-owning views, following LAPACK conventions:
// element (i, j) lives at data[i + j * ld] with ld >= max(1, rows).
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "idprune/la/error.hpp"

namespace idprune::la {

using index_t = std::int64_t;

/// An index or size (index_t: signed, as in LAPACK) as a std::size_t, for std::vector subscripts
/// and sizes. `i` >= 0 (asserted in debug builds).
[[nodiscard]] constexpr std::size_t uz(index_t i) {
  assert(i >= 0);
  return static_cast<std::size_t>(i);
}

class ConstMatrixView {
 public:
  ConstMatrixView() = default;
  ConstMatrixView(const double* data, index_t rows, index_t cols, index_t ld)
      : data_(data), rows_(rows), cols_(cols), ld_(ld) {
    assert(rows >= 0 && cols >= 0 && ld >= (rows > 1 ? rows : 1));
  }
  ConstMatrixView(const double* data, index_t rows, index_t cols)
      : ConstMatrixView(data, rows, cols, rows > 1 ? rows : 1) {}

  [[nodiscard]] index_t rows() const { return rows_; }
  [[nodiscard]] index_t cols() const { return cols_; }
  [[nodiscard]] index_t ld() const { return ld_; }
  [[nodiscard]] const double* data() const { return data_; }
  [[nodiscard]] bool empty() const { return rows_ == 0 || cols_ == 0; }

  const double& operator()(index_t i, index_t j) const {
    assert(i >= 0 && i < rows_ && j >= 0 && j < cols_);
    return data_[i + j * ld_];
  }
  /// Column j as a contiguous span.
  [[nodiscard]] std::span<const double> col(index_t j) const {
    assert(j >= 0 && j < cols_);
    return {data_ + j * ld_, static_cast<std::size_t>(rows_)};
  }
  /// The m x n block starting at (i, j).
  [[nodiscard]] ConstMatrixView block(index_t i, index_t j, index_t m, index_t n) const {
    assert(i >= 0 && j >= 0 && m >= 0 && n >= 0 && i + m <= rows_ && j + n <= cols_);
    return {data_ + i + j * ld_, m, n, ld_};
  }
  [[nodiscard]] ConstMatrixView cols_range(index_t j, index_t n) const { return block(0, j, rows_, n); }
  [[nodiscard]] ConstMatrixView rows_range(index_t i, index_t m) const { return block(i, 0, m, cols_); }

 private:
  const double* data_ = nullptr;
  index_t rows_ = 0;
  index_t cols_ = 0;
  index_t ld_ = 1;
};

class MatrixView {
 public:
  MatrixView() = default;
  MatrixView(double* data, index_t rows, index_t cols, index_t ld) : data_(data), rows_(rows), cols_(cols), ld_(ld) {
    assert(rows >= 0 && cols >= 0 && ld >= (rows > 1 ? rows : 1));
  }
  MatrixView(double* data, index_t rows, index_t cols) : MatrixView(data, rows, cols, rows > 1 ? rows : 1) {}

  operator ConstMatrixView() const { return {data_, rows_, cols_, ld_}; }  // NOLINT(implicit)

  [[nodiscard]] index_t rows() const { return rows_; }
  [[nodiscard]] index_t cols() const { return cols_; }
  [[nodiscard]] index_t ld() const { return ld_; }
  [[nodiscard]] double* data() const { return data_; }
  [[nodiscard]] bool empty() const { return rows_ == 0 || cols_ == 0; }

  double& operator()(index_t i, index_t j) const {
    assert(i >= 0 && i < rows_ && j >= 0 && j < cols_);
    return data_[i + j * ld_];
  }
  [[nodiscard]] std::span<double> col(index_t j) const {
    assert(j >= 0 && j < cols_);
    return {data_ + j * ld_, static_cast<std::size_t>(rows_)};
  }
  [[nodiscard]] MatrixView block(index_t i, index_t j, index_t m, index_t n) const {
    assert(i >= 0 && j >= 0 && m >= 0 && n >= 0 && i + m <= rows_ && j + n <= cols_);
    return {data_ + i + j * ld_, m, n, ld_};
  }
  [[nodiscard]] MatrixView cols_range(index_t j, index_t n) const { return block(0, j, rows_, n); }
  [[nodiscard]] MatrixView rows_range(index_t i, index_t m) const { return block(i, 0, m, cols_); }

  /// Sets every entry to `value`.
  void fill(double value) const {
    for (index_t j = 0; j < cols_; ++j)
      for (index_t i = 0; i < rows_; ++i) data_[i + j * ld_] = value;
  }
  /// Copies `src` (same shape) into this view.
  void assign(ConstMatrixView src) const;

 private:
  double* data_ = nullptr;
  index_t rows_ = 0;
  index_t cols_ = 0;
  index_t ld_ = 1;
};

/// Storage for large arrays (see LargeArrayAllocator): blocks of kLargeArrayBytes or more are
/// aligned to 2 MiB, so that where the system backs anonymous memory with transparent huge pages
/// (THP "always") the kernel can, but idprune does not ask for them (no madvise(MADV_HUGEPAGE)):
/// in virtual machines that hand freed memory back to the host (virtio-balloon free page
/// reporting, which reports free 2 MiB blocks), a fresh huge page can cost a host fault of
/// milliseconds, and a test program touching 1 GiB took 6-11 s with the advice against 0.35 s
/// without. 32 MiB is glibc's largest default mmap threshold: smaller blocks are reused from the
/// heap without new page faults, larger ones are fresh mappings unless retain_freed_memory().
inline constexpr std::size_t kLargeArrayBytes = std::size_t{32} << 20;
[[nodiscard]] void* allocate_large_array(std::size_t bytes);
void free_large_array(void* p, std::size_t bytes) noexcept;
/// Makes glibc serve blocks below 256 MiB from the heap and keep freed memory there
/// (M_MMAP_THRESHOLD = 256 MiB, M_TRIM_THRESHOLD = 1 GiB), for processes that allocate and free
/// arrays of megabytes over and over (sweeps, searches): a block that is a fresh mapping every time
/// costs a page fault and a kernel zero fill per 4 KiB on every reuse. Returns false where the C
/// library refuses.
bool retain_freed_memory() noexcept;

/// The allocator of Matrix: arrays of kLargeArrayBytes or more from allocate_large_array, small
/// ones from operator new as usual.
template <class T>
struct LargeArrayAllocator {
  using value_type = T;
  LargeArrayAllocator() = default;
  template <class U>
  LargeArrayAllocator(const LargeArrayAllocator<U>& /*other*/) noexcept {}  // NOLINT(implicit)
  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kLargeArrayBytes) return static_cast<T*>(allocate_large_array(bytes));
    return static_cast<T*>(::operator new(bytes));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kLargeArrayBytes)
      free_large_array(p, bytes);
    else
      ::operator delete(p);
  }
  friend bool operator==(const LargeArrayAllocator& /*a*/, const LargeArrayAllocator& /*b*/) { return true; }
};

/// An allocator whose value-less construct() default-initialises: vector<double>::resize(n) then
/// leaves the new entries unset. Matrix uses it so that buffers a product or a copy overwrites
/// completely are not zeroed first (a wasted pass over memory, plus page faults, in the sweeps).
template <class T, class A = std::allocator<T>>
class DefaultInitAllocator : public A {
  using traits = std::allocator_traits<A>;

 public:
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U, typename traits::template rebind_alloc<U>>;
  };
  using A::A;
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    traits::construct(static_cast<A&>(*this), p, std::forward<Args>(args)...);
  }
};

/// Owning dense column-major matrix (ld == max(1, rows)).
class Matrix {
 public:
  Matrix() = default;
  Matrix(index_t rows, index_t cols, double value = 0.0)
      : data_(checked_size(rows, cols), value), rows_(rows), cols_(cols) {}
  explicit Matrix(ConstMatrixView src) : Matrix(uninitialized(src.rows(), src.cols())) { view().assign(src); }
  /// A rows x cols matrix whose entries are NOT set: only for outputs written completely before
  /// they are read (a product with beta = 0, a copy).
  [[nodiscard]] static Matrix uninitialized(index_t rows, index_t cols) {
    Matrix m;
    m.reset_uninitialized(rows, cols);
    return m;
  }

  [[nodiscard]] static Matrix identity(index_t n);

  [[nodiscard]] index_t rows() const { return rows_; }
  [[nodiscard]] index_t cols() const { return cols_; }
  [[nodiscard]] index_t ld() const { return rows_ > 1 ? rows_ : 1; }
  [[nodiscard]] index_t size() const { return rows_ * cols_; }
  [[nodiscard]] bool empty() const { return rows_ == 0 || cols_ == 0; }
  [[nodiscard]] double* data() { return data_.data(); }
  [[nodiscard]] const double* data() const { return data_.data(); }
  [[nodiscard]] std::span<double> values() { return data_; }
  [[nodiscard]] std::span<const double> values() const { return data_; }

  double& operator()(index_t i, index_t j) {
    assert(i >= 0 && i < rows_ && j >= 0 && j < cols_);
    return data_[static_cast<std::size_t>(i + j * ld())];
  }
  const double& operator()(index_t i, index_t j) const {
    assert(i >= 0 && i < rows_ && j >= 0 && j < cols_);
    return data_[static_cast<std::size_t>(i + j * ld())];
  }

  [[nodiscard]] MatrixView view() { return {data_.data(), rows_, cols_, ld()}; }
  [[nodiscard]] ConstMatrixView view() const { return {data_.data(), rows_, cols_, ld()}; }
  [[nodiscard]] ConstMatrixView cview() const { return view(); }
  operator ConstMatrixView() const { return view(); }  // NOLINT(implicit)
  operator MatrixView() { return view(); }             // NOLINT(implicit)

  [[nodiscard]] std::span<double> col(index_t j) { return view().col(j); }
  [[nodiscard]] std::span<const double> col(index_t j) const { return view().col(j); }
  [[nodiscard]] MatrixView block(index_t i, index_t j, index_t m, index_t n) { return view().block(i, j, m, n); }
  [[nodiscard]] ConstMatrixView block(index_t i, index_t j, index_t m, index_t n) const {
    return view().block(i, j, m, n);
  }

  /// Reshapes to rows x cols, discarding the contents (all entries become `value`).
  void reset(index_t rows, index_t cols, double value = 0.0) {
    data_.assign(checked_size(rows, cols), value);
    rows_ = rows;
    cols_ = cols;
  }
  /// Reshapes to rows x cols, leaving the entries unset (see uninitialized()).
  void reset_uninitialized(index_t rows, index_t cols) {
    const std::size_t n = checked_size(rows, cols);
    if (n != data_.size()) {
      data_.clear();  // nothing to keep: resize() then neither copies nor sets the new entries
      data_.resize(n);
    }
    rows_ = rows;
    cols_ = cols;
  }

 private:
  static std::size_t checked_size(index_t rows, index_t cols) {
    require(rows >= 0 && cols >= 0, "Matrix: negative shape ", rows, " x ", cols);
    return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  }

  std::vector<double, DefaultInitAllocator<double, LargeArrayAllocator<double>>> data_;
  index_t rows_ = 0;
  index_t cols_ = 0;
};

/// A^T as a new matrix.
[[nodiscard]] Matrix transpose(ConstMatrixView a);
/// The columns `cols` of `a`, in that order.
[[nodiscard]] Matrix select_columns(ConstMatrixView a, std::span<const index_t> cols);
/// The rows `rows` of `a`, in that order.
[[nodiscard]] Matrix select_rows(ConstMatrixView a, std::span<const index_t> rows);
/// True when every entry is finite (no NaN or Inf).
[[nodiscard]] bool all_finite(ConstMatrixView a);
/// Frobenius norm, computed with scaling so that it neither overflows nor underflows.
[[nodiscard]] double norm_fro(ConstMatrixView a);
/// Largest absolute entry.
[[nodiscard]] double norm_max(ConstMatrixView a);

}  // namespace idprune::la
