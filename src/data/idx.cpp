#include "idprune/data/idx.hpp"

#include <array>
#include <climits>
#include <cstdint>
#include <cstdio>

#include "data/byte_source.hpp"
#include "idprune/la/error.hpp"

namespace idprune::data {

namespace {

using io::ByteSource;
using io::checked_mul;

constexpr std::uint8_t idx_ubyte = 0x08;

std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

void put_big_endian_u32(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>((v >> shift) & 0xff));
}

std::string hex8(std::uint32_t v) {
  std::array<char, 11> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%08x", v);
  return buf.data();
}

std::string dims_text(const IdxInfo& info) {
  std::string s;
  for (const std::int64_t d : info.dims) s += (s.empty() ? "" : " x ") + std::to_string(d);
  return s;
}

/// Reads and checks the header; leaves `src` at the first data byte. `expected_ndims` is 3
/// (images) or 1 (labels). Rejects sizes that cannot fit in the file before anything is allocated.
IdxInfo read_header(ByteSource& src, int expected_ndims) {
  const std::string& path = src.path();
  std::array<std::uint8_t, 4> magic{};
  src.read(magic, "the IDX magic number");
  const std::uint32_t found = big_endian_u32(magic.data());
  const std::uint32_t expected = 0x0800u | static_cast<std::uint32_t>(expected_ndims);
  require(magic[0] == 0 && magic[1] == 0, path, ": not an IDX file: magic number ", hex8(found),
          " at offset 0, expected ", hex8(expected), " (", expected_ndims == 3 ? "images" : "labels", ")");
  require(magic[2] == idx_ubyte, path, ": IDX data type 0x", std::hex, int{magic[2]},
          " at offset 2 is not supported, expected 0x08 (unsigned byte)");
  require(magic[3] == expected_ndims, path, ": IDX file has ", int{magic[3]}, " dimensions (magic ", hex8(found),
          "), expected ", expected_ndims, " (",
          expected_ndims == 3 ? "images, magic 0x00000803" : "labels, magic 0x00000801", ")");
  IdxInfo info;
  info.ndims = expected_ndims;
  info.gzip = src.gzip();
  std::array<std::uint8_t, 12> dims{};
  src.read({dims.data(), static_cast<std::size_t>(4 * expected_ndims)}, "the IDX dimensions");
  for (int k = 0; k < expected_ndims; ++k) info.dims.push_back(big_endian_u32(dims.data() + 4 * k));
  if (expected_ndims == 3)
    require(info.dims[1] > 0 && info.dims[2] > 0, path, ": image size ", info.dims[1], " x ", info.dims[2],
            " (offsets 8 and 12) must be positive");
  std::int64_t data_bytes = 1;
  for (const std::int64_t d : info.dims) data_bytes = checked_mul(data_bytes, d, path);
  const std::int64_t header_bytes = 4 + 4 * expected_ndims;
  const std::int64_t available = src.max_length() - header_bytes;
  if (!src.gzip()) {
    require(data_bytes <= available, path, ": truncated: header declares ", data_bytes, " data bytes (dimensions ",
            dims_text(info), ") but the file has ", available, " bytes after the ", header_bytes, "-byte header");
    require(data_bytes == available, path, ": ", available - data_bytes, " unexpected bytes after the ", data_bytes,
            " data bytes the header declares (file size ", src.file_size(), ")");
  } else {
    require(data_bytes <= available, path, ": header declares ", data_bytes, " data bytes (dimensions ",
            dims_text(info), "), more than a ", src.file_size(), "-byte gzip file can hold (at most ",
            io::deflate_max_ratio, ":1)");
  }
  return info;
}

/// [begin, begin + count) within n items, count < 0 meaning "to the end".
std::int64_t resolve_count(const std::string& path, std::int64_t n, std::int64_t begin, std::int64_t count) {
  if (count < 0) count = n - begin;
  require(begin >= 0 && count >= 0 && begin <= n && count <= n - begin, path, ": rows [", begin, ", ", begin + count,
          ") outside the ", n, " items of the file");
  return count;
}

/// Reads rows [begin, begin + count) after the header and validates the rest of the file.
void read_range(ByteSource& src, std::int64_t n, std::int64_t item_bytes, std::int64_t begin, std::int64_t count,
                std::uint8_t* out, const char* what) {
  src.skip(checked_mul(begin, item_bytes, src.path()), what);
  src.read({out, static_cast<std::size_t>(checked_mul(count, item_bytes, src.path()))}, what);
  if (src.gzip()) {
    src.skip(checked_mul(n - begin - count, item_bytes, src.path()), what);
    src.expect_end(what);
  }
}

}  // namespace

