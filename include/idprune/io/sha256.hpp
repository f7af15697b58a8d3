#pragma once
// SHA-256 content hashes (OpenSSL libcrypto) of files and folders: the identity of a model or
// data set recorded with results, independent of the path it was read from.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace idprune::io {

/// Incremental SHA-256 (FIPS 180-4, computed by OpenSSL's EVP interface).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  /// Feeds the content of `path` (read in blocks); idprune::Error names it when unreadable.
  void update_file(const std::string& path);
  /// The digest as 64 lowercase hex digits; the hasher cannot be used afterwards.
  [[nodiscard]] std::string hex();

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

/// Hex SHA-256 of `bytes`.
[[nodiscard]] std::string sha256_hex(std::string_view bytes);
/// Hex SHA-256 of the content of the file `path` (what `sha256sum path` prints).
[[nodiscard]] std::string sha256_file(const std::string& path);
/// Content hash of a list of files: SHA-256 over their content digests in the given order, so
/// the same files in another folder hash the same.
[[nodiscard]] std::string sha256_files(std::span<const std::string> paths);
/// sha256_file() of a file; of a folder, SHA-256 over "relative/name\0digest\n" of every regular
/// file below it in name order (hidden files, names starting with '.', are left out).
[[nodiscard]] std::string sha256_path(const std::string& path);
/// The first 16 hex digits of a digest as a number (a cross-rank fingerprint).
[[nodiscard]] std::uint64_t digest_prefix(std::string_view hex);

}  // namespace idprune::io
