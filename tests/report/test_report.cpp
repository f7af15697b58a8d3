// `idprune report` end to end on small fixture folders: the HTML and Markdown files exist, reference
// every figure, the figures are real images drawn by gnuplot, the tables carry the fixture's
// numbers and the provenance its configuration; malformed inputs fail naming file and line and
// leave nothing behind.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <sstream>

#include "fixtures.hpp"
#include "idprune/report/document.hpp"
#include "idprune/report/gnuplot.hpp"
#include "idprune/report/report.hpp"
#include "idprune/report/studies.hpp"

namespace idprune::report {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::read_text_file;
using test::write_text_file;

// Low-rank study: svd_error = 10^-k, cpqr_error = 3 * 10^-k (both exact decimal text).
std::string lowrank_csv() {
  std::ostringstream os;
  os << "k,cpqr_error,svd_error,ratio\n";
  for (int k = 1; k <= 12; ++k)
    os << k << ",3e-" << (k < 10 ? "0" : "") << k << ",1e-" << (k < 10 ? "0" : "") << k << ",3\n";
  return os.str();
}

// CPQR timings: blocked ~ size^1 over m and n, size^2 over m = n; lapack 3x slower.
std::string bench_cpqr_json() {
  return R"({
  "benchmark": "cpqr", "git_revision": "bench-rev-42", "blas_core": "Haswell", "k": 20, "reps": 3,
  "sweeps": {
    "m": {"m": [1000, 2000, 4000], "n": [100, 100, 100],
          "seconds": {"blocked": [0.011, 0.022, 0.044], "lapack": [0.033, 0.066, 0.132]},
          "slope": {"blocked": 1.0, "lapack": 1.0}},
    "n": {"m": [2000, 2000, 2000], "n": [100, 200, 400],
          "seconds": {"blocked": [0.005, 0.010, 0.020], "lapack": [0.015, 0.030, 0.060]},
          "slope": {"blocked": 1.0, "lapack": 1.0}},
    "square": {"m": [200, 400, 800], "n": [200, 400, 800],
          "seconds": {"blocked": [0.001, 0.004, 0.016], "lapack": [0.003, 0.012, 0.048]}}
  },
  "full": {"m": 1000, "n": 300, "seconds": {"blocked": 0.07, "lapack": 0.08}, "ratio_blocked_over_lapack": 0.875}
})";
}

