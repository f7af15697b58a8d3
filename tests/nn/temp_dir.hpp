#pragma once
// A fresh, empty folder for one nn test (named after the test file's `group`, the `tag` and the
// process id, so parallel test processes never share one); the test removes it when done.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace idprune::test {

inline std::filesystem::path nn_temp_dir(const std::string& group, const std::string& tag) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("idprune_test_" + group + "_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace idprune::test
