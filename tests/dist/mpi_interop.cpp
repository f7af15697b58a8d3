// dist::wrap / dist::native (mpi_interop.hpp), and the mapping of Comm's element types and
// reductions to MPI's, which comm.hpp keeps out of sight of the layers above dist.
#include "idprune/dist/mpi_interop.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>

namespace idprune::test {
namespace {

TEST(MpiInterop, WrapAndNativeViewTheWorldCommunicator) {
  int rank = -1;
  int size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const dist::Comm wrapped = dist::wrap(MPI_COMM_WORLD);
  EXPECT_EQ(wrapped.rank(), rank);
  EXPECT_EQ(wrapped.size(), size);
  EXPECT_EQ(dist::native(wrapped), MPI_COMM_WORLD);
  EXPECT_EQ(dist::native(dist::Comm::world()), MPI_COMM_WORLD);
}

TEST(MpiInterop, NativeOfADuplicateIsCongruentAndCarriesTheSameCollectives) {
  const dist::Comm dup = dist::Comm::world().duplicate();
  int compare = MPI_UNEQUAL;
  ASSERT_EQ(MPI_Comm_compare(dist::native(dup), MPI_COMM_WORLD, &compare), MPI_SUCCESS);
  EXPECT_EQ(compare, MPI_CONGRUENT);
  int mine = dup.rank() + 1;
  int raw_total = 0;
  ASSERT_EQ(MPI_Allreduce(&mine, &raw_total, 1, MPI_INT, MPI_SUM, dist::native(dup)), MPI_SUCCESS);
  EXPECT_EQ(raw_total, dup.sum(mine));
  EXPECT_EQ(raw_total, dup.size() * (dup.size() + 1) / 2);
}

TEST(MpiInterop, AnEmptyCommHasTheNullCommunicator) {
  const dist::Comm none = dist::Comm::world().split(-1, 0);
  EXPECT_EQ(none.size(), 0);
  EXPECT_EQ(dist::native(none), MPI_COMM_NULL);
}

TEST(MpiInterop, CheckMpiNamesTheRoutine) {
  EXPECT_NO_THROW(dist::detail::check_mpi(MPI_SUCCESS, "MPI_Barrier"));
  try {
    dist::detail::check_mpi(MPI_ERR_COMM, "MPI_Barrier");
    ADD_FAILURE() << "check_mpi(MPI_ERR_COMM) did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_Barrier failed"), std::string::npos) << e.what();
  }
}

/// Sum, max and min of rank-dependent values of type T through Comm against their closed forms:
/// a wrong datatype or operation in comm.cpp's mapping gives other values (or an MPI error).
template <class T>
void expect_reductions(const dist::Comm& comm) {
  const int p = comm.size();
  const T mine = static_cast<T>(comm.rank() + 1);
  EXPECT_EQ(comm.sum(mine), static_cast<T>(p * (p + 1) / 2));
  EXPECT_EQ(comm.max(mine), static_cast<T>(p));
  EXPECT_EQ(comm.min(mine), static_cast<T>(1));
  T root_value = comm.rank() == 0 ? static_cast<T>(7) : static_cast<T>(0);
  comm.bcast(std::span<T>(&root_value, 1), 0);
  EXPECT_EQ(root_value, static_cast<T>(7));
}

TEST(MpiInterop, EveryElementTypeReducesAsItsMpiDatatype) {
  const dist::Comm comm = dist::Comm::world();
  expect_reductions<double>(comm);
  expect_reductions<float>(comm);
  expect_reductions<std::int64_t>(comm);
  expect_reductions<std::uint64_t>(comm);
  expect_reductions<int>(comm);
  expect_reductions<char>(comm);
  expect_reductions<unsigned char>(comm);
  // Values beyond 32 bits survive the 64-bit types.
  const std::int64_t big = (std::int64_t{1} << 40) + comm.rank();
  EXPECT_EQ(comm.max(big), (std::int64_t{1} << 40) + comm.size() - 1);
}

}  // namespace
}  // namespace idprune::test
