// The report's comparison figures on small fixtures, drawn by the real gnuplot: the Pareto front
// and its strategy x budget table list every strategy of a pareto.csv, fine-tuned columns get a
// figure and table of their own, published points (--published) are drawn and listed with their
// source, the compress-scale figure draws time and bound against rows from bench JSON files, and
// malformed published CSVs and bench JSON fail with an error naming file, line or key.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "fixtures.hpp"
#include "idprune/report/report.hpp"
#include "idprune/report/studies.hpp"

namespace idprune::report {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::read_text_file;
using test::write_text_file;

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// Three strategies at two budgets; test accuracies 0.6x (no fine-tuning) and 0.9x (fine-tuned), so
// that a value in the wrong figure is seen.
std::string pareto_csv(bool finetuned) {
  std::string s =
      "strategy,budget,params,params_fraction,validation_accuracy,test_accuracy,agreement,kept_per_layer,"
      "original_test_accuracy";
  if (finetuned) s += ",validation_accuracy_finetuned,test_accuracy_finetuned";
  s += "\n";
  const char* rows[] = {
      "alpha,0.1,100,0.1,0.611,0.601,0.7,10;5,0.95",    "alpha,0.2,200,0.2,0.621,0.611,0.7,20;5,0.95",
      "beta-two,0.1,99,0.099,0.631,0.602,0.7,9;5,0.95", "beta-two,0.2,199,0.199,0.612,0.612,0.7,19;5,0.95",
      "gamma,0.1,98,0.098,0.601,0.603,0.7,8;5,0.95",    "gamma,0.2,198,0.198,0.641,0.613,0.7,18;5,0.95"};
  int i = 0;
  for (const char* r : rows) {
    s += r;
    if (finetuned) s += ",0.9" + std::to_string(i) + "1,0.9" + std::to_string(i) + "2";
    s += "\n";
    ++i;
  }
  return s;
}

const char* kSource = "A. Author, B. Author, \"\"A Method\"\", Conference 2020, Table 1";

std::string published_csv() {
  std::ostringstream os;
  os << "# quoted for comparison\n"
     << "method,cite,model,axis,x,accuracy,original_accuracy,finetuned,source\n"
     << "method-p,Author et al. 2020,net,params_fraction,0.1,55.5,96.25,no,\"" << kSource << "\"\n"
     << "method-p,Author et al. 2020,net,params_fraction,0.2,57.5,96.25,no,\"" << kSource << "\"\n"
     << "method-p,Author et al. 2020,net,params_fraction,0.2,97.5,96.25,yes,\"" << kSource << "\"\n"
     << "method-h,Author et al. 2020,net,hidden_pruned_fraction,0.5,44.25,,no,\"" << kSource << "\"\n";
  return os.str();
}

// An all-layer sweep whose rows keep half and a fifth of the hidden neurons.
std::string sweep_csv() {
  return "strategy,rule,value,layers,test_accuracy,params,params_fraction,hidden_kept_fraction,kept_per_layer,"
         "original_accuracy\n"
         "greedy,fraction,0.5,all,0.8511,500,0.5,0.5,50;25,0.9\n"
         "greedy,fraction,0.2,all,0.7011,200,0.2,0.2,20;10,0.9\n";
}

std::string bench_json(int ranks, int threads, double scale) {
  std::ostringstream os;
  os << R"({"benchmark": "compress-scale", "ranks": )" << ranks << R"(, "threads": )" << threads
     << R"(, "gemm_gflops_per_rank": 50, "blas_core": "FixtureCore", "runs": [)";
  const double rows[] = {1000, 4000, 16000};
  for (int i = 0; i < 3; ++i) {
    const double gflop = rows[i] / 100.0;
    const double bound = gflop / (ranks * 50.0);
    os << (i ? "," : "") << R"({"rows": )" << rows[i]
       << R"(, "streamed": false, "activation_seconds": 0.5, "factorization_seconds": 0.25, "seconds": )"
       << scale * bound << R"(, "gflop": )" << gflop << R"(, "bound_seconds": )" << bound << R"(, "ratio": )" << scale
       << R"(, "peak_rss_bytes": )" << (ranks == 1 ? 209715200 : 104857600) << "}";
  }
  os << "]}";
  return os.str();
}

// The data blocks of a figure's .dat file: block title -> (x, y) points.
std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> data_blocks(const fs::path& dat) {
  std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> blocks;
  std::istringstream in(read_text_file(dat));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# index ", 0) == 0) {
      blocks.push_back({line.substr(line.find(": ") + 2), {}});
    } else if (!line.empty() && line[0] != '#' && !blocks.empty()) {
      std::istringstream f(line);
      double x = 0, y = 0;
      f >> x >> y;
      blocks.back().second.emplace_back(x, y);
    }
  }
  return blocks;
}

