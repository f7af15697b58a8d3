#include "idprune/io/sha256.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "idprune/la/error.hpp"

namespace idprune::io {

namespace fs = std::filesystem;

struct Sha256::Context {
  EVP_MD_CTX* md = nullptr;
  ~Context() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {
  ctx_->md = EVP_MD_CTX_new();
  require(ctx_->md != nullptr && EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) == 1,
          "sha256: OpenSSL could not set up a SHA-256 digest");
}

Sha256::~Sha256() = default;

void Sha256::update(std::string_view bytes) {
  require(ctx_->md != nullptr, "sha256: update after hex()");
  require(EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size()) == 1, "sha256: OpenSSL EVP_DigestUpdate failed");
}

void Sha256::update_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open '", path, "' to hash it: ", std::strerror(errno));
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = in.gcount();
    if (got > 0) update(std::string_view(buf.data(), static_cast<std::size_t>(got)));
  }
  require(!in.bad(), "cannot read '", path, "' to hash it");
}

std::string Sha256::hex() {
  require(ctx_->md != nullptr, "sha256: hex() called twice");
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  require(EVP_DigestFinal_ex(ctx_->md, digest.data(), &size) == 1, "sha256: OpenSSL EVP_DigestFinal_ex failed");
  EVP_MD_CTX_free(ctx_->md);
  ctx_->md = nullptr;
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex();
}

std::string sha256_file(const std::string& path) {
  Sha256 h;
  h.update_file(path);
  return h.hex();
}

std::string sha256_files(std::span<const std::string> paths) {
  Sha256 h;
  for (const auto& p : paths) h.update(sha256_file(p) + "\n");
  return h.hex();
}

std::string sha256_path(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return sha256_file(path);
  std::vector<std::string> names;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name.front() == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) names.push_back(fs::relative(it->path(), path).generic_string());
  }
  require(!ec, "cannot list '", path, "' to hash it: ", ec.message());
  std::sort(names.begin(), names.end());
  Sha256 h;
  for (const auto& name : names) {
    h.update(name);
    h.update(std::string_view("\0", 1));
    h.update(sha256_file((fs::path(path) / name).string()) + "\n");
  }
  return h.hex();
}

std::uint64_t digest_prefix(std::string_view hex) {
  std::uint64_t v = 0;
  const std::string_view head = hex.substr(0, std::min<std::size_t>(16, hex.size()));
  const auto [ptr, ec] = std::from_chars(head.data(), head.data() + head.size(), v, 16);
  require(ec == std::errc() && ptr == head.data() + head.size(), "digest_prefix: '", hex, "' is not a hex digest");
  return v;
}

}  // namespace idprune::io
