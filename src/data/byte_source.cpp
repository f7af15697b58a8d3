#include "data/byte_source.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>

#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"

namespace idprune::data::io {

namespace {

std::string errno_text() { return std::strerror(errno); }

// Bytes decompressed per call when skipping gzip data. Small and uninitialised: a zero-filled
// megabyte per call cost more (page faults) than decompressing a small file.
constexpr std::int64_t skip_chunk = 64 << 10;

}  // namespace

ByteSource::ByteSource(std::string path) : path_(std::move(path)) {
  std::error_code ec;
  require(!std::filesystem::is_directory(path_, ec), path_, ": is a folder, expected a file");
  file_.reset(std::fopen(path_.c_str(), "rb"));
  require(file_ != nullptr, path_, ": cannot open: ", errno_text());
  require(std::fseek(file_.get(), 0, SEEK_END) == 0, path_, ": cannot seek: ", errno_text());
  const long size = std::ftell(file_.get());
  require(size >= 0, path_, ": cannot determine the file size: ", errno_text());
  file_size_ = size;
  std::rewind(file_.get());
  std::array<unsigned char, 2> magic{};
  const std::size_t got = std::fread(magic.data(), 1, magic.size(), file_.get());
  std::rewind(file_.get());
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    file_.reset();
    gz_.reset(gzopen(path_.c_str(), "rb"));
    require(gz_ != nullptr, path_, ": cannot open as gzip: ", errno_text());
    // 32 KiB in, 64 KiB out (zlib's default is 8 KiB; large reads bypass the buffer anyway). Kept
    // under 128 KiB so allocators reuse it: ASan maps and unmaps larger blocks, which made the
    // fuzz targets several times slower.
    gzbuffer(gz_.get(), 1 << 15);
  }
}

std::int64_t ByteSource::max_length() const {
  if (!gz_) return file_size_;
  return file_size_ > INT64_MAX / deflate_max_ratio ? INT64_MAX : file_size_ * deflate_max_ratio;
}

std::string ByteSource::gz_message() const {
  int code = 0;
  std::string msg = gzerror(gz_.get(), &code);
  // zlib prefixes its message with the path given to gzopen.
  if (msg.starts_with(path_ + ": ")) msg.erase(0, path_.size() + 2);
  return msg;
}

std::int64_t ByteSource::read_some(std::uint8_t* out, std::int64_t n) {
  std::int64_t done = 0;
  while (done < n) {
    const auto chunk = static_cast<unsigned>(std::min<std::int64_t>(n - done, 1 << 30));
    std::int64_t got = 0;
    if (gz_) {
      const int r = gzread(gz_.get(), out + done, chunk);
      if (r < 0)
        throw Error(detail::concat(path_, ": gzip data is corrupt or truncated near decompressed offset ",
                                   offset_ + done, ": ", gz_message()));
      got = r;
      if (got == 0) {
        // gzread reports a truncated stream as a short read with Z_BUF_ERROR set.
        int code = 0;
        gzerror(gz_.get(), &code);
        if (code != Z_OK && code != Z_STREAM_END)
          throw Error(detail::concat(path_, ": gzip data is corrupt or truncated near decompressed offset ",
                                     offset_ + done, ": ", gz_message()));
      }
    } else {
      got = static_cast<std::int64_t>(std::fread(out + done, 1, chunk, file_.get()));
      require(!std::ferror(file_.get()), path_, ": read error at offset ", offset_ + done, ": ", errno_text());
    }
    if (got == 0) break;
    done += got;
  }
  offset_ += done;
  return done;
}

void ByteSource::truncated(std::int64_t wanted, std::int64_t got, const char* what) const {
  throw Error(detail::concat(path_, ": truncated: ", what, " needs ", wanted, " bytes at offset ", offset_ - got,
                             " but the ", gz_ ? "decompressed " : "", "data ends after ", got, " of them (at offset ",
                             offset_, ")"));
}

void ByteSource::read(std::span<std::uint8_t> out, const char* what) {
  const auto n = static_cast<std::int64_t>(out.size());
  const std::int64_t got = read_some(out.data(), n);
  if (got != n) truncated(n, got, what);
}

