// The io layer: atomic and appending writes (content, permissions, nothing left behind when the
// disk is full), the folder lock (exclusion between processes, holder named, stale locks taken
// over) and SHA-256 content hashes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "data/files.hpp"
#include "idprune/io/file.hpp"
#include "idprune/io/lock.hpp"
#include "idprune/io/sha256.hpp"
#include "idprune/la/error.hpp"

namespace idprune::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

/// Sets the umask for its lifetime.
class Umask {
 public:
  explicit Umask(mode_t m) : old_(::umask(m)) {}
  ~Umask() { ::umask(old_); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;

 private:
  mode_t old_;
};

/// Limits the size of files this process may write (RLIMIT_FSIZE): a write beyond it fails with
/// EFBIG, as one on a full disk fails with ENOSPC. SIGXFSZ is ignored meanwhile.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lim);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

TEST(WriteFileAtomically, ReplacesTheContentAndLeavesOnlyTheFile) {
  TempDir dir;
  const std::string path = dir.file("a.txt");
  io::write_file_atomically(path, std::string_view("first\n"));
  io::write_file_atomically(path, std::string_view("second, longer\n"));
  EXPECT_EQ(io::read_file(path), "second, longer\n");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"a.txt"});
  const std::vector<std::uint8_t> bytes = {0, 1, 2, 255};
  io::write_file_atomically(path, std::span<const std::uint8_t>(bytes));
  EXPECT_EQ(read_bytes(path), bytes);
}

TEST(WriteFileAtomically, FullDiskLeavesTheOldFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir.file("results.jsonl");
  io::write_file_atomically(path, std::string_view("old\n"));
  const std::string big(1 << 20, 'x');
  {
    const FileSizeLimit limit(64 * 1024);
    try {
      io::write_file_atomically(path, big);
      FAIL() << "a write past the file size limit succeeded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();  // strerror(EFBIG)
    }
  }
  EXPECT_EQ(io::read_file(path), "old\n");
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"results.jsonl"});
}

TEST(WriteFileAtomically, RealFullDiskWhereATmpfsCanBeMounted) {
  // A tmpfs of 64 KiB is a real full disk (ENOSPC); mounting needs privileges, else skipped.
  TempDir dir;
  const std::string mnt = dir.file("small");
  fs::create_directory(mnt);
  const std::string cmd = "mount -t tmpfs -o size=64k tmpfs '" + mnt + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  const std::string path = mnt + "/model.safetensors";
  io::write_file_atomically(path, std::string_view("small\n"));
  EXPECT_THROW(io::write_file_atomically(path, std::string(1 << 20, 'x')), Error);
  EXPECT_THROW(io::append_durably(mnt + "/results.jsonl", std::string(1 << 20, 'y')), Error);
  const std::vector<std::string> left = entries(mnt);
  const std::string read_back = io::read_file(path);
  EXPECT_EQ(std::system(("umount '" + mnt + "'").c_str()), 0);
  EXPECT_EQ(read_back, "small\n");
  // The failed append may leave a partial file (readers drop an incomplete last line); the failed
  // atomic write leaves nothing.
  for (const auto& name : left) EXPECT_TRUE(name == "model.safetensors" || name == "results.jsonl") << name;
}