// Engine timings at `ranks` MPI ranks, in the format of `idprune bench id --json` (one file each).
std::string bench_id_json(int ranks, double tsqr_seconds, double gram_seconds) {
  // Raw strings with a delimiter: the engine name "dgeqp3 (1 process)" contains )".
  std::ostringstream os;
  os << R"J({"benchmark": "id", "git_revision": "id-rev-9", "ranks": )J" << ranks
     << R"J(, "rows": 6000, "cols": 128, "reps": 3, "results": [{"kind": "relu",
  "reference": [{"engine": "dgeqp3 (1 process)", "median_seconds": 0.5, "rank": 20, "id_error": 1e-6,
                 "error_ratio": 1, "bytes_sent_max_per_rank": 0}],
  "engines": [{"engine": "tsqr", "median_seconds": )J"
     << tsqr_seconds << R"J(, "rank": 20, "id_error": 1.5e-6, "error_ratio": 1.5, "bytes_sent_max_per_rank": 4242},
              {"engine": "gram", "median_seconds": )J"
     << gram_seconds << R"J(, "rank": 20, "id_error": 2e-6, "error_ratio": 2, "bytes_sent_max_per_rank": 2121}]}]})J";
  return os.str();
}

// A sweep folder in the format of `idprune sweep` (with an extra column the report must ignore).
// Widths 256, 128, 64 (hidden_total 448); `layers` says what was compressed.
std::string sweep_csv(bool layer1) {
  std::ostringstream os;
  os << "strategy,rule,value,layers,test_accuracy,agreement,params,params_fraction,hidden_kept_fraction,"
        "kept_per_layer,original_accuracy,hidden_total,unknown_extra,seed,ranks,threads,git_revision\n";
  if (layer1) {
    // kept 64 and 128 of layer 1's 256 neurons: fractions 0.25 and 0.5.
    os << "greedy,eps,0.3,1,0.8612,0.95,85000,0.35,0.571429,64;128;64,0.8811,448,zz,7,2,1,sweep-rev-1\n";
    os << "greedy,eps,0.01,1,0.8795,0.99,135000,0.56,0.714286,128;128;64,0.8811,448,zz,7,2,1,sweep-rev-1\n";
  } else {
    os << "greedy,eps,0.1,all,0.8523,0.93,60000,0.25,0.5,128;64;32,0.8811,448,zz,7,2,1,sweep-rev-1\n";
    os << "greedy,eps,1,all,0.7012,0.80,20000,0.08,0.1,25;12;8,0.8811,448,zz,7,2,1,sweep-rev-1\n";
    os << "magnitude,eps,0.1,all,0.8011,0.90,60000,0.25,0.5,128;64;32,0.8811,448,zz,7,2,1,sweep-rev-1\n";
    os << "magnitude,eps,1,all,0.5521,0.60,20000,0.08,0.1,25;12;8,0.8811,448,zz,7,2,1,sweep-rev-1\n";
  }
  return os.str();
}

std::string pareto_csv() {
  return "strategy,budget,params,params_fraction,validation_accuracy,test_accuracy,agreement,kept_per_layer\n"
         "greedy,0.1,24000,0.1,0.80,0.7944,0.85,30;20;10\n"
         "greedy,0.2,48000,0.2,0.85,0.8433,0.90,60;40;20\n"
         "joint-budget,0.1,23900,0.0996,0.84,0.8377,0.88,40;10;10\n"
         "joint-budget,0.2,47800,0.1992,0.87,0.8655,0.93,70;30;20\n";
}

// The whole fixture tree: RES/{lowrank-kernel.csv, bench-cpqr.json, sweep-all/, sweep-layer1/, pareto/}.
fs::path write_fixtures(const fs::path& root) {
  const fs::path res = root / "results";
  write_text_file(res / "lowrank-kernel.csv", lowrank_csv());
  write_text_file(res / "bench-cpqr.json", bench_cpqr_json());
  write_text_file(res / "unrelated.txt", "not a result file\n");
  write_text_file(res / "sweep-all" / "results.csv", sweep_csv(false));
  write_text_file(res / "sweep-all" / "config.ini", "# idprune sweep\nmodel = fixture-model.safetensors\nlayers = \n");
  write_text_file(res / "sweep-layer1" / "results.csv", sweep_csv(true));
  write_text_file(res / "sweep-layer1" / "config.ini", "model = fixture-model.safetensors\nlayers = 1\n");
  write_text_file(res / "sweep-layer1" / "config-greedy-eps-1.ini", "compression-size = 777\nlayers = 1\n");
  write_text_file(res / "pareto" / "pareto.csv", pareto_csv());
  write_text_file(res / "bench-engines" / "bench-id-np1.json", bench_id_json(1, 0.375, 0.125));
  write_text_file(res / "bench-engines" / "bench-id-np2.json", bench_id_json(2, 0.1875, 0.0625));
  write_text_file(res / "scale" / "bench-compress-scale-np1.json",
                  R"({"benchmark": "compress-scale", "ranks": 1, "threads": 2, "gemm_gflops_per_rank": 100,
  "runs": [{"rows": 1000, "streamed": false, "activation_seconds": 0.1, "factorization_seconds": 0.05,
            "seconds": 0.2, "gflop": 10, "bound_seconds": 0.1, "ratio": 2, "peak_rss_bytes": 104857600}]})");
  return res;
}

ReportOptions options_for(const fs::path& res) {
  ReportOptions o;
  o.result_dirs = {res};
  return o;
}

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Folders next to `out` whose names mark them as the report's temporary folders.
int leftover_temporaries(const fs::path& parent) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(parent))
    if (e.path().filename().string().rfind(".report.", 0) == 0) ++n;
  return n;
}

// One report built from the fixtures, shared by the tests that only read it (gnuplot's start-up
// dominates the time of a build).
class BuiltReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::ReportTempDir>();
    res_ = write_fixtures(dir_->path());
    summary_ = build_report(options_for(res_));
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static std::unique_ptr<test::ReportTempDir> dir_;
  static fs::path res_;
  static ReportSummary summary_;
};
std::unique_ptr<test::ReportTempDir> BuiltReport::dir_;
fs::path BuiltReport::res_;
ReportSummary BuiltReport::summary_;

