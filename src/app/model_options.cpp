#include "idprune/app/model_options.hpp"

#include "idprune/nn/model_io.hpp"

namespace idprune::app {

void add_layer_order_option(po::options_description& options) {
  options.add_options()("layer-order", po::value<std::string>(),
                        "safetensors models: the Linear modules in forward order, e.g. fc1,fc2,out ('a+b': two "
                        "modules forming one factored layer), when the keys do not tell it");
}

nn::ModelReadOptions model_read_options(const po::variables_map& vm) {
  nn::ModelReadOptions options;
  if (vm.count("layer-order")) options.layer_order = nn::parse_layer_order(vm["layer-order"].as<std::string>());
  return options;
}

nn::Mlp load_model(const po::variables_map& vm, const std::string& path) {
  return nn::load_model(path, model_read_options(vm));
}

}  // namespace idprune::app
