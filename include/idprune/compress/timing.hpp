#pragma once
// The one place compress reads a clock: the profiling figures it reports (EngineStats' seconds, a
// curve's and a search point's seconds) are taken through these two hooks, so that algorithm
// bodies carry no clock code. Wall-clock (steady) time of the calling thread's scope.
#include <chrono>

namespace idprune::compress {

/// Seconds since construction (or the last restart()).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  void restart() { start_ = std::chrono::steady_clock::now(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Adds the seconds of its scope to `total` when it ends: `ScopedTimer t(stats.fold_seconds);`.
/// stop() adds them early; restart(other) adds them and goes on timing into `other`.
class ScopedTimer {
 public:
  explicit ScopedTimer(double& total) : total_(&total) {}
  ~ScopedTimer() { stop(); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;
  void stop() {
    if (total_ != nullptr) *total_ += watch_.seconds();
    total_ = nullptr;
  }
  void restart(double& total) {
    stop();
    total_ = &total;
    watch_.restart();
  }

 private:
  double* total_;
  Stopwatch watch_;
};

}  // namespace idprune::compress
