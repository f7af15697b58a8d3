#pragma once
// Shared plumbing of the libFuzzer targets: the fuzz input as a file the readers can open (a memfd,
// named /proc/self/fd/N, so no disk I/O and nothing left behind), optionally gzip-wrapped, and the
// contract every reader must keep on any input: return normally or throw idprune::Error whose
// message names the file. Anything else (another exception type, an ASan/UBSan report, an
// allocation over libFuzzer's -malloc_limit_mb, a hang past -timeout) is a bug.
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "idprune/la/error.hpp"

namespace idprune::fuzz {

/// One memfd per process, rewritten for every input; the readers open it by path.
class MemFile {
 public:
  MemFile() : fd_(memfd_create("idprune-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  /// Replaces the contents with `bytes`; returns the path to open.
  const std::string& write(const std::uint8_t* bytes, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) fail("ftruncate");
    std::size_t done = 0;
    while (done < size) {
      const ssize_t w = ::pwrite(fd_, bytes + done, size - done, static_cast<off_t>(done));
      if (w <= 0) fail("pwrite");
      done += static_cast<std::size_t>(w);
    }
    return path_;
  }
  const std::string& write(const std::vector<std::uint8_t>& bytes) { return write(bytes.data(), bytes.size()); }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  [[noreturn]] static void fail(const char* what) {
    std::perror(what);
    std::abort();
  }
  int fd_;
  std::string path_;
};

/// `bytes` as one complete gzip member (what `gzip -1` would write).
inline std::vector<std::uint8_t> gzip(const std::uint8_t* bytes, std::size_t size) {
  // One deflate state per process, reset for every input: zlib's ~270 KiB of state allocated per
  // input through ASan (mmap, munmap) cost more than the readers under test.
  struct Deflater {
    z_stream z{};
    Deflater() {
      if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
    }
    ~Deflater() { deflateEnd(&z); }
    Deflater(const Deflater&) = delete;
    Deflater& operator=(const Deflater&) = delete;
  };
  static Deflater d;
  z_stream& z = d.z;
  if (deflateReset(&z) != Z_OK) std::abort();
  std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(size)));
  z.next_in = const_cast<Bytef*>(bytes);  // zlib's API is not const-correct
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  return out;
}

/// The file a container reader (IDX, CIFAR-10) sees, chosen by the first input byte so that the
/// fuzzer explores the decompressed contents as well as broken gzip streams:
///   0: the rest as a plain file;
///   1: the rest gzip-compressed;
///   2: the rest (after byte 1) gzip-compressed, then cut to byte1/256 of its length;
///   3: the rest (after byte 1) gzip-compressed, then the byte at byte1/256 of its length flipped.
inline std::vector<std::uint8_t> container_file(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  const int mode = data[0] % 4;
  if (mode == 0) return {data + 1, data + size};
  if (mode == 1) return gzip(data + 1, size - 1);
  if (size < 2) return {};
  std::vector<std::uint8_t> z = gzip(data + 2, size - 2);
  const std::size_t at = z.size() * data[1] / 256;
  if (mode == 2) {
    z.resize(at);
  } else {
    z[at] ^= 0xa5;
  }
  return z;
}

/// Runs `read`; an idprune::Error must name `source` (the file), any other exception escapes and
/// libFuzzer reports it as a crash.
template <typename F>
bool reads_cleanly(const std::string& source, F&& read) {
  try {
    read();
    return true;
  } catch (const Error& e) {
    const std::string_view what = e.what();
    if (what.find(source) == std::string_view::npos) {
      std::fprintf(stderr, "idprune::Error does not name the file '%s': %s\n", source.c_str(), e.what());
      std::abort();
    }
    return false;
  }
}

/// Aborts (a libFuzzer crash) with `what` unless `ok`: a reader returned something inconsistent.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "inconsistent result: %s\n", what);
    std::abort();
  }
}

}  // namespace idprune::fuzz
