// The precision of a sweep's evaluation in its rows: a float32 row says so, and a resume never mixes
// rows of the two precisions in one table.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "idprune/compress/sweep.hpp"
#include "idprune/la/error.hpp"

namespace idprune::test {
namespace {

using nlohmann::ordered_json;

compress::SweepProvenance provenance(nn::Precision precision) {
  compress::SweepProvenance prov;
  prov.model = "m.safetensors";
  prov.data = "d";
  prov.compression_size = 100;
  prov.test_samples = 50;
  prov.seed = 3;
  prov.engine = "tsqr";
  prov.cpqr_method = "blocked";
  prov.precision = precision;
  return prov;
}

ordered_json row_of(const compress::SweepProvenance& prov, double value, std::int64_t changes = 0) {
  compress::SweepRow row;
  row.value = value;
  row.metrics.counts.samples = prov.test_samples;
  row.metrics.counts.precision_changes = changes;
  return compress::sweep_record(row, "greedy", compress::RankRule::eps, {}, prov);
}

TEST(PrecisionRecords, AFloat32RowSaysSoAndCountsChangedPredictionsWhenCompared) {
  const auto f64 = provenance(nn::Precision::f64);
  EXPECT_FALSE(row_of(f64, 0.1).contains("precision"));  // the historical float64 row
  EXPECT_FALSE(row_of(f64, 0.1).contains("f32_changed_predictions"));
  auto f32 = provenance(nn::Precision::f32);
  const ordered_json r = row_of(f32, 0.1);
  ASSERT_TRUE(r.contains("precision"));
  EXPECT_EQ(r["precision"], "f32");
  EXPECT_FALSE(r.contains("f32_changed_predictions"));
  f32.compare_precision = true;
  const ordered_json c = row_of(f32, 0.1, 7);
  ASSERT_TRUE(c.contains("f32_changed_predictions"));
  EXPECT_EQ(c["f32_changed_predictions"], 7);
  // Beside the accuracy it qualifies.
  std::vector<std::string> keys;
  for (const auto& [key, value] : c.items()) keys.push_back(key);
  const auto at = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) - keys.begin(); };
  EXPECT_EQ(at("precision"), at("agreement") + 1);
  EXPECT_EQ(at("f32_changed_predictions"), at("precision") + 1);
}

TEST(PrecisionRecords, ResumeRefusesRowsOfTheOtherPrecision) {
  const std::vector<double> grid = {0.1, 0.2};
  const auto f64 = provenance(nn::Precision::f64);
  const auto f32 = provenance(nn::Precision::f32);
  const std::vector<ordered_json> rows64 = {row_of(f64, 0.1)};
  const std::vector<ordered_json> rows32 = {row_of(f32, 0.1)};
  EXPECT_EQ(compress::finished_points(rows64, grid, "greedy", compress::RankRule::eps, {}, f64),
            (std::vector<char>{1, 0}));
  EXPECT_EQ(compress::finished_points(rows32, grid, "greedy", compress::RankRule::eps, {}, f32),
            (std::vector<char>{1, 0}));
  for (const auto& [rows, prov] : {std::pair{rows64, f32}, std::pair{rows32, f64}}) {
    try {
      (void)compress::finished_points(rows, grid, "greedy", compress::RankRule::eps, {}, prov);
      ADD_FAILURE() << "a row of the other precision was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("precision"), std::string::npos) << e.what();
    }
  }
  // Comparing precisions adds a column, not a configuration: such rows resume either way.
  auto compared = f32;
  compared.compare_precision = true;
  EXPECT_EQ(compress::finished_points(rows32, grid, "greedy", compress::RankRule::eps, {}, compared),
            (std::vector<char>{1, 0}));
}

}  // namespace
}  // namespace idprune::test
