#include "idprune/data/npy.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <optional>

#include "data/byte_source.hpp"
#include "data/npy_layout.hpp"
#include "idprune/la/error.hpp"

namespace idprune::data {

namespace {

using io::ByteSource;

// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
constexpr std::array<std::uint8_t, 6> npy_magic{0x93, 'N', 'U', 'M', 'P', 'Y'};
// numpy.lib.format refuses longer headers by default (max_header_size=10000); so does idprune.
constexpr std::int64_t max_header_bytes = 10000;

struct NpyHeader {
  char byte_order = '<';  // '<' little or '>' big endian
  int item_bytes = 8;     // 4 or 8
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
};

/// A recursive-descent reader for the Python dict literal of the header, e.g.
/// {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string path) : s_(std::move(text)), path_(std::move(path)) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        require(!have_descr, path_, ": .npy header repeats 'descr'");
        have_descr = true;
        skip_space();
        require(peek() == '\'' || peek() == '"', path_, ": .npy dtype is not a simple type (structured arrays ",
                "are not supported; expected '<f8', '<f4', '>f8' or '>f4') in header ", s_);
        set_descr(string_literal(), h);
      } else if (key == "fortran_order") {
        require(!have_order, path_, ": .npy header repeats 'fortran_order'");
        have_order = true;
        h.fortran_order = boolean();
      } else if (key == "shape") {
        require(!have_shape, path_, ": .npy header repeats 'shape'");
        have_shape = true;
        h.shape = tuple();
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      require(peek() == '}', path_, ": .npy header: expected ',' or '}' at character ", pos_, " of ", s_);
    }
    ++pos_;
    for (; pos_ < s_.size(); ++pos_)
      require(s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\0', path_,
              ": .npy header has text after the dictionary: ", s_);
    require(have_descr && have_order && have_shape, path_, ": .npy header lacks ",
            !have_descr ? "'descr'" : (!have_order ? "'fortran_order'" : "'shape'"), ": ", s_);
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(detail::concat(path_, ": malformed .npy header (", what, " at character ", pos_, "): ", s_));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string");
    const std::size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<std::int64_t> tuple() {
    expect('(');
    std::vector<std::int64_t> dims;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer dimension");
      std::int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = peek() - '0';
        if (v > (INT64_MAX - digit) / 10) fail("dimension too large");
        v = v * 10 + digit;
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long literal, written by old NumPy
      dims.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++pos_;
    return dims;
  }
  void set_descr(const std::string& d, NpyHeader& h) const {
    const bool ok = d.size() == 3 && (d[0] == '<' || d[0] == '>') && d[1] == 'f' && (d[2] == '4' || d[2] == '8');
    if (!ok) {
      const bool object = d.find('O') != std::string::npos;
      throw Error(detail::concat(path_, ": .npy dtype '", d, "' is not supported",
                                 object ? " (object arrays are never read)" : "",
                                 "; expected float64 or float32: '<f8', '<f4', '>f8' or '>f4'"));
    }
    h.byte_order = d[0];
    h.item_bytes = d[2] - '0';
  }

  std::string s_;
  std::string path_;
  std::size_t pos_ = 0;
};

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

template <typename T>
T load_value(const std::uint8_t* p, bool swap) {
  std::array<std::uint8_t, sizeof(T)> b{};
  std::memcpy(b.data(), p, sizeof(T));
  if (swap) std::reverse(b.begin(), b.end());
  return std::bit_cast<T>(b);
}

}  // namespace

