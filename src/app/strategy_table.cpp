#include "idprune/app/strategy_table.hpp"

#include <algorithm>

#include "idprune/compress/strategy.hpp"

namespace idprune::app {

namespace {
std::string sweep_rules(const compress::StrategyInfo& s) {
  std::string out;
  for (const auto r : s.sweep_rules) out += (out.empty() ? "" : ", ") + std::string(compress::to_string(r));
  return out;
}

std::string padded(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}
}  // namespace

std::string strategy_table() {
  std::size_t name_width = 8;
  for (const auto& s : compress::strategies()) name_width = std::max(name_width, s.name.size());
  std::string out = padded("strategy", name_width) + "  family  policy     sweep rules         description\n";
  for (const auto& s : compress::strategies()) {
    out += padded(std::string(s.name), name_width) + "  " + padded(std::string(compress::to_string(s.family)), 6) +
           "  " + padded(std::string(s.policy), 9) + "  " + padded(sweep_rules(s), 18) + "  " +
           std::string(s.description) + "\n";
  }
  return out;
}

std::string strategy_table_markdown() {
  std::string out =
      "| strategy | family | policy | `idprune sweep` rules | description |\n| --- | --- | --- | --- | --- |\n";
  for (const auto& s : compress::strategies()) {
    const std::string rules = sweep_rules(s);
    out += "| `" + std::string(s.name) + "` | " + std::string(compress::to_string(s.family)) + " | " +
           std::string(s.policy) + " | " + (rules.empty() ? std::string("-") : rules) + " | " +
           std::string(s.description) + " |\n";
  }
  return out;
}

}  // namespace idprune::app
