// safetensors: conformance with the reference serializer, PyTorch state dicts, round trips and
// every malformed-input case.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "idprune/nn/model_io.hpp"
#include "idprune/nn/safetensors.hpp"
#include "support/matrices.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using idprune::Error;
using idprune::la::index_t;
using idprune::la::Matrix;
using idprune::nn::Activation;
using idprune::nn::DenseLayer;
using idprune::nn::Dtype;
using idprune::nn::Mlp;
using idprune::nn::Tensor;
using idprune::nn::TensorFile;

constexpr double eps = std::numeric_limits<double>::epsilon();

// ---- Byte-level helpers, independent of the code under test -------------------------------------

std::string le(std::uint64_t v, int bytes) {
  std::string s;
  for (int b = 0; b < bytes; ++b) s.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
  return s;
}
std::string f32_bytes(float f) { return le(std::bit_cast<std::uint32_t>(f), 4); }
std::string f64_bytes(double d) { return le(std::bit_cast<std::uint64_t>(d), 8); }

std::string shape_json(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string entry_json(const std::string& name, const std::string& dtype, const std::vector<std::int64_t>& shape,
                       std::uint64_t begin, std::uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape_json(shape) + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// Header length, header padded with spaces to a multiple of 8, data.
std::string assemble(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return le(header.size(), 8) + header + data;
}

// One float32 tensor of a PyTorch state dict.
struct TorchTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // C order
};

// What `safetensors.torch.save_file(state_dict, path)` writes for float32 tensors and no metadata:
// tensors sorted by name (all have the same dtype), offsets consecutive, compact JSON in that order,
// header padded with spaces to a multiple of 8 bytes (safetensors/src/tensor.rs, `prepare`).
std::string torch_save_file(std::vector<TorchTensor> tensors) {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::string header = "{";
  std::string data;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const auto begin = data.size();
    for (float v : tensors[t].values) data += f32_bytes(v);
    header += (t ? "," : "") + entry_json(tensors[t].name, "F32", tensors[t].shape, begin, data.size());
  }
  return assemble(header + "}", data);
}

fs::path temp_dir(const std::string& tag) { return idprune::test::nn_temp_dir("nn", tag); }

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects parse (and, for model-level cases, model construction) to throw an idprune::Error whose
// message contains every one of `needles`.
void expect_error(const std::string& bytes, const std::vector<std::string>& needles, bool model = false) {
  try {
    const TensorFile file = idprune::nn::parse_safetensors(bytes, "case.safetensors");
    if (model) (void)idprune::nn::from_tensor_file(file, "case.safetensors");
    ADD_FAILURE() << "no error; expected one mentioning '" << needles.front() << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("case.safetensors"), std::string::npos) << what;
    for (const auto& n : needles) EXPECT_NE(what.find(n), std::string::npos) << "'" << n << "' not in: " << what;
  }
}

// ---- A PyTorch nn.Sequential MLP ----------------------------------------------------------------

// nn.Sequential(Linear(6,5), ReLU(), Linear(5,5,bias=False), ReLU(), Linear(5,4), ReLU(),
//               Linear(4,4,bias=False), ReLU(), Linear(4,4), ReLU(), Linear(4,3)):
// keys 0..10, so "10.weight" sorts before "2.weight" in the file.
struct TorchModel {
  std::vector<std::vector<float>> weight;  // (out, in) row-major
  std::vector<std::vector<float>> bias;    // empty: no bias
  std::vector<std::int64_t> widths{6, 5, 5, 4, 4, 4, 3};
};

TorchModel make_torch_model(std::uint64_t seed) {
  TorchModel m;
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> u(-0.8f, 0.8f);
  for (std::size_t l = 0; l + 1 < m.widths.size(); ++l) {
    std::vector<float> w(static_cast<std::size_t>(m.widths[l] * m.widths[l + 1]));
    for (float& v : w) v = u(gen);
    m.weight.push_back(w);
    std::vector<float> b;
    if (l % 2 == 0) {
      b.resize(static_cast<std::size_t>(m.widths[l + 1]));
      for (float& v : b) v = u(gen);
    }
    m.bias.push_back(b);
  }
  return m;
}

