#include "idprune/nn/model_io.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "idprune/data/npy.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"

namespace idprune::nn {

namespace {

namespace fs = std::filesystem;

std::vector<Activation> parse_activation_list(const std::string& text, const std::string& source) {
  std::vector<Activation> list;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      list.push_back(parse_activation(item));
    } catch (const Error& e) {
      throw Error(detail::concat(source, ": metadata '", activations_key, "': ", e.what()));
    }
  }
  return list;
}

std::string activation_list(const Mlp& model) {
  std::string text;
  for (index_t l = 0; l < model.num_layers(); ++l) {
    if (l > 0) text += ",";
    text += to_string(model.layer(l).activation());
  }
  return text;
}

// The activation of every layer: from the metadata when present, else `inferred`.
std::vector<Activation> layer_activations(const Metadata& metadata, std::vector<Activation> inferred,
                                          const std::string& source) {
  const auto it = metadata.find(activations_key);
  if (it == metadata.end()) return inferred;
  auto listed = parse_activation_list(it->second, source);
  require(listed.size() == inferred.size(), source, ": metadata '", activations_key, "' lists ", listed.size(),
          " activations for ", inferred.size(), " layers");
  return listed;
}

// One linear module of the Sequential: its PyTorch index, weight and optional bias tensors.
struct Module {
  long index = 0;
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
  std::string weight_key;
  std::string bias_key;
};

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

TensorFile to_tensor_file(const Mlp& model, Dtype dtype) {
  require(model.num_classes() > 0, "to_tensor_file: empty model");
  TensorFile file;
  file.metadata = model.metadata();
  file.metadata["format"] = "pt";
  file.metadata[activations_key] = activation_list(model);
  long index = 0;
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const DenseLayer& layer = model.layer(l);
    for (index_t j = 0; j < layer.factor_count(); ++j, ++index) {
      const la::Matrix& f = layer.factor(j);
      // PyTorch stores nn.Linear weights as (out, in) row-major: exactly the column-major
      // storage of our d_in x d_out factor, so the values are copied as they are.
      Tensor w{dtype, {f.cols(), f.rows()}, std::vector<double>(f.values().begin(), f.values().end())};
      file.tensors[std::to_string(index) + ".weight"] = std::move(w);
      if (j + 1 == layer.factor_count() && layer.has_bias())
        file.tensors[std::to_string(index) + ".bias"] = Tensor{dtype, {layer.d_out()}, layer.bias()};
    }
    if (l + 1 < model.num_layers()) ++index;  // the activation module (ReLU or Identity) between layers
  }
  return file;
}

