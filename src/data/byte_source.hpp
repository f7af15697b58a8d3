#pragma once
// Private to the data layer: sequential reading of a plain or gzip file with exact-length reads and
// errors that name the file and the byte offset, plus the (optionally gzip) writer the data files share.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace idprune::data::io {

/// Largest expansion of a deflate stream: 1032:1 (zlib technical details, "Maximum compression
/// factor"). Used to reject a header whose sizes cannot come from a gzip file of the given size.
inline constexpr std::int64_t deflate_max_ratio = 1032;

/// Reads `path` from the start; a file beginning with the gzip magic 1f 8b is decompressed.
/// offset() counts decompressed bytes consumed.
class ByteSource {
 public:
  explicit ByteSource(std::string path);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] bool gzip() const { return gz_ != nullptr; }
  [[nodiscard]] std::int64_t offset() const { return offset_; }
  /// Size of the file on disk (compressed size for gzip).
  [[nodiscard]] std::int64_t file_size() const { return file_size_; }
  /// Upper bound on the number of bytes this source can deliver: the exact size of a plain file,
  /// file_size * deflate_max_ratio for gzip.
  [[nodiscard]] std::int64_t max_length() const;

  /// Reads exactly out.size() bytes or throws "<path>: truncated ... <what> ...".
  void read(std::span<std::uint8_t> out, const char* what);
  /// Skips exactly n bytes (decompressing them for gzip) or throws like read().
  void skip(std::int64_t n, const char* what);
  /// Skips everything left and returns how many bytes that was (for gzip: decompressing them and
  /// checking the trailer).
  std::int64_t skip_to_end();
  /// Throws unless the data ends exactly here (for gzip this also checks the CRC and length trailer).
  void expect_end(const char* what);

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  struct GzCloser {
    void operator()(gzFile_s* g) const { gzclose(g); }
  };
  /// Up to n bytes; fewer only at the end of the data. Throws on a read or decompression error.
  std::int64_t read_some(std::uint8_t* out, std::int64_t n);
  /// zlib's description of the last gzip error, without the path it starts with.
  [[nodiscard]] std::string gz_message() const;
  [[noreturn]] void truncated(std::int64_t wanted, std::int64_t got, const char* what) const;

  std::string path_;
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::unique_ptr<gzFile_s, GzCloser> gz_;
  std::int64_t file_size_ = 0;
  std::int64_t offset_ = 0;
};

/// a * b, throwing "<context>: size overflow" when it does not fit in int64.
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const std::string& context);

/// Writes `bytes` to `path` with idprune::io::write_file_atomically (durable, nothing left behind
/// on failure). With `gzip` the bytes are compressed (zlib, level 6) and the gzip header carries no time stamp,
/// so equal content gives equal files.
void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes, bool gzip);

/// Throws naming `context` when an index of `rows` lies outside [0, n). Called before allocating
/// room for the rows: with n = 0 the item size is not bounded by the file length.
void check_rows(std::span<const std::int64_t> rows, std::int64_t n, const std::string& context);

/// For a list of row indices: positions sorted by row (stable), so the rows can be read in one
/// forward pass. Throws naming `context` when an index lies outside [0, n).
std::vector<std::int64_t> sorted_positions(std::span<const std::int64_t> rows, std::int64_t n,
                                           const std::string& context);

/// Reads items (each `item_bytes` long) from `src`, which is positioned at item 0 of `n_items`:
/// item rows[p] goes to out[p * item_bytes ...]. One forward pass; stops after the last item needed.
void read_selected_items(ByteSource& src, std::int64_t n_items, std::int64_t item_bytes,
                         std::span<const std::int64_t> rows, std::uint8_t* out, const char* what);

}  // namespace idprune::data::io
