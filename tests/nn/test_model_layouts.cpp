// State dicts as PyTorch users write them: nn.Sequential indices, named modules (fc1, layers.0,
// net.2), the layer order inferred from names or shapes or given by the user, biases everywhere,
// and one clear error (naming the file and listing its keys) for everything ambiguous or malformed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "idprune/nn/model_io.hpp"
#include "support/matrices.hpp"

namespace {

using idprune::Error;
using idprune::la::index_t;
using idprune::la::Matrix;
using idprune::nn::Activation;
using idprune::nn::Dtype;
using idprune::nn::Mlp;
using idprune::nn::ModelReadOptions;
using idprune::nn::Tensor;
using idprune::nn::TensorFile;

// One nn.Linear of a state dict: PyTorch layout, weight (out, in) row-major, bias (out,) or none.
struct Linear {
  std::string name;
  std::int64_t in = 0, out = 0;
  std::vector<double> weight;
  std::vector<double> bias;
};

Linear linear(const std::string& name, std::int64_t in, std::int64_t out, bool bias, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-0.7, 0.7);
  Linear l{name, in, out, std::vector<double>(static_cast<std::size_t>(in * out)), {}};
  for (double& v : l.weight) v = u(gen);
  if (bias) {
    l.bias.resize(static_cast<std::size_t>(out));
    for (double& v : l.bias) v = u(gen);
  }
  return l;
}

TensorFile state_dict(const std::vector<Linear>& modules) {
  TensorFile file;
  for (const auto& m : modules) {
    const std::string prefix = m.name.empty() ? "" : m.name + ".";
    file.tensors[prefix + "weight"] = Tensor{Dtype::f64, {m.out, m.in}, m.weight};
    if (!m.bias.empty()) file.tensors[prefix + "bias"] = Tensor{Dtype::f64, {m.out}, m.bias};
  }
  return file;
}

// PyTorch's forward, written independently of idprune: `layers` in forward order, each a list of
// Linear modules applied one after the other (y = x W^T + b), ReLU after every layer but the last.
Matrix torch_forward(const std::vector<std::vector<const Linear*>>& layers, const Matrix& x) {
  Matrix h = x;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    for (const Linear* m : layers[l]) {
      Matrix y(h.rows(), m->out);
      for (index_t i = 0; i < h.rows(); ++i)
        for (std::int64_t o = 0; o < m->out; ++o) {
          double s = m->bias.empty() ? 0.0 : m->bias[static_cast<std::size_t>(o)];
          for (std::int64_t k = 0; k < m->in; ++k) s += h(i, k) * m->weight[static_cast<std::size_t>(o * m->in + k)];
          y(i, o) = s;
        }
      h = y;
    }
    if (l + 1 < layers.size())
      for (double& v : h.values()) v = std::max(v, 0.0);
  }
  return h;
}

// Every layer one module.
std::vector<std::vector<const Linear*>> one_per_layer(const std::vector<const Linear*>& order) {
  std::vector<std::vector<const Linear*>> layers;
  for (const Linear* m : order) layers.push_back({m});
  return layers;
}

void expect_same_function(const Mlp& model, const std::vector<std::vector<const Linear*>>& layers,
                          const std::string& what) {
  const Matrix x = idprune::test::gaussian(7, model.input_dim(), 99);
  const Matrix want = torch_forward(layers, x);
  const Matrix got = model.logits(x);
  ASSERT_EQ(got.rows(), want.rows()) << what;
  ASSERT_EQ(got.cols(), want.cols()) << what;
  double scale = 0.0;
  for (double v : want.values()) scale = std::max(scale, std::abs(v));
  for (index_t j = 0; j < want.cols(); ++j)
    for (index_t i = 0; i < want.rows(); ++i)
      EXPECT_NEAR(got(i, j), want(i, j), 1e-12 * (1.0 + scale)) << what << " at (" << i << ", " << j << ")";
}

// Expects an idprune::Error naming the file, listing every key, and containing each needle.
void expect_model_error(const TensorFile& file, const std::vector<std::string>& needles,
                        const ModelReadOptions& options = {}) {
  try {
    (void)idprune::nn::from_tensor_file(file, "case.safetensors", options);
    ADD_FAILURE() << "no error; expected one mentioning '" << needles.front() << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("case.safetensors", 0), 0u) << what;
    EXPECT_NE(what.find("keys:"), std::string::npos) << what;
    for (const auto& [key, tensor] : file.tensors) EXPECT_NE(what.find(key), std::string::npos) << key << ": " << what;
    for (const auto& n : needles) EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
  }
}

ModelReadOptions order(std::vector<std::string> names) {
  ModelReadOptions o;
  o.layer_order = std::move(names);
  return o;
}