std::vector<TorchTensor> state_dict(const TorchModel& m, const std::string& prefix = "") {
  std::vector<TorchTensor> sd;
  for (std::size_t l = 0; l < m.weight.size(); ++l) {
    const std::string index = prefix + std::to_string(2 * l);
    sd.push_back({index + ".weight", {m.widths[l + 1], m.widths[l]}, m.weight[l]});
    if (!m.bias[l].empty()) sd.push_back({index + ".bias", {m.widths[l + 1]}, m.bias[l]});
  }
  return sd;
}

// PyTorch's semantics on one sample: y = x W^T + b with W (out, in), ReLU between linears.
std::vector<double> torch_forward(const TorchModel& m, std::vector<double> x) {
  for (std::size_t l = 0; l < m.weight.size(); ++l) {
    const auto in = static_cast<std::size_t>(m.widths[l]);
    const auto out = static_cast<std::size_t>(m.widths[l + 1]);
    std::vector<double> y(out, 0.0);
    for (std::size_t o = 0; o < out; ++o) {
      for (std::size_t i = 0; i < in; ++i) y[o] += x[i] * static_cast<double>(m.weight[l][o * in + i]);
      if (!m.bias[l].empty()) y[o] += static_cast<double>(m.bias[l][o]);
      if (l + 1 < m.weight.size()) y[o] = std::max(y[o], 0.0);
    }
    x = y;
  }
  return x;
}

TEST(Safetensors, WriterReproducesTheReferenceSerializerBytes) {
  // safetensors/src/tensor.rs, test_serialization: {"attn.0": F32 [1,2,3] = 0..5}.
  const std::vector<unsigned char> reference{
      64,  0,  0,   0,  0,   0,  0,   0,   123, 34,  97,  116, 116, 110, 46,  48, 34, 58, 123, 34, 100, 116, 121, 112,
      101, 34, 58,  34, 70,  51, 50,  34,  44,  34,  115, 104, 97,  112, 101, 34, 58, 91, 49,  44, 50,  44,  51,  93,
      44,  34, 100, 97, 116, 97, 95,  111, 102, 102, 115, 101, 116, 115, 34,  58, 91, 48, 44,  50, 52,  93,  125, 125,
      0,   0,  0,   0,  0,   0,  128, 63,  0,   0,   0,   64,  0,   0,   64,  64, 0,  0,  128, 64, 0,   0,   160, 64};
  TensorFile file;
  file.tensors["attn.0"] = Tensor{Dtype::f32, {1, 2, 3}, {0, 1, 2, 3, 4, 5}};
  EXPECT_EQ(idprune::nn::serialize_safetensors(file), std::string(reference.begin(), reference.end()));

  // test_empty with metadata {"framework": "pt"}: header padded with spaces.
  const std::vector<unsigned char> empty_with_metadata{
      40,  0,  0,   0,   0,  0,   0,   0,   123, 34,  95,  95, 109, 101, 116, 97,  100, 97,  116, 97, 95, 95, 34, 58,
      123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58,  34,  112, 116, 34,  125, 125, 32, 32, 32, 32, 32};
  TensorFile meta;
  meta.metadata["framework"] = "pt";
  EXPECT_EQ(idprune::nn::serialize_safetensors(meta),
            std::string(empty_with_metadata.begin(), empty_with_metadata.end()));
  const auto parsed = idprune::nn::parse_safetensors(std::string(reference.begin(), reference.end()), "ref");
  ASSERT_EQ(parsed.tensors.count("attn.0"), 1u);
  EXPECT_EQ(parsed.tensors.at("attn.0").values, (std::vector<double>{0, 1, 2, 3, 4, 5}));
}

TEST(Safetensors, WriterMatchesTorchSaveFileForAStateDict) {
  const TorchModel m = make_torch_model(21);
  TensorFile file;
  for (const auto& t : state_dict(m))
    file.tensors[t.name] = Tensor{Dtype::f32, t.shape, std::vector<double>(t.values.begin(), t.values.end())};
  EXPECT_EQ(idprune::nn::serialize_safetensors(file), torch_save_file(state_dict(m)));
}

