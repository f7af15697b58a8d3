#include "idprune/dist/parallelism.hpp"

#include <sched.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "idprune/la/blas.hpp"
#include "idprune/la/error.hpp"

namespace idprune::dist {

namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

std::optional<double> parse_number(const std::string& text) {
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

/// Quota / period in cores from one cgroup folder, if it sets one. v2: cpu.max "QUOTA PERIOD" or
/// "max PERIOD"; v1: cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
std::optional<double> quota_in(const fs::path& dir) {
  if (const auto line = read_first_line(dir / "cpu.max")) {
    std::istringstream words(*line);
    std::string quota;
    std::string period;
    words >> quota >> period;
    if (quota == "max") return std::nullopt;
    const auto q = parse_number(quota);
    const auto p = parse_number(period);
    if (q && p && *q > 0 && *p > 0) return *q / *p;
    return std::nullopt;
  }
  const auto quota = read_first_line(dir / "cpu.cfs_quota_us");
  const auto period = read_first_line(dir / "cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  const auto q = parse_number(*quota);
  const auto p = parse_number(*period);
  if (q && p && *q > 0 && *p > 0) return *q / *p;
  return std::nullopt;
}

/// The smallest quota on `relative` (a cgroup path as /proc/self/cgroup gives it) and on each of
/// its ancestors under `mount`. Without a cgroup namespace a container sees its host's path, which
/// need not exist under its own mount: folders that do not exist are skipped.
std::optional<double> smallest_quota(const fs::path& mount, const std::string& relative) {
  std::vector<fs::path> parts;
  for (const auto& part : fs::path(relative).relative_path()) {
    if (part.empty() || part == "." || part == "..") continue;
    parts.push_back(part);
  }
  std::optional<double> best;
  for (std::size_t depth = 0; depth <= parts.size(); ++depth) {
    fs::path dir = mount;
    for (std::size_t i = 0; i < depth; ++i) dir /= parts[i];
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    if (const auto q = quota_in(dir)) best = best ? std::min(*best, *q) : *q;
  }
  return best;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

}  // namespace

namespace detail {

int cgroup_cpu_quota(const std::string& proc_cgroup, const std::string& cgroup_root) {
  const fs::path root(cgroup_root);
  std::optional<double> best;
  auto consider = [&best](std::optional<double> q) {
    if (q) best = best ? std::min(*best, *q) : *q;
  };
  std::istringstream lines(proc_cgroup);
  std::string line;
  while (std::getline(lines, line)) {
    // hierarchy-ID:controller-list:cgroup-path (the path may itself contain ':').
    const auto first = line.find(':');
    if (first == std::string::npos) continue;
    const auto second = line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (controllers.empty()) {
      consider(smallest_quota(root, path));  // cgroup v2: one unified hierarchy at the root
      continue;
    }
    const auto names = split(controllers, ',');
    if (std::find(names.begin(), names.end(), "cpu") == names.end()) continue;
    // cgroup v1: the cpu controller is mounted under its controller list (cpu,cpuacct), usually
    // with a symbolic link named cpu.
    for (const fs::path& mount : {root / controllers, root / "cpu"}) {
      std::error_code ec;
      if (fs::is_directory(mount, ec)) {
        consider(smallest_quota(mount, path));
        break;
      }
    }
  }
  if (!best) return 0;
  const double cores = std::floor(*best);
  if (cores >= static_cast<double>(std::numeric_limits<int>::max())) return std::numeric_limits<int>::max();
  return std::max(1, static_cast<int>(cores));
}

}  // namespace detail

int available_cores() {
  int cores = 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cores = std::max(1, CPU_COUNT(&set));
  std::ifstream in("/proc/self/cgroup");
  if (in) {
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const int quota = detail::cgroup_cpu_quota(text, "/sys/fs/cgroup");
    if (quota > 0) cores = std::min(cores, quota);
  }
  return cores;
}

ResolvedThreads resolve_threads(int requested, const std::string& option_name) {
  require(requested >= 0, option_name, "=", requested, " (needs >= 0; 0 means every core this process may use)");
  const int cores = available_cores();
  if (requested == 0) return {cores, {}};
  if (requested > cores)
    return {cores, idprune::detail::concat(option_name, " ", requested, " exceeds the ", cores,
                                           " cores this process may use; using ", cores)};
  return {requested, {}};
}

struct ThreadLimit::State {
  tbb::global_control parallelism;
  la::ScopedBlasThreads blas;
  explicit State(int threads)
      : parallelism(tbb::global_control::max_allowed_parallelism, static_cast<std::size_t>(threads)), blas(threads) {}
};

ThreadLimit::ThreadLimit(int threads) : threads_(threads) {
  require(threads >= 1, "dist::ThreadLimit: threads=", threads, " (needs >= 1)");
  state_ = std::make_unique<State>(threads);
}

ThreadLimit::~ThreadLimit() = default;

}  // namespace idprune::dist