TEST_F(BuiltReport, WritesHtmlMarkdownAndOnePngPerFigure) {
  const fs::path& res = res_;
  const ReportSummary& s = summary_;
  const fs::path out = res / "report";
  EXPECT_EQ(s.out, out);
  ASSERT_TRUE(fs::is_regular_file(out / "index.html"));
  ASSERT_TRUE(fs::is_regular_file(out / "report.md"));
  const std::string html = read_text_file(out / "index.html");
  const std::string md = read_text_file(out / "report.md");
  // lowrank (1) + cpqr m, n, square (3) + layer 1, hidden fraction, parameters (3) + pareto (1)
  // + engines over ranks (1) + compress-scale (1).
  EXPECT_EQ(s.figures.size(), 10u);
  for (const auto& f : s.figures) {
    SCOPED_TRACE(f);
    EXPECT_TRUE(test::is_png(out / f));
    EXPECT_TRUE(contains(html, "<img src=\"" + f + "\""));
    EXPECT_TRUE(contains(md, "](" + f + ")"));
    // The figure is reproducible: its script and data lie next to it.
    const std::string stem = fs::path(f).stem().string();
    EXPECT_TRUE(fs::is_regular_file(out / (stem + ".gp")));
    EXPECT_TRUE(fs::is_regular_file(out / (stem + ".dat")));
  }
  EXPECT_EQ(leftover_temporaries(res), 0);
  EXPECT_TRUE(s.missing.empty()) << s.missing.front();
}

TEST_F(BuiltReport, TablesCarryTheFixtureNumbers) {
  const fs::path& res = res_;
  const std::string html = read_text_file(res / "report" / "index.html");
  const std::string md = read_text_file(res / "report" / "report.md");
  for (const std::string& doc : {html, md}) {
    // Low-rank rows (the 12-row table is shown whole), timings, slopes, sweep and Pareto rows.
    for (const char* v : {"3e-07", "1e-12", "0.044", "0.132", "0.048", "0.8612", "0.7012", "0.5521", "0.8655", "47800",
                          "0.1875", "0.0625", "4242", "dgeqp3 (1 process)"})
      EXPECT_TRUE(contains(doc, v)) << v;
    // Slopes: given for m and n, fitted for the m = n sweep (exactly 2 for t ~ size^2).
    EXPECT_TRUE(contains(doc, "blocked slope"));
    EXPECT_TRUE(contains(doc, "| square | 2 | 2 |") || contains(doc, "<td>square</td><td class=\"num\">2</td>"));
  }
  // The legend gives the fitted slopes (in the script gnuplot draws from).
  bool legend = false;
  for (const auto& e : fs::directory_iterator(res / "report"))
    if (e.path().extension() == ".gp" && contains(read_text_file(e.path()), "blocked (slope 2)")) legend = true;
  EXPECT_TRUE(legend);
}

TEST_F(BuiltReport, Layer1FigureUsesTheFractionOfW1Kept) {
  const fs::path& res = res_;
  const ReportSummary& s = summary_;
  fs::path dat;
  for (const auto& f : s.figures)
    if (contains(f, "layer1")) dat = res / "report" / (fs::path(f).stem().string() + ".dat");
  ASSERT_FALSE(dat.empty());
  // Rows keep 64 and 128 of layer 1's 256 neurons (448 - 128 - 64): x = 0.25 and 0.5, y in percent.
  // The first data block (index 0) is the sweep's curve.
  std::istringstream in(read_text_file(dat));
  std::vector<std::pair<double, double>> points;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() && !points.empty()) break;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    double x = 0, y = 0;
    fields >> x >> y;
    points.emplace_back(x, y);
  }
  ASSERT_EQ(points.size(), 2u);
  const double tol = 4 * std::numeric_limits<double>::epsilon() * 100;  // a product by 100, printed exactly
  EXPECT_NEAR(points[0].first, 0.25, tol);
  EXPECT_NEAR(points[0].second, 86.12, tol);
  EXPECT_NEAR(points[1].first, 0.5, tol);
  EXPECT_NEAR(points[1].second, 87.95, tol);
  const std::string script = read_text_file(dat.replace_extension(".gp"));
  EXPECT_TRUE(contains(script, "fraction of W1")) << script;
  EXPECT_TRUE(contains(script, "original model")) << script;
}

TEST_F(BuiltReport, EngineFigureHasOneCurvePerEngineOverRanks) {
  fs::path gp;
  for (const auto& f : summary_.figures)
    if (contains(f, "engines")) gp = res_ / "report" / (fs::path(f).stem().string() + ".gp");
  ASSERT_FALSE(gp.empty());
  const std::string script = read_text_file(gp);
  for (const char* title : {"'dgeqp3 (1 process)'", "'tsqr'", "'gram'"}) EXPECT_TRUE(contains(script, title)) << title;
  EXPECT_TRUE(contains(script, "set xtics (1, 2)")) << script;
  EXPECT_TRUE(contains(script, "set xlabel 'MPI ranks'")) << script;
  // tsqr: 0.375 s on one rank, 0.1875 s on two (block 1 of the data file).
  const std::string data = read_text_file(gp.replace_extension(".dat"));
  EXPECT_TRUE(contains(data, "# index 1: tsqr\n1 0.375\n2 0.1875\n")) << data;
}

