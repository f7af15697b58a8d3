// Results readable by people: report tables at 4 significant digits (the data files keep full
// precision), the engine figure of a single rank count as bars with a caption saying why, one
// original-model line per model when sweeps of different models share a figure, and the column
// reference checked against the rows the code writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "fixtures.hpp"
#include "idprune/compress/sweep.hpp"
#include "idprune/report/columns.hpp"
#include "idprune/report/document.hpp"
#include "idprune/report/report.hpp"

namespace idprune::report {
namespace {

namespace fs = std::filesystem;
using test::read_text_file;
using test::write_text_file;

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The text of every gnuplot script of a report, with the file names.
std::string all_scripts(const fs::path& report) {
  std::string text;
  for (const auto& e : fs::directory_iterator(report))
    if (e.path().extension() == ".gp") text += "### " + e.path().filename().string() + "\n" + read_text_file(e.path());
  return text;
}

std::string sweep_rows(const std::string& model, double original, const std::string& accuracy_a,
                       const std::string& accuracy_b) {
  return "strategy,rule,value,layers,test_accuracy,agreement,params,params_fraction,hidden_kept_fraction,"
         "kept_per_layer,original_accuracy,hidden_total,model\n"
         "greedy,eps,0.1,all," +
         accuracy_a + ",0.9312345678,60000,0.2512345678,0.5,128;64;32," + std::to_string(original) + ",448," + model +
         "\n"
         "greedy,eps,1,all," +
         accuracy_b + ",0.8,20000,0.08,0.1,25;12;8," + std::to_string(original) + ",448," + model + "\n";
}

TEST(ReadableTables, SignificantCellRoundsDecimalsOnly) {
  EXPECT_EQ(significant_cell("0.861234567"), "0.8612");
  EXPECT_EQ(significant_cell("86.1234567"), "86.12");
  EXPECT_EQ(significant_cell("1.2345678e-05"), "1.235e-05");
  EXPECT_EQ(significant_cell("123456.789"), "123457");  // no digit of the integer part hidden
  EXPECT_EQ(significant_cell("0.5"), "0.5");
  EXPECT_EQ(significant_cell("1836288"), "1836288");  // integers (counts) stay exact
  EXPECT_EQ(significant_cell("3e-07"), "3e-07");
  EXPECT_EQ(significant_cell("0.0123456;0.2;7"), "0.01235;0.2;7");
  EXPECT_EQ(significant_cell("128;64;32"), "128;64;32");
  for (const char* text : {"greedy", "1.2.3", "2026-11-30T08:00:00Z", "v0.1.0", "", "nan", "a;b"})
    EXPECT_EQ(significant_cell(text), text) << text;
  EXPECT_EQ(significant_cell("0.861234567", 6), "0.861235");
}

TEST(ReadableTables, ReportShowsFourDigitsAndTheDataKeepsAll) {
  test::ReportTempDir dir;
  const fs::path res = dir.path() / "results";
  write_text_file(res / "sweep" / "results.csv",
                  sweep_rows("m.safetensors", 0.8811, "0.8612345678901", "0.7012345678901"));
  ReportOptions o;
  o.result_dirs = {res};
  (void)build_report(o);
  for (const char* doc : {"index.html", "report.md"}) {
    const std::string text = read_text_file(res / "report" / doc);
    for (const char* shown : {"0.8612", "0.7012", "0.9312", "0.2512", "60000", "128;64;32"})
      EXPECT_TRUE(contains(text, shown)) << doc << ": " << shown;
    EXPECT_FALSE(contains(text, "0.86123")) << doc;
    EXPECT_FALSE(contains(text, "0.93123")) << doc;
  }
  bool full = false;
  for (const auto& e : fs::directory_iterator(res / "report" / "data"))
    full = full || contains(read_text_file(e.path()), "0.8612345678901");
  EXPECT_TRUE(full) << "the copied results.csv keeps full precision";
}

std::string bench_id(int ranks) {
  return R"({"benchmark": "id", "ranks": )" + std::to_string(ranks) +
         R"J(, "rows": 6000, "cols": 128, "reps": 3, "results": [{"kind": "relu",
  "reference": [{"engine": "dgeqp3 (1 process)", "median_seconds": 0.5, "rank": 20, "id_error": 1e-6}],
  "engines": [{"engine": "tsqr", "median_seconds": 0.25, "rank": 20, "id_error": 1.5e-6},
              {"engine": "gram", "median_seconds": 0.125, "rank": 20, "id_error": 2e-6}]
}]
})J";
}