TEST(Safetensors, PytorchModelLoadsAndEvaluatesLikePytorch) {
  const TorchModel m = make_torch_model(22);
  for (const std::string prefix : {"", "net."}) {
    const fs::path dir = temp_dir("torch");
    const fs::path path = dir / "model.safetensors";
    write_bytes(path, torch_save_file(state_dict(m, prefix)));
    const Mlp model = idprune::nn::read_model_safetensors(path.string());
    ASSERT_EQ(model.widths(), m.widths);
    ASSERT_EQ(model.num_hidden(), 5);
    for (index_t l = 0; l < model.num_layers(); ++l) {
      const auto& layer = model.layer(l);
      EXPECT_EQ(layer.activation(), l < 5 ? Activation::relu : Activation::identity);
      EXPECT_EQ(layer.has_bias(), l % 2 == 0);
      // W (in x out) is the transpose of PyTorch's (out, in) weight.
      const auto in = m.widths[static_cast<std::size_t>(l)];
      for (index_t o = 0; o < layer.d_out(); ++o)
        for (index_t i = 0; i < in; ++i)
          ASSERT_EQ(layer.factor(0)(i, o), m.weight[static_cast<std::size_t>(l)][static_cast<std::size_t>(o * in + i)]);
    }

    // Inputs in [0, 1]; labels: PyTorch's own prediction for the first half, arbitrary afterwards,
    // so the accuracy "PyTorch reports" is neither 0 nor 1.
    const index_t n = 60;
    std::mt19937_64 gen(23);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Matrix x(n, 6);
    for (double& v : x.values()) v = u(gen);
    std::vector<int> torch_pred(n), labels(n);
    double scale = 0.0;
    Matrix torch_logits(n, 3);
    for (index_t i = 0; i < n; ++i) {
      std::vector<double> row(6);
      for (index_t j = 0; j < 6; ++j) row[static_cast<std::size_t>(j)] = x(i, j);
      const auto z = torch_forward(m, row);
      for (index_t c = 0; c < 3; ++c) torch_logits(i, c) = z[static_cast<std::size_t>(c)];
      torch_pred[static_cast<std::size_t>(i)] = static_cast<int>(std::max_element(z.begin(), z.end()) - z.begin());
      labels[static_cast<std::size_t>(i)] =
          i < n / 2 ? torch_pred[static_cast<std::size_t>(i)] : static_cast<int>(i % 3);
      for (double v : z) scale = std::max(scale, std::abs(v));
    }
    const auto torch_counts = idprune::nn::count_correct(torch_pred, labels, 3);
    const auto pred = model.predict(x);
    EXPECT_EQ(pred, torch_pred);
    const auto counts = idprune::nn::count_correct(pred, labels, 3);
    EXPECT_EQ(counts.correct, torch_counts.correct);
    EXPECT_GT(counts.accuracy(), 0.5);
    EXPECT_LT(counts.accuracy(), 1.0);
    // Same weights, same data: logits agree to rounding (c = 16, depth 6, width <= 6).
    const Matrix z = model.logits(x);
    for (index_t i = 0; i < n; ++i)
      for (index_t c = 0; c < 3; ++c) EXPECT_LE(std::abs(z(i, c) - torch_logits(i, c)), 16 * eps * 6 * 6 * (1 + scale));
    fs::remove_all(dir);
  }
}

Mlp feature_model() {
  std::vector<DenseLayer> hidden;
  const Matrix b1 = idprune::test::gaussian(7, 1, 31);
  hidden.emplace_back(idprune::test::gaussian(9, 7, 32), std::vector<double>(b1.values().begin(), b1.values().end()),
                      Activation::relu);
  hidden.emplace_back(std::vector<Matrix>{idprune::test::gaussian(7, 3, 33), idprune::test::gaussian(3, 6, 34)},
                      std::vector<double>{0.5, -1, 2, 0, 1e-300, -3e10}, Activation::relu);
  hidden.emplace_back(idprune::test::gaussian(6, 5, 35), std::vector<double>{}, Activation::identity);
  DenseLayer classifier(idprune::test::gaussian(5, 4, 36), std::vector<double>{}, Activation::identity);
  return Mlp(std::move(hidden), std::move(classifier), {{"seed", "7"}, {"note", "ünïcode \"quoted\""}});
}

