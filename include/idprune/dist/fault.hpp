#pragma once
// Fault injection, a test facility (not a user feature): the environment variable
//
//   IDPRUNE_FAULT="rank=R,phase=P[,wave=W]"      (or call=C for the engine phase)
//
// makes rank R (of MPI_COMM_WORLD; `rank=*` means every rank) throw idprune::Error when it reaches
// the point named P, and only in wave W (0-based, the `wave` column of a result row) or engine call
// C (0-based, counted per process) when given. The tests in tests/fault/ use it to check that a failure on one rank
// ends every rank with one clear message and a non-zero exit instead of a hang. Points (see drivers/sweep.cpp):
//   load-model  before the model is read            (a collective error check follows)
//   load-data   before the data set is read         (a collective error check follows)
//   wave        before wave W is computed           (a collective error check follows)
//   wave-abort  after wave W is computed, outside any check, while the other ranks already wait in
//               a collective: the uncoordinated path (the failing rank ends the job with MPI_Abort)
//   engine      inside a pivot engine call (dist::distributed_cpqr / distributed_id), after its
//               input checks, while the other ranks enter the engine's collectives (MPI_Abort path)
// Unset or empty: nothing happens. A malformed value is itself an error.
#include <string_view>

namespace idprune::dist {

/// Throws idprune::Error("injected fault (IDPRUNE_FAULT=...) on rank R at P") when IDPRUNE_FAULT
/// names `rank` and `phase` (and `index`, the wave or call, when the variable gives one); otherwise
/// does nothing.
void inject_fault(int rank, std::string_view phase, long index = -1);

}  // namespace idprune::dist