Mlp from_tensor_file(const TensorFile& file, const std::string& source) {
  require(!file.tensors.empty(), source, ": holds no tensors");
  std::map<long, Module> modules;
  std::string prefix;
  bool first = true;
  for (const auto& [key, tensor] : file.tensors) {
    const auto dot = key.rfind('.');
    const std::string suffix = dot == std::string::npos ? "" : key.substr(dot + 1);
    const std::string stem = dot == std::string::npos ? key : key.substr(0, dot);
    std::size_t digits = 0;
    while (digits < stem.size() && std::isdigit(static_cast<unsigned char>(stem[stem.size() - 1 - digits]))) ++digits;
    const std::string key_prefix = stem.substr(0, stem.size() - digits);
    require((suffix == "weight" || suffix == "bias") && digits > 0 && digits <= 9 &&
                (key_prefix.empty() || key_prefix.back() == '.'),
            source, ": tensor '", key,
            "' is not a Sequential linear parameter '<index>.weight' or '<index>.bias' (only Linear and "
            "parameter-free modules are supported)");
    if (first) prefix = key_prefix;
    first = false;
    require(key_prefix == prefix, source, ": tensor '", key, "' has prefix '", key_prefix, "' but others have '",
            prefix, "'");
    const long index = std::stol(stem.substr(stem.size() - digits));
    Module& m = modules[index];
    m.index = index;
    if (suffix == "weight") {
      require(tensor.shape.size() == 2, source, ": tensor '", key, "' has shape ", shape_string(tensor.shape),
              ", expected a 2-D (out, in) weight");
      m.weight = &tensor;
      m.weight_key = key;
    } else {
      require(tensor.shape.size() == 1, source, ": tensor '", key, "' has shape ", shape_string(tensor.shape),
              ", expected a 1-D (out,) bias");
      m.bias = &tensor;
      m.bias_key = key;
    }
  }

  // Runs of consecutive indices are the factors of one layer.
  std::vector<std::vector<const Module*>> runs;
  long previous = -2;
  for (const auto& [index, m] : modules) {
    require(m.weight != nullptr, source, ": tensor '", m.bias_key, "' has no matching '", prefix, index, ".weight'");
    if (index != previous + 1) runs.emplace_back();
    runs.back().push_back(&m);
    previous = index;
  }

  std::vector<Activation> inferred(runs.size(), Activation::relu);
  inferred.back() = Activation::identity;
  const auto activations = layer_activations(file.metadata, inferred, source);
  require(activations.back() == Activation::identity, source,
          ": the last layer (the classifier) must be identity, "
          "metadata '",
          activations_key, "' says ", to_string(activations.back()));

  std::vector<DenseLayer> layers;
  for (std::size_t r = 0; r < runs.size(); ++r) {
    std::vector<la::Matrix> factors;
    std::vector<double> bias;
    for (std::size_t j = 0; j < runs[r].size(); ++j) {
      const Module& m = *runs[r][j];
      const auto out = m.weight->shape[0];
      const auto in = m.weight->shape[1];
      require(out > 0 && in > 0, source, ": tensor '", m.weight_key, "' has an empty shape ",
              shape_string(m.weight->shape));
      if (!factors.empty())
        require(factors.back().cols() == in, source, ": tensor '", m.weight_key, "' has shape ",
                shape_string(m.weight->shape), " (in=", in,
                ") but the previous linear module has out=", factors.back().cols());
      la::Matrix w(in, out);
      std::copy(m.weight->values.begin(), m.weight->values.end(), w.values().begin());
      factors.push_back(std::move(w));
      if (m.bias != nullptr) {
        require(j + 1 == runs[r].size(), source, ": tensor '", m.bias_key,
                "': a bias on a linear module directly followed by another linear module is not supported");
        require(m.bias->shape[0] == out, source, ": tensor '", m.bias_key, "' has shape ", shape_string(m.bias->shape),
                " but '", m.weight_key, "' has out=", out);
        bias = m.bias->values;
      }
    }
    if (!layers.empty())
      require(layers.back().d_out() == factors.front().rows(), source, ": tensor '", runs[r].front()->weight_key,
              "' has shape ", shape_string(runs[r].front()->weight->shape), " (in=", factors.front().rows(),
              ") but the previous layer has out=", layers.back().d_out());
    layers.emplace_back(std::move(factors), std::move(bias), activations[r]);
  }
  DenseLayer classifier = std::move(layers.back());
  layers.pop_back();
  Metadata metadata = file.metadata;
  metadata.erase("format");
  metadata.erase(activations_key);
  return Mlp(std::move(layers), std::move(classifier), std::move(metadata));
}

Mlp read_model_safetensors(const std::string& path) { return from_tensor_file(read_safetensors(path), path); }

void write_model_safetensors(const std::string& path, const Mlp& model, Dtype dtype) {
  write_safetensors(path, to_tensor_file(model, dtype));
}

