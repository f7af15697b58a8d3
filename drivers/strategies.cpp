// `idprune strategies`: the strategy registry as a table (--markdown: README.md's table).
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/app/strategy_table.hpp"

namespace idprune::cli {

namespace {
const char* const kUsage = R"([--markdown]

Every compression strategy idprune knows (the registry `sweep`, `pareto`, `compress`, --help and
the report read): family (sweep: one rule value per model; budget: one model per parameter budget;
search: a search on the validation split), selection policy, the rank rules `idprune sweep` takes,
and what it does. --markdown prints README.md's table (a test keeps them equal).

Example:
  idprune strategies --markdown)";
}  // namespace

int run_strategies(const std::vector<std::string>& args) {
  po::options_description options("strategies options");
  options.add_options()("markdown", po::bool_switch()->default_value(false), "a Markdown table");
  po::variables_map vm;
  if (!parse("strategies", kUsage, options, args, vm)) return 0;
  std::cout << (vm["markdown"].as<bool>() ? app::strategy_table_markdown() : app::strategy_table());
  return 0;
}

}  // namespace idprune::cli
