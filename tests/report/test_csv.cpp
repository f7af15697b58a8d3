// The readers behind the report: CSV tables (quoting, column lookup by name, errors naming file and
// line), integer lists, INI files and the log-log slope fit.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "fixtures.hpp"
#include "idprune/report/csv.hpp"
#include "idprune/report/studies.hpp"

namespace idprune::report {
namespace {

using test::expect_error;

TEST(Csv, ReadsHeaderRowsAndQuotedFields) {
  const auto t = CsvTable::parse(
      "# a comment line\n"
      "strategy,value,kept_per_layer,note\n"
      "greedy,0.5,\"512;256\",\"a, b\"\r\n"
      "\n"
      "svd, 1e-3 ,7,\"say \"\"hi\"\"\nthere\"\n",
      "mem.csv");
  ASSERT_EQ(t.header().size(), 4u);
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.text(0, t.column("kept_per_layer")), "512;256");
  EXPECT_EQ(t.text(0, t.column("note")), "a, b");
  EXPECT_EQ(t.text(1, t.column("note")), "say \"hi\"\nthere");
  EXPECT_EQ(t.line(0), 3u);
  EXPECT_EQ(t.line(1), 5u);
  EXPECT_EQ(t.number(1, t.column("value")), 1e-3);  // blanks around a number are ignored
  EXPECT_EQ(t.numbers("value"), (std::vector<double>{0.5, 1e-3}));
}

TEST(Csv, ColumnsAreFoundByNameAndExtraColumnsAreIgnored) {
  const auto t = CsvTable::parse("extra,k,cpqr_error,more\nx,1,2,y\n", "f.csv");
  EXPECT_EQ(t.column("k"), 1u);
  EXPECT_EQ(t.column_any({"missing", "cpqr_error"}), 2u);
  EXPECT_TRUE(t.has("more"));
  EXPECT_FALSE(t.has("svd_error"));
}

TEST(Csv, MissingColumnErrorNamesFileAndColumns) {
  const auto t = CsvTable::parse("k,cpqr_error\n1,2\n", "dir/lowrank.csv");
  expect_error([&] { (void)t.column("svd_error"); }, {"dir/lowrank.csv", "svd_error", "k, cpqr_error"});
  expect_error([&] { (void)t.column_any({"a", "b"}); }, {"dir/lowrank.csv", "'a' or 'b'"});
}

TEST(Csv, NonNumericValueErrorNamesFileLineAndColumn) {
  const auto t = CsvTable::parse("k,err\n1,0.5\n2,abc\n", "x.csv");
  expect_error([&] { (void)t.numbers("err"); }, {"x.csv:3", "column 'err'", "'abc' is not a number"});
  const auto empty = CsvTable::parse("k,err\n1,\n", "y.csv");
  expect_error([&] { (void)empty.numbers("err"); }, {"y.csv:2", "'' is not a number"});
}

TEST(Csv, NanAndInfinityAreNumbers) {
  const auto t = CsvTable::parse("v\nnan\ninf\n-inf\n+2\n", "n.csv");
  const auto v = t.numbers("v");
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], std::numeric_limits<double>::infinity());
  EXPECT_EQ(v[2], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(v[3], 2.0);
}

TEST(Csv, MalformedFilesFailWithFileAndLine) {
  expect_error([] { (void)CsvTable::parse("a,b\n1,2\n3\n", "short.csv"); },
               {"short.csv:3", "1 fields", "header has 2"});
  expect_error([] { (void)CsvTable::parse("a,b\n1,\"2\n", "q.csv"); }, {"q.csv:2", "unterminated"});
  expect_error([] { (void)CsvTable::parse("a,\"b\"c\n", "t.csv"); }, {"t.csv:1", "closing quote"});
  expect_error([] { (void)CsvTable::parse("a,a\n", "d.csv"); }, {"d.csv:1", "'a' appears twice"});
  expect_error([] { (void)CsvTable::parse("# only a comment\n", "e.csv"); }, {"e.csv", "no header"});
  expect_error([] { (void)CsvTable::read("/nonexistent/dir/results.csv"); }, {"/nonexistent/dir/results.csv"});
}

TEST(IntegerList, AcceptsTheCommonSeparators) {
  EXPECT_EQ(parse_integer_list("512;256;128", "k"), (std::vector<long>{512, 256, 128}));
  EXPECT_EQ(parse_integer_list("[512, 256]", "k"), (std::vector<long>{512, 256}));
  EXPECT_EQ(parse_integer_list("7", "k"), (std::vector<long>{7}));
  expect_error([] { (void)parse_integer_list("12;abc", "f.csv:4: kept"); }, {"f.csv:4: kept", "12;abc"});
  expect_error([] { (void)parse_integer_list("", "f.csv:5: kept"); }, {"f.csv:5: kept"});
}

TEST(Ini, ReadsKeyValuePairsInOrder) {
  test::ReportTempDir dir;
  test::write_text_file(dir.path() / "config.ini",
                        "# comment\n[section]\nmodel = m.safetensors\nlayers=1\n\nseed = 3 \n");
  const auto items = read_ini(dir.path() / "config.ini");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0], (std::pair<std::string, std::string>{"model", "m.safetensors"}));
  EXPECT_EQ(items[1], (std::pair<std::string, std::string>{"layers", "1"}));
  EXPECT_EQ(items[2], (std::pair<std::string, std::string>{"seed", "3"}));
}

TEST(LogLogSlope, RecoversThePowerOfAPowerLaw) {
  // t = c x^p exactly: the fitted slope is p up to rounding (a few eps times log magnitudes).
  const double eps = std::numeric_limits<double>::epsilon();
  for (double p : {1.0, 2.0, 0.5, -1.0}) {
    std::vector<double> x{250, 500, 1000, 2000, 4000}, t;
    for (double v : x) t.push_back(3e-9 * std::pow(v, p));
    EXPECT_NEAR(loglog_slope(x, t), p, 100 * eps) << "p = " << p;
  }
  // Points that cannot be on a log axis are left out; fewer than two give NaN.
  EXPECT_NEAR(loglog_slope({0, 10, 100}, {5, 1, 10}), 1.0, 100 * eps);
  EXPECT_TRUE(std::isnan(loglog_slope({10}, {1})));
}

}  // namespace
}  // namespace idprune::report
