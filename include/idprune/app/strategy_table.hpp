#pragma once
// The strategy registry (compress/strategy.hpp) as the tables users read: `idprune strategies`
// prints them, and README.md's table is this output (a test compares them), so documentation and
// code cannot drift apart.
#include <string>

namespace idprune::app {

/// One line per strategy: name, family, policy, the rules `idprune sweep` takes, description.
[[nodiscard]] std::string strategy_table();
/// The same as a Markdown table (README.md's "Strategies" section).
[[nodiscard]] std::string strategy_table_markdown();

}  // namespace idprune::app