void expect_same_model(const Mlp& a, const Mlp& b, bool f32) {
  ASSERT_EQ(a.widths(), b.widths());
  for (index_t l = 0; l < a.num_layers(); ++l) {
    const auto& la = a.layer(l);
    const auto& lb = b.layer(l);
    EXPECT_EQ(la.activation(), lb.activation()) << "layer " << l;
    ASSERT_EQ(la.factor_count(), lb.factor_count()) << "layer " << l;
    for (index_t f = 0; f < la.factor_count(); ++f) {
      ASSERT_EQ(la.factor(f).rows(), lb.factor(f).rows());
      ASSERT_EQ(la.factor(f).cols(), lb.factor(f).cols());
      for (std::size_t k = 0; k < la.factor(f).values().size(); ++k) {
        const double want =
            f32 ? static_cast<double>(static_cast<float>(la.factor(f).values()[k])) : la.factor(f).values()[k];
        ASSERT_EQ(lb.factor(f).values()[k], want) << "layer " << l << " factor " << f << " entry " << k;
      }
    }
    ASSERT_EQ(la.bias().size(), lb.bias().size());
    for (std::size_t k = 0; k < la.bias().size(); ++k)
      EXPECT_EQ(lb.bias()[k], f32 ? static_cast<double>(static_cast<float>(la.bias()[k])) : la.bias()[k]);
  }
}

TEST(Safetensors, ModelRoundTripIsExactInF64AndRoundsToFloatInF32) {
  const Mlp model = feature_model();
  const fs::path dir = temp_dir("roundtrip");
  for (const Dtype dtype : {Dtype::f64, Dtype::f32}) {
    const auto path = (dir / "m.safetensors").string();
    idprune::nn::write_model_safetensors(path, model, dtype);
    const Mlp back = idprune::nn::read_model_safetensors(path);
    expect_same_model(model, back, dtype == Dtype::f32);
    EXPECT_EQ(back.metadata(), model.metadata());
    const auto raw = idprune::nn::read_safetensors(path);
    EXPECT_EQ(raw.metadata.at("format"), "pt");
    EXPECT_EQ(raw.metadata.at(idprune::nn::activations_key), "relu,relu,identity,identity");
    // The factored layer occupies consecutive indices 2, 3; activation modules sit at 1, 4, 6.
    for (const char* key : {"0.weight", "0.bias", "2.weight", "3.weight", "3.bias", "5.weight", "7.weight"})
      EXPECT_EQ(raw.tensors.count(key), 1u) << key;
    EXPECT_EQ(raw.tensors.size(), 7u);
  }
  // The atomic write leaves no temporary file behind.
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
  EXPECT_THROW(idprune::nn::write_model_safetensors((dir / "missing" / "m.safetensors").string(), model), Error);
  fs::remove_all(dir);
}

TEST(Safetensors, ConsecutiveLinearModulesFormOneLowRankLayer) {
  // nn.Sequential(Linear(4,2,bias=False), Linear(2,3), ReLU(), Linear(3,2)): keys 0, 1, 3.
  const std::vector<TorchTensor> sd{{"0.weight", {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}},
                                    {"1.weight", {3, 2}, {1, 0, 0, 1, 1, 1}},
                                    {"1.bias", {3}, {0.5f, -0.5f, 0}},
                                    {"3.weight", {2, 3}, {1, 2, 3, 4, 5, 6}}};
  const TensorFile file = idprune::nn::parse_safetensors(torch_save_file(sd), "lowrank");
  const Mlp model = idprune::nn::from_tensor_file(file, "lowrank");
  ASSERT_EQ(model.num_hidden(), 1);
  EXPECT_EQ(model.hidden(0).factor_count(), 2);
  EXPECT_EQ(model.hidden(0).d_in(), 4);
  EXPECT_EQ(model.hidden(0).d_out(), 3);
  EXPECT_EQ(model.hidden(0).activation(), Activation::relu);
  EXPECT_EQ(model.parameter_count(), 8 + 6 + 3 + 6);
}

