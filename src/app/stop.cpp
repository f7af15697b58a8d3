#include "idprune/app/stop.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>

namespace idprune::app {

// ---- Stop signals -------------------------------------------------------------------------------
// A signal handler can only reach process-wide state; the messages are formatted in advance, since
// only async-signal-safe calls (write, _exit) may run inside it.
namespace {
volatile std::sig_atomic_t first_signal = 0;
std::array<char, 256> ack_text{};
std::size_t ack_size = 0;
std::array<char, 256> now_text{};
std::size_t now_size = 0;
constexpr std::array<int, 3> kStopSignals = {SIGINT, SIGTERM, SIGUSR1};
std::array<struct sigaction, 3> previous_actions{};

extern "C" void on_stop_signal(int sig) {
  if (first_signal == 0) {
    first_signal = sig;
    if (ack_size > 0) {
      const ssize_t w = ::write(STDERR_FILENO, ack_text.data(), ack_size);
      (void)w;
    }
    return;
  }
  if (now_size > 0) {
    const ssize_t w = ::write(STDERR_FILENO, now_text.data(), now_size);
    (void)w;
  }
  ::_exit(128 + sig);
}

std::size_t format_into(std::array<char, 256>& buf, const std::string& text) {
  const std::size_t n = std::min(text.size(), buf.size());
  std::copy_n(text.data(), n, buf.data());
  return n;
}
}  // namespace

StopSignals::StopSignals(const std::string& command, const std::string& unit, bool announce) {
  first_signal = 0;
  ack_size = announce ? format_into(ack_text, "\n" + command + ": stopping after the " + unit +
                                                  " in flight (Ctrl-C again to stop now)\n")
                      : 0;
  now_size =
      announce ? format_into(now_text, command + ": stopped now; what is on disk is kept (--resume continues)\n") : 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (std::size_t i = 0; i < kStopSignals.size(); ++i) sigaction(kStopSignals[i], &sa, &previous_actions[i]);
}

StopSignals::~StopSignals() {
  for (std::size_t i = 0; i < kStopSignals.size(); ++i) sigaction(kStopSignals[i], &previous_actions[i], nullptr);
}

bool StopSignals::requested() const { return first_signal != 0; }
int StopSignals::exit_code() const { return first_signal != 0 ? 128 + first_signal : 0; }

void throw_if_stop_requested(const dist::Comm& comm, const StopSignals& signals) {
  int stop = signals.requested() ? 1 : 0;
  comm.allreduce_max(std::span<int>(&stop, 1));
  if (stop != 0) throw StopRequested();
}

}  // namespace idprune::app
