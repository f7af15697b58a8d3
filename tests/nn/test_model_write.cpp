// Writing (compressed) models: the documented nn.Sequential key layout, round trips through
// safetensors and .npy folders (factored layers and biases included), provenance metadata, and
// errors that write nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "idprune/nn/model_io.hpp"
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
using idprune::nn::ModelFormat;
using idprune::nn::ModelWriteOptions;
using idprune::nn::TensorFile;

fs::path temp_dir(const std::string& tag) { return idprune::test::nn_temp_dir("write", tag); }

std::vector<double> values(index_t n, double start) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = start + 0.125 * static_cast<double>(i);
  return v;
}

// What a compression produces: 9 -> 6 (bias) -> [6 -> rank 2 -> 5, bias] -> 4 (no bias, identity
// hidden layer) -> 3 (bias).
Mlp compressed_model() {
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(idprune::test::gaussian(9, 6, 1), values(6, -0.3), Activation::relu);
  hidden.emplace_back(std::vector<Matrix>{idprune::test::gaussian(6, 2, 2), idprune::test::gaussian(2, 5, 3)},
                      values(5, 0.1), Activation::relu);
  hidden.emplace_back(idprune::test::gaussian(5, 4, 4), std::vector<double>{}, Activation::identity);
  return Mlp(std::move(hidden), DenseLayer(idprune::test::gaussian(4, 3, 5), values(3, 0.2), Activation::identity),
             {{"idprune.seed", "7"}});
}

// PyTorch's view of a written file, built the way docs/model-files.md does in Python: index i with
// a weight is nn.Linear(in, out, bias=has bias), an index without one is the activation module.
Matrix sequential_forward(const TensorFile& file, const Matrix& x, const std::vector<std::string>& activations) {
  long last = -1;
  for (const auto& [key, t] : file.tensors) last = std::max(last, std::stol(key.substr(0, key.find('.'))));
  Matrix h = x;
  std::size_t gap = 0;
  for (long i = 0; i <= last; ++i) {
    const auto w = file.tensors.find(std::to_string(i) + ".weight");
    if (w == file.tensors.end()) {  // the activation module after hidden layer `gap`
      if (activations.at(gap++) == "relu")
        for (double& v : h.values()) v = std::max(v, 0.0);
      continue;
    }
    const auto out = w->second.shape[0], in = w->second.shape[1];
    const auto b = file.tensors.find(std::to_string(i) + ".bias");
    Matrix y(h.rows(), out);
    for (index_t r = 0; r < h.rows(); ++r)
      for (std::int64_t o = 0; o < out; ++o) {
        double s = b == file.tensors.end() ? 0.0 : b->second.values[static_cast<std::size_t>(o)];
        for (std::int64_t k = 0; k < in; ++k) s += h(r, k) * w->second.values[static_cast<std::size_t>(o * in + k)];
        y(r, o) = s;
      }
    h = y;
  }
  return h;
}

void expect_same_logits(const Mlp& a, const Mlp& b, double tol) {
  const Matrix x = idprune::test::gaussian(11, a.input_dim(), 77);
  const Matrix la = a.logits(x), lb = b.logits(x);
  ASSERT_EQ(la.rows(), lb.rows());
  ASSERT_EQ(la.cols(), lb.cols());
  for (std::size_t i = 0; i < la.values().size(); ++i)
    EXPECT_NEAR(la.values()[i], lb.values()[i], tol * (1.0 + std::abs(la.values()[i]))) << i;
}

TEST(ModelWrite, SafetensorsUsesTheDocumentedSequentialLayout) {
  const Mlp model = compressed_model();
  const TensorFile file = idprune::nn::to_tensor_file(model, Dtype::f64);
  // Layer 1: 0 (+bias), ReLU at 1; layer 2: factors 2, 3 (bias on 3), ReLU at 4; layer 3: 5
  // (no bias), Identity at 6; classifier: 7 (+bias).
  const std::map<std::string, std::vector<std::int64_t>> expected{
      {"0.weight", {6, 9}}, {"0.bias", {6}},      {"2.weight", {2, 6}}, {"3.weight", {5, 2}},
      {"3.bias", {5}},      {"5.weight", {4, 5}}, {"7.weight", {3, 4}}, {"7.bias", {3}}};
  ASSERT_EQ(file.tensors.size(), expected.size());
  for (const auto& [key, shape] : expected) {
    ASSERT_EQ(file.tensors.count(key), 1u) << key;
    EXPECT_EQ(file.tensors.at(key).shape, shape) << key;
  }
  EXPECT_EQ(file.metadata.at(idprune::nn::activations_key), "relu,relu,identity,identity");
  EXPECT_EQ(file.metadata.at("format"), "pt");
  // An nn.Sequential built from those shapes computes the model's function.
  const Matrix x = idprune::test::gaussian(6, 9, 8);
  const Matrix want = model.logits(x);
  const Matrix got = sequential_forward(file, x, {"relu", "relu", "identity"});
  for (std::size_t i = 0; i < want.values().size(); ++i)
    EXPECT_NEAR(got.values()[i], want.values()[i], 1e-12 * (1.0 + std::abs(want.values()[i])));
}

