#pragma once
// A clean stop of a long run on SIGINT, SIGTERM or SIGUSR1, on every MPI rank together.
#include <exception>
#include <string>

#include "idprune/dist/comm.hpp"

namespace idprune::app {

/// Stops a long run cleanly: SIGINT, SIGTERM and SIGUSR1 (the one mpirun forwards without killing
/// the ranks; SLURM sends it with --signal=B:USR1@SECONDS) are caught for the object's lifetime.
/// The first sets requested() and, where `announce` (rank 0), prints at once "COMMAND: stopping
/// after the UNIT in flight (Ctrl-C again to stop now)". A second ends the process at once with
/// exit status 128 + that signal (130 for SIGINT, 143 for SIGTERM): whatever is on disk then is
/// what a resume continues from (rows are appended whole and fsync'd; a cut last line is dropped).
class StopSignals {
 public:
  StopSignals(const std::string& command, const std::string& unit, bool announce);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  [[nodiscard]] bool requested() const;
  /// 128 + the first signal caught (0 when none was).
  [[nodiscard]] int exit_code() const;
};

/// Thrown on every rank by throw_if_stop_requested: the run stops between two units of work.
struct StopRequested : std::exception {
  [[nodiscard]] const char* what() const noexcept override { return "stopped by a signal"; }
};
/// Collective (one allreduce): throws StopRequested on every rank when a stop was requested on any.
void throw_if_stop_requested(const dist::Comm& comm, const StopSignals& signals);

}  // namespace idprune::app