TEST(Safetensors, ActivationMetadataOverridesTheDefault) {
  const std::vector<TorchTensor> sd{{"0.weight", {2, 4}, std::vector<float>(8, 1)},
                                    {"2.weight", {3, 2}, std::vector<float>(6, 1)}};
  std::string bytes = torch_save_file(sd);
  TensorFile file = idprune::nn::parse_safetensors(bytes, "act");
  file.metadata[idprune::nn::activations_key] = "identity,identity";
  EXPECT_EQ(idprune::nn::from_tensor_file(file, "act").hidden(0).activation(), Activation::identity);
  file.metadata[idprune::nn::activations_key] = "relu";
  EXPECT_THROW((void)idprune::nn::from_tensor_file(file, "act"), Error);  // 1 entry for 2 layers
  file.metadata[idprune::nn::activations_key] = "relu,relu";
  EXPECT_THROW((void)idprune::nn::from_tensor_file(file, "act"), Error);  // classifier must be identity
  file.metadata[idprune::nn::activations_key] = "tanh,identity";
  EXPECT_THROW((void)idprune::nn::from_tensor_file(file, "act"), Error);
}

TEST(Safetensors, MalformedContainersAreClearErrors) {
  const std::string four_f32 = f32_bytes(1) + f32_bytes(2) + f32_bytes(3) + f32_bytes(4);
  expect_error("abc", {"shorter than the 8-byte"});
  expect_error(le(1ULL << 60, 8) + "{}", {"exceeds the safetensors limit"});
  expect_error(le(1000, 8) + "{\"a\":1}", {"header length 1000", "truncated"});
  expect_error(assemble("{\"a\":", ""), {"not valid JSON"});
  expect_error(assemble("[1,2]", ""), {"not a JSON object"});
  expect_error(assemble("{" + entry_json("w", "I64", {2}, 0, 16) + "}", std::string(16, '\0')),
               {"'w'", "unsupported dtype 'I64'"});
  expect_error(assemble("{" + entry_json("w", "F16", {2}, 0, 4) + "}", std::string(4, '\0')),
               {"'w'", "unsupported dtype 'F16'"});
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", four_f32), {"'w'", "no 'shape'"});
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[4]}}", four_f32), {"'w'", "no 'data_offsets'"});
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", four_f32),
               {"'w'", "not a pair"});
  expect_error(assemble("{" + entry_json("w", "F32", {2, 2}, 0, 12) + "}", four_f32.substr(0, 12)),
               {"'w'", "needs 16"});
  expect_error(assemble("{" + entry_json("w", "F32", {2, 2}, 0, 16) + "}", four_f32.substr(0, 8)),
               {"'w'", "exceed the 8-byte data buffer"});
  expect_error(assemble("{" + entry_json("w", "F32", {2}, 8, 0) + "}", four_f32), {"'w'", "begin > end"});
  expect_error(
      assemble("{" + entry_json("a", "F32", {4}, 0, 16) + "," + entry_json("b", "F32", {2}, 8, 16) + "}", four_f32),
      {"overlap"});
  expect_error(assemble("{" + entry_json("a", "F32", {1}, 0, 4) + "," + entry_json("b", "F32", {1}, 8, 12) + "}",
                        four_f32.substr(0, 12)),
               {"'b'", "hole"});
  expect_error(assemble("{" + entry_json("a", "F32", {2}, 0, 8) + "}", four_f32), {"trailing bytes"});
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", four_f32.substr(0, 8)),
               {"'w'", "not a non-negative integer"});
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", four_f32.substr(0, 8)),
               {"'w'", "not a non-negative integer"});
  expect_error(assemble("{" + entry_json("w", "F64", {4611686018427387904LL, 4}, 0, 8) + "}", four_f32.substr(0, 8)),
               {"'w'", "overflows"});
  expect_error(assemble("{\"__metadata__\":{\"seed\":1}}", ""), {"__metadata__", "'seed'", "not a string"});
}

