#include "idprune/compress/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace idprune::compress {

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

Progress::Progress(std::ostream& out, std::string label, std::size_t total, std::size_t already_done, bool terminal,
                   double line_interval_seconds)
    : out_(out),
      label_(std::move(label)),
      total_(total),
      first_(already_done),
      done_(already_done),
      terminal_(terminal),
      interval_(line_interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_line_(start_) {}

namespace {
std::string duration_text(double s) {
  char buf[32];
  if (s < 90)
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 5400)
    std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(s / 60), std::fmod(s, 60));
  else
    std::snprintf(buf, sizeof buf, "%.0fh%02.0fm", std::floor(s / 3600), std::floor(std::fmod(s, 3600) / 60));
  return buf;
}
}  // namespace

std::string Progress::render(const std::string& label, std::size_t done, std::size_t total, double rate,
                             int bar_width) {
  std::string s = label;
  if (bar_width > 0) {
    const double f = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const int filled = static_cast<int>(std::floor(f * bar_width));
    s += " [" + std::string(static_cast<std::size_t>(filled), '#') +
         std::string(static_cast<std::size_t>(bar_width - filled), '.') + "]";
  }
  char buf[128];
  const double pct = total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
  std::snprintf(buf, sizeof buf, " %zu/%zu points (%.0f%%)", done, total, pct);
  s += buf;
  if (rate > 0.0) {
    std::snprintf(buf, sizeof buf, ", %.3g points/s", rate);
    s += buf;
    if (done < total) s += ", ETA " + duration_text(static_cast<double>(total - done) / rate);
  }
  return s;
}

void Progress::update(std::size_t done) {
  done_ = done;
  print(false);
}

void Progress::finish() {
  print(true);
  if (terminal_ && printed_) out_ << "\n";
  out_.flush();
}

void Progress::print(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0.0 && done_ > first_ ? static_cast<double>(done_ - first_) / elapsed : 0.0;
  if (terminal_) {
    out_ << "\r" << render(label_, done_, total_, rate, 30) << "   " << std::flush;
    printed_ = true;
    return;
  }
  const double since = std::chrono::duration<double>(now - last_line_).count();
  if (!final && since < interval_ && done_ < total_) return;
  if (final && printed_ && done_ == last_printed_) return;
  out_ << render(label_, done_, total_, rate, 0) << ", elapsed " << duration_text(elapsed) << "\n" << std::flush;
  last_line_ = now;
  last_printed_ = done_;
  printed_ = true;
}

}  // namespace idprune::compress