fs::path figure_named(const ReportSummary& s, const std::string& part) {
  for (const auto& f : s.figures)
    if (contains(f, part)) return s.out / f;
  return {};
}

TEST(ReportFigures, ParetoFigureAndTableListEveryStrategyWithFineTuningApart) {
  test::ReportTempDir dir;
  const fs::path res = dir.path() / "results";
  write_text_file(res / "pareto" / "pareto.csv", pareto_csv(true));
  ReportOptions o;
  o.result_dirs = {res};
  const ReportSummary s = build_report(o);
  const fs::path front = figure_named(s, "pareto.");
  const fs::path tuned = figure_named(s, "pareto-finetuned");
  ASSERT_FALSE(front.empty());
  ASSERT_FALSE(tuned.empty());
  EXPECT_TRUE(test::is_png(front));
  EXPECT_TRUE(test::is_png(tuned));
  for (const fs::path& fig : {front, tuned}) {
    const auto blocks = data_blocks(fs::path(fig).replace_extension(".dat"));
    for (const char* strategy : {"alpha", "beta-two", "gamma"}) {
      SCOPED_TRACE(std::string(strategy) + " in " + fig.string());
      const auto it = std::find_if(blocks.begin(), blocks.end(), [&](const auto& b) { return b.first == strategy; });
      ASSERT_NE(it, blocks.end());
      ASSERT_EQ(it->second.size(), 2u);
      // x is the fraction of parameters, y the accuracy in percent: 60-62 without fine-tuning,
      // above 90 after it (the fixture keeps the two apart by 30 points).
      EXPECT_LE(it->second.back().first, 0.2);
      for (const auto& [x, y] : it->second) {
        EXPECT_GT(x, 0.09);
        if (fig == front) {
          EXPECT_LT(y, 62.0);
        } else {
          EXPECT_GT(y, 90.0);
        }
      }
    }
  }
  EXPECT_TRUE(contains(read_text_file(fs::path(front).replace_extension(".gp")), "parameters kept (fraction"));
  // The strategy x budget table: one row per strategy, one column per budget, and the strategy the
  // validation split picks (beta-two at 10%: validation 0.631; gamma at 20%: 0.641).
  const std::string md = read_text_file(s.out / "report.md");
  EXPECT_TRUE(contains(md, "| strategy | 10% | 20% |")) << md;
  EXPECT_TRUE(contains(md, "| alpha | 60.10 (61.10) | 61.10 (62.10) |")) << md;
  EXPECT_TRUE(contains(md, "| beta-two | 60.20 (63.10) | 61.20 (61.20) |")) << md;
  EXPECT_TRUE(contains(md, "| gamma | 60.30 (60.10) | 61.30 (64.10) |")) << md;
  EXPECT_TRUE(contains(md, "| best on validation | 60.20 (beta-two) | 61.30 (gamma) |")) << md;
  // After fine-tuning: the fine-tuned columns, in a table of their own.
  EXPECT_TRUE(contains(md, "| alpha | 90.20 (90.10) | 91.20 (91.10) |")) << md;
  EXPECT_TRUE(contains(md, "After fine-tuning"));
  const auto ft = md.find("After fine-tuning");
  EXPECT_FALSE(contains(md.substr(0, ft), "90.20"));
}

