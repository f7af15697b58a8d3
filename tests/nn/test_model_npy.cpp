// Models as folders of .npy files (the reference text's W1.npy ... Ws.npy).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "idprune/data/npy.hpp"
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
using idprune::nn::Mlp;

fs::path temp_dir(const std::string& tag) { return idprune::test::nn_temp_dir("npy", tag); }

void expect_error_mentioning(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning '" << needles.front() << "'";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// The reference text's layout, written with numpy-equivalent files: W1 (9 x 7), W2 (7 x 5), Ws (5 x 3).
void write_reference_folder(const fs::path& dir) {
  idprune::data::write_npy((dir / "W1.npy").string(), idprune::test::gaussian(9, 7, 41));
  idprune::data::write_npy((dir / "W2.npy").string(), idprune::test::gaussian(7, 5, 42));
  idprune::data::write_npy((dir / "Ws.npy").string(), idprune::test::gaussian(5, 3, 43));
  // Data files of the reference package live in the same folder and are ignored.
  idprune::data::write_npy((dir / "Xtest.npy").string(), idprune::test::gaussian(4, 9, 44));
}

TEST(ModelNpy, ReferenceFolderEvaluatesLikeTheInMemoryModel) {
  const fs::path dir = temp_dir("reference");
  write_reference_folder(dir);
  const Mlp model = idprune::nn::read_model_npy(dir.string());
  ASSERT_EQ(model.widths(), (std::vector<index_t>{9, 7, 5, 3}));
  EXPECT_EQ(model.hidden(0).activation(), Activation::relu);
  EXPECT_EQ(model.hidden(1).activation(), Activation::relu);
  EXPECT_FALSE(model.classifier().has_bias());

  std::vector<DenseLayer> hidden;
  hidden.emplace_back(idprune::test::gaussian(9, 7, 41));
  hidden.emplace_back(idprune::test::gaussian(7, 5, 42));
  const Mlp in_memory(std::move(hidden), DenseLayer(idprune::test::gaussian(5, 3, 43), {}, Activation::identity));
  const Matrix x = idprune::test::gaussian(50, 9, 45);
  const Matrix a = model.logits(x);
  const Matrix b = in_memory.logits(x);
  // float64 files hold the weights exactly, so the same GEMMs give the same bits.
  for (std::size_t k = 0; k < a.values().size(); ++k) ASSERT_EQ(a.values()[k], b.values()[k]);
  EXPECT_EQ(idprune::nn::load_model(dir.string()).widths(), model.widths());
  fs::remove_all(dir);
}

TEST(ModelNpy, RoundTripKeepsWeightsBiasesActivationsAndMetadata) {
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(idprune::test::gaussian(6, 4, 51), std::vector<double>{1, 2, 3, 4}, Activation::relu);
  hidden.emplace_back(idprune::test::gaussian(4, 4, 52), std::vector<double>{}, Activation::identity);
  const Mlp model(std::move(hidden),
                  DenseLayer(idprune::test::gaussian(4, 2, 53), std::vector<double>{-1, 1}, Activation::identity),
                  {{"seed", "3"}});
  const fs::path dir = temp_dir("roundtrip");
  idprune::nn::save_model((dir / "model").string(), model);
  for (const char* f : {"W1.npy", "W2.npy", "Ws.npy", "b1.npy", "bs.npy", "metadata.json"})
    EXPECT_TRUE(fs::exists(dir / "model" / f)) << f;
  EXPECT_FALSE(fs::exists(dir / "model" / "b2.npy"));
  const Mlp back = idprune::nn::load_model((dir / "model").string());
  ASSERT_EQ(back.widths(), model.widths());
  for (index_t l = 0; l < model.num_layers(); ++l) {
    EXPECT_EQ(back.layer(l).activation(), model.layer(l).activation());
    EXPECT_EQ(back.layer(l).bias(), model.layer(l).bias());
    const auto& w0 = model.layer(l).factor(0).values();
    const auto& w1 = back.layer(l).factor(0).values();
    ASSERT_TRUE(std::equal(w0.begin(), w0.end(), w1.begin(), w1.end())) << "layer " << l;
  }
  EXPECT_EQ(back.metadata(), model.metadata());
  fs::remove_all(dir);
}

TEST(ModelNpy, MalformedFoldersAreClearErrors) {
  const fs::path dir = temp_dir("malformed");
  const auto path = dir.string();
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"Ws.npy"});
  write_reference_folder(dir);
  fs::rename(dir / "W2.npy", dir / "W3.npy");  // W1, W3: W2 missing
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"W2.npy is missing"});
  fs::rename(dir / "W3.npy", dir / "W2.npy");
  idprune::data::write_npy((dir / "W2.npy").string(), idprune::test::gaussian(6, 5, 46));  // 7 != 6
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"W2.npy", "(6, 5)", "d_out=7"});
  idprune::data::write_npy((dir / "W2.npy").string(), idprune::test::gaussian(7, 5, 42));
  idprune::data::write_npy((dir / "b2.npy").string(), Matrix(4, 1));  // d_out is 5
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"b2.npy", "d_out=5"});
  fs::remove(dir / "b2.npy");
  idprune::data::write_npy((dir / "b7.npy").string(), Matrix(4, 1));
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"b7.npy", "without a matching weight"});
  fs::remove(dir / "b7.npy");
  Matrix nan_w = idprune::test::gaussian(5, 3, 43);
  nan_w(2, 1) = NAN;
  idprune::data::write_npy((dir / "Ws.npy").string(), nan_w);
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"Ws.npy"});
  idprune::data::write_npy((dir / "Ws.npy").string(), idprune::test::gaussian(5, 3, 43));
  std::ofstream(dir / "metadata.json") << "{\"idprune.activations\": 3}";
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"metadata.json", "not a string"});
  std::ofstream(dir / "metadata.json") << "{\"idprune.activations\": \"relu,relu\"}";
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"2 activations for 3 layers"});
  fs::remove(dir / "metadata.json");
  EXPECT_NO_THROW((void)idprune::nn::read_model_npy(path));
  fs::remove_all(dir);
}