TEST(WriteFileAtomically, MissingFolderIsAnErrorNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("no/such/folder/x.csv");
  try {
    io::write_file_atomically(path, std::string_view("x"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(WriteFileAtomically, PermissionsFollowTheUmaskForEveryWriter) {
  TempDir dir;
  for (const mode_t mask : {mode_t{022}, mode_t{077}, mode_t{002}}) {
    const Umask um(mask);
    const std::string whole = dir.file("whole-" + std::to_string(mask));
    const std::string appended = dir.file("appended-" + std::to_string(mask));
    io::write_file_atomically(whole, std::string_view("a"));
    io::append_durably(appended, "b");
    EXPECT_EQ(mode_of(whole), 0666 & ~mask);
    EXPECT_EQ(mode_of(appended), 0666 & ~mask);
  }
}

TEST(AppendDurably, AppendsAndCreates) {
  TempDir dir;
  const std::string path = dir.file("log");
  io::append_durably(path, "a\n");
  io::append_durably(path, "b\n");
  EXPECT_EQ(io::read_file(path), "a\nb\n");
}

TEST(ReadFile, AFolderOrAMissingFileIsAnError) {
  TempDir dir;
  EXPECT_THROW((void)io::read_file(dir.path().string()), Error);
  EXPECT_THROW((void)io::read_file(dir.file("missing")), Error);
}

TEST(PrepareOutputFolder, CreatesItAndRefusesAFile) {
  TempDir dir;
  io::prepare_output_folder(dir.file("a/b"));
  EXPECT_TRUE(fs::is_directory(dir.file("a/b")));
  EXPECT_TRUE(entries(dir.file("a/b")).empty());
  io::write_file_atomically(dir.file("f"), std::string_view("x"));
  EXPECT_THROW(io::prepare_output_folder(dir.file("f")), Error);
}

TEST(FolderLock, ASecondLockFailsNamingTheHolderAndTheFileGoesWithTheLock) {
  TempDir dir;
  const std::string folder = dir.path().string();
  {
    const io::FolderLock lock(folder, "idprune sweep");
    EXPECT_TRUE(lock.previous_holder().empty());
    EXPECT_TRUE(fs::exists(lock.path()));
    try {
      const io::FolderLock second(folder, "idprune pareto");
      FAIL() << "a second lock was granted";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("in use by idprune sweep"), std::string::npos) << what;
      EXPECT_NE(what.find("pid " + std::to_string(::getpid())), std::string::npos) << what;
    }
  }
  EXPECT_FALSE(fs::exists(dir.file(io::FolderLock::file_name)));
  const io::FolderLock again(folder, "idprune sweep");  // free again
}

/// The pid of a process that has ended.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST(FolderLock, AStaleLockFileIsTakenOver) {
  for (const auto method : {io::LockMethod::flock, io::LockMethod::pid_file}) {
    TempDir dir;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string stale = "idprune sweep, host " + std::string(host) + ", pid " + std::to_string(dead_pid()) +
                              ", since 2020-01-01T00:00:00Z";
    io::write_file_atomically(dir.file(io::FolderLock::file_name), stale + "\n");
    const io::FolderLock lock(dir.path().string(), "idprune sweep", method);
    EXPECT_EQ(lock.previous_holder(), stale);
    EXPECT_NE(io::read_file(lock.path()).find("pid " + std::to_string(::getpid())), std::string::npos);
  }
}

TEST(FolderLock, PidFileRefusesALiveHolderAndAnotherHost) {
  TempDir dir;
  const std::string file = dir.file(io::FolderLock::file_name);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  io::write_file_atomically(
      file, "idprune sweep, host " + std::string(host) + ", pid " + std::to_string(::getppid()) + ", since now\n");
  EXPECT_THROW(io::FolderLock(dir.path().string(), "x", io::LockMethod::pid_file), Error);
  io::write_file_atomically(file, "idprune sweep, host elsewhere.example, pid 12345, since now\n");
  try {
    const io::FolderLock lock(dir.path().string(), "x", io::LockMethod::pid_file);
    FAIL() << "a lock file of another host was taken over";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("remove the lock file"), std::string::npos) << e.what();
  }
}

TEST(FolderLock, ExcludesConcurrentProcesses) {
  // 6 processes try the lock 40 times each; a holder writes "enter" and "leave" around a short
  // sleep into a shared log: the log must never show two holders at once.
  for (const auto method : {io::LockMethod::flock, io::LockMethod::pid_file}) {
    TempDir dir;
    const std::string log = dir.file("log");
    std::vector<pid_t> children;
    for (int c = 0; c < 6; ++c) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        int held = 0;
        for (int i = 0; i < 40; ++i) {
          try {
            const io::FolderLock lock(dir.path().string(), "test", method);
            io::append_durably(log, "enter " + std::to_string(::getpid()) + "\n");
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            io::append_durably(log, "leave " + std::to_string(::getpid()) + "\n");
            ++held;
          } catch (const Error&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }
        ::_exit(held > 0 ? 0 : 3);
      }
      children.push_back(pid);
    }
    int holders = 0;
    for (const pid_t pid : children) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      ASSERT_TRUE(WIFEXITED(status)) << "child " << pid;
      holders += WEXITSTATUS(status) == 0;
    }
    std::ifstream in(log);
    std::string word;
    std::string who;
    std::string inside;
    int entries_seen = 0;
    while (in >> word >> who) {
      if (word == "enter") {
        ASSERT_TRUE(inside.empty()) << who << " entered while " << inside << " held the lock";
        inside = who;
        ++entries_seen;
      } else {
        ASSERT_EQ(inside, who);
        inside.clear();
      }
    }
    EXPECT_GE(entries_seen, 6);
    EXPECT_GE(holders, 1);
    EXPECT_FALSE(fs::exists(dir.file(io::FolderLock::file_name)));
  }
}

TEST(Sha256, StandardTestVectors) {
  // FIPS 180-4 examples (NIST CSRC "SHA256.pdf") and the empty message.
  EXPECT_EQ(io::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(io::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(io::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, FilesAndFoldersHashByContentNotByPath) {
  TempDir dir;
  for (const char* sub : {"a", "b"}) {
    fs::create_directories(dir.path() / sub / "inner");
    io::write_file_atomically((dir.path() / sub / "W1.npy").string(), std::string_view("weights"));
    io::write_file_atomically((dir.path() / sub / "inner" / "x").string(), std::string_view("x"));
  }
  const std::string a = dir.file("a");
  const std::string b = dir.file("b");
  EXPECT_EQ(io::sha256_path(a + "/W1.npy"), io::sha256_hex("weights"));
  EXPECT_EQ(io::sha256_path(a), io::sha256_path(b));
  io::write_file_atomically(b + "/.hidden", std::string_view("ignored"));
  EXPECT_EQ(io::sha256_path(a), io::sha256_path(b));
  io::write_file_atomically(b + "/inner/x", std::string_view("y"));
  EXPECT_NE(io::sha256_path(a), io::sha256_path(b));
  fs::rename(b + "/inner/x", b + "/inner/z");
  io::write_file_atomically(b + "/inner/z", std::string_view("x"));
  EXPECT_NE(io::sha256_path(a), io::sha256_path(b));  // a renamed file is another folder
  const std::vector<std::string> files = {a + "/W1.npy", a + "/inner/x"};
  const std::vector<std::string> moved = {b + "/W1.npy", b + "/inner/z"};
  EXPECT_EQ(io::sha256_files(files), io::sha256_files(moved));
  EXPECT_THROW((void)io::sha256_file(dir.file("missing")), Error);
  EXPECT_EQ(io::digest_prefix(io::sha256_hex("abc")), 0xba7816bf8f01cfeaULL);
}

}  // namespace
}  // namespace idprune::test
