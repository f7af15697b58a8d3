#pragma once
// How many threads a rank may use, and keeping it to them (DESIGN.md, parallel model: the threads
// of a rank never exceed the cores given to it; BLAS stays single-threaded inside TBB tasks). One
// place for the policy, so drivers and benchmarks do not each count cores their own way.
#include <memory>
#include <string>

namespace idprune::dist {

/// The cores this process may run on: the CPUs of its affinity mask (sched_getaffinity; what
/// mpirun --bind-to, SLURM task binding or taskset leave it), bounded by the CPU quota of its
/// cgroup (cgroup v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us, on its cgroup and every
/// ancestor; a fractional quota rounds down so the quota is never exceeded). At least 1.
[[nodiscard]] int available_cores();

/// A thread count resolved from a command-line option.
struct ResolvedThreads {
  int threads = 1;      ///< threads to use, 1 <= threads <= available_cores()
  std::string warning;  ///< why the request was lowered (empty when it was not); print it once
};

/// The thread count for option `option_name` (e.g. "--threads") given as `requested`: 0 means
/// available_cores(); a request above available_cores() is lowered to it, with a warning naming
/// the option; a negative request throws idprune::Error.
[[nodiscard]] ResolvedThreads resolve_threads(int requested, const std::string& option_name);

/// For its lifetime, at most `threads` threads in this process: TBB's parallelism
/// (tbb::global_control max_allowed_parallelism; nested limits: the smallest active one wins) and
/// OpenBLAS's thread count for BLAS calls outside TBB tasks, restored to its previous value on
/// destruction. Create it from one thread (the one that calls MPI), e.g. at the top of a driver.
class ThreadLimit {
 public:
  /// threads >= 1, else idprune::Error.
  explicit ThreadLimit(int threads);
  ~ThreadLimit();
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;
  ThreadLimit(ThreadLimit&&) = delete;
  ThreadLimit& operator=(ThreadLimit&&) = delete;

  [[nodiscard]] int threads() const { return threads_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  int threads_;
};

namespace detail {
/// The CPU quota of the cgroup a process is in, as whole cores (rounded down, at least 1), or 0
/// when no quota applies. `proc_cgroup` is the text of /proc/self/cgroup, `cgroup_root` the
/// mount point of the cgroup file systems (/sys/fs/cgroup); arguments so tests can use a fake tree.
[[nodiscard]] int cgroup_cpu_quota(const std::string& proc_cgroup, const std::string& cgroup_root);
}  // namespace detail

}  // namespace idprune::dist