TEST(ReportFigures, NoFineTuningFigureWithoutFineTunedColumns) {
  test::ReportTempDir dir;
  const fs::path res = dir.path() / "results";
  write_text_file(res / "pareto" / "pareto.csv", pareto_csv(false));
  ReportOptions o;
  o.result_dirs = {res};
  const ReportSummary s = build_report(o);
  EXPECT_FALSE(figure_named(s, "pareto.").empty());
  EXPECT_TRUE(figure_named(s, "pareto-finetuned").empty());
  EXPECT_FALSE(contains(read_text_file(s.out / "report.md"), "After fine-tuning"));
}

TEST(ReportFigures, PublishedPointsAppearWithTheirSource) {
  test::ReportTempDir dir;
  const fs::path res = dir.path() / "results";
  write_text_file(res / "pareto" / "pareto.csv", pareto_csv(true));
  write_text_file(res / "sweep" / "results.csv", sweep_csv());
  const fs::path published = dir.path() / "published.csv";
  write_text_file(published, published_csv());
  ReportOptions o;
  o.result_dirs = {res};
  o.published = {published};
  const ReportSummary s = build_report(o);
  const std::string label = "method-p (published: Author et al. 2020; unpruned 96.25 %)";
  const auto points = [&](const fs::path& fig, const std::string& title) {
    const auto blocks = data_blocks(fs::path(fig).replace_extension(".dat"));
    const auto it = std::find_if(blocks.begin(), blocks.end(), [&](const auto& b) { return b.first == title; });
    return it == blocks.end() ? std::vector<std::pair<double, double>>{} : it->second;
  };
  // Without fine-tuning: the two params_fraction points; after it: the fine-tuned one only.
  const auto front = points(figure_named(s, "pareto."), label);
  ASSERT_EQ(front.size(), 2u);
  EXPECT_EQ(front[0], std::make_pair(0.1, 55.5));
  EXPECT_EQ(front[1], std::make_pair(0.2, 57.5));
  const auto tuned = points(figure_named(s, "pareto-finetuned"), label);
  ASSERT_EQ(tuned.size(), 1u);
  EXPECT_EQ(tuned[0], std::make_pair(0.2, 97.5));
  // The pruned share 0.5 is drawn at half the hidden neurons kept, beside the sweep.
  const auto hidden = points(figure_named(s, "hidden"), "method-h (published: Author et al. 2020)");
  ASSERT_EQ(hidden.size(), 1u);
  EXPECT_EQ(hidden[0], std::make_pair(0.5, 44.25));
  // Drawn apart from the strategies' curves: as points.
  const std::string gp = read_text_file(figure_named(s, "pareto.").replace_extension(".gp"));
  EXPECT_TRUE(contains(gp, "with points")) << gp;

  const std::string md = read_text_file(s.out / "report.md");
  const std::string html = read_text_file(s.out / "index.html");
  for (const std::string& doc : {md, html}) {
    EXPECT_TRUE(contains(doc, "Published results quoted for comparison"));
    EXPECT_TRUE(contains(doc, "Conference 2020, Table 1"));
    EXPECT_TRUE(contains(doc, "Author et al. 2020"));
  }
  // Beside ours in the budget table (to two decimals, as quoted), and in the sweep's
  // comparison at the published share.
  EXPECT_TRUE(contains(md, "| " + label + " | 55.50 | 57.50 |")) << md;
  EXPECT_TRUE(contains(md, "| 50% pruned |")) << md;
  EXPECT_TRUE(contains(md, "| greedy, fraction | 85.11 |")) << md;
  EXPECT_TRUE(contains(md, "| method-h (published: Author et al. 2020) | 44.25 |")) << md;
}

