#pragma once
// Helpers for the data-layer tests: a temporary folder removed at scope exit, raw file writing
// (plain and gzip), and a check that a call throws idprune::Error whose message contains a phrase.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "idprune/la/error.hpp"

namespace idprune::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "idprune-data-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// The bytes gzip-compressed (a complete single-member gzip stream).
inline std::vector<std::uint8_t> gzip_bytes(const std::vector<std::uint8_t>& bytes) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflate");
  std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(bytes.size())));
  z.next_in = const_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  return out;
}

inline void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

inline std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed, int below = 256) {
  std::mt19937_64 g(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(g() % static_cast<std::uint64_t>(below));
  return v;
}

/// The message of the idprune::Error thrown by f, or "<no idprune::Error>".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const idprune::Error& e) {
    return e.what();
  }
  return "<no idprune::Error>";
}

}  // namespace idprune::test

/// Expects `statement` to throw idprune::Error whose message contains `phrase`.
#define EXPECT_ERROR_CONTAINS(statement, phrase)                                            \
  do {                                                                                      \
    const std::string idprune_msg_ = ::idprune::test::error_of([&] { (void)(statement); }); \
    EXPECT_NE(idprune_msg_.find(phrase), std::string::npos) << "message: " << idprune_msg_; \
  } while (false)
