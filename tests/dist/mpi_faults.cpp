// Collective error checks under mpiexec -n 1..4: a failure or a differing value on one rank ends
// every rank with the same CollectiveError naming that rank, and nothing happens when all agree.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "idprune/dist/comm.hpp"
#include "idprune/dist/fault.hpp"

namespace idprune::test {
namespace {

TEST(CollectiveChecks, CheckSameThrowsOnEveryRankNamingTheFirstDifferingRank) {
  const auto comm = dist::Comm::world();
  EXPECT_NO_THROW(dist::check_same(comm, 42, "never reported"));
  if (comm.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  // The last rank and (with 4 ranks) rank 2 differ: the lowest differing rank is reported.
  const bool differs = comm.rank() == comm.size() - 1 || comm.rank() == 2;
  const int first = comm.size() >= 3 ? 2 : 1;
  try {
    dist::check_same(comm, differs ? 7 : 42, "rank " + std::to_string(comm.rank()) + " holds another value");
    ADD_FAILURE() << "rank " << comm.rank() << ": no error";
  } catch (const dist::CollectiveError& e) {
    EXPECT_EQ(e.failing_rank(), first);
    EXPECT_EQ(std::string(e.what()),
              "rank " + std::to_string(first) + ": rank " + std::to_string(first) + " holds another value");
  }
  // The communicator is still usable afterwards (every rank left the check together).
  EXPECT_EQ(comm.sum(1), comm.size());
}

TEST(CollectiveChecks, InjectedFaultOnOneRankBecomesACollectiveErrorOnEveryRank) {
  const auto comm = dist::Comm::world();
  const int target = comm.size() - 1;
  const std::string spec = "rank=" + std::to_string(target) + ",phase=wave,wave=3";
  ASSERT_EQ(::setenv("IDPRUNE_FAULT", spec.c_str(), 1), 0);
  // Another phase or wave: nothing.
  EXPECT_NO_THROW(
      dist::check_collective(comm, dist::capture_error([&] { dist::inject_fault(comm.rank(), "wave", 2); })));
  EXPECT_NO_THROW(
      dist::check_collective(comm, dist::capture_error([&] { dist::inject_fault(comm.rank(), "load-data"); })));
  try {
    dist::check_collective(comm, dist::capture_error([&] { dist::inject_fault(comm.rank(), "wave", 3); }));
    ADD_FAILURE() << "rank " << comm.rank() << ": no error";
  } catch (const dist::CollectiveError& e) {
    EXPECT_EQ(e.failing_rank(), target);
    EXPECT_NE(std::string(e.what()).find("injected fault"), std::string::npos) << e.what();
  }
  ::unsetenv("IDPRUNE_FAULT");
  EXPECT_NO_THROW(dist::inject_fault(comm.rank(), "wave", 3));
}

TEST(CollectiveChecks, MalformedFaultSpecIsAnErrorNotIgnored) {
  for (const char* spec :
       {"rank=1", "phase=wave", "rank=x,phase=wave", "rank=0,phase=nowhere", "rank=0,when=1", "rank=0;phase=wave"}) {
    ASSERT_EQ(::setenv("IDPRUNE_FAULT", spec, 1), 0);
    EXPECT_THROW(dist::inject_fault(0, "wave", 0), Error) << spec;
  }
  ASSERT_EQ(::setenv("IDPRUNE_FAULT", "rank=*,phase=load-model", 1), 0);
  EXPECT_THROW(dist::inject_fault(5, "load-model"), Error);
  ::unsetenv("IDPRUNE_FAULT");
}

}  // namespace
}  // namespace idprune::test
