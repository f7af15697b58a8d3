#include "idprune/io/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"

namespace idprune::io {

namespace {

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "unknown-host";
  return buf.data();
}

std::string read_fd(int fd) {
  std::string text;
  std::array<char, 4096> buf{};
  off_t at = 0;
  while (true) {
    const ssize_t r = ::pread(fd, buf.data(), buf.size(), at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    text.append(buf.data(), static_cast<std::size_t>(r));
    at += r;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

bool write_holder(int fd, const std::string& holder) {
  const std::string line = holder + "\n";
  if (::ftruncate(fd, 0) != 0) return false;
  if (::pwrite(fd, line.data(), line.size(), 0) != static_cast<ssize_t>(line.size())) return false;
  return ::fsync(fd) == 0;
}

/// The host and pid a holder text names ("..., host H, pid P, ..."); false when it names none.
bool parse_holder(const std::string& text, std::string& host, long& pid) {
  const auto h = text.find(", host ");
  const auto p = text.find(", pid ");
  if (h == std::string::npos || p == std::string::npos || p < h) return false;
  host = text.substr(h + 7, p - h - 7);
  try {
    pid = std::stol(text.substr(p + 6));
  } catch (const std::exception&) {
    return false;
  }
  return pid > 0;
}

/// The holder text of an open lock file. A run names itself right after it creates or locks the
/// file, so an empty file is one starting: give it up to 2 s to write (under load a refusal raced
/// that write and said only "another run").
std::string holder_text(int fd) {
  std::string text = read_fd(fd);
  for (int i = 0; text.empty() && i < 200; ++i) {
    ::usleep(10000);
    text = read_fd(fd);
  }
  return text;
}

bool locks_unsupported(int err) { return err == ENOLCK || err == ENOSYS || err == EOPNOTSUPP || err == EINVAL; }

[[noreturn]] void in_use(const std::string& path, const std::string& holder, const char* hint) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  throw Error(detail::concat("'", dir, "' is in use by ", holder.empty() ? "another run (it is starting)" : holder,
                             " (lock file ", path, "); ", hint));
}

}  // namespace

std::string holder_description(const std::string& owner) {
  std::array<char, 32> when{};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when.data(), when.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return detail::concat(owner, ", host ", host_name(), ", pid ", ::getpid(), ", since ", when.data());
}

FolderLock::FolderLock(const std::string& dir, const std::string& owner, LockMethod method)
    : path_((std::filesystem::path(dir) / file_name).string()), method_(method) {
  const std::string holder = holder_description(owner);
  // A lock file removed and re-created by other runs between our open and our lock makes us
  // retry; more than a few rounds means something keeps replacing it.
  for (int attempt = 0; attempt < 50; ++attempt) {
    const bool done = method_ == LockMethod::flock ? try_flock(holder) : try_pid_file(holder);
    if (done) return;
  }
  throw Error(detail::concat("cannot lock '", dir, "': its lock file ", path_, " keeps being replaced"));
}

bool FolderLock::try_flock(const std::string& holder) {
  bool created = true;
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0 && errno == EEXIST) {
    created = false;
    fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return false;  // removed in between: try again
  }
  require(fd >= 0, "cannot create the lock file ", path_, ": ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      const std::string other = holder_text(fd);
      ::close(fd);
      in_use(path_, other, "wait for it to end, or use another folder");
    }
    if (created) ::unlink(path_.c_str());
    ::close(fd);
    require(locks_unsupported(err), "cannot lock ", path_, ": ", std::strerror(err));
    method_ = LockMethod::pid_file;  // this file system has no locks
    return false;
  }
  // The holder before us may have removed the file after we opened it (see the destructor): then
  // our lock is on a file nobody else sees, and we start again.
  struct stat opened {};
  struct stat named {};
  if (::fstat(fd, &opened) != 0 || ::stat(path_.c_str(), &named) != 0 || opened.st_ino != named.st_ino ||
      opened.st_dev != named.st_dev) {
    ::close(fd);
    return false;
  }
  previous_ = read_fd(fd);  // a holder that ended without removing its lock file
  hold(fd, holder);
  return true;
}

void FolderLock::hold(int fd, const std::string& holder) {
  if (!write_holder(fd, holder)) {
    const int err = errno;
    ::unlink(path_.c_str());
    ::close(fd);
    throw Error(detail::concat("cannot write the lock file ", path_, ": ", std::strerror(err)));
  }
  fd_ = fd;
}

bool FolderLock::try_pid_file(const std::string& holder) {
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd >= 0) {
    hold(fd, holder);
    return true;
  }
  require(errno == EEXIST, "cannot create the lock file ", path_, ": ", std::strerror(errno));
  const int rd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (rd < 0) return false;  // removed in between: try again
  const std::string other = holder_text(rd);
  ::close(rd);
  std::string host;
  long pid = 0;
  if (other.empty()) in_use(path_, other, "wait for it to end, or use another folder");
  const bool here = parse_holder(other, host, pid) && host == host_name();
  if (!here) in_use(path_, other, "this file system has no locks: remove the lock file once that run has ended");
  if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)
    in_use(path_, other, "wait for it to end, or use another folder");
  // The named process is gone: take the file over (another run may race us; O_EXCL decides).
  if (previous_.empty()) previous_ = other;
  ::unlink(path_.c_str());
  return false;
}

OutputFolder::OutputFolder(const std::string& dir, const std::string& owner) : dir_(dir) {
  std::error_code ec;
  created_ = !std::filesystem::exists(dir_, ec);
  prepare_output_folder(dir_);
  try {
    lock_ = std::make_unique<FolderLock>(dir_, owner);
  } catch (...) {
    if (created_) std::filesystem::remove(dir_, ec);
    throw;
  }
}

OutputFolder::~OutputFolder() {
  lock_.reset();
  // remove() leaves a folder that holds anything.
  std::error_code ec;
  if (created_) std::filesystem::remove(dir_, ec);
}

std::string OutputFolder::takeover_note() const {
  if (lock_->previous_holder().empty()) return {};
  return "took over the lock of " + lock_->previous_holder() + ", which ended without releasing it";
}

FolderLock::~FolderLock() {
  if (fd_ < 0) return;
  // Removed while still held, so a run that opened the file meanwhile sees it replaced (above).
  ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace idprune::io
