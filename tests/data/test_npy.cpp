// .npy reading and writing: every accepted variant (format 1.0/2.0/3.0, float32/float64, little and
// big endian, C and Fortran order, 1-D and 2-D) against known values, the write/read round trip,
// and every malformed case.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "files.hpp"
#include "idprune/data/npy.hpp"

using namespace idprune;
using namespace idprune::data;
using namespace idprune::test;

namespace {

struct NpySpec {
  int major = 1;
  std::string descr = "<f8";
  bool fortran = false;
  std::string shape = "(2, 3)";
  std::string extra_header;  // inserted before the closing brace
};

/// A .npy file: header from `spec`, then `values` (already in storage order) encoded per descr.
std::vector<std::uint8_t> npy_bytes(const NpySpec& spec, const std::vector<double>& values) {
  std::string header = "{'descr': '" + spec.descr + "', 'fortran_order': " + (spec.fortran ? "True" : "False") +
                       ", 'shape': " + spec.shape + ", " + spec.extra_header + "}";
  const std::size_t prefix = spec.major == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::vector<std::uint8_t> b{0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(spec.major), 0};
  const std::size_t len = header.size();
  for (std::size_t k = 0; k < (spec.major == 1 ? 2u : 4u); ++k) b.push_back(static_cast<std::uint8_t>(len >> (8 * k)));
  b.insert(b.end(), header.begin(), header.end());
  const bool big = spec.descr[0] == '>';
  for (const double v : values) {
    std::vector<std::uint8_t> enc;
    if (spec.descr[2] == '8') {
      const auto a = std::bit_cast<std::array<std::uint8_t, 8>>(v);
      enc.assign(a.begin(), a.end());
    } else {
      const auto a = std::bit_cast<std::array<std::uint8_t, 4>>(static_cast<float>(v));
      enc.assign(a.begin(), a.end());
    }
    if (big == (std::endian::native == std::endian::little)) std::reverse(enc.begin(), enc.end());
    b.insert(b.end(), enc.begin(), enc.end());
  }
  return b;
}

/// a(i, j) = 10 i + j + 0.5 (exact in float32), listed in C or Fortran order.
std::vector<double> storage(std::int64_t rows, std::int64_t cols, bool fortran) {
  std::vector<double> v;
  for (std::int64_t k = 0; k < rows * cols; ++k) {
    const std::int64_t i = fortran ? k % rows : k / cols, j = fortran ? k / rows : k % cols;
    v.push_back(10.0 * static_cast<double>(i) + static_cast<double>(j) + 0.5);
  }
  return v;
}

}  // namespace

TEST(Npy, ReadsEveryVersionDtypeAndOrder) {
  TempDir dir;
  const std::string f = dir.file("a.npy");
  for (const int major : {1, 2, 3})
    for (const std::string descr : {"<f8", "<f4", ">f8", ">f4"})
      for (const bool fortran : {false, true}) {
        NpySpec spec{major, descr, fortran, "(4, 3)", ""};
        write_bytes(f, npy_bytes(spec, storage(4, 3, fortran)));
        const la::Matrix a = read_npy(f);
        ASSERT_EQ(a.rows(), 4);
        ASSERT_EQ(a.cols(), 3);
        for (la::index_t i = 0; i < 4; ++i)
          for (la::index_t j = 0; j < 3; ++j)
            EXPECT_EQ(a(i, j), 10.0 * static_cast<double>(i) + static_cast<double>(j) + 0.5)
                << "version " << major << " " << descr << (fortran ? " F" : " C") << " at " << i << "," << j;
      }
}

TEST(Npy, OneDimensionalAndEmptyShapes) {
  TempDir dir;
  const std::string f = dir.file("v.npy");
  write_bytes(f, npy_bytes({1, "<f8", false, "(5,)", ""}, {1, 2, 3, 4, 5}));
  la::Matrix v = read_npy(f);
  ASSERT_EQ(v.rows(), 5);
  ASSERT_EQ(v.cols(), 1);
  for (la::index_t i = 0; i < 5; ++i) EXPECT_EQ(v(i, 0), static_cast<double>(i + 1));
  write_bytes(f, npy_bytes({1, "<f8", false, "(0, 3)", ""}, {}));
  v = read_npy(f);
  EXPECT_EQ(v.rows(), 0);
  EXPECT_EQ(v.cols(), 3);
}

