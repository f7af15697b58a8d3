#include "idprune/nn/model_io.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "idprune/data/npy.hpp"
#include "idprune/io/file.hpp"
#include "idprune/la/blas.hpp"
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

// One nn.Linear module of a state dict: its name (the key without ".weight"/".bias") and tensors.
struct Module {
  std::string name;
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
  std::string weight_key;
  std::string bias_key;

  [[nodiscard]] std::int64_t out() const { return weight->shape[0]; }
  [[nodiscard]] std::int64_t in() const { return weight->shape[1]; }
};

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// "keys: 0.weight (64, 784), 0.bias (64,), ..." for error messages (the first 60 keys).
std::string key_listing(const TensorFile& file) {
  constexpr std::size_t shown = 60;
  std::string s = "keys:";
  std::size_t count = 0;
  for (const auto& [key, tensor] : file.tensors) {
    if (count++ == shown) {
      s += " ... and " + std::to_string(file.tensors.size() - shown) + " more";
      break;
    }
    s += (count > 1 ? ", " : " ") + key + " " + shape_string(tensor.shape);
  }
  return s;
}

constexpr const char* layer_order_hint =
    "pass the forward order of the modules with --layer-order NAME,NAME,... (module names as in the keys "
    "without .weight; 'a+b' for two modules that are the factors of one layer)";

// `name` split as <stem><number>; false when it does not end in 1-9 digits.
bool split_number(const std::string& name, std::string& stem, long& number) {
  std::size_t digits = 0;
  while (digits < name.size() && std::isdigit(static_cast<unsigned char>(name[name.size() - 1 - digits]))) ++digits;
  if (digits == 0 || digits > 9) return false;
  stem = name.substr(0, name.size() - digits);
  number = std::stol(name.substr(name.size() - digits));
  return true;
}

// The modules of `file`, by name; checks that every key is a Linear parameter of the right rank.
std::map<std::string, Module> collect_modules(const TensorFile& file, const std::string& source) {
  std::map<std::string, Module> modules;
  for (const auto& [key, tensor] : file.tensors) {
    const auto dot = key.rfind('.');
    const std::string suffix = dot == std::string::npos ? key : key.substr(dot + 1);
    const std::string name = dot == std::string::npos ? std::string() : key.substr(0, dot);
    require((suffix == "weight" || suffix == "bias") && (dot == std::string::npos || !name.empty()), source,
            ": tensor '", key,
            "' is not an nn.Linear parameter '<module>.weight' or '<module>.bias' (idprune reads MLPs: Linear "
            "modules and parameter-free activations only)");
    Module& m = modules[name];
    m.name = name;
    if (suffix == "weight") {
      require(tensor.shape.size() == 2, source, ": tensor '", key, "' has shape ", shape_string(tensor.shape),
              ", expected a 2-D (out, in) weight");
      require(tensor.shape[0] > 0 && tensor.shape[1] > 0, source, ": tensor '", key, "' has an empty shape ",
              shape_string(tensor.shape));
      m.weight = &tensor;
      m.weight_key = key;
    } else {
      require(tensor.shape.size() == 1, source, ": tensor '", key, "' has shape ", shape_string(tensor.shape),
              ", expected a 1-D (out,) bias");
      m.bias = &tensor;
      m.bias_key = key;
    }
  }
  for (const auto& [name, m] : modules) {
    require(m.weight != nullptr, source, ": tensor '", m.bias_key, "' has no matching '",
            name.empty() ? std::string() : name + ".", "weight'");
    if (m.bias != nullptr)
      require(m.bias->shape[0] == m.out(), source, ": tensor '", m.bias_key, "' has shape ",
              shape_string(m.bias->shape), " but '", m.weight_key, "' has out=", m.out());
  }
  return modules;
}

using Groups = std::vector<std::vector<const Module*>>;  // layers in forward order, each its factors

Groups groups_from_layer_order(const std::map<std::string, Module>& modules, const std::vector<std::string>& order,
                               const std::string& source) {
  Groups groups;
  std::map<std::string, int> listed;
  for (const auto& entry : order) {
    auto& group = groups.emplace_back();
    std::stringstream in(entry);
    std::string name;
    while (std::getline(in, name, '+')) {
      if (name.ends_with(".weight")) name.resize(name.size() - 7);
      const auto it = modules.find(name);
      require(it != modules.end(), source, ": --layer-order names '", name, "', which is not a module of the file");
      require(++listed[name] == 1, source, ": --layer-order lists module '", name, "' twice");
      group.push_back(&it->second);
    }
    require(!group.empty(), source, ": --layer-order has an empty entry '", entry, "'");
  }
  for (const auto& [name, m] : modules)
    require(listed.count(name) == 1, source, ": --layer-order leaves out module '", name,
            "' (every Linear module of the file must be listed)");
  return groups;
}