NpyLayout read_npy_layout(io::ByteSource& src) {
  const std::string& path = src.path();
  require(!src.gzip(), path, ": is gzip-compressed; .npy files are read uncompressed");
  std::array<std::uint8_t, 8> pre{};
  src.read(pre, "the .npy magic string and version");
  require(std::equal(npy_magic.begin(), npy_magic.end(), pre.begin()), path,
          ": not a .npy file (the first 6 bytes are not \\x93NUMPY)");
  const int major = pre[6], minor = pre[7];
  require((major == 1 || major == 2 || major == 3) && minor == 0, path, ": .npy format version ", major, ".", minor,
          " is not supported (1.0, 2.0 and 3.0 are)");
  std::int64_t header_len = 0;
  if (major == 1) {
    std::array<std::uint8_t, 2> l{};
    src.read(l, "the .npy header length");
    header_len = l[0] | (l[1] << 8);
  } else {
    std::array<std::uint8_t, 4> l{};
    src.read(l, "the .npy header length");
    header_len = static_cast<std::int64_t>(l[0]) | (static_cast<std::int64_t>(l[1]) << 8) |
                 (static_cast<std::int64_t>(l[2]) << 16) | (static_cast<std::int64_t>(l[3]) << 24);
  }
  require(header_len <= max_header_bytes, path, ": .npy header length ", header_len, " exceeds the limit of ",
          max_header_bytes, " bytes");
  std::string text(static_cast<std::size_t>(header_len), '\0');
  src.read({reinterpret_cast<std::uint8_t*>(text.data()), text.size()}, "the .npy header");
  // Version 3.0 headers are UTF-8; every accepted header is ASCII, so no decoding is needed.
  const NpyHeader h = HeaderParser(text, path).parse();
  require(h.shape.size() == 1 || h.shape.size() == 2, path, ": .npy array has shape ", shape_text(h.shape),
          "; only 1-D and 2-D arrays are supported");
  NpyLayout layout;
  layout.ndims = static_cast<int>(h.shape.size());
  layout.rows = h.shape[0];
  layout.cols = h.shape.size() == 2 ? h.shape[1] : 1;
  layout.item_bytes = h.item_bytes;
  layout.fortran_order = h.fortran_order;
  layout.swap = (h.byte_order == '<') != (std::endian::native == std::endian::little);
  layout.data_offset = src.offset();
  layout.shape = shape_text(h.shape);
  const std::int64_t count = io::checked_mul(layout.rows, layout.cols, path);
  const std::int64_t data_bytes = io::checked_mul(count, h.item_bytes, path);
  const std::int64_t available = src.file_size() - src.offset();
  require(data_bytes <= available, path, ": truncated .npy data: shape ", layout.shape, " of ",
          h.item_bytes == 8 ? "float64" : "float32", " needs ", data_bytes, " bytes after the ", src.offset(),
          "-byte header, the file has ", available);
  require(data_bytes == available, path, ": ", available - data_bytes, " unexpected bytes after the ", data_bytes,
          " bytes of .npy data");
  return layout;
}

double NpyLayout::value(const std::uint8_t* p) const {
  return item_bytes == 8 ? load_value<double>(p, swap) : double{load_value<float>(p, swap)};
}

la::Matrix read_npy(const std::string& path, bool require_finite) {
  ByteSource src(path);
  const NpyLayout layout = read_npy_layout(src);
  const std::int64_t rows = layout.rows, cols = layout.cols;
  const std::int64_t count = rows * cols;
  const std::int64_t data_bytes = count * layout.item_bytes;
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(data_bytes));
  src.read(raw, "the .npy data");

  la::Matrix a(rows, cols);
  for (std::int64_t k = 0; k < count; ++k) {
    const double v = layout.value(raw.data() + k * layout.item_bytes);
    // Element k in storage order: C order is row-major, Fortran order column-major.
    const std::int64_t i =
        layout.fortran_order ? k % std::max<std::int64_t>(rows, 1) : k / std::max<std::int64_t>(cols, 1);
    const std::int64_t j =
        layout.fortran_order ? k / std::max<std::int64_t>(rows, 1) : k % std::max<std::int64_t>(cols, 1);
    if (require_finite && !std::isfinite(v))
      throw Error(detail::concat(path, ": non-finite value ", v, " at index (", i, ", ", j, ") of the ", layout.shape,
                                 " array"));
    a(i, j) = v;
  }
  return a;
}

void write_npy(const std::string& path, la::ConstMatrixView a) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + std::to_string(a.rows()) + ", " +
                       std::to_string(a.cols()) + "), }";
  // Pad with spaces and end with '\n' so that the data starts at a multiple of 64 bytes (as NumPy does).
  const std::size_t prefix = 10;  // magic, version, 2-byte length
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  require(header.size() <= 65535, "write_npy: ", path, ": header too long");
  std::vector<std::uint8_t> bytes(npy_magic.begin(), npy_magic.end());
  bytes.push_back(1);
  bytes.push_back(0);
  bytes.push_back(static_cast<std::uint8_t>(header.size() & 0xff));
  bytes.push_back(static_cast<std::uint8_t>(header.size() >> 8));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.reserve(bytes.size() + static_cast<std::size_t>(a.rows() * a.cols()) * 8);
  const bool swap = std::endian::native != std::endian::little;
  for (la::index_t i = 0; i < a.rows(); ++i) {
    for (la::index_t j = 0; j < a.cols(); ++j) {
      auto b = std::bit_cast<std::array<std::uint8_t, 8>>(a(i, j));
      if (swap) std::reverse(b.begin(), b.end());
      bytes.insert(bytes.end(), b.begin(), b.end());
    }
  }
  io::write_file_atomically(path, bytes, false);
}

}  // namespace idprune::data