TEST(Npy, WriteReadRoundTripIsExact) {
  TempDir dir;
  la::Matrix a(7, 5);
  std::mt19937_64 g(17);
  std::normal_distribution<double> normal;
  for (la::index_t j = 0; j < 5; ++j)
    for (la::index_t i = 0; i < 7; ++i) a(i, j) = normal(g) * std::pow(10.0, static_cast<double>(i * j % 9) - 4);
  a(0, 0) = std::numeric_limits<double>::denorm_min();
  a(1, 0) = -std::numeric_limits<double>::max();
  const std::string f = dir.file("w.npy");
  write_npy(f, a);
  const std::vector<std::uint8_t> bytes = read_bytes(f);
  const std::size_t header = bytes[8] | (bytes[9] << 8);
  EXPECT_EQ((10 + header) % 64, 0u) << "data should start 64-byte aligned, as NumPy writes it";
  EXPECT_EQ(bytes.size(), 10 + header + 7 * 5 * 8);
  const la::Matrix b = read_npy(f);
  ASSERT_EQ(b.rows(), 7);
  ASSERT_EQ(b.cols(), 5);
  for (la::index_t j = 0; j < 5; ++j)
    for (la::index_t i = 0; i < 7; ++i) EXPECT_EQ(b(i, j), a(i, j)) << i << "," << j;
  // A view with ld > rows writes only its block.
  const la::Matrix c = [&] {
    write_npy(f, a.view().block(2, 1, 3, 2));
    return read_npy(f);
  }();
  ASSERT_EQ(c.rows(), 3);
  ASSERT_EQ(c.cols(), 2);
  for (la::index_t j = 0; j < 2; ++j)
    for (la::index_t i = 0; i < 3; ++i) EXPECT_EQ(c(i, j), a(2 + i, 1 + j));
}

TEST(Npy, WriteIsAtomic) {
  TempDir dir;
  const std::string f = dir.file("w.npy");
  write_bytes(f, {1, 2, 3});
  write_npy(f, la::Matrix(2, 2, 1.5));
  EXPECT_EQ(read_npy(f)(1, 1), 1.5);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1) << "temporary file left behind";
  EXPECT_ERROR_CONTAINS(write_npy(dir.file("no/such/folder/x.npy"), la::Matrix(1, 1)), "no/such/folder/x.npy");
  EXPECT_FALSE(std::filesystem::exists(dir.file("no")));
}