IdxInfo read_idx_info(const std::string& path) {
  ByteSource src(path);
  std::array<std::uint8_t, 4> magic{};
  src.read(magic, "the IDX magic number");
  ByteSource again(path);
  return read_header(again, magic[3] == 1 ? 1 : 3);
}

ByteRows read_idx_images(const std::string& path, std::int64_t begin, std::int64_t count, std::int64_t* height,
                         std::int64_t* width) {
  ByteSource src(path);
  const IdxInfo info = read_header(src, 3);
  const std::int64_t n = info.dims[0];
  count = resolve_count(path, n, begin, count);
  ByteRows out;
  out.count = count;
  out.features = checked_mul(info.dims[1], info.dims[2], path);
  out.values.resize(static_cast<std::size_t>(checked_mul(count, out.features, path)));
  read_range(src, n, out.features, begin, count, out.values.data(), "the image data");
  if (height != nullptr) *height = info.dims[1];
  if (width != nullptr) *width = info.dims[2];
  return out;
}

ByteRows read_idx_images_rows(const std::string& path, std::span<const std::int64_t> rows) {
  ByteSource src(path);
  const IdxInfo info = read_header(src, 3);
  const std::int64_t n = info.dims[0];
  ByteRows out;
  out.count = static_cast<std::int64_t>(rows.size());
  out.features = checked_mul(info.dims[1], info.dims[2], path);
  // Indices are checked before allocating: the header bounds features only when n > 0 (a file of
  // zero images may declare any image size), and n > 0 with valid indices bounds features by the
  // file length.
  io::check_rows(rows, n, path);
  out.values.resize(static_cast<std::size_t>(checked_mul(out.count, out.features, path)));
  io::read_selected_items(src, n, out.features, rows, out.values.data(), "the image data");
  if (src.gzip()) {
    const std::int64_t header = 16;
    src.skip(header + checked_mul(n, out.features, path) - src.offset(), "the image data");
    src.expect_end("the image data");
  }
  return out;
}

std::vector<std::uint8_t> read_idx_labels(const std::string& path, std::int64_t begin, std::int64_t count) {
  ByteSource src(path);
  const IdxInfo info = read_header(src, 1);
  const std::int64_t n = info.dims[0];
  count = resolve_count(path, n, begin, count);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(count));
  read_range(src, n, 1, begin, count, out.data(), "the label data");
  return out;
}

std::vector<std::uint8_t> read_idx_labels_rows(const std::string& path, std::span<const std::int64_t> rows) {
  ByteSource src(path);
  const IdxInfo info = read_header(src, 1);
  const std::int64_t n = info.dims[0];
  io::check_rows(rows, n, path);
  std::vector<std::uint8_t> out(rows.size());
  io::read_selected_items(src, n, 1, rows, out.data(), "the label data");
  if (src.gzip()) {
    src.skip(8 + n - src.offset(), "the label data");
    src.expect_end("the label data");
  }
  return out;
}

void write_idx_images(const std::string& path, const ByteRows& images, std::int64_t height, std::int64_t width,
                      bool gzip) {
  require(height > 0 && width > 0 && height <= UINT32_MAX && width <= UINT32_MAX && images.count >= 0 &&
              images.count <= UINT32_MAX,
          "write_idx_images: ", path, ": shape ", images.count, " x ", height, " x ", width,
          " does not fit an IDX header");
  require(images.features == height * width &&
              static_cast<std::int64_t>(images.values.size()) == images.count * images.features,
          "write_idx_images: ", path, ": ", images.values.size(), " values for ", images.count, " images of ",
          images.features, " features, expected ", height, " x ", width);
  std::vector<std::uint8_t> bytes;
  bytes.reserve(16 + images.values.size());
  put_big_endian_u32(bytes, 0x00000803u);
  put_big_endian_u32(bytes, static_cast<std::uint64_t>(images.count));
  put_big_endian_u32(bytes, static_cast<std::uint64_t>(height));
  put_big_endian_u32(bytes, static_cast<std::uint64_t>(width));
  bytes.insert(bytes.end(), images.values.begin(), images.values.end());
  io::write_file_atomically(path, bytes, gzip);
}

void write_idx_labels(const std::string& path, std::span<const std::uint8_t> labels, bool gzip) {
  require(labels.size() <= UINT32_MAX, "write_idx_labels: ", path, ": ", labels.size(),
          " labels do not fit an IDX header");
  std::vector<std::uint8_t> bytes;
  bytes.reserve(8 + labels.size());
  put_big_endian_u32(bytes, 0x00000801u);
  put_big_endian_u32(bytes, labels.size());
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  io::write_file_atomically(path, bytes, gzip);
}

}  // namespace idprune::data
