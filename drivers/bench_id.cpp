// Placeholder so that `idprune bench` links until the dist helper's bench_id.cpp replaces this file.
#include <string>
#include <vector>

#include "idprune/la/error.hpp"

namespace idprune::cli {

int run_bench_id(const std::vector<std::string>& /*args*/) { throw Error("bench id: not built yet"); }

}  // namespace idprune::cli
