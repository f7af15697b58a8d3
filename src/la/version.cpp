#include "idprune/version.hpp"

#include "idprune_git_revision.hpp"
#include "idprune_version_number.hpp"

namespace idprune {
std::string version_string() { return IDPRUNE_VERSION; }
std::string git_revision() { return IDPRUNE_GIT_REVISION; }
}  // namespace idprune
