#include "idprune/data/row_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>

#include "data/byte_source.hpp"
#include "data/npy_layout.hpp"
#include "idprune/data/idx.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/error.hpp"

namespace idprune::data {

namespace detail {

/// One kind of source: a fixed number of rows and thread-safe row-range reads.
class RowSourceImpl {
 public:
  RowSourceImpl() = default;
  RowSourceImpl(const RowSourceImpl&) = delete;
  RowSourceImpl& operator=(const RowSourceImpl&) = delete;
  virtual ~RowSourceImpl() = default;
  [[nodiscard]] virtual index_t rows() const = 0;
  [[nodiscard]] virtual index_t cols() const = 0;
  /// Rows [begin, begin + out.rows()) into `out`; the caller has checked the range and the width.
  virtual void read(index_t begin, la::MatrixView out) const = 0;
  /// Rows [begin, begin + count) of `self` (== this) as a source. The default shares `self`; a
  /// source that loads data overrides it to load only those rows.
  [[nodiscard]] virtual std::shared_ptr<const RowSourceImpl> slice(const std::shared_ptr<const RowSourceImpl>& self,
                                                                   index_t begin, index_t count) const;
};

}  // namespace detail

namespace {

using Impl = detail::RowSourceImpl;
using ImplPtr = std::shared_ptr<const Impl>;

/// Rows [begin, begin + count) of a parent source.
class RangeImpl final : public Impl {
 public:
  RangeImpl(ImplPtr parent, index_t begin, index_t count) : parent_(std::move(parent)), begin_(begin), count_(count) {}
  index_t rows() const override { return count_; }
  index_t cols() const override { return parent_->cols(); }
  void read(index_t begin, la::MatrixView out) const override { parent_->read(begin_ + begin, out); }
  ImplPtr slice(const ImplPtr&, index_t begin, index_t count) const override {
    return parent_->slice(parent_, begin_ + begin, count);
  }

 private:
  ImplPtr parent_;
  index_t begin_;
  index_t count_;
};

class MatrixImpl final : public Impl {
 public:
  explicit MatrixImpl(la::ConstMatrixView x) : x_(x) {}
  index_t rows() const override { return x_.rows(); }
  index_t cols() const override { return x_.cols(); }
  void read(index_t begin, la::MatrixView out) const override { out.assign(x_.block(begin, 0, out.rows(), x_.cols())); }

 private:
  la::ConstMatrixView x_;
};

/// Bytes (one per feature, row-major) to doubles byte / 255 in the column-major `out`.
void scale_bytes(const std::uint8_t* bytes, index_t features, la::MatrixView out) {
  for (index_t j = 0; j < out.cols(); ++j) {
    double* col = out.col(j).data();
    for (index_t i = 0; i < out.rows(); ++i) col[i] = static_cast<double>(bytes[i * features + j]) / 255.0;
  }
}

/// Rows of a data-set split: all of them (a range) or a list. The bytes of exactly these rows are
/// loaded on the first read, so a rank's share loads only the rank's rows.
class DatasetImpl final : public Impl {
 public:
  DatasetImpl(std::string dir, Split split, index_t features, index_t begin, index_t count,
              std::optional<std::vector<std::int64_t>> list)
      : dir_(std::move(dir)),
        split_(split),
        features_(features),
        begin_(begin),
        count_(count),
        list_(std::move(list)) {}
  index_t rows() const override { return list_ ? static_cast<index_t>(list_->size()) : count_; }
  index_t cols() const override { return features_; }
  void read(index_t begin, la::MatrixView out) const override {
    std::call_once(loaded_, [&] {
      raw_ = list_ ? load_raw_rows(dir_, split_, *list_) : load_raw(dir_, split_, begin_, count_);
      require(raw_.x.features == features_ && raw_.x.count == rows(), dir_, ": the ", to_string(split_),
              " split changed while being read (", raw_.x.count, " x ", raw_.x.features, " instead of ", rows(), " x ",
              features_, ")");
    });
    scale_bytes(raw_.x.values.data() + begin * features_, features_, out);
  }
  ImplPtr slice(const ImplPtr&, index_t begin, index_t count) const override {
    if (list_) {
      std::vector<std::int64_t> part(list_->begin() + begin, list_->begin() + begin + count);
      return std::make_shared<DatasetImpl>(dir_, split_, features_, 0, 0, std::move(part));
    }
    return std::make_shared<DatasetImpl>(dir_, split_, features_, begin_ + begin, count, std::nullopt);
  }