TEST(ModelWrite, RoundTripsThroughBothFormatsWithProvenance) {
  const Mlp model = compressed_model();
  const fs::path dir = temp_dir("roundtrip");
  ModelWriteOptions options;
  options.metadata = {{"idprune.kept.layer1", "0;3;4;5;7;8"}, {"idprune.strategy", "greedy"}};
  for (const ModelFormat format : {ModelFormat::safetensors, ModelFormat::npy}) {
    for (const Dtype dtype : {Dtype::f64, Dtype::f32}) {
      if (format == ModelFormat::npy && dtype == Dtype::f32) continue;  // .npy folders are float64
      options.format = format;
      options.dtype = dtype;
      const fs::path path = dir / (format == ModelFormat::npy ? "model_npy" : "model.safetensors");
      idprune::nn::write_model(path.string(), model, options);
      const Mlp back = idprune::nn::load_model(path.string());
      EXPECT_EQ(back.widths(), model.widths());
      EXPECT_EQ(back.parameter_count(), model.parameter_count());
      for (index_t l = 0; l < model.num_layers(); ++l) {
        EXPECT_EQ(back.layer(l).factor_count(), model.layer(l).factor_count()) << l;
        EXPECT_EQ(back.layer(l).has_bias(), model.layer(l).has_bias()) << l;
        EXPECT_EQ(back.layer(l).activation(), model.layer(l).activation()) << l;
      }
      // float64 is exact; float32 rounds each parameter once (relative 2^-24), which changes the
      // logits of these O(1) weights by far less than 1e-5.
      expect_same_logits(model, back, dtype == Dtype::f64 ? 0.0 : 1e-5);
      EXPECT_EQ(back.metadata().at("idprune.kept.layer1"), "0;3;4;5;7;8");
      EXPECT_EQ(back.metadata().at("idprune.strategy"), "greedy");
      EXPECT_EQ(back.metadata().at("idprune.seed"), "7");
    }
  }
  // The .npy folder names the factors of layer 2 W2_1.npy, W2_2.npy.
  for (const char* name : {"W1.npy", "b1.npy", "W2_1.npy", "W2_2.npy", "b2.npy", "W3.npy", "Ws.npy", "bs.npy"})
    EXPECT_TRUE(fs::exists(dir / "model_npy" / name)) << name;
  EXPECT_FALSE(fs::exists(dir / "model_npy" / "W2.npy"));
  EXPECT_FALSE(fs::exists(dir / "model_npy" / "b3.npy"));
  fs::remove_all(dir);
}

TEST(ModelWrite, ErrorsWriteNothing) {
  const fs::path dir = temp_dir("errors");
  Mlp bad = compressed_model();
  bad.layer(1).factor_values(1)(1, 2) = std::numeric_limits<double>::quiet_NaN();
  for (const ModelFormat format : {ModelFormat::safetensors, ModelFormat::npy}) {
    ModelWriteOptions options;
    options.format = format;
    const fs::path path = dir / (format == ModelFormat::npy ? "npy" : "m.safetensors");
    try {
      idprune::nn::write_model(path.string(), bad, options);
      ADD_FAILURE() << "non-finite model written";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("hidden layer 2 weight factor 1"), std::string::npos) << e.what();
    }
  }
  // A value beyond float32's range cannot be written as F32 (but can as F64).
  Mlp huge = compressed_model();
  huge.layer(0).factor_values(0)(0, 0) = 1e300;
  EXPECT_THROW(idprune::nn::write_model((dir / "huge.safetensors").string(), huge), Error);
  // The caller's metadata may not overwrite what idprune records itself.
  ModelWriteOptions reserved;
  reserved.metadata = {{idprune::nn::activations_key, "relu"}};
  EXPECT_THROW(idprune::nn::write_model((dir / "r.safetensors").string(), compressed_model(), reserved), Error);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 0) << "something was written";
  ModelWriteOptions f64;
  f64.dtype = Dtype::f64;
  EXPECT_NO_THROW(idprune::nn::write_model((dir / "huge.safetensors").string(), huge, f64));
  fs::remove_all(dir);
}

TEST(ModelWrite, SaveModelKeepsItsPathRule) {
  const fs::path dir = temp_dir("save");
  idprune::nn::save_model((dir / "a.safetensors").string(), compressed_model());
  idprune::nn::save_model((dir / "folder").string(), compressed_model());
  EXPECT_TRUE(fs::is_regular_file(dir / "a.safetensors"));
  EXPECT_TRUE(fs::is_directory(dir / "folder"));
  EXPECT_TRUE(fs::exists(dir / "folder" / "W2_1.npy"));
  // Rewriting the same model into its folder is allowed (the files are replaced one by one).
  EXPECT_NO_THROW(idprune::nn::save_model((dir / "folder/").string(), compressed_model()));
  // A layer order applies to state dicts only.
  idprune::nn::ModelReadOptions order;
  order.layer_order = {"0", "2"};
  EXPECT_THROW((void)idprune::nn::load_model((dir / "folder").string(), order), Error);
  fs::remove_all(dir);
}

}  // namespace