// Found while fuzzing (by a hand-made input: libFuzzer's 8 KB inputs nest too shallowly): the error for a malformed
// shape or data_offsets printed the value with json::dump, which recurses once per nesting level; a header nesting a
// million levels (2 MB, far under the 100 MB limit) overflowed the stack. The message now shows nested values by type
// only.
TEST(Safetensors, DeeplyNestedHeaderValuesAreClearErrors) {
  const std::size_t depth = 1'000'000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":" + nested + "}}", ""),
               {"'w'", "data_offsets (a nested array)", "not a pair"});
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[" + nested + "],\"data_offsets\":[0,4]}}", ""),
               {"'w'", "shape entry (a nested array)", "not a non-negative integer"});
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" + nested + ",4]}}", ""),
               {"'w'", "data_offsets entry (a nested array)"});
  // A long flat value is cut short rather than copied whole into the message.
  std::string many = "[";
  for (int i = 0; i < 10000; ++i) many += "1,";
  many += "1.5]";
  expect_error(assemble("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":" + many + "}}", ""),
               {"'w'", "data_offsets [1,1,1", "...", "not a pair"});
}

TEST(Safetensors, NonFiniteValuesAreErrorsNamingTensorAndIndex) {
  const std::string header = "{" + entry_json("0.weight", "F32", {2, 2}, 0, 16) + "}";
  expect_error(assemble(header, f32_bytes(1) + f32_bytes(2) + f32_bytes(NAN) + f32_bytes(4)),
               {"'0.weight'", "[1, 0]", "not finite"});
  const std::string header64 = "{" + entry_json("w", "F64", {3}, 0, 24) + "}";
  expect_error(assemble(header64, f64_bytes(1) + f64_bytes(2) + f64_bytes(-INFINITY)), {"'w'", "[2]", "not finite"});
  // Not finite values cannot be written either.
  TensorFile bad;
  bad.tensors["w"] = Tensor{Dtype::f64, {1}, {NAN}};
  EXPECT_THROW((void)idprune::nn::serialize_safetensors(bad), Error);
  bad.tensors["w"] = Tensor{Dtype::f32, {1}, {1e300}};  // overflows float
  EXPECT_THROW((void)idprune::nn::serialize_safetensors(bad), Error);
}

TEST(Safetensors, MalformedModelsAreClearErrors) {
  const std::vector<float> w56(30, 0.1f), w45(20, 0.1f), w47(28, 0.1f);
  const auto model_error = [](const std::vector<TorchTensor>& sd, const std::vector<std::string>& needles) {
    expect_error(torch_save_file(sd), needles, true);
  };
  model_error({{"0.weight", {5, 6}, w56}, {"2.weight", {4, 7}, w47}}, {"'2.weight'", "(4, 7)", "out=5"});
  model_error({{"0.weight", {5, 6}, w56}, {"0.bias", {4}, {1, 2, 3, 4}}}, {"'0.bias'", "out=5"});
  model_error({{"0.weight", {5, 6}, w56}, {"0.running_mean", {5}, {1, 2, 3, 4, 5}}}, {"'0.running_mean'"});
  model_error({{"0.weights", {5, 6}, w56}}, {"'0.weights'"});
  model_error({{"0.weight", {30}, w56}}, {"'0.weight'", "(30,)", "2-D"});
  model_error({{"0.weight", {5, 6}, w56}, {"2.bias", {4}, {1, 2, 3, 4}}}, {"'2.bias'", "no matching '2.weight'"});
  // Two prefixes are not one Sequential; their shapes must then give the order.
  model_error({{"net.0.weight", {5, 6}, w56}, {"2.weight", {4, 7}, w47}}, {"no order of the modules chains"});
  expect_error(assemble("{}", ""), {"no tensors"}, true);
}

TEST(Safetensors, TruncatedAndMissingFilesNameThePath) {
  const fs::path dir = temp_dir("truncated");
  const auto path = (dir / "model.safetensors").string();
  idprune::nn::write_model_safetensors(path, feature_model());
  fs::resize_file(path, fs::file_size(path) - 4);
  try {
    (void)idprune::nn::read_model_safetensors(path);
    ADD_FAILURE() << "truncated file accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("truncated"), std::string::npos) << what;
  }
  fs::resize_file(path, 5);
  EXPECT_THROW((void)idprune::nn::read_model_safetensors(path), Error);
  EXPECT_THROW((void)idprune::nn::read_model_safetensors((dir / "nope.safetensors").string()), Error);
  fs::remove_all(dir);
}

}  // namespace