// Number of orders of all modules in which each one's `in` equals the previous one's `out` (capped
// at 2), and the order when there is exactly one. Bitmask dynamic programming over subsets
// (Held-Karp), so n! orders are never enumerated.
std::size_t count_shape_chains(const std::vector<const Module*>& m, std::vector<const Module*>& order) {
  const std::size_t n = m.size();
  const std::size_t full = (std::size_t{1} << n) - 1;
  // paths[mask * n + last]: orders of the modules in `mask` ending with `last`, capped at 2.
  std::vector<std::uint8_t> paths((full + 1) * n, 0);
  for (std::size_t i = 0; i < n; ++i) paths[(std::size_t{1} << i) * n + i] = 1;
  for (std::size_t mask = 1; mask <= full; ++mask)
    for (std::size_t last = 0; last < n; ++last) {
      const std::uint8_t p = paths[mask * n + last];
      if (p == 0) continue;
      for (std::size_t next = 0; next < n; ++next)
        if (!(mask >> next & 1U) && m[next]->in() == m[last]->out()) {
          auto& q = paths[(mask | std::size_t{1} << next) * n + next];
          q = static_cast<std::uint8_t>(std::min(2, q + p));
        }
    }
  std::size_t total = 0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (paths[full * n + i] > 0) {
      total += paths[full * n + i];
      last = i;
    }
  if (total != 1) return std::min<std::size_t>(total, 2);
  // Walk the unique order backwards.
  order.assign(n, nullptr);
  std::size_t mask = full;
  for (std::size_t pos = n; pos-- > 0;) {
    order[pos] = m[last];
    const std::size_t rest = mask & ~(std::size_t{1} << last);
    if (rest == 0) break;
    for (std::size_t prev = 0; prev < n; ++prev)
      if ((rest >> prev & 1U) && paths[rest * n + prev] > 0 && m[prev]->out() == m[last]->in()) {
        mask = rest;
        last = prev;
        break;
      }
  }
  return 1;
}

// The layers of the file in forward order, by the rules in model_io.hpp.
Groups infer_groups(const std::map<std::string, Module>& modules, const Metadata& metadata, const std::string& source) {
  // Rule 2: nn.Sequential indices under one prefix (empty or ending in '.').
  std::map<long, const Module*> by_index;
  std::string prefix;
  bool sequential = true;
  for (const auto& [name, m] : modules) {
    std::string stem;
    long index = 0;
    if (!split_number(name, stem, index) || !(stem.empty() || stem.back() == '.') ||
        (!by_index.empty() && stem != prefix)) {
      sequential = false;
      break;
    }
    prefix = stem;
    by_index[index] = &m;
  }
  if (sequential) {
    Groups runs;
    long previous = -2;
    for (const auto& [index, m] : by_index) {
      if (index != previous + 1) runs.emplace_back();
      runs.back().push_back(m);
      previous = index;
    }
    require(runs.size() > 1 || by_index.size() == 1 || metadata.count(activations_key) == 1, source, ": modules ",
            prefix, by_index.begin()->first, " ... ", prefix, by_index.rbegin()->first,
            " sit at consecutive indices with no activation module between them: an nn.Sequential of bare Linear "
            "modules (one factored layer) or an nn.ModuleList whose activations are applied in forward() "
            "(separate layers)? ",
            layer_order_hint);
    return runs;
  }

  // Rule 3: numbered names with one stem (fc1, fc2, ...), one layer per module.
  std::map<long, const Module*> by_number;
  std::string stem0;
  bool numbered = true;
  for (const auto& [name, m] : modules) {
    std::string stem;
    long number = 0;
    if (!split_number(name, stem, number) || (!by_number.empty() && stem != stem0) ||
        !by_number.emplace(number, &m).second) {
      numbered = false;
      break;
    }
    stem0 = stem;
  }
  Groups groups;
  if (numbered) {
    for (const auto& [number, m] : by_number) groups.push_back({m});
    return groups;
  }

  // Rule 4: the unique order that chains the shapes, one layer per module.
  for (const auto& [name, m] : modules) {
    std::string stem;
    long index = 0;
    if (!split_number(name, stem, index) || stem.empty() || stem.back() != '.') continue;
    const std::string next = stem + std::to_string(index + 1);
    require(modules.count(next) == 0, source, ": modules '", name, "' and '", next,
            "' sit at consecutive indices of one container: factors of one layer (an nn.Sequential with nothing "
            "between them) or separate layers (an nn.ModuleList)? ",
            layer_order_hint);
  }
  constexpr std::size_t max_modules = 16;
  require(modules.size() <= max_modules, source, ": the module names (", modules.size(),
          " modules) give no order and idprune infers one from shapes for at most ", max_modules, " modules; ",
          layer_order_hint);
  std::vector<const Module*> list;
  for (const auto& [name, m] : modules) list.push_back(&m);
  std::vector<const Module*> order;
  const std::size_t chains = count_shape_chains(list, order);
  require(chains == 1, source, ": the module names give no order, and ",
          chains == 0 ? "no order of the modules chains their shapes (each module's in = the previous one's out)"
                      : "more than one order of the modules chains their shapes",
          "; ", layer_order_hint);
  for (const Module* m : order) groups.push_back({m});
  return groups;
}