TEST(ModelLayouts, SequentialWithPrefixAndBiasesIsPytorchsFunction) {
  // model.net = nn.Sequential(Linear(6, 5), ReLU(), Linear(5, 4, bias=False), ReLU(), Linear(4, 3)).
  const std::vector<Linear> m{linear("net.0", 6, 5, true, 1), linear("net.2", 5, 4, false, 2),
                              linear("net.4", 4, 3, true, 3)};
  const Mlp model = idprune::nn::from_tensor_file(state_dict(m), "seq");
  EXPECT_EQ(model.widths(), (std::vector<index_t>{6, 5, 4, 3}));
  EXPECT_TRUE(model.hidden(0).has_bias());
  EXPECT_FALSE(model.hidden(1).has_bias());
  EXPECT_TRUE(model.classifier().has_bias());
  expect_same_function(model, one_per_layer({&m[0], &m[1], &m[2]}), "net.N");
}

TEST(ModelLayouts, NumberedNamesAreOrderedByNumberNotAsText) {
  // fc1 -> fc2 -> fc10: as text fc10 sorts before fc2, and its shape would not chain there.
  const std::vector<Linear> m{linear("fc1", 8, 6, true, 4), linear("fc2", 6, 5, true, 5),
                              linear("fc10", 5, 3, true, 6)};
  const Mlp model = idprune::nn::from_tensor_file(state_dict(m), "fc");
  EXPECT_EQ(model.widths(), (std::vector<index_t>{8, 6, 5, 3}));
  expect_same_function(model, one_per_layer({&m[0], &m[1], &m[2]}), "fcN");
  // layer_1, layer_2, ... (another stem) likewise.
  const std::vector<Linear> l{linear("layer_2", 6, 4, false, 7), linear("layer_1", 9, 6, false, 8),
                              linear("layer_3", 4, 2, true, 9)};
  expect_same_function(idprune::nn::from_tensor_file(state_dict(l), "layer_N"), one_per_layer({&l[1], &l[0], &l[2]}),
                       "layer_N");
}

TEST(ModelLayouts, UnnumberedNamesAreOrderedByTheirShapes) {
  const std::vector<Linear> m{linear("encoder", 9, 16, true, 10), linear("middle", 16, 8, true, 11),
                              linear("head", 8, 3, true, 12)};
  expect_same_function(idprune::nn::from_tensor_file(state_dict(m), "named"), one_per_layer({&m[0], &m[1], &m[2]}),
                       "encoder/middle/head");
  // A Sequential body with a named head: features.0, features.2, classifier.
  const std::vector<Linear> f{linear("features.0", 10, 7, true, 13), linear("features.2", 7, 5, true, 14),
                              linear("classifier", 5, 4, true, 15)};
  expect_same_function(idprune::nn::from_tensor_file(state_dict(f), "mixed"), one_per_layer({&f[0], &f[1], &f[2]}),
                       "features + classifier");
}

TEST(ModelLayouts, ShapesThatFitSeveralOrdersNeedTheUsersOrder) {
  // a and b are both 5 -> 5: a, b, head and b, a, head both chain.
  const std::vector<Linear> m{linear("a", 5, 5, true, 16), linear("b", 5, 5, true, 17), linear("head", 5, 3, true, 18)};
  const TensorFile file = state_dict(m);
  expect_model_error(file, {"more than one order", "--layer-order"});
  expect_same_function(idprune::nn::from_tensor_file(file, "ab", order({"b", "a", "head"})),
                       one_per_layer({&m[1], &m[0], &m[2]}), "b, a, head");
  expect_same_function(idprune::nn::from_tensor_file(file, "ab", order({"a.weight", "b", "head"})),
                       one_per_layer({&m[0], &m[1], &m[2]}), "a, b, head");
  // No order at all chains these.
  const std::vector<Linear> broken{linear("x", 5, 4, false, 19), linear("y", 6, 3, false, 20)};
  expect_model_error(state_dict(broken), {"no order of the modules chains their shapes"});
}

TEST(ModelLayouts, ModuleListWithoutGapsIsAmbiguousUntilTheUserSays) {
  // self.layers = nn.ModuleList([...]) with F.relu in forward(): indices 0, 1, 2 with no gaps, which
  // an nn.Sequential of three bare Linears (one factored layer) would also give.
  const std::vector<Linear> m{linear("layers.0", 6, 5, true, 21), linear("layers.1", 5, 4, true, 22),
                              linear("layers.2", 4, 3, true, 23)};
  const TensorFile file = state_dict(m);
  expect_model_error(file, {"consecutive indices", "nn.ModuleList", "--layer-order"});
  expect_same_function(idprune::nn::from_tensor_file(file, "list", order({"layers.0", "layers.1", "layers.2"})),
                       one_per_layer({&m[0], &m[1], &m[2]}), "ModuleList as separate layers");
  const Mlp factored = idprune::nn::from_tensor_file(file, "list", order({"layers.0+layers.1", "layers.2"}));
  EXPECT_EQ(factored.num_hidden(), 1);
  EXPECT_EQ(factored.hidden(0).factor_count(), 2);
  expect_same_function(factored, {{&m[0], &m[1]}, {&m[2]}}, "layers.0+layers.1 as one factored layer");
  // Consecutive siblings under shape chaining are just as ambiguous.
  const std::vector<Linear> body{linear("body.0", 6, 5, false, 24), linear("body.1", 5, 4, false, 25),
                                 linear("head", 4, 3, false, 26)};
  expect_model_error(state_dict(body), {"'body.0' and 'body.1'", "consecutive indices"});
}

