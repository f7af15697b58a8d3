#include "idprune/io/file.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "idprune/la/error.hpp"

namespace idprune::io {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::strerror(err); }

/// New files: 0666, the umask applied by open(2) as for any program's files.
constexpr mode_t kFileMode = 0666;

std::string folder_of(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

/// Writes every byte (write(2) may write less than asked); returns 0 or the errno of the failure.
int write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  return 0;
}

/// A fresh temporary file next to `path` (hidden, named after it, this process and a counter),
/// created exclusively with the usual file mode.
int create_temporary(const std::string& path, std::string& tmp) {
  static std::atomic<unsigned long> counter{0};
  const fs::path target(path);
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp = (fs::path(folder_of(path)) /
           ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++)))
              .string();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

}  // namespace

void sync_folder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  require(fd >= 0, "cannot open folder '", dir, "' to sync it: ", errno_text(errno));
  // Some file systems cannot fsync a folder (EINVAL); the rename is then as durable as they allow.
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  require(rc == 0 || err == EINVAL || err == EROFS, "fsync of folder '", dir, "' failed: ", errno_text(err));
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  require(!path.empty(), "write_file_atomically: empty path");
  std::string tmp;
  const int fd = create_temporary(path, tmp);
  require(fd >= 0, "cannot write '", path, "': cannot create a temporary file in '", folder_of(path),
          "': ", errno_text(errno));
  int err = write_all(fd, bytes);
  const char* step = "writing";
  if (err == 0 && ::fsync(fd) != 0) {
    err = errno;
    step = "fsync of";
  }
  if (::close(fd) != 0 && err == 0) {
    err = errno;
    step = "closing";
  }
  if (err == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    step = "renaming";
  }
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw Error(detail::concat("cannot write '", path, "' (", bytes.size(), " bytes): ", step, " the temporary file '",
                               tmp, "' failed: ", errno_text(err)));
  }
  sync_folder(folder_of(path));
}

void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes) {
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void append_durably(const std::string& path, std::string_view bytes) {
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kFileMode);
  require(fd >= 0, "cannot open '", path, "' for appending: ", errno_text(errno));
  int err = write_all(fd, bytes);
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  ::close(fd);
  require(err == 0, "cannot append ", bytes.size(), " bytes to '", path, "': ", errno_text(err));
  if (!existed) sync_folder(folder_of(path));
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  require(fd >= 0, "cannot open '", path, "': ", errno_text(errno));
  std::string text;
  char buf[1 << 16];
  while (true) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int err = errno;
      ::close(fd);
      throw Error(detail::concat("cannot read '", path, "': ", errno_text(err)));
    }
    if (r == 0) break;
    text.append(buf, static_cast<std::size_t>(r));
  }
  ::close(fd);
  return text;
}

void prepare_output_folder(const std::string& dir) {
  require(!dir.empty(), "empty output folder name");
  std::error_code ec;
  fs::create_directories(dir, ec);
  require(!ec, "cannot create output folder '", dir, "': ", ec.message());
  require(fs::is_directory(dir, ec), "'", dir, "' is not a folder");
  std::string probe;
  const int fd = create_temporary((fs::path(dir) / "write-probe").string(), probe);
  require(fd >= 0, "cannot write into output folder '", dir, "': ", errno_text(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string write_failure_cause(const std::string& dir) {
  struct statvfs fs_stat {};
  // A few blocks free is as good as full: the next image or table does not fit.
  if (::statvfs(dir.c_str(), &fs_stat) == 0 && fs_stat.f_bavail * fs_stat.f_frsize < (std::uint64_t{1} << 16))
    return detail::concat("the file system holding '", dir, "' is full (", fs_stat.f_bavail * fs_stat.f_frsize,
                          " bytes free)");
  if (::access(dir.c_str(), W_OK) != 0) return detail::concat("'", dir, "' is not writable: ", errno_text(errno));
  rlimit lim{};
  if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    return detail::concat("files are limited to ", lim.rlim_cur, " bytes (ulimit -f)");
  return {};
}

}  // namespace idprune::io