TEST_F(BuiltReport, ShowsProvenanceOfEachRun) {
  const fs::path& res = res_;
  const std::string html = read_text_file(res / "report" / "index.html");
  for (const char* v :
       {"sweep-rev-1", "bench-rev-42", "fixture-model.safetensors", "config-greedy-eps-1.ini", "Haswell"})
    EXPECT_TRUE(contains(html, v)) << v;
  EXPECT_FALSE(contains(html, "unknown_extra"));  // extra columns are not shown in the tables
  // The files read are copied into the report and linked from it.
  int copies = 0;
  for (const auto& e : fs::directory_iterator(res / "report" / "data")) {
    ++copies;
    EXPECT_TRUE(contains(html, "data/" + e.path().filename().string())) << e.path();
  }
  EXPECT_GE(copies, 6);
}

TEST_F(BuiltReport, FiguresAreRedrawnByRunningGnuplotOnTheirScripts) {
  const fs::path& res = res_;
  const ReportSummary& s = summary_;
  const fs::path out = res / "report";
  const std::string image = s.figures.front();
  fs::remove(out / image);
  const ProcessResult r = run_process({"gnuplot", fs::path(image).stem().string() + ".gp"}, out);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::is_png(out / image));
}

TEST(Report, SvgOnRequest) {
  test::ReportTempDir dir;
  const fs::path res = write_fixtures(dir.path());
  ReportOptions o = options_for(res);
  o.gnuplot.format = "svg";
  o.out = dir.path() / "svg-report";
  const ReportSummary s = build_report(o);
  ASSERT_FALSE(s.figures.empty());
  for (const auto& f : s.figures) {
    EXPECT_EQ(fs::path(f).extension(), ".svg");
    EXPECT_TRUE(contains(read_text_file(o.out / f), "<svg"));
  }
}

TEST(Report, RebuildReplacesAnOlderReportButNeverOtherFolders) {
  test::ReportTempDir dir;
  const fs::path res = write_fixtures(dir.path());
  (void)build_report(options_for(res));
  write_text_file(res / "report" / "stale.txt", "from an older report");
  (void)build_report(options_for(res));  // the report folder itself is not scanned as results
  EXPECT_FALSE(fs::exists(res / "report" / "stale.txt"));
  EXPECT_TRUE(fs::exists(res / "report" / "index.html"));
  EXPECT_EQ(leftover_temporaries(res), 0);

  ReportOptions o = options_for(res);
  o.out = dir.path() / "precious";
  write_text_file(o.out / "thesis.tex", "keep me");
  expect_error([&] { (void)build_report(o); }, {"precious", "not an idprune report"});
  EXPECT_TRUE(fs::exists(o.out / "thesis.tex"));
}

