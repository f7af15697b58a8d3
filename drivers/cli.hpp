#pragma once
// The table of `idprune` subcommands. The option machinery, the stop signals and the loading of
// a run's inputs are the library's (idprune/app); the subcommands name them unqualified.
#include <string>
#include <vector>

#include "idprune/app/inputs.hpp"
#include "idprune/app/model_options.hpp"
#include "idprune/app/options.hpp"
#include "idprune/app/stop.hpp"

namespace idprune::cli {

namespace po = boost::program_options;
using namespace idprune::app;  // NOLINT(google-build-using-namespace): the drivers are app's front end

/// A subcommand: `idprune NAME ...` calls run(args) with the arguments after NAME.
struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

/// Every subcommand, in the order `idprune --help` lists them (defined in main.cpp).
const std::vector<Subcommand>& subcommands();

}  // namespace idprune::cli
