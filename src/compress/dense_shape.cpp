#include "idprune/compress/dense_shape.hpp"

#include <cstddef>

namespace idprune::compress {

BudgetKind parse_budget_kind(std::string_view name) {
  if (name == "params" || name == "parameters") return BudgetKind::parameters;
  if (name == "flops") return BudgetKind::flops;
  throw Error(detail::concat("unknown budget kind '", name, "' (expected params or flops)"));
}

std::string_view to_string(BudgetKind kind) { return kind == BudgetKind::parameters ? "params" : "flops"; }

std::vector<index_t> DenseShape::hidden_widths() const {
  if (widths.size() < 2) return {};
  return {widths.begin() + 1, widths.end() - 1};
}

void DenseShape::validate() const {
  require(widths.size() >= 3, "DenseShape: needs inputs, at least one hidden layer and classes, got ", widths.size(),
          " widths");
  for (std::size_t i = 0; i < widths.size(); ++i)
    require(widths[i] >= 1, "DenseShape: width ", i, " is ", widths[i], " (must be >= 1)");
  require(bias.size() + 1 == widths.size(), "DenseShape: ", bias.size(), " bias flags for ", widths.size() - 1,
          " layers");
}

std::int64_t DenseShape::cost(std::span<const index_t> hidden, BudgetKind kind) const {
  validate();
  const index_t L = num_hidden();
  require(static_cast<index_t>(hidden.size()) == L, "DenseShape::cost: ", hidden.size(), " widths for ", L,
          " hidden layers");
  std::int64_t total = 0;
  index_t prev = widths.front();
  for (index_t l = 0; l <= L; ++l) {
    const index_t d = l < L ? hidden[static_cast<std::size_t>(l)] : widths.back();
    require(d >= 1, "DenseShape::cost: hidden layer ", l + 1, " has width ", d, " (must be >= 1)");
    total += kind == BudgetKind::parameters ? prev * d + (bias[static_cast<std::size_t>(l)] ? d : 0) : 2 * prev * d;
    prev = d;
  }
  return total;
}

DenseShape dense_shape(const nn::Mlp& model) {
  DenseShape s;
  s.widths = model.widths();
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const nn::DenseLayer& layer = model.layer(l);
    require(layer.factor_count() == 1, "dense_shape: ",
            l < model.num_hidden() ? detail::concat("hidden layer ", l + 1) : std::string("the classifier"), " has ",
            layer.factor_count(), " weight factors (a low-rank layer); neuron budgets need dense layers");
    s.bias.push_back(layer.has_bias());
  }
  s.validate();
  return s;
}

}  // namespace idprune::compress