// NaN/Inf in any weight or bias file is refused at load time, naming the file and the index of
// the first bad value (before any layer is built).
TEST(ModelNpy, NonFiniteWeightOrBiasNamesFileAndIndex) {
  const fs::path dir = temp_dir("nonfinite");
  const auto path = dir.string();
  write_reference_folder(dir);
  Matrix w2 = idprune::test::gaussian(7, 5, 42);
  w2(3, 1) = NAN;
  w2(6, 4) = INFINITY;  // later in the file: the first bad value is reported
  idprune::data::write_npy((dir / "W2.npy").string(), w2);
  expect_error_mentioning([&] { (void)idprune::nn::read_model_npy(path); }, {"W2.npy", "(3, 1)", "non-finite"});
  idprune::data::write_npy((dir / "W2.npy").string(), idprune::test::gaussian(7, 5, 42));
  Matrix b1(7, 1);
  b1(5, 0) = -INFINITY;
  idprune::data::write_npy((dir / "b1.npy").string(), b1);
  expect_error_mentioning([&] { (void)idprune::nn::load_model(path); }, {"b1.npy", "(5, 0)", "-inf"});
  fs::remove(dir / "b1.npy");
  EXPECT_NO_THROW((void)idprune::nn::load_model(path));
  fs::remove_all(dir);
}

// An in-memory model is checked by non_finite_parameter: layer, tensor and index of the first bad value.
TEST(ModelNpy, NonFiniteParameterNamesLayerTensorAndIndex) {
  std::vector<DenseLayer> hidden;
  hidden.emplace_back(idprune::test::gaussian(4, 3, 1), std::vector<double>{0.1, 0.2, 0.3});
  hidden.emplace_back(std::vector<Matrix>{idprune::test::gaussian(3, 2, 2), idprune::test::gaussian(2, 3, 3)},
                      std::vector<double>{}, Activation::relu);
  Mlp model(std::move(hidden), DenseLayer(idprune::test::gaussian(3, 2, 4), {}, Activation::identity));
  EXPECT_EQ(idprune::nn::non_finite_parameter(model), "");
  Mlp bad = model;
  bad.layer(1).factor_values(1)(1, 2) = NAN;
  EXPECT_NE(idprune::nn::non_finite_parameter(bad).find("hidden layer 2 weight factor 1: entry (1, 2) is nan"),
            std::string::npos)
      << idprune::nn::non_finite_parameter(bad);
  bad = model;
  bad.layer(0).bias_values()[2] = INFINITY;
  EXPECT_NE(idprune::nn::non_finite_parameter(bad).find("hidden layer 1 bias: entry 2 is inf"), std::string::npos)
      << idprune::nn::non_finite_parameter(bad);
  bad = model;
  bad.layer(2).factor_values(0)(0, 1) = -INFINITY;
  EXPECT_NE(idprune::nn::non_finite_parameter(bad).find("the classifier weight: entry (0, 1) is -inf"),
            std::string::npos)
      << idprune::nn::non_finite_parameter(bad);
}

TEST(ModelNpy, WriterRefusesForeignModelFilesAndLeavesTheFolderAsItWas) {
  const fs::path dir = temp_dir("writer");
  fs::create_directories(dir / "b");
  write_reference_folder(dir / "b");  // two hidden layers
  std::vector<DenseLayer> one;
  one.emplace_back(Matrix(9, 7, 1.0));
  const Mlp smaller(std::move(one), DenseLayer(Matrix(7, 3, 1.0), {}, Activation::identity));
  const auto before = fs::last_write_time(dir / "b" / "W1.npy");
  expect_error_mentioning([&] { idprune::nn::write_model_npy((dir / "b").string(), smaller); }, {"W2.npy"});
  EXPECT_EQ(fs::last_write_time(dir / "b" / "W1.npy"), before);
  EXPECT_FALSE(fs::exists(dir / "b" / "metadata.json"));
  // Nothing but the folder itself is left next to it (no temporary folder).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

}  // namespace
