#pragma once
// Progress of a long sweep, for a person watching a terminal or reading a batch log: on a terminal
// a bar redrawn in place with rate and ETA; otherwise (a file, a SLURM log) a plain line at most
// every `line_interval` seconds and at the end. The caller decides who prints (MPI rank 0 only).
#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>

namespace idprune::compress {

/// True when file descriptor `fd` is a terminal (isatty).
[[nodiscard]] bool is_terminal(int fd);

class Progress {
 public:
  /// `total` points of which `already_done` were finished before this run (they do not count
  /// towards the rate).
  Progress(std::ostream& out, std::string label, std::size_t total, std::size_t already_done, bool terminal,
           double line_interval_seconds = 30.0);
  /// `done` points of the whole grid are now finished (already_done included).
  void update(std::size_t done);
  /// Prints the final state (and a newline after a bar).
  void finish();

  /// The text shown for a state: "label [#####.....] 12/32 points, 3.1 points/s, ETA 7s"
  /// (bar_width 0: no bar). rate <= 0 means unknown (no ETA).
  [[nodiscard]] static std::string render(const std::string& label, std::size_t done, std::size_t total, double rate,
                                          int bar_width);

 private:
  void print(bool final);

  std::ostream& out_;
  std::string label_;
  std::size_t total_;
  std::size_t first_;
  std::size_t done_;
  bool terminal_;
  double interval_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_line_;
  bool printed_ = false;
  std::size_t last_printed_ = 0;  ///< done count of the last plain line
};

}  // namespace idprune::compress
