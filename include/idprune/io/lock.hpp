#pragma once
// An exclusive advisory lock on a folder, held by one run for its whole life (a results folder
// written by two runs at once loses or duplicates rows).
#include <memory>
#include <string>

namespace idprune::io {

/// How FolderLock excludes other processes.
enum class LockMethod {
  /// flock(2) on the lock file: the kernel drops the lock when the holder ends, however it ends,
  /// so a lock left by a killed run is free. Falls back to `pid_file` where the file system has
  /// no locks (ENOLCK, ENOSYS, EOPNOTSUPP).
  flock,
  /// The lock file's existence (created with O_EXCL): a file naming a process of this host that
  /// no longer runs is stale and taken over; one naming another host is not (its liveness cannot
  /// be checked): the error then says to remove it once that run has ended.
  pid_file,
};

/// Exclusive lock on the folder `dir` through the lock file DIR/idprune.lock, which names the
/// holder: "OWNER, host H, pid P, since T". Released (the lock file removed) on destruction.
class FolderLock {
 public:
  static constexpr const char* file_name = "idprune.lock";

  /// Takes the lock at once or throws idprune::Error naming the folder and the holder. A lock
  /// file whose holder no longer holds it (a run that was killed) is taken over: previous_holder()
  /// then names that run. `dir` must exist.
  FolderLock(const std::string& dir, const std::string& owner, LockMethod method = LockMethod::flock);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  /// The holder text of a stale lock file this lock replaced ("" when there was none).
  [[nodiscard]] const std::string& previous_holder() const { return previous_; }
  [[nodiscard]] LockMethod method() const { return method_; }

 private:
  bool try_flock(const std::string& holder);
  bool try_pid_file(const std::string& holder);
  /// Writes `holder` into the locked file `fd` and keeps it (on failure: removed, an Error).
  void hold(int fd, const std::string& holder);

  std::string path_;
  std::string previous_;
  LockMethod method_;
  int fd_ = -1;
};

/// The output folder of one run: created when missing, locked (FolderLock) for the object's
/// lifetime, and removed again on destruction when the run created it and left it empty (a run
/// that failed before writing anything leaves nothing behind).
class OutputFolder {
 public:
  /// io::prepare_output_folder(dir), then the lock for `owner` (an error naming a live holder).
  OutputFolder(const std::string& dir, const std::string& owner);
  ~OutputFolder();
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;

  [[nodiscard]] const std::string& path() const { return dir_; }
  /// "took over the lock of HOLDER, which ended without releasing it", or "" when the lock was free.
  [[nodiscard]] std::string takeover_note() const;

 private:
  std::string dir_;
  bool created_ = false;
  std::unique_ptr<FolderLock> lock_;
};

/// "OWNER, host H, pid P, since YYYY-MM-DDTHH:MM:SSZ" for this process.
[[nodiscard]] std::string holder_description(const std::string& owner);

}  // namespace idprune::io