TEST(ReadableFigures, OneRankCountIsDrawnAsBarsWithTheReason) {
  test::ReportTempDir dir;
  const fs::path res = dir.path() / "results";
  write_text_file(res / "bench-engines" / "bench-id-np1.json", bench_id(1));
  ReportOptions o;
  o.result_dirs = {res};
  const ReportSummary s = build_report(o);
  ASSERT_EQ(s.figures.size(), 1u);
  const std::string script = all_scripts(res / "report");
  EXPECT_TRUE(contains(script, "with boxes")) << script;
  EXPECT_FALSE(contains(script, "with linespoints")) << script;
  EXPECT_TRUE(contains(script, "set xtics ('dgeqp3 (1 process)' 1, 'tsqr' 2, 'gram' 3)")) << script;
  EXPECT_TRUE(contains(script, "set yrange [0:*]")) << script;
  const std::string html = read_text_file(res / "report" / "index.html");
  EXPECT_TRUE(contains(html, "Only one rank count (1)")) << html;
  EXPECT_TRUE(contains(html, "OMPI_ALLOW_RUN_AS_ROOT")) << html;
  // The bars' heights are the median times, one data block per engine.
  const std::string data = read_text_file(res / "report" / (fs::path(s.figures[0]).stem().string() + ".dat"));
  EXPECT_TRUE(contains(data, "# index 1: tsqr\n2 0.25\n")) << data;

  // Two rank counts: curves over ranks, as before.
  write_text_file(res / "bench-engines" / "bench-id-np2.json", bench_id(2));
  (void)build_report(o);
  const std::string lines = all_scripts(res / "report");
  EXPECT_FALSE(contains(lines, "with boxes")) << lines;
  EXPECT_TRUE(contains(lines, "set xtics (1, 2)")) << lines;
}

TEST(ReadableFigures, SweepsOfTwoModelsGetOneOriginalLineEach) {
  test::ReportTempDir dir;
  const fs::path res = dir.path() / "results";
  write_text_file(res / "a" / "results.csv", sweep_rows("small.safetensors", 0.85, "0.84", "0.7"));
  write_text_file(res / "b" / "results.csv", sweep_rows("reference.safetensors", 0.9073, "0.9", "0.8"));
  ReportOptions o;
  o.result_dirs = {res};
  (void)build_report(o);
  const std::string script = all_scripts(res / "report");
  EXPECT_TRUE(contains(script, "'original model small.safetensors (85 %)'")) << script;
  EXPECT_TRUE(contains(script, "'original model reference.safetensors (90.73 %)'")) << script;
  EXPECT_FALSE(contains(script, "'original model (")) << script;
  EXPECT_TRUE(contains(script, "greedy, eps (small.safetensors)")) << script;
  const std::string html = read_text_file(res / "report" / "index.html");
  EXPECT_TRUE(contains(html, "2 different original models")) << html;

  // One model in both folders: one line, as before.
  write_text_file(res / "b" / "results.csv", sweep_rows("small.safetensors", 0.85, "0.83", "0.6"));
  (void)build_report(o);
  const std::string one = all_scripts(res / "report");
  EXPECT_TRUE(contains(one, "'original model (85 %)'")) << one;
  EXPECT_FALSE(contains(one, "original model small")) << one;
}

TEST(ColumnReference, SweepColumnsAreExactlyTheKeysOfASweepRecord) {
  compress::SweepRow row;
  row.layers.resize(2);
  const auto record = compress::sweep_record(row, "greedy", compress::RankRule::eps, {}, compress::SweepProvenance{});
  std::vector<std::string> keys;
  for (const auto& [key, value] : record.items()) keys.push_back(key);
  std::vector<std::string> documented;
  for (const auto& c : sweep_columns()) documented.push_back(c.name);
  EXPECT_EQ(documented, keys) << "a column was added, removed or moved: update src/report/columns.cpp and "
                                 "docs/results-columns.md (idprune report --help-columns)";
}

TEST(ColumnReference, AFloat32RecordAddsExactlyTheOptionalColumnsAfterAgreement) {
  compress::SweepRow row;
  row.layers.resize(2);
  compress::SweepProvenance prov;
  prov.precision = nn::Precision::f32;
  prov.compare_precision = true;
  const auto record = compress::sweep_record(row, "greedy", compress::RankRule::eps, {}, prov);
  std::vector<std::string> keys;
  for (const auto& [key, value] : record.items()) keys.push_back(key);
  std::vector<std::string> documented;
  for (const auto& c : sweep_columns()) {
    documented.push_back(c.name);
    if (std::string(c.name) == "agreement")
      for (const auto& o : sweep_optional_columns()) documented.push_back(o.name);
  }
  EXPECT_EQ(documented, keys);
}

TEST(ColumnReference, TheReferenceNamesEveryColumnOnceWithAMeaning) {
  const std::string text = columns_reference();
  for (const auto list : {sweep_columns(), sweep_optional_columns(), pareto_columns()}) {
    std::set<std::string> names;
    for (const auto& c : list) {
      EXPECT_TRUE(names.insert(c.name).second) << "twice: " << c.name;
      EXPECT_GT(std::string(c.meaning).size(), 5u) << c.name;
      EXPECT_TRUE(contains(text, std::string("| `") + c.name + "` | ")) << c.name;
    }
  }
  // Markdown table rows: a '|' inside a meaning is escaped.
  EXPECT_TRUE(contains(text, "\\|r_{k+1,k+1}\\|")) << text;
}

}  // namespace
}  // namespace idprune::report
