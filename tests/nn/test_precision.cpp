// nn::predict in float64 and float32 on the embedded model and data: float64 is Mlp::predict, neither
// depends on the thread count, and float32 changes a prediction only where the two logits are within
// float32's rounding-error bound. The number of changed predictions is reported, not asserted.
#include <gtest/gtest.h>
#include <tbb/global_control.h>

#include <iostream>

#include "idprune/data/dataset.hpp"
#include "idprune/nn/inference.hpp"
#include "idprune/nn/model_io.hpp"

namespace {

using idprune::la::index_t;
using idprune::nn::Precision;

const std::string source_dir = IDPRUNE_SOURCE_DIR;

}  // namespace

TEST(Precision, Float32ChangesOnlyPredictionsWithinRoundingOfATie) {
  const auto model = idprune::nn::load_model(source_dir + "/data/models/fashion-mnist-small.safetensors");
  const std::string data = source_dir + "/data/fashion-mnist-small";
  for (const auto split : {idprune::data::Split::test, idprune::data::Split::train}) {
    const auto set = idprune::data::load_dataset(data, split);
    const std::vector<int> f64 = idprune::nn::predict(model, set.x, Precision::f64);
    const std::vector<int> f32 = idprune::nn::predict(model, set.x, Precision::f32);
    EXPECT_EQ(f64, model.predict(set.x));
    const auto exact = model.logits(set.x);
    const auto bound = idprune::nn::float32_error_bound(model, set.x);
    index_t changed = 0;
    for (std::size_t i = 0; i < f64.size(); ++i) {
      if (f64[i] == f32[i]) continue;
      ++changed;
      const auto r = static_cast<index_t>(i);
      EXPECT_LE(exact(r, f64[i]) - exact(r, f32[i]), bound(r, f64[i]) + bound(r, f32[i])) << "sample " << i;
    }
    const auto f64_correct = idprune::nn::count_correct(f64, set.y, set.classes).correct_total();
    const auto f32_correct = idprune::nn::count_correct(f32, set.y, set.classes).correct_total();
    std::cout << "fashion-mnist-small " << idprune::data::to_string(split) << " (" << f64.size()
              << " images): float32 changes " << changed << " predictions; correct f64 " << f64_correct << ", f32 "
              << f32_correct << "\n";
    RecordProperty(std::string("changed_") + idprune::data::to_string(split), static_cast<int>(changed));
  }
}

TEST(Precision, PredictionsDoNotDependOnThreadsOrBlocks) {
  const auto model = idprune::nn::load_model(source_dir + "/data/models/fashion-mnist-small.safetensors");
  const auto set = idprune::data::load_dataset(source_dir + "/data/fashion-mnist-small", idprune::data::Split::test);
  for (const auto precision : {Precision::f64, Precision::f32}) {
    std::vector<std::vector<int>> runs;
    for (const int threads : {1, 2})
      for (const index_t block : {index_t{64}, index_t{1000}}) {
        const tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                                        static_cast<std::size_t>(threads));
        runs.push_back(idprune::nn::predict(model, set.x, precision, {.block_rows = block}));
      }
    for (const auto& r : runs) EXPECT_EQ(r, runs.front()) << to_string(precision);
  }
}

TEST(Precision, NamesParseAndBadOnesAreErrors) {
  EXPECT_EQ(idprune::nn::parse_precision("f32"), Precision::f32);
  EXPECT_EQ(idprune::nn::parse_precision("float64"), Precision::f64);
  EXPECT_EQ(idprune::nn::parse_precision(to_string(Precision::f32)), Precision::f32);
  EXPECT_THROW((void)idprune::nn::parse_precision("f16"), idprune::Error);
}