// One layer from its factor modules: weights transposed into d_in x d_out factors, biases of inner
// factors folded into the layer's bias ((x A + c) B = x A B + c B).
DenseLayer make_layer(const std::vector<const Module*>& group, Activation activation, const std::string& source) {
  std::vector<la::Matrix> factors;
  std::vector<double> bias;
  for (const Module* m : group) {
    if (!factors.empty())
      require(factors.back().cols() == m->in(), source, ": tensor '", m->weight_key, "' has shape ",
              shape_string(m->weight->shape), " (in=", m->in(),
              ") but the previous linear module of its layer has out=", factors.back().cols());
    // PyTorch's (out, in) row-major weight is exactly the column-major storage of our in x out factor.
    la::Matrix w(m->in(), m->out());
    std::copy(m->weight->values.begin(), m->weight->values.end(), w.values().begin());
    if (!bias.empty()) {
      std::vector<double> carried(static_cast<std::size_t>(m->out()));
      la::gemv(1.0, w, la::Op::transpose, bias, 0.0, carried);
      bias = std::move(carried);
    }
    if (m->bias != nullptr) {
      if (bias.empty()) bias.assign(static_cast<std::size_t>(m->out()), 0.0);
      for (std::size_t i = 0; i < bias.size(); ++i) bias[i] += m->bias->values[i];
    }
    factors.push_back(std::move(w));
  }
  return DenseLayer(std::move(factors), std::move(bias), activation);
}

Mlp model_from_modules(const TensorFile& file, const std::string& source, const ModelReadOptions& options) {
  require(!file.tensors.empty(), source, ": holds no tensors");
  const auto modules = collect_modules(file, source);
  const Groups groups = options.layer_order.empty() ? infer_groups(modules, file.metadata, source)
                                                    : groups_from_layer_order(modules, options.layer_order, source);

  std::vector<Activation> inferred(groups.size(), Activation::relu);
  inferred.back() = Activation::identity;
  const auto activations = layer_activations(file.metadata, inferred, source);
  require(activations.back() == Activation::identity, source,
          ": the last layer (the classifier) must be identity, metadata '", activations_key, "' says ",
          to_string(activations.back()));

  std::vector<DenseLayer> layers;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Module& first = *groups[g].front();
    if (!layers.empty())
      require(layers.back().d_out() == first.in(), source, ": tensor '", first.weight_key, "' has shape ",
              shape_string(first.weight->shape), " (in=", first.in(), ") but the previous layer ('",
              groups[g - 1].back()->weight_key, "') has out=", layers.back().d_out());
    layers.push_back(make_layer(groups[g], activations[g], source));
  }
  DenseLayer classifier = std::move(layers.back());
  layers.pop_back();
  Metadata metadata = file.metadata;
  metadata.erase("format");
  metadata.erase(activations_key);
  return Mlp(std::move(layers), std::move(classifier), std::move(metadata));
}

}  // namespace

std::vector<std::string> parse_layer_order(const std::string& text) {
  std::vector<std::string> order;
  if (text.empty()) return order;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    require(!item.empty(), "--layer-order '", text, "': empty entry");
    order.push_back(item);
  }
  require(text.back() != ',', "--layer-order '", text, "': empty entry");
  return order;
}

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

Mlp from_tensor_file(const TensorFile& file, const std::string& source, const ModelReadOptions& options) {
  try {
    return model_from_modules(file, source, options);
  } catch (const Error& e) {
    // One message: what is wrong, then every key the file holds, so the user sees its structure.
    if (file.tensors.empty()) throw;
    throw Error(detail::concat(e.what(), "; its ", key_listing(file)));
  }
}

