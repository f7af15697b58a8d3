#pragma once
// Version and provenance of this build, recorded in every result file.
#include <string>

namespace idprune {

/// "MAJOR.MINOR.PATCH".
[[nodiscard]] std::string version_string();
/// `git describe --always --dirty` of the source tree at build time, or "unknown".
[[nodiscard]] std::string git_revision();

}  // namespace idprune