Mlp read_model_npy(const std::string& dir) {
  require(fs::is_directory(dir), dir, ": not a folder of .npy files");
  const std::regex weight_name(R"(W([0-9]{1,6}|s)\.npy)");
  const std::regex bias_name(R"(b([0-9]{1,6}|s)\.npy)");
  std::map<long, fs::path> weights;  // index -> path; the classifier Ws has index -1
  std::map<long, fs::path> biases;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    const bool is_weight = std::regex_match(name, match, weight_name);
    if (!is_weight && !std::regex_match(name, match, bias_name)) continue;
    const long index = match[1] == "s" ? -1 : std::stol(match[1]);
    (is_weight ? weights : biases)[index] = entry.path();
  }
  require(weights.count(-1) == 1, dir, ": no classifier weight Ws.npy");
  const long hidden = static_cast<long>(weights.size()) - 1;
  for (long l = 1; l <= hidden; ++l)
    require(weights.count(l) == 1, dir, ": hidden weights must be W1.npy ... W", hidden, ".npy but W", l,
            ".npy is missing");
  for (const auto& [index, path] : biases)
    require(weights.count(index) == 1, path.string(), ": bias without a matching weight file");

  Metadata metadata;
  const fs::path meta_path = fs::path(dir) / "metadata.json";
  if (fs::exists(meta_path)) {
    std::ifstream in(meta_path);
    nlohmann::json meta;
    try {
      meta = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat(meta_path.string(), ": not valid JSON: ", e.what()));
    }
    require(meta.is_object(), meta_path.string(), ": not a JSON object of strings");
    for (const auto& [k, v] : meta.items()) {
      require(v.is_string(), meta_path.string(), ": entry '", k, "' is not a string");
      metadata[k] = v.get<std::string>();
    }
  }
  std::vector<Activation> inferred(static_cast<std::size_t>(hidden + 1), Activation::relu);
  inferred.back() = Activation::identity;
  const auto activations = layer_activations(metadata, inferred, meta_path.string());
  require(activations.back() == Activation::identity, meta_path.string(), ": the classifier must be identity");
  metadata.erase(activations_key);

  std::vector<DenseLayer> layers;
  for (long l = 1; l <= hidden + 1; ++l) {
    const long index = l <= hidden ? l : -1;
    const std::string wpath = weights[index].string();
    la::Matrix w = data::read_npy(wpath);
    require(w.rows() > 0 && w.cols() > 0, wpath, ": empty weight of shape (", w.rows(), ", ", w.cols(), ")");
    if (!layers.empty())
      require(w.rows() == layers.back().d_out(), wpath, ": shape (", w.rows(), ", ", w.cols(), ") but the previous ",
              "layer has d_out=", layers.back().d_out(), " (weights are (d_in, d_out))");
    std::vector<double> bias;
    if (biases.count(index)) {
      const std::string bpath = biases[index].string();
      const la::Matrix b = data::read_npy(bpath);
      require((b.cols() == 1 && b.rows() == w.cols()) || (b.rows() == 1 && b.cols() == w.cols()), bpath, ": shape (",
              b.rows(), ", ", b.cols(), ") does not match d_out=", w.cols(), " of ", wpath);
      bias.assign(b.values().begin(), b.values().end());
    }
    layers.emplace_back(std::move(w), std::move(bias), activations[static_cast<std::size_t>(l - 1)]);
  }
  DenseLayer classifier = std::move(layers.back());
  layers.pop_back();
  return Mlp(std::move(layers), std::move(classifier), std::move(metadata));
}

void write_model_npy(const std::string& dir, const Mlp& model) {
  for (index_t l = 0; l < model.num_layers(); ++l)
    require(model.layer(l).factor_count() == 1, "write_model_npy: ", dir, ": layer ", l, " has ",
            model.layer(l).factor_count(),
            " factors; the .npy folder format holds one weight per layer (use "
            "safetensors)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  require(!ec, dir, ": cannot create folder: ", ec.message());
  // A weight or bias file left over from another model would be read back as part of this one.
  const std::regex model_file(R"([Wb]([0-9]{1,6}|s)\.npy)");
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    if (!std::regex_match(name, match, model_file)) continue;
    const bool classifier = match[1] == "s";
    const long index = classifier ? model.num_hidden() : std::stol(match[1]) - 1;
    const bool ours = index >= 0 && index < model.num_layers() && (name[0] == 'W' || model.layer(index).has_bias()) &&
                      (classifier || index < model.num_hidden());
    require(ours, "write_model_npy: ", dir, " already holds ", name,
            ", which is not part of this model (write into an empty folder)");
  }
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const DenseLayer& layer = model.layer(l);
    const std::string tag = l < model.num_hidden() ? std::to_string(l + 1) : "s";
    data::write_npy((fs::path(dir) / ("W" + tag + ".npy")).string(), layer.factor(0));
    if (layer.has_bias())
      data::write_npy((fs::path(dir) / ("b" + tag + ".npy")).string(),
                      la::ConstMatrixView(layer.bias().data(), layer.d_out(), 1));
  }
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [k, v] : model.metadata()) meta[k] = v;
  meta[activations_key] = activation_list(model);
  io::write_file_atomically((fs::path(dir) / "metadata.json").string(), meta.dump(2) + "\n");
}

Mlp load_model(const std::string& path) {
  if (fs::is_directory(path)) return read_model_npy(path);
  return read_model_safetensors(path);
}

void save_model(const std::string& path, const Mlp& model, Dtype dtype) {
  if (path.size() >= 12 && path.ends_with(".safetensors")) {
    write_model_safetensors(path, model, dtype);
  } else {
    write_model_npy(path, model);
  }
}

}  // namespace idprune::nn
