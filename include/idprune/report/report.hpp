#pragma once
// `idprune report`: one self-contained report (index.html + report.md + figures, with the data and
// gnuplot scripts behind every figure) from the result folders of idprune's studies.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "idprune/report/gnuplot.hpp"

namespace idprune::report {

struct ReportOptions {
  std::vector<std::filesystem::path> result_dirs;  ///< scanned as described in studies.hpp
  /// CSVs of published results (format at PublishedPoint), drawn as points beside ours and listed
  /// with their sources.
  std::vector<std::filesystem::path> published;
  std::filesystem::path out;  ///< empty: result_dirs[0] / "report"
  GnuplotOptions gnuplot;
  std::size_t max_table_rows = 30;  ///< longer tables are shortened (the full file is linked)
  std::string title = "idprune report";
};

struct ReportSummary {
  std::filesystem::path out;          ///< the report folder
  std::vector<std::string> figures;   ///< image files, relative to `out`
  std::vector<std::string> sections;  ///< titles of the studies shown
  std::vector<std::string> missing;   ///< studies for which no results were found
  std::size_t files_read = 0;
};

/// Scans the result folders, draws every figure with gnuplot and writes OUT/index.html,
/// OUT/report.md, the figures (PNG or SVG) and, next to each, NAME.gp + NAME.dat, plus copies of
/// the files read under OUT/data/. The report is built in a temporary sibling folder and renamed
/// into place; an existing OUT is replaced only when it is itself an idprune report. Throws
/// idprune::Error (malformed input naming file and line, gnuplot missing or failing, no result
/// files at all).
ReportSummary build_report(const ReportOptions& options);

}  // namespace idprune::report
