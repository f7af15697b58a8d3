// Result files (append, crash recovery on resume, CSV formatting), resume matching, and the progress
// text.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "idprune/compress/progress.hpp"
#include "idprune/compress/results.hpp"
#include "idprune/compress/sweep.hpp"
#include "idprune/la/error.hpp"

namespace idprune::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

class TempFolder {
 public:
  TempFolder() {
    std::string tmpl = (fs::temp_directory_path() / "idprune-compress-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  [[nodiscard]] std::string str() const { return path_.string(); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

ordered_json row(double value, int params) {
  ordered_json r;
  r["strategy"] = "greedy";
  r["rule"] = "eps";
  r["value"] = value;
  r["layers"] = "all";
  r["params"] = params;
  r["kept_per_layer"] = std::vector<int>{3, 2};
  r["model"] = "m, with comma";
  return r;
}

TEST(Csv, NumbersRoundTripAndTextIsQuoted) {
  ordered_json r;
  r["a"] = 0.1;
  r["b"] = 1e-300;
  r["c"] = 42;
  r["d"] = "x,\"y\"";
  r["e"] = std::vector<double>{0.5, 2};
  const auto cols = compress::csv_columns(r);
  EXPECT_EQ(cols, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(compress::csv_line(r, cols), "0.1,1e-300,42,\"x,\"\"y\"\"\",0.5;2");
  EXPECT_EQ(compress::csv_line(r, std::vector<std::string>{"c", "missing", "a"}), "42,,0.1");
}

TEST(ResultsFiles, RefusesToOverwriteWithoutResume) {
  TempFolder dir;
  {
    compress::ResultsFiles f(dir.str(), false);
    const std::vector<ordered_json> rows = {row(0.1, 10)};
    f.append(rows);
  }
  try {
    compress::ResultsFiles again(dir.str(), false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use --resume or another --out"), std::string::npos) << e.what();
  }
}

TEST(ResultsFiles, AppendWritesJsonLinesAndCsvWithOneHeader) {
  TempFolder dir;
  compress::ResultsFiles f(dir.str(), false);
  f.append(std::vector<ordered_json>{row(0.1, 10), row(0.2, 8)});
  f.append(std::vector<ordered_json>{row(0.3, 6)});
  const std::string csv = slurp(dir.file("results.csv"));
  EXPECT_EQ(csv,
            "strategy,rule,value,layers,params,kept_per_layer,model\n"
            "greedy,eps,0.1,all,10,3;2,\"m, with comma\"\n"
            "greedy,eps,0.2,all,8,3;2,\"m, with comma\"\n"
            "greedy,eps,0.3,all,6,3;2,\"m, with comma\"\n");
  const std::string jsonl = slurp(dir.file("results.jsonl"));
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 3);
}

// A crash can leave a truncated last JSON line, and a CSV row whose JSON line never made it: resume
// drops both and rewrites the two files consistently.
TEST(ResultsFiles, ResumeDropsATruncatedLastLineAndRewritesBothFiles) {
  TempFolder dir;
  {
    compress::ResultsFiles f(dir.str(), false);
    f.append(std::vector<ordered_json>{row(0.1, 10), row(0.2, 8)});
  }
  const std::string complete_csv = slurp(dir.file("results.csv"));
  {
    std::ofstream j(dir.file("results.jsonl"), std::ios::app);
    j << row(0.3, 6).dump().substr(0, 25);  // cut mid-line, no newline
    std::ofstream c(dir.file("results.csv"), std::ios::app);
    c << "greedy,eps,0.3,all,6,3;2,\"m, with comma\"\n";  // reached the CSV only
  }
  {
    compress::ResultsFiles f(dir.str(), true);
    EXPECT_EQ(f.dropped_lines(), 1u);
    ASSERT_EQ(f.notes().size(), 1u);
    EXPECT_NE(f.notes()[0].find("dropped an incomplete last line"), std::string::npos) << f.notes()[0];
    ASSERT_EQ(f.records().size(), 2u);
    EXPECT_EQ(f.records()[1]["value"].get<double>(), 0.2);
    EXPECT_EQ(slurp(dir.file("results.csv")), complete_csv);
    f.append(std::vector<ordered_json>{row(0.3, 6)});
  }
  compress::ResultsFiles g(dir.str(), true);
  EXPECT_EQ(g.dropped_lines(), 0u);
  EXPECT_EQ(g.records().size(), 3u);
  const std::string csv = slurp(dir.file("results.csv"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);
}

// One run per folder: a second opening (a resume started beside a running sweep) fails at once
// naming the holder, and leaves the holder's files alone.
TEST(ResultsFiles, ASecondOpeningWhileTheFirstIsOpenFailsNamingTheHolder) {
  TempFolder dir;
  compress::ResultsFiles f(dir.str(), false, "idprune sweep");
  f.append(std::vector<ordered_json>{row(0.1, 10)});
  for (const bool resume : {true, false}) {
    try {
      compress::ResultsFiles second(dir.str(), resume, "idprune sweep");
      FAIL() << "a second ResultsFiles opened the folder (resume " << resume << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("in use by idprune sweep"), std::string::npos) << e.what();
    }
  }
  f.append(std::vector<ordered_json>{row(0.2, 8)});
  const std::string jsonl = slurp(dir.file("results.jsonl"));
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 2);
}

TEST(ResultsFiles, DamageBeforeTheLastLineIsAnError) {
  TempFolder dir;
  {
    std::ofstream j(dir.file("results.jsonl"));
    j << row(0.1, 10).dump() << "\n{\"broken\n" << row(0.2, 8).dump() << "\n";
  }
  EXPECT_THROW(compress::ResultsFiles(dir.str(), true), Error);
}

TEST(Resume, FinishedPointsMatchStrategyRuleLayersAndProvenance) {
  compress::SweepProvenance prov;
  prov.model = "m.safetensors";
  prov.data = "d";
  prov.compression_size = 100;
  prov.test_samples = 50;
  prov.seed = 3;
  prov.engine = "tsqr";
  prov.cpqr_method = "blocked";
  auto record = [&](const std::string& strategy, double value, const std::string& layers) {
    ordered_json r;
    r["strategy"] = strategy;
    r["rule"] = "eps";
    r["value"] = value;
    r["layers"] = layers;
    r["model"] = prov.model;
    r["data"] = prov.data;
    r["compression_size"] = prov.compression_size;
    r["seed"] = prov.seed;
    r["test_samples"] = prov.test_samples;
    r["engine"] = prov.engine;
    r["cpqr_method"] = prov.cpqr_method;
    return r;
  };
  const std::vector<ordered_json> records = {record("greedy", 0.1, "all"), record("magnitude", 0.2, "all"),
                                             record("greedy", 0.3, "1")};
  const std::vector<double> grid = {0.1, 0.2, 0.3};
  const auto done = compress::finished_points(records, grid, "greedy", compress::RankRule::eps, {}, prov);
  EXPECT_EQ(done, (std::vector<char>{1, 0, 0}));
  const std::vector<la::index_t> first = {0};
  EXPECT_EQ(compress::finished_points(records, grid, "greedy", compress::RankRule::eps, first, prov),
            (std::vector<char>{0, 0, 1}));
  compress::SweepProvenance other = prov;
  other.model = "other.safetensors";
  EXPECT_THROW((void)compress::finished_points(records, grid, "greedy", compress::RankRule::eps, {}, other), Error);
}

TEST(Progress, RendersBarRateAndEta) {
  EXPECT_EQ(compress::Progress::render("sweep", 8, 32, 2.0, 8),
            "sweep [##......] 8/32 points (25%), 2 points/s, ETA 12s");
  EXPECT_EQ(compress::Progress::render("sweep", 32, 32, 2.0, 0), "sweep 32/32 points (100%), 2 points/s");
  EXPECT_EQ(compress::Progress::render("sweep", 0, 10, 0.0, 0), "sweep 0/10 points (0%)");
  std::ostringstream log;
  compress::Progress p(log, "sweep", 4, 1, false, 1e9);
  p.update(2);  // within the interval: silent
  EXPECT_TRUE(log.str().empty());
  p.update(4);  // complete: a line
  p.finish();
  EXPECT_NE(log.str().find("4/4 points"), std::string::npos) << log.str();
}

}  // namespace
}  // namespace idprune::test