Mlp read_model_safetensors(const std::string& path, const ModelReadOptions& options) {
  return from_tensor_file(read_safetensors(path), path, options);
}

void write_model_safetensors(const std::string& path, const Mlp& model, Dtype dtype) {
  write_safetensors(path, to_tensor_file(model, dtype));
}

namespace {

// A model file of an .npy folder: W<tag>.npy, W<tag>_<j>.npy (factor j of a factored layer) or b<tag>.npy.
const std::regex& npy_model_file() {
  static const std::regex pattern(R"(([Wb])([0-9]{1,6}|s)(?:_([0-9]{1,6}))?\.npy)");
  return pattern;
}

// The files of one layer in an .npy folder.
struct NpyLayerFiles {
  fs::path weight;                   // W<tag>.npy
  std::map<long, fs::path> factors;  // W<tag>_<j>.npy by j
  fs::path bias;                     // b<tag>.npy
};

std::string npy_tag(index_t layer, const Mlp& model) {
  return layer < model.num_hidden() ? std::to_string(layer + 1) : std::string("s");
}

}  // namespace

Mlp read_model_npy(const std::string& dir) {
  require(fs::is_directory(dir), dir, ": not a folder of .npy files");
  std::map<long, NpyLayerFiles> files;  // by layer number; the classifier (tag s) is -1
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    if (!std::regex_match(name, match, npy_model_file())) continue;
    const long index = match[2] == "s" ? -1 : std::stol(match[2]);
    NpyLayerFiles& f = files[index];
    if (match[1] == "b") {
      require(!match[3].matched, entry.path().string(), ": a bias has no factors (expected b", match[2].str(), ".npy)");
      f.bias = entry.path();
    } else if (match[3].matched) {
      f.factors[std::stol(match[3])] = entry.path();
    } else {
      f.weight = entry.path();
    }
  }
  for (const auto& [index, f] : files) {
    const std::string tag = index < 0 ? "s" : std::to_string(index);
    if (f.weight.empty() && f.factors.empty()) {
      require(f.bias.empty(), f.bias.string(), ": bias without a matching weight file");
      continue;
    }
    require(f.weight.empty() || f.factors.empty(), dir, ": layer ", tag, " has both W", tag, ".npy and factor files W",
            tag, "_1.npy, ... (one or the other)");
    long expected = 1;
    for (const auto& [number, path] : f.factors) {
      require(number == expected, dir, ": the factors of layer ", tag, " must be W", tag, "_1.npy, W", tag,
              "_2.npy, ... without gaps, but W", tag, "_", expected, ".npy is missing");
      ++expected;
    }
  }
  require(files.count(-1) == 1 && (!files[-1].weight.empty() || !files[-1].factors.empty()), dir,
          ": no classifier weight Ws.npy");
  const long hidden = static_cast<long>(files.size()) - 1;
  for (long l = 1; l <= hidden; ++l)
    require(files.count(l) == 1, dir, ": hidden weights must be W1.npy ... W", hidden, ".npy but W", l,
            ".npy is missing");

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
    const NpyLayerFiles& f = files[l <= hidden ? l : -1];
    std::vector<fs::path> paths;
    if (f.factors.empty()) paths.push_back(f.weight);
    for (const auto& [j, path] : f.factors) paths.push_back(path);
    std::vector<la::Matrix> factors;
    for (const auto& path : paths) {
      const std::string wpath = path.string();
      la::Matrix w = data::read_npy(wpath);
      require(w.rows() > 0 && w.cols() > 0, wpath, ": empty weight of shape (", w.rows(), ", ", w.cols(), ")");
      const index_t in = factors.empty() ? (layers.empty() ? w.rows() : layers.back().d_out()) : factors.back().cols();
      require(w.rows() == in, wpath, ": shape (", w.rows(), ", ", w.cols(), ") but the previous ",
              factors.empty() ? "layer" : "factor", " has d_out=", in, " (weights are (d_in, d_out))");
      factors.push_back(std::move(w));
    }
    std::vector<double> bias;
    if (!f.bias.empty()) {
      const std::string bpath = f.bias.string();
      const la::Matrix b = data::read_npy(bpath);
      const index_t out = factors.back().cols();
      require((b.cols() == 1 && b.rows() == out) || (b.rows() == 1 && b.cols() == out), bpath, ": shape (", b.rows(),
              ", ", b.cols(), ") does not match d_out=", out, " of ", paths.back().string());
      bias.assign(b.values().begin(), b.values().end());
    }
    layers.emplace_back(std::move(factors), std::move(bias), activations[static_cast<std::size_t>(l - 1)]);
  }
  DenseLayer classifier = std::move(layers.back());
  layers.pop_back();
  return Mlp(std::move(layers), std::move(classifier), std::move(metadata));
}

