// `idprune report`: a report (HTML + Markdown, figures drawn by gnuplot) from result folders.
#include "idprune/report/report.hpp"

#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/la/error.hpp"
#include "idprune/report/columns.hpp"

namespace idprune::cli {

namespace {

const char* const kUsage = R"(RESULT_DIR... [--out REPORT_DIR] [--format auto|png|svg] [--published CSV]...

Builds REPORT_DIR/index.html and REPORT_DIR/report.md (default REPORT_DIR: FIRST_RESULT_DIR/report)
from the result files found in each RESULT_DIR and in its immediate sub-folders:
  lowrank*.csv      idprune lowrank --out     CPQR vs SVD error against k (log error axis)
  bench-cpqr*.json  idprune bench cpqr --json CPQR time over growing m, n, m = n (log-log, slopes)
  results.csv       idprune sweep --out DIR   accuracy vs fraction of W1 kept (sweeps with layers = 1),
                                              accuracy vs parameters (one curve per sweep)
  pareto.csv        idprune pareto --out DIR  Pareto fronts, parameters vs test accuracy
  bench-id*.json    idprune bench id --json   pivot-engine time vs MPI ranks
  bench-compress-scale*.json  idprune bench compress-scale --json (one file per rank count): one
                    compression point's time and its GEMM lower bound vs rows (log-log), ratio, peak RSS
  config.ini        the run's configuration, shown as its provenance
Each figure is drawn by gnuplot; its script (NAME.gp) and data (NAME.dat) are kept next to it, so
`gnuplot NAME.gp` in REPORT_DIR re-draws it. --published CSV (repeatable) adds accuracies quoted
from publications (columns method, source, axis, x, accuracy; optional cite, model, dataset,
original_accuracy, finetuned), drawn as points beside ours and listed with their sources; e.g.
data/published/lenet-300-100-fashion-mnist.csv. The files read are copied to REPORT_DIR/data/. The
report is written to a temporary folder and renamed into place.

Example:
  idprune report results/greedy results/magnitude --out results/report)";

}  // namespace

int run_report(const std::vector<std::string>& args) {
  po::options_description options("report options");
  options.add_options()("result-dir", paths(), "result folders (also given as positional arguments)")(
      "out", path()->default_value(""), "report folder (default: FIRST_RESULT_DIR/report)")(
      "format", po::value<std::string>()->default_value("auto"), "figure format: auto (PNG if possible), png, svg")(
      "gnuplot", po::value<std::string>()->default_value("gnuplot"), "gnuplot executable")(
      "width", po::value<int>()->default_value(900), "figure width in pixels")(
      "height", po::value<int>()->default_value(600), "figure height in pixels")(
      "max-rows", po::value<long>()->default_value(30), "longer tables are shortened to this many rows (0: never)")(
      "title", po::value<std::string>()->default_value("idprune report"), "title of the report")(
      "published", paths(), "CSV of published results to draw beside ours (repeatable)")(
      "help-columns", po::bool_switch(), "print what every column of results.csv / pareto.csv means, and exit");
  po::variables_map vm;
  // Words that are not options are result folders.
  if (!parse("report", kUsage, options, args, vm, "result-dir")) return 0;
  if (vm["help-columns"].as<bool>()) {
    std::cout << report::columns_reference();
    return 0;
  }
  require(vm.count("result-dir"), "report: no result folders given (usage: idprune report RESULT_DIR... [--out DIR])");
  const long max_rows = vm["max-rows"].as<long>();
  require(max_rows >= 0, "report: --max-rows=", max_rows, " (needs >= 0)");

  report::ReportOptions opts;
  for (const auto& d : vm["result-dir"].as<std::vector<std::string>>()) opts.result_dirs.emplace_back(d);
  opts.out = vm["out"].as<std::string>();
  opts.gnuplot.executable = vm["gnuplot"].as<std::string>();
  opts.gnuplot.format = vm["format"].as<std::string>();
  opts.gnuplot.width = vm["width"].as<int>();
  opts.gnuplot.height = vm["height"].as<int>();
  opts.max_table_rows = static_cast<std::size_t>(max_rows);
  opts.title = vm["title"].as<std::string>();
  if (vm.count("published"))
    for (const auto& f : vm["published"].as<std::vector<std::string>>()) opts.published.emplace_back(f);

  // A report is written once: under mpirun, rank 0 writes it and the others wait.
  const auto comm = dist::Comm::world();
  if (comm.rank() == 0) {
    const report::ReportSummary s = report::build_report(opts);
    std::cout << "report: " << s.sections.size() << " studies, " << s.figures.size() << " figures, from "
              << s.files_read << " result files\n";
    for (const auto& m : s.missing) std::cout << "report: not found: " << m << "\n";
    std::cout << "report: open " << (s.out / "index.html").string() << " (Markdown: " << (s.out / "report.md").string()
              << ")\n";
  }
  comm.idle_barrier();
  return 0;
}

}  // namespace idprune::cli
