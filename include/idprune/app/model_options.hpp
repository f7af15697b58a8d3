#pragma once
// What every subcommand that reads a model shares: the --layer-order option (for state dicts whose
// keys do not settle the order of their layers) and the loader that applies it.
#include <string>

#include "idprune/app/options.hpp"
#include "idprune/nn/mlp.hpp"
#include "idprune/nn/model_io.hpp"

namespace idprune::app {

/// Adds --layer-order to `options`.
void add_layer_order_option(po::options_description& options);

/// The reading options of the --layer-order given in `vm` (if any).
[[nodiscard]] nn::ModelReadOptions model_read_options(const po::variables_map& vm);
/// nn::load_model(path) with the --layer-order given in `vm` (if any).
[[nodiscard]] nn::Mlp load_model(const po::variables_map& vm, const std::string& path);

}  // namespace idprune::app