 private:
  std::string dir_;
  Split split_;
  index_t features_;
  index_t begin_;
  index_t count_;
  std::optional<std::vector<std::int64_t>> list_;
  mutable std::once_flag loaded_;
  mutable RawDataset raw_;
};

/// A read-only file descriptor for positioned reads (pread: no shared file offset, so threads may
/// read at once).
class PositionedFile {
 public:
  explicit PositionedFile(std::string path) : path_(std::move(path)), fd_(::open(path_.c_str(), O_RDONLY | O_CLOEXEC)) {
    require(fd_ >= 0, path_, ": cannot open: ", std::strerror(errno));
  }
  ~PositionedFile() { ::close(fd_); }
  PositionedFile(const PositionedFile&) = delete;
  PositionedFile& operator=(const PositionedFile&) = delete;

  /// Exactly n bytes at `offset` or throws naming the file and offset.
  void read(std::int64_t offset, std::uint8_t* out, std::int64_t n, const char* what) const {
    while (n > 0) {
      const ssize_t got = ::pread(fd_, out, static_cast<std::size_t>(n), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      require(got > 0, path_, ": cannot read ", n, " bytes of ", what, " at byte offset ", offset, ": ",
              got < 0 ? std::strerror(errno) : "the file ended (was it truncated while being read?)");
      out += got;
      offset += got;
      n -= got;
    }
  }

 private:
  std::string path_;
  int fd_;
};

/// A .npy array read by positioned reads of the rows asked for.
class NpyImpl final : public Impl {
 public:
  NpyImpl(std::string path, NpyLayout layout) : path_(path), layout_(std::move(layout)), file_(std::move(path)) {}
  index_t rows() const override { return layout_.rows; }
  index_t cols() const override { return layout_.cols; }
  void read(index_t begin, la::MatrixView out) const override {
    const index_t m = out.rows(), n = layout_.cols, b = layout_.item_bytes;
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(m * n * b));
    if (layout_.fortran_order) {  // column j holds rows contiguously
      for (index_t j = 0; j < n; ++j)
        file_.read(layout_.data_offset + (j * layout_.rows + begin) * b, bytes.data() + j * m * b, m * b,
                   "the .npy data");
    } else {
      file_.read(layout_.data_offset + begin * n * b, bytes.data(), m * n * b, "the .npy data");
    }
    for (index_t j = 0; j < n; ++j) {
      for (index_t i = 0; i < m; ++i) {
        const index_t k = layout_.fortran_order ? i + j * m : i * n + j;
        const double v = layout_.value(bytes.data() + k * b);
        if (!std::isfinite(v))
          throw Error(idprune::detail::concat(path_, ": non-finite value ", v, " at index (", begin + i, ", ", j,
                                              ") of the ", layout_.shape, " array"));
        out(i, j) = v;
      }
    }
  }

 private:
  std::string path_;
  NpyLayout layout_;
  PositionedFile file_;
};

constexpr std::int64_t idx3_header_bytes = 16;  // magic + 3 dimensions, 4 bytes each

/// An IDX3 ubyte image file: positioned reads for a plain file; for gzip one sequential
/// decompressing reader, reopened when a read goes backwards (streaming reads never do).
class IdxImpl final : public Impl {
 public:
  IdxImpl(std::string path, const IdxInfo& info)
      : path_(std::move(path)), images_(info.dims[0]), features_(io::checked_mul(info.dims[1], info.dims[2], path_)) {
    if (!info.gzip) file_.emplace(path_);
  }
  index_t rows() const override { return images_; }
  index_t cols() const override { return features_; }
  void read(index_t begin, la::MatrixView out) const override {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(out.rows() * features_));
    if (file_) {
      file_->read(idx3_header_bytes + begin * features_, bytes.data(), static_cast<std::int64_t>(bytes.size()),
                  "the image data");
    } else {
      const std::lock_guard lock(mutex_);
      if (!stream_ || begin < next_row_) {
        stream_ = std::make_unique<io::ByteSource>(path_);
        stream_->skip(idx3_header_bytes, "the IDX header");
        next_row_ = 0;
      }
      stream_->skip((begin - next_row_) * features_, "the image data");
      stream_->read(bytes, "the image data");
      next_row_ = begin + out.rows();
      // The gzip trailer (CRC and length) is checked whenever a read reaches the last image.
      if (next_row_ == images_) stream_->expect_end("the image data");
    }
    scale_bytes(bytes.data(), features_, out);
  }

