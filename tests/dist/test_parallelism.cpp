// dist::available_cores, resolve_threads and ThreadLimit (parallelism.hpp), and the cgroup CPU
// quota read from fake cgroup trees.
#include <gtest/gtest.h>
#include <sched.h>
#include <tbb/global_control.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "idprune/dist/parallelism.hpp"
#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"

namespace idprune::test {
namespace {

namespace fs = std::filesystem;

int affinity_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  return CPU_COUNT(&set);
}

TEST(Parallelism, AvailableCoresIsWithinTheAffinityMask) {
  const int cores = dist::available_cores();
  EXPECT_GE(cores, 1);
  const int mask = affinity_count();
  ASSERT_GT(mask, 0);
  EXPECT_LE(cores, mask);
}

TEST(Parallelism, AvailableCoresFollowsANarrowedAffinityMask) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; ++c)
    if (CPU_ISSET(c, &saved)) first = c;
  ASSERT_GE(first, 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);  // this thread only
  const int cores = dist::available_cores();
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  EXPECT_EQ(cores, 1);
}

TEST(Parallelism, ResolveThreadsZeroMeansEveryAvailableCore) {
  const auto r = dist::resolve_threads(0, "--threads");
  EXPECT_EQ(r.threads, dist::available_cores());
  EXPECT_TRUE(r.warning.empty()) << r.warning;
}

TEST(Parallelism, ResolveThreadsKeepsAFeasibleRequest) {
  const auto r = dist::resolve_threads(1, "--threads");
  EXPECT_EQ(r.threads, 1);
  EXPECT_TRUE(r.warning.empty()) << r.warning;
}

TEST(Parallelism, ResolveThreadsLowersAnExcessiveRequestWithAWarning) {
  const int cores = dist::available_cores();
  const auto r = dist::resolve_threads(cores + 3, "--workers");
  EXPECT_EQ(r.threads, cores);
  EXPECT_NE(r.warning.find("--workers"), std::string::npos) << r.warning;
  EXPECT_NE(r.warning.find(std::to_string(cores + 3)), std::string::npos) << r.warning;
}

TEST(Parallelism, ResolveThreadsRejectsANegativeRequest) {
  try {
    (void)dist::resolve_threads(-2, "--threads");
    ADD_FAILURE() << "resolve_threads(-2) did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--threads=-2"), std::string::npos) << e.what();
  }
}

TEST(Parallelism, ThreadLimitBoundsTbbAndBlasAndRestoresBlas) {
  const int before = la::blas_threads();
  {
    const dist::ThreadLimit limit(1);
    EXPECT_EQ(limit.threads(), 1);
    EXPECT_EQ(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism), 1U);
    EXPECT_EQ(la::blas_threads(), 1);
  }
  EXPECT_EQ(la::blas_threads(), before);
  EXPECT_THROW(dist::ThreadLimit(0), Error);
}

/// A fake cgroup mount in a fresh temporary folder, removed at the end of the test.
class FakeCgroups : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("idprune_cgroup_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& relative, const std::string& text) {
    const fs::path file = root_ / relative;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text << "\n";
  }
  [[nodiscard]] std::string root() const { return root_.string(); }

 private:
  fs::path root_;
};

TEST_F(FakeCgroups, V2QuotaIsRoundedDown) {
  write("job/cpu.max", "250000 100000");
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("0::/job\n", root()), 2);
}

TEST_F(FakeCgroups, V2WithoutQuotaGivesNone) {
  write("job/cpu.max", "max 100000");
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("0::/job\n", root()), 0);
}

TEST_F(FakeCgroups, V2TheSmallestQuotaOfAnAncestorWins) {
  write("cpu.max", "max 100000");
  write("slice/cpu.max", "300000 100000");
  write("slice/job/cpu.max", "max 100000");
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("0::/slice/job\n", root()), 3);
}

TEST_F(FakeCgroups, AQuotaBelowOneCoreStillGivesOne) {
  write("cpu.max", "50000 100000");
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("0::/\n", root()), 1);
}

TEST_F(FakeCgroups, AHostPathMissingInsideTheContainerFallsBackToTheMount) {
  write("cpu.max", "400000 100000");
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("0::/docker/0123abcd\n", root()), 4);
}

TEST_F(FakeCgroups, V1CpuControllerQuota) {
  write("cpu,cpuacct/batch/cpu.cfs_quota_us", "600000");
  write("cpu,cpuacct/batch/cpu.cfs_period_us", "100000");
  write("memory/batch/memory.limit_in_bytes", "1000000");
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("4:memory:/batch\n3:cpu,cpuacct:/batch\n", root()), 6);
}

TEST_F(FakeCgroups, V1UnlimitedQuotaGivesNone) {
  write("cpu/cpu.cfs_quota_us", "-1");
  write("cpu/cpu.cfs_period_us", "100000");
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("2:cpu:/\n", root()), 0);
}

TEST_F(FakeCgroups, NoCgroupInformationGivesNone) {
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("", root()), 0);
  EXPECT_EQ(dist::detail::cgroup_cpu_quota("garbage without colons\n", root()), 0);
}

}  // namespace
}  // namespace idprune::test