TEST(Report, MalformedInputsNameFileAndLineAndLeaveNothingBehind) {
  struct Case {
    const char* file;
    std::string text;
    std::vector<std::string> phrases;
  };
  const std::vector<Case> cases = {
      {"lowrank-x.csv", "k,cpqr_error\n1,0.5\n", {"lowrank-x.csv", "no column 'svd_error'"}},
      {"lowrank-x.csv", "k,cpqr_error,svd_error\n1,0.5,0.4\n2,oops,0.1\n", {"lowrank-x.csv:3", "cpqr_error", "'oops'"}},
      {"lowrank-x.csv", "k,cpqr_error,svd_error\n1.5,0.5,0.4\n", {"lowrank-x.csv:2", "column 'k'"}},
      {"sweep/results.csv", "strategy,params\ngreedy,10\n", {"results.csv", "no column 'test_accuracy'"}},
      {"sweep/results.csv", "strategy,test_accuracy,params\ngreedy,0.9,ten\n", {"results.csv:2", "'ten'"}},
      {"sweep/results.csv",
       "strategy,test_accuracy,params,layers,kept_per_layer,hidden_total\ngreedy,0.9,10,1,12;abc,40\n",
       {"results.csv:2", "kept_per_layer"}},
      {"p/pareto.csv", "strategy,budget,params\ngreedy,0.1,5\n", {"pareto.csv", "'test_accuracy'"}},
      {"bench-cpqr.json",
       "{\"sweeps\": {\"m\": {\"m\": [1, 2],\n \"n\": [1, 2] \"seconds\": {}}}}",
       {"bench-cpqr.json:2", "malformed JSON"}},
      {"bench-cpqr.json", "{\"k\": 20}", {"bench-cpqr.json", "no key 'sweeps'"}},
      {"bench-id-np2.json", R"({"results": []})", {"bench-id-np2.json", "no key 'ranks'"}},
      {"bench-id-np2.json",
       R"({"ranks": 2, "results": [{"engines": [{"engine": "tsqr", "median_seconds": "x"}]}]})",
       {"bench-id-np2.json", "results[0].engines[0].median_seconds", "not a number"}},
      {"bench-cpqr.json",
       R"({"sweeps": {"m": {"m": [1, 2], "n": [1, 1], "seconds": {"blocked": [0.1, "x"]}}}})",
       {"bench-cpqr.json", "sweeps.m.seconds.blocked", "not a number"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    test::ReportTempDir dir;
    const fs::path res = dir.path() / "results";
    write_text_file(res / c.file, c.text);
    write_text_file(res / "lowrank-good.csv", lowrank_csv());
    expect_error([&] { (void)build_report(options_for(res)); }, c.phrases);
    EXPECT_FALSE(fs::exists(res / "report"));
    EXPECT_EQ(leftover_temporaries(res), 0);
  }
}

TEST(Report, ClearErrorsForMissingGnuplotFoldersAndResults) {
  test::ReportTempDir dir;
  const fs::path res = write_fixtures(dir.path());
  ReportOptions o = options_for(res);
  o.gnuplot.executable = (dir.path() / "no-such-gnuplot").string();
  expect_error([&] { (void)build_report(o); }, {"gnuplot", "no-such-gnuplot", "gnuplot-nox"});
  EXPECT_FALSE(fs::exists(res / "report"));

  expect_error([&] { (void)build_report(options_for(dir.path() / "absent")); }, {"absent", "does not exist"});
  const fs::path empty = dir.path() / "empty";
  fs::create_directories(empty / "sub");
  expect_error([&] { (void)build_report(options_for(empty)); }, {"no result files", "lowrank*.csv"});
  EXPECT_FALSE(fs::exists(empty / "report"));
}

TEST(Gnuplot, ScriptLabelsAxesAndUsesLogScalesWhereAsked) {
  Plot p;
  p.name = "fig-x";
  p.title = "errors";
  p.xlabel = "rank k";
  p.ylabel = "error";
  p.logy = true;
  p.series.push_back({"cpqr_error", {1, 2, 3}, {1e-1, 1e-5, 0.0}, "linespoints", ""});
  const std::string script = gnuplot_script(p, "pngcairo", 900, 600);
  EXPECT_TRUE(contains(script, "set terminal pngcairo size 900,600"));
  EXPECT_TRUE(contains(script, "set output 'fig-x.png'"));
  EXPECT_TRUE(contains(script, "set xlabel 'rank k'"));
  EXPECT_TRUE(contains(script, "set logscale y"));
  EXPECT_FALSE(contains(script, "set logscale x"));
  EXPECT_TRUE(contains(script, "title 'cpqr_error' noenhanced"));  // underscores shown as written
  // A zero cannot be drawn on a log axis: it is written as NaN, which gnuplot skips.
  const std::string data = gnuplot_data(p);
  EXPECT_TRUE(contains(data, "3 NaN"));
  EXPECT_TRUE(contains(data, "2 1.0000000000000001e-05") || contains(data, "2 1e-05"));
  p.name = "bad name";
  expect_error([&] { (void)gnuplot_script(p, "pngcairo", 900, 600); }, {"bad name"});
}

TEST(Document, EscapesMarkupAndShortensLongTables) {
  Document d;
  Table t;
  t.header = {"a|b", "c"};
  for (int i = 0; i < 10; ++i) t.rows.push_back({"<x" + std::to_string(i) + ">", std::to_string(i)});
  d.table(t, 4, "data/full.csv");
  const std::string html = d.html("T");
  const std::string md = d.markdown();
  EXPECT_TRUE(contains(html, "&lt;x0&gt;"));
  EXPECT_FALSE(contains(html, "<x0>"));
  EXPECT_TRUE(contains(md, "a\\|b"));
  // First two and last two of ten rows, the rest left out with a link to the full table.
  for (const char* shown : {"x0", "x1", "x8", "x9"}) EXPECT_TRUE(contains(md, shown)) << shown;
  for (const char* hidden : {"x2", "x5", "x7"}) EXPECT_FALSE(contains(md, hidden)) << hidden;
  EXPECT_TRUE(contains(md, "of 10 rows"));
  EXPECT_TRUE(contains(html, "href=\"data/full.csv\""));
}

}  // namespace
}  // namespace idprune::report