void ByteSource::skip(std::int64_t n, const char* what) {
  if (n == 0) return;
  if (!gz_) {
    require(offset_ + n <= file_size_, path_, ": truncated: ", what, " needs ", n, " bytes at offset ", offset_,
            " but the file has ", file_size_, " bytes");
    require(fseeko(file_.get(), static_cast<off_t>(offset_ + n), SEEK_SET) == 0, path_, ": cannot seek to offset ",
            offset_ + n, ": ", errno_text());
    offset_ += n;
    return;
  }
  const auto scratch = std::make_unique_for_overwrite<std::uint8_t[]>(skip_chunk);
  std::int64_t left = n;
  while (left > 0) {
    const std::int64_t chunk = std::min(left, skip_chunk);
    const std::int64_t got = read_some(scratch.get(), chunk);
    if (got != chunk) truncated(n, n - left + got, what);
    left -= got;
  }
}

std::int64_t ByteSource::skip_to_end() {
  const std::int64_t at = offset_;
  if (!gz_) {
    require(fseeko(file_.get(), 0, SEEK_END) == 0, path_, ": cannot seek to the end: ", errno_text());
    offset_ = file_size_;
    return file_size_ - at;
  }
  const auto scratch = std::make_unique_for_overwrite<std::uint8_t[]>(skip_chunk);
  while (read_some(scratch.get(), skip_chunk) > 0) {
  }
  return offset_ - at;
}

void ByteSource::expect_end(const char* what) {
  if (!gz_) {
    require(offset_ == file_size_, path_, ": ", file_size_ - offset_, " unexpected bytes after the ", what,
            " (data ends at offset ", offset_, ", file size ", file_size_, ")");
    return;
  }
  // Reading past the end makes zlib check the CRC-32 and length of the gzip trailer.
  const std::int64_t at = offset_;
  const std::int64_t extra = skip_to_end();
  require(extra == 0, path_, ": ", extra, " unexpected bytes after the ", what, " (data ends at decompressed offset ",
          at, ")");
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& context) {
  std::int64_t r = 0;
  require(a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, &r), context, ": size overflow (", a, " * ", b, ")");
  return r;
}

void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes, bool gzip) {
  std::vector<std::uint8_t> packed;
  std::span<const std::uint8_t> out = bytes;
  if (gzip) {
    z_stream z{};
    // windowBits 15 + 16: gzip wrapper with zlib's default header (time stamp 0, no file name).
    require(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK, path, ": deflateInit2 failed");
    packed.resize(deflateBound(&z, static_cast<uLong>(bytes.size())));
    z.next_in = const_cast<Bytef*>(bytes.data());  // zlib's API is not const-correct
    z.avail_in = static_cast<uInt>(bytes.size());
    z.next_out = packed.data();
    z.avail_out = static_cast<uInt>(packed.size());
    require(bytes.size() <= UINT_MAX && packed.size() <= UINT_MAX, path, ": too large to compress in one call (",
            bytes.size(), " bytes)");
    const int rc = deflate(&z, Z_FINISH);
    const auto total = z.total_out;
    deflateEnd(&z);
    require(rc == Z_STREAM_END, path, ": deflate failed (", rc, ")");
    packed.resize(total);
    out = packed;
  }
  ::idprune::io::write_file_atomically(path, out);
}

void check_rows(std::span<const std::int64_t> rows, std::int64_t n, const std::string& context) {
  for (std::size_t p = 0; p < rows.size(); ++p)
    require(rows[p] >= 0 && rows[p] < n, context, ": row index ", rows[p], " at position ", p, " outside [0, ", n, ")");
}

std::vector<std::int64_t> sorted_positions(std::span<const std::int64_t> rows, std::int64_t n,
                                           const std::string& context) {
  check_rows(rows, n, context);
  std::vector<std::int64_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return rows[a] < rows[b]; });
  return order;
}

void read_selected_items(ByteSource& src, std::int64_t n_items, std::int64_t item_bytes,
                         std::span<const std::int64_t> rows, std::uint8_t* out, const char* what) {
  const std::vector<std::int64_t> order = sorted_positions(rows, n_items, src.path());
  std::int64_t next = 0;  // index of the item the source is positioned at
  const auto bytes = static_cast<std::size_t>(item_bytes);
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::int64_t p = order[k];
    const std::int64_t row = rows[p];
    std::uint8_t* dst = out + static_cast<std::size_t>(p) * bytes;
    if (k > 0 && rows[order[k - 1]] == row) {  // a duplicate of the row just read
      std::copy_n(out + static_cast<std::size_t>(order[k - 1]) * bytes, bytes, dst);
      continue;
    }
    src.skip(checked_mul(row - next, item_bytes, src.path()), what);
    src.read({dst, bytes}, what);
    next = row + 1;
  }
}

}  // namespace idprune::data::io