void write_model_npy(const std::string& dir, const Mlp& model) {
  require(model.num_classes() > 0, "write_model_npy: ", dir, ": empty model");
  // The files this model consists of.
  std::map<std::string, la::ConstMatrixView> contents;
  for (index_t l = 0; l < model.num_layers(); ++l) {
    const DenseLayer& layer = model.layer(l);
    const std::string tag = npy_tag(l, model);
    for (index_t j = 0; j < layer.factor_count(); ++j)
      contents[layer.factor_count() == 1 ? "W" + tag + ".npy" : "W" + tag + "_" + std::to_string(j + 1) + ".npy"] =
          layer.factor(j).view();
    if (layer.has_bias()) contents["b" + tag + ".npy"] = la::ConstMatrixView(layer.bias().data(), layer.d_out(), 1);
  }
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [k, v] : model.metadata()) meta[k] = v;
  meta[activations_key] = activation_list(model);

  // A weight or bias file left over from another model would be read back as part of this one.
  if (fs::exists(dir)) {
    require(fs::is_directory(dir), "write_model_npy: ", dir, " exists and is not a folder");
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (std::regex_match(name, npy_model_file()))
        require(contents.count(name) == 1, "write_model_npy: ", dir, " already holds ", name,
                ", which is not part of this model (write into an empty folder)");
    }
  }

  // Everything is written into a temporary sibling folder, then moved into place: a folder that
  // did not exist appears whole, an existing one gets each file by an atomic rename.
  const fs::path target = fs::path(dir).lexically_normal();
  const fs::path name = target.filename().empty() ? target.parent_path().filename() : target.filename();
  const fs::path parent = (target.filename().empty() ? target.parent_path() : target).parent_path();
  std::error_code ec;
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    require(!ec, dir, ": cannot create folder ", parent.string(), ": ", ec.message());
  }
  const fs::path staging =
      (parent.empty() ? fs::path(".") : parent) / ("." + name.string() + ".tmp." + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  fs::create_directory(staging, ec);
  require(!ec, dir, ": cannot create temporary folder ", staging.string(), ": ", ec.message());
  try {
    for (const auto& [file, values] : contents) data::write_npy((staging / file).string(), values);
    io::write_file_atomically((staging / "metadata.json").string(), meta.dump(2) + "\n");
    const fs::path final_dir = parent.empty() ? name : parent / name;
    if (!fs::exists(final_dir)) {
      fs::rename(staging, final_dir);
      return;
    }
    for (const auto& entry : fs::directory_iterator(staging)) {
      fs::rename(entry.path(), final_dir / entry.path().filename(), ec);
      require(!ec, dir, ": cannot move ", entry.path().string(), " into place: ", ec.message());
    }
    fs::remove(staging, ec);
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

Mlp load_model(const std::string& path, const ModelReadOptions& options) {
  if (fs::is_directory(path)) {
    require(options.layer_order.empty(), path,
            ": a layer order applies to safetensors state dicts; an .npy folder's file names (W1.npy ... Ws.npy) fix "
            "the order");
    return read_model_npy(path);
  }
  return read_model_safetensors(path, options);
}

void save_model(const std::string& path, const Mlp& model, Dtype dtype) {
  ModelWriteOptions options;
  options.format = ModelFormat::by_path;
  options.dtype = dtype;
  write_model(path, model, options);
}

void write_model(const std::string& path, const Mlp& model, const ModelWriteOptions& options) {
  for (const char* reserved : {"format", activations_key})
    require(options.metadata.count(reserved) == 0, "write_model: ", path, ": metadata key '", reserved,
            "' is reserved (idprune writes it)");
  const std::string bad = non_finite_parameter(model);
  require(bad.empty(), "write_model: ", path, ": ", bad);
  Mlp annotated = model;
  for (const auto& [k, v] : options.metadata) annotated.metadata()[k] = v;
  ModelFormat format = options.format;
  if (format == ModelFormat::by_path)
    format = path.size() >= 12 && path.ends_with(".safetensors") ? ModelFormat::safetensors : ModelFormat::npy;
  if (format == ModelFormat::safetensors) {
    // serialize_safetensors checks every value (F32 range) before write_safetensors creates a file.
    write_model_safetensors(path, annotated, options.dtype);
  } else {
    write_model_npy(path, annotated);
  }
}

}  // namespace idprune::nn