TEST(ModelLayouts, InnerFactorBiasesAreFoldedIntoTheLayer) {
  // nn.Sequential(Linear(6, 3), Linear(3, 5), ReLU(), Linear(5, 2)): (x A + c) B + d = x A B + (c B + d).
  const std::vector<Linear> m{linear("0", 6, 3, true, 27), linear("1", 3, 5, true, 28), linear("3", 5, 2, true, 29)};
  const Mlp model = idprune::nn::from_tensor_file(state_dict(m), "fold");
  ASSERT_EQ(model.num_hidden(), 1);
  EXPECT_EQ(model.hidden(0).factor_count(), 2);
  expect_same_function(model, {{&m[0], &m[1]}, {&m[2]}}, "folded bias");
  // The inner bias alone (no bias on the outer factor) is folded too.
  std::vector<Linear> inner = m;
  inner[1].bias.clear();
  expect_same_function(idprune::nn::from_tensor_file(state_dict(inner), "fold"), {{&inner[0], &inner[1]}, {&inner[2]}},
                       "inner bias only");
}

TEST(ModelLayouts, ABareLinearIsALinearClassifier) {
  const std::vector<Linear> m{linear("", 7, 4, true, 30)};
  const Mlp model = idprune::nn::from_tensor_file(state_dict(m), "linear");
  EXPECT_EQ(model.num_hidden(), 0);
  expect_same_function(model, {{&m[0]}}, "bare nn.Linear");
}

TEST(ModelLayouts, LayerOrderMistakesAreClearErrors) {
  const std::vector<Linear> m{linear("fc1", 6, 5, true, 31), linear("fc2", 5, 3, true, 32)};
  const TensorFile file = state_dict(m);
  expect_model_error(file, {"'fc3'", "not a module"}, order({"fc1", "fc3"}));
  expect_model_error(file, {"'fc1' twice"}, order({"fc1", "fc1", "fc2"}));
  expect_model_error(file, {"leaves out module 'fc2'"}, order({"fc1"}));
  expect_model_error(file, {"'fc1.weight'", "in=6", "out=3"}, order({"fc2", "fc1"}));
  EXPECT_EQ(idprune::nn::parse_layer_order("fc1,fc2+fc3"), (std::vector<std::string>{"fc1", "fc2+fc3"}));
  EXPECT_TRUE(idprune::nn::parse_layer_order("").empty());
  EXPECT_THROW((void)idprune::nn::parse_layer_order("fc1,,fc2"), Error);
  EXPECT_THROW((void)idprune::nn::parse_layer_order("fc1,"), Error);
}

TEST(ModelLayouts, MalformedStateDictsNameTheFileAndListTheKeys) {
  TensorFile bn = state_dict({linear("fc1", 6, 5, true, 33), linear("fc2", 5, 3, true, 34)});
  bn.tensors["bn1.running_mean"] = Tensor{Dtype::f32, {5}, std::vector<double>(5, 0.0)};
  expect_model_error(bn, {"'bn1.running_mean'", "nn.Linear parameter"});
  TensorFile conv = state_dict({linear("fc", 6, 5, true, 35)});
  conv.tensors["conv.weight"] = Tensor{Dtype::f32, {2, 1, 3, 3}, std::vector<double>(18, 0.0)};
  expect_model_error(conv, {"'conv.weight'", "(2, 1, 3, 3)", "2-D"});
  TensorFile orphan = state_dict({linear("fc1", 6, 5, false, 36)});
  orphan.tensors["fc2.bias"] = Tensor{Dtype::f32, {3}, std::vector<double>(3, 0.0)};
  expect_model_error(orphan, {"'fc2.bias'", "no matching 'fc2.weight'"});
  TensorFile wrong_bias = state_dict({linear("fc1", 6, 5, false, 37)});
  wrong_bias.tensors["fc1.bias"] = Tensor{Dtype::f32, {4}, std::vector<double>(4, 0.0)};
  expect_model_error(wrong_bias, {"'fc1.bias'", "(4,)", "out=5"});
  // Sequential indices whose shapes do not chain.
  expect_model_error(state_dict({linear("0", 6, 5, false, 38), linear("2", 7, 3, false, 39)}),
                     {"'2.weight'", "(3, 7)", "out=5"});
}

TEST(ModelLayouts, OwnFilesWithConsecutiveFactorsNeedNoOrder) {
  // idprune's writer records the activations, which settles a file without gaps (a zero-hidden-layer
  // model whose classifier is factored: keys 0.weight, 1.weight).
  const Mlp model({}, idprune::nn::DenseLayer({idprune::test::gaussian(6, 2, 40), idprune::test::gaussian(2, 3, 41)},
                                              {0.5, -0.5, 0.25}, Activation::identity));
  const TensorFile file = idprune::nn::to_tensor_file(model, Dtype::f64);
  ASSERT_EQ(file.tensors.count("1.weight"), 1u);
  const Mlp back = idprune::nn::from_tensor_file(file, "own");
  EXPECT_EQ(back.classifier().factor_count(), 2);
  EXPECT_EQ(back.parameter_count(), model.parameter_count());
}

}  // namespace