TEST(ReportFigures, CompressScaleFigureDrawsTimeAndBoundAgainstRows) {
  test::ReportTempDir dir;
  const fs::path res = dir.path() / "results";
  write_text_file(res / "bench-compress-scale-np1.json", bench_json(1, 2, 2.0));
  write_text_file(res / "bench-compress-scale-np2.json", bench_json(2, 1, 3.0));
  ReportOptions o;
  o.result_dirs = {res};
  const ReportSummary s = build_report(o);
  const fs::path fig = figure_named(s, "compress-scale");
  ASSERT_FALSE(fig.empty());
  EXPECT_TRUE(test::is_png(fig));
  const std::string gp = read_text_file(fs::path(fig).replace_extension(".gp"));
  EXPECT_TRUE(contains(gp, "set logscale x")) << gp;
  EXPECT_TRUE(contains(gp, "set logscale y")) << gp;
  const auto blocks = data_blocks(fs::path(fig).replace_extension(".dat"));
  std::vector<std::string> titles;
  for (const auto& b : blocks) titles.push_back(b.first);
  EXPECT_EQ(titles, (std::vector<std::string>{"measured, 1 rank x 2 threads", "GEMM bound, 1 rank x 2 threads",
                                              "measured, 2 ranks x 1 thread", "GEMM bound, 2 ranks x 1 thread"}));
  // Measured = ratio x bound at every row count; the bound halves from 1 to 2 ranks.
  for (std::size_t c = 0; c < 2; ++c) {
    const auto& measured = blocks[2 * c].second;
    const auto& bound = blocks[2 * c + 1].second;
    ASSERT_EQ(measured.size(), 3u);
    ASSERT_EQ(bound.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(measured[i].first, bound[i].first);
      EXPECT_NEAR(measured[i].second / bound[i].second, c == 0 ? 2.0 : 3.0, 1e-12);
    }
  }
  EXPECT_NEAR(blocks[1].second[0].second / blocks[3].second[0].second, 2.0, 1e-12);
  const std::string md = read_text_file(s.out / "report.md");
  EXPECT_TRUE(contains(md, "time / bound")) << md;
  EXPECT_TRUE(contains(md, "peak RSS MiB")) << md;
  EXPECT_TRUE(contains(md, "| 2 | 1 | 50 | 16000 | no |")) << md;
  EXPECT_TRUE(contains(md, "peak RSS per rank x0.5")) << md;
  EXPECT_TRUE(contains(md, "FixtureCore")) << md;  // provenance
}