 private:
  std::string path_;
  index_t images_;
  index_t features_;
  std::optional<PositionedFile> file_;
  mutable std::mutex mutex_;
  mutable std::unique_ptr<io::ByteSource> stream_;
  mutable index_t next_row_ = 0;
};

/// Augmented rows [first, first + count) of `base`: augmented row a is variant a % V of base row a / V.
class ShiftImpl final : public Impl {
 public:
  ShiftImpl(RowSource base, int radius, index_t side, index_t first, index_t count)
      : base_(std::move(base)), radius_(radius), side_(side), first_(first), count_(count) {
    shifts_.emplace_back(0, 0);
    for (int dy = -radius; dy <= radius; ++dy)
      for (int dx = -radius; dx <= radius; ++dx)
        if (dy != 0 || dx != 0) shifts_.emplace_back(dy, dx);
  }
  index_t rows() const override { return count_; }
  index_t cols() const override { return side_ * side_; }
  void read(index_t begin, la::MatrixView out) const override {
    const index_t m = out.rows();
    if (m == 0) return;
    const index_t v = variants();
    const index_t a0 = first_ + begin;
    const index_t image0 = a0 / v;
    const index_t images = (a0 + m - 1) / v - image0 + 1;
    la::Matrix base = la::Matrix::uninitialized(images, cols());
    base_.read_rows(image0, base.view());
    // out(r, (y, x)) = base(image of r, (y - dy, x - dx)) where inside the image, else 0.
    for (index_t y = 0; y < side_; ++y) {
      for (index_t x = 0; x < side_; ++x) {
        double* col = out.col(y * side_ + x).data();
        for (index_t r = 0; r < m; ++r) {
          const index_t a = a0 + r;
          const auto [dy, dx] = shifts_[static_cast<std::size_t>(a % v)];
          const index_t sy = y - dy, sx = x - dx;
          const bool inside = sy >= 0 && sy < side_ && sx >= 0 && sx < side_;
          col[r] = inside ? base(a / v - image0, sy * side_ + sx) : 0.0;
        }
      }
    }
  }
  ImplPtr slice(const ImplPtr&, index_t begin, index_t count) const override {
    const index_t v = variants();
    if (count == 0) return std::make_shared<ShiftImpl>(base_.row_range(0, 0), radius_, side_, 0, 0);
    const index_t a0 = first_ + begin;
    const index_t image0 = a0 / v;
    const index_t images = (a0 + count - 1) / v - image0 + 1;
    return std::make_shared<ShiftImpl>(base_.row_range(image0, images), radius_, side_, a0 - image0 * v, count);
  }

 private:
  [[nodiscard]] index_t variants() const { return static_cast<index_t>(shifts_.size()); }

  RowSource base_;
  int radius_;
  index_t side_;
  index_t first_;
  index_t count_;
  std::vector<std::pair<index_t, index_t>> shifts_;  // (dy, dx) of variant v
};

/// The sqrt of `n` when n is a perfect square, else -1.
index_t square_side(index_t n) {
  auto s = static_cast<index_t>(std::llround(std::sqrt(static_cast<double>(n))));
  while (s > 0 && s * s > n) --s;
  while ((s + 1) * (s + 1) <= n) ++s;
  return s * s == n ? s : -1;
}

}  // namespace

ImplPtr detail::RowSourceImpl::slice(const ImplPtr& self, index_t begin, index_t count) const {
  return std::make_shared<RangeImpl>(self, begin, count);
}

RowSource::RowSource(std::shared_ptr<const detail::RowSourceImpl> impl) : impl_(std::move(impl)) {}

index_t RowSource::rows() const { return impl_ ? impl_->rows() : 0; }
index_t RowSource::cols() const { return impl_ ? impl_->cols() : 0; }

void RowSource::read_rows(index_t begin, la::MatrixView out) const {
  require(begin >= 0 && out.rows() >= 0 && begin <= rows() - out.rows(), "RowSource::read_rows: rows [", begin, ", ",
          begin + out.rows(), ") outside the source's ", rows(), " rows");
  require(out.cols() == cols(), "RowSource::read_rows: the output has ", out.cols(), " columns, the source ", cols());
  if (out.rows() > 0) impl_->read(begin, out);
}

RowSource RowSource::row_range(index_t begin, index_t count) const {
  require(begin >= 0 && count >= 0 && begin <= rows() - count, "RowSource::row_range: rows [", begin, ", ",
          begin + count, ") outside the source's ", rows(), " rows");
  if (!impl_) return {};
  return RowSource(impl_->slice(impl_, begin, count));
}