TEST(Npy, UnsupportedDtypesRejected) {
  TempDir dir;
  const std::string f = dir.file("d.npy");
  for (const std::string descr : {"<i8", "<f2", "<c16", "|u1", "<f16", "f8", "=f8"}) {
    NpySpec spec{1, "<f8", false, "(2, 3)", ""};
    std::vector<std::uint8_t> b = npy_bytes(spec, storage(2, 3, false));
    std::string text(b.begin(), b.end());
    text.replace(text.find("<f8"), 3, descr);
    // Keep the header length field valid: pad/cut spaces so the header length stays the same.
    const std::ptrdiff_t diff = static_cast<std::ptrdiff_t>(descr.size()) - 3;
    if (diff > 0) text.erase(text.find("}") + 1, static_cast<std::size_t>(diff));
    if (diff < 0) text.insert(text.find("}") + 1, static_cast<std::size_t>(-diff), ' ');
    write_bytes(f, std::vector<std::uint8_t>(text.begin(), text.end()));
    EXPECT_ERROR_CONTAINS(read_npy(f), "'" + descr + "' is not supported");
  }
  write_bytes(f, npy_bytes({1, "|O", false, "(2,)", ""}, {}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "object arrays");
  // A structured dtype: descr is a list.
  std::vector<std::uint8_t> b = npy_bytes({1, "<f8", false, "(2,)", ""}, {1, 2});
  std::string text(b.begin(), b.end());
  text.replace(text.find("'<f8'"), 5, "[('a', '<f8')]");
  text.erase(text.find("}") + 1, 9);
  write_bytes(f, std::vector<std::uint8_t>(text.begin(), text.end()));
  EXPECT_ERROR_CONTAINS(read_npy(f), "structured");
}

TEST(Npy, BadShapesRejected) {
  TempDir dir;
  const std::string f = dir.file("s.npy");
  write_bytes(f, npy_bytes({1, "<f8", false, "(2, 2, 2)", ""}, std::vector<double>(8, 1.0)));
  EXPECT_ERROR_CONTAINS(read_npy(f), "shape (2, 2, 2)");
  write_bytes(f, npy_bytes({1, "<f8", false, "()", ""}, {1.0}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "only 1-D and 2-D");
  write_bytes(f, npy_bytes({1, "<f8", false, "(-2, 3)", ""}, {}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "non-negative integer");
  // Absurd sizes: rejected from the header, not by allocating.
  write_bytes(f, npy_bytes({1, "<f8", false, "(4294967296, 4294967296)", ""}, {}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "size overflow");
  write_bytes(f, npy_bytes({1, "<f8", false, "(100000, 100000)", ""}, {1.0}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "needs 80000000000 bytes");
  write_bytes(f, npy_bytes({1, "<f8", false, "(99999999999999999999, 1)", ""}, {}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "dimension too large");
}

TEST(Npy, TruncatedOrExtraDataRejected) {
  TempDir dir;
  const std::string f = dir.file("t.npy");
  std::vector<std::uint8_t> b = npy_bytes({1, "<f4", false, "(2, 3)", ""}, storage(2, 3, false));
  b.pop_back();
  write_bytes(f, b);
  EXPECT_ERROR_CONTAINS(read_npy(f), "truncated .npy data: shape (2, 3) of float32 needs 24 bytes");
  b.push_back(0);
  b.push_back(0);
  write_bytes(f, b);
  EXPECT_ERROR_CONTAINS(read_npy(f), "1 unexpected bytes");
  // Truncated inside the header.
  b = npy_bytes({1, "<f8", false, "(2, 3)", ""}, storage(2, 3, false));
  write_bytes(f, std::vector<std::uint8_t>(b.begin(), b.begin() + 30));
  EXPECT_ERROR_CONTAINS(read_npy(f), "truncated: the .npy header");
  write_bytes(f, std::vector<std::uint8_t>(b.begin(), b.begin() + 9));
  EXPECT_ERROR_CONTAINS(read_npy(f), "truncated");
}

TEST(Npy, MalformedHeadersRejected) {
  TempDir dir;
  const std::string f = dir.file("h.npy");
  std::vector<std::uint8_t> b = npy_bytes({1, "<f8", false, "(1, 1)", ""}, {1.0});
  std::vector<std::uint8_t> bad = b;
  bad[1] = 'X';
  write_bytes(f, bad);
  EXPECT_ERROR_CONTAINS(read_npy(f), "not a .npy file");
  bad = b;
  bad[6] = 4;
  write_bytes(f, bad);
  EXPECT_ERROR_CONTAINS(read_npy(f), "version 4.0 is not supported");
  // Overlong header (version 2.0 allows 4 GiB; NumPy and idprune stop at 10000 bytes).
  std::vector<std::uint8_t> longer{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0x00, 0x00, 0x10, 0x00};
  write_bytes(f, longer);
  EXPECT_ERROR_CONTAINS(read_npy(f), "header length 1048576 exceeds");
  write_bytes(f, npy_bytes({1, "<f8", false, "(1, 1)", "'extra': 1, "}, {1.0}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "unexpected key 'extra'");
  write_bytes(f, npy_bytes({1, "<f8", false, "(1, 1)", "'shape': (1, 1), "}, {1.0}));
  EXPECT_ERROR_CONTAINS(read_npy(f), "repeats 'shape'");
  std::string text(b.begin(), b.end());
  text.replace(text.find("False"), 5, "Fals ");
  write_bytes(f, std::vector<std::uint8_t>(text.begin(), text.end()));
  EXPECT_ERROR_CONTAINS(read_npy(f), "expected True or False");
  text.assign(b.begin(), b.end());
  text.replace(text.find("'shape'"), 7, "'shapf'");
  write_bytes(f, std::vector<std::uint8_t>(text.begin(), text.end()));
  EXPECT_ERROR_CONTAINS(read_npy(f), "unexpected key 'shapf'");
  write_bytes(f, gzip_bytes(b));
  EXPECT_ERROR_CONTAINS(read_npy(f), "gzip");
}

TEST(Npy, NonFiniteValuesRejectedWhenRequired) {
  TempDir dir;
  const std::string f = dir.file("n.npy");
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
    for (const std::string descr : {"<f8", ">f4"}) {
      std::vector<double> v = storage(3, 2, false);
      v[3] = bad;  // C order: element (1, 1)
      write_bytes(f, npy_bytes({1, descr, false, "(3, 2)", ""}, v));
      EXPECT_ERROR_CONTAINS(read_npy(f), "non-finite value");
      EXPECT_ERROR_CONTAINS(read_npy(f), "at index (1, 1)");
      const la::Matrix a = read_npy(f, false);
      EXPECT_FALSE(std::isfinite(a(1, 1)));
      EXPECT_EQ(std::isnan(a(1, 1)), std::isnan(bad));
    }
  }
}
