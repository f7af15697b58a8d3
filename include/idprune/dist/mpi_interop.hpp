#pragma once
// The raw MPI communicator behind a dist::Comm, for the few places that call MPI or an MPI-based
// library themselves (drivers, tests, the ScaLAPACK engine). Everything else talks MPI through
// dist::Comm, whose header does not include <mpi.h>. This header needs MPI's include path: a
// target outside dist links idprune::mpi_interop (dist plus MPI::MPI_CXX).
#include <mpi.h>

#include "idprune/dist/comm.hpp"

namespace idprune::dist {

/// A non-owning Comm viewing `comm` (its error handler is set to MPI_ERRORS_RETURN). Requires MPI
/// to be initialised.
[[nodiscard]] Comm wrap(MPI_Comm comm);

/// The MPI communicator behind `comm` (MPI_COMM_NULL for an empty Comm, e.g. the result of
/// split() with a negative color on this rank). `comm` keeps ownership.
[[nodiscard]] MPI_Comm native(const Comm& comm);

namespace detail {
/// Throws idprune::Error "<routine> failed: <MPI's error string>" when rc != MPI_SUCCESS.
void check_mpi(int rc, const char* routine);
}  // namespace detail

}  // namespace idprune::dist