void for_each_block(const RowSource& source, index_t block_rows,
                    const std::function<void(la::ConstMatrixView rows, index_t first_row)>& block) {
  require(block_rows >= 1, "for_each_block: block_rows=", block_rows, " must be at least 1");
  const index_t n = source.rows(), d = source.cols();
  if (n == 0) return;
  const index_t b = std::min(block_rows, n);
  // One buffer, each block stored contiguously (ld = its own row count).
  std::vector<double> buffer(static_cast<std::size_t>(io::checked_mul(b, std::max<index_t>(d, 1), "for_each_block")));
  for (index_t first = 0; first < n; first += b) {
    const index_t m = std::min(b, n - first);
    const la::MatrixView rows(buffer.data(), m, d);
    source.read_rows(first, rows);
    block(rows, first);
  }
}

la::Matrix read_all(const RowSource& source) {
  la::Matrix x = la::Matrix::uninitialized(source.rows(), source.cols());
  source.read_rows(0, x.view());
  return x;
}

RowSource matrix_rows(la::ConstMatrixView x) { return RowSource(std::make_shared<MatrixImpl>(x)); }

RowSource dataset_rows(const std::string& dir, Split split) {
  const DatasetInfo info = dataset_info(dir, split);
  return RowSource(std::make_shared<DatasetImpl>(dir, split, info.features, 0, info.samples, std::nullopt));
}

RowSource dataset_rows(const std::string& dir, Split split, std::vector<std::int64_t> rows) {
  const DatasetInfo info = dataset_info(dir, split);
  for (std::size_t p = 0; p < rows.size(); ++p)
    require(rows[p] >= 0 && rows[p] < info.samples, "dataset_rows: row ", rows[p], " (entry ", p, " of the list) is ",
            "outside the ", info.samples, " samples of the ", to_string(split), " split of ", dir);
  return RowSource(std::make_shared<DatasetImpl>(dir, split, info.features, 0, 0, std::move(rows)));
}

RowSource calibration_rows(const std::string& path) {
  std::array<std::uint8_t, 4> magic{};
  bool gzip = false;
  {
    io::ByteSource probe(path);
    gzip = probe.gzip();
    if (!gzip) {
      require(probe.file_size() >= 4, path, ": calibration file of ", probe.file_size(),
              " bytes is neither a .npy array nor an IDX image file");
      probe.read(magic, "the magic number");
    }
  }
  const bool npy = magic[0] == 0x93 && magic[1] == 'N' && magic[2] == 'U' && magic[3] == 'M';
  if (npy) {
    io::ByteSource src(path);
    NpyLayout layout = read_npy_layout(src);
    require(layout.ndims == 2, path, ": calibration .npy array has shape ", layout.shape,
            "; expected 2-D (samples, features)");
    return RowSource(std::make_shared<NpyImpl>(path, std::move(layout)));
  }
  const bool idx = magic[0] == 0 && magic[1] == 0 && magic[2] == 0x08;
  require(gzip || idx, path, ": calibration file is neither a .npy array (magic \\x93NUMPY) nor an IDX ubyte file ",
          "(magic 00 00 08 03, optionally gzip-compressed)");
  const IdxInfo info = read_idx_info(path);
  require(info.ndims == 3, path, ": IDX file has ", info.ndims, " dimension(s); calibration inputs must be an IDX3 ",
          "image file (count, rows, cols)");
  return RowSource(std::make_shared<IdxImpl>(path, info));
}

RowSource shift_augmented(const RowSource& source, int radius) {
  require(radius >= 0, "shift_augmented: radius=", radius, " must be non-negative");
  if (radius == 0) return source;
  const index_t side = square_side(source.cols());
  require(side > 0, "shift_augmented: inputs of ", source.cols(), " features are not square images (",
          "shifts need side x side pixels, one channel, e.g. 784 = 28 x 28)");
  require(radius < side, "shift_augmented: radius=", radius, " must be smaller than the image side ", side);
  const index_t variants = (2 * index_t{radius} + 1) * (2 * index_t{radius} + 1);
  const index_t rows = io::checked_mul(source.rows(), variants, "shift_augmented");
  return RowSource(std::make_shared<ShiftImpl>(source, radius, side, 0, rows));
}

RowSource rank_rows(const RowSource& source, int rank, int nranks) {
  require(nranks >= 1 && rank >= 0 && rank < nranks, "rank_rows: rank=", rank, " of nranks=", nranks,
          " (need 0 <= rank < nranks)");
  const dist::RowRange share = dist::block_rows(source.rows(), nranks, rank);
  return source.row_range(share.begin, share.count);
}

}  // namespace idprune::data