TEST(ReportFigures, MalformedPublishedCsvNamesFileLineAndColumn) {
  struct Case {
    std::string text;
    std::vector<std::string> phrases;
  };
  const std::string header = "method,source,axis,x,accuracy\n";
  const std::vector<Case> cases = {
      {"method,axis,x,accuracy\nm,params_fraction,0.1,50\n", {"published.csv", "no column 'source'"}},
      {header + "m,S,params_fraction,0.1,50\nm,S,params_fraction,abc,50\n", {"published.csv:3", "'x'", "'abc'"}},
      {header + "m,S,parameters,0.1,50\n", {"published.csv:2", "'parameters'", "params_fraction"}},
      {header + "m,S,params_fraction,1.5,50\n", {"published.csv:2", "outside [0, 1]"}},
      {header + "m,S,params_fraction,0.1,120\n", {"published.csv:2", "accuracy", "outside [0, 100]"}},
      {header + "m,,params_fraction,0.1,50\n", {"published.csv:2", "source"}},
      {"method,source,axis,x,accuracy,finetuned\nm,S,params_fraction,0.1,50,maybe\n",
       {"published.csv:2", "finetuned", "'maybe'"}},
      {header, {"published.csv", "no published points"}},
      {header + "m,\"S,params_fraction,0.1,50\n", {"published.csv"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    test::ReportTempDir dir;
    const fs::path res = dir.path() / "results";
    write_text_file(res / "pareto" / "pareto.csv", pareto_csv(false));
    write_text_file(dir.path() / "published.csv", c.text);
    ReportOptions o;
    o.result_dirs = {res};
    o.published = {dir.path() / "published.csv"};
    expect_error([&] { (void)build_report(o); }, c.phrases);
    EXPECT_FALSE(fs::exists(res / "report"));
  }
  test::ReportTempDir dir;
  write_text_file(dir.path() / "results" / "pareto" / "pareto.csv", pareto_csv(false));
  ReportOptions o;
  o.result_dirs = {dir.path() / "results"};
  o.published = {dir.path() / "absent.csv"};
  expect_error([&] { (void)build_report(o); }, {"absent.csv", "does not exist"});
}

TEST(ReportFigures, MalformedCompressScaleJsonNamesFileAndKey) {
  struct Case {
    std::string text;
    std::vector<std::string> phrases;
  };
  const std::string top = R"({"benchmark": "compress-scale", "ranks": 1, "threads": 1, "gemm_gflops_per_rank": 9, )";
  const std::string run =
      R"("rows": 10, "activation_seconds": 0.1, "factorization_seconds": 0.1, "gflop": 1, "bound_seconds": 0.1, )"
      R"("peak_rss_bytes": 1000)";
  const std::vector<Case> cases = {
      {"{\"benchmark\": \"compress-scale\",\n \"ranks\": 1,,}", {"bench-compress-scale.json:2", "malformed JSON"}},
      {"[1, 2]", {"bench-compress-scale.json", "expected a JSON object"}},
      {R"({"benchmark": "id", "ranks": 1})", {"bench-compress-scale.json", "compress-scale"}},
      {top + R"("rows": []})", {"bench-compress-scale.json", "no key 'runs'"}},
      {top + R"("runs": []})", {"bench-compress-scale.json", "runs", "empty"}},
      {top + R"("runs": [{)" + run + R"(, "seconds": "slow"}]})",
       {"bench-compress-scale.json", "runs[0].seconds", "not a number"}},
      {top + R"("runs": [{)" + run + "}]}", {"bench-compress-scale.json", "runs[0]", "no key 'seconds'"}},
      {R"({"benchmark": "compress-scale", "ranks": 0, "threads": 1, "gemm_gflops_per_rank": 9, "runs": []})",
       {"bench-compress-scale.json", "ranks", "> 0"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    test::ReportTempDir dir;
    const fs::path res = dir.path() / "results";
    write_text_file(res / "bench-compress-scale.json", c.text);
    ReportOptions o;
    o.result_dirs = {res};
    expect_error([&] { (void)build_report(o); }, c.phrases);
    EXPECT_FALSE(fs::exists(res / "report"));
  }
}

TEST(ReportFigures, ShippedLenetFileReadsWithItsCitation) {
  const auto points = read_published(fs::path(IDPRUNE_SOURCE_DIR) / "data/published/lenet-300-100-fashion-mnist.csv");
  ASSERT_EQ(points.size(), 8u);
  for (const auto& p : points) {
    EXPECT_EQ(p.axis, "hidden_kept_fraction");
    EXPECT_TRUE(contains(p.source, "Neuron Merging: Compensating for Pruned Neurons")) << p.source;
    EXPECT_TRUE(contains(p.source, "NeurIPS 2020")) << p.source;
    EXPECT_EQ(p.original_accuracy, 89.80);
    EXPECT_FALSE(p.finetuned);
  }
  // Neuron merging at 50% pruned (kept 0.5): 88.69 as published.
  EXPECT_TRUE(std::any_of(points.begin(), points.end(), [](const PublishedPoint& p) {
    return p.method == "neuron merging" && p.x == 0.5 && p.accuracy == 88.69;
  }));
}

}  // namespace
}  // namespace idprune::report
