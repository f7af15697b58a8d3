#pragma once
// The result folder of a Pareto study (`idprune pareto`), written as each strategy finishes, so an
// interrupted study resumes with its finished strategies kept:
//   DIR/pareto-strategies.jsonl  one JSON object per finished strategy (its settings, provenance,
//                                every model evaluated, its rows per budget, a descent path): the
//                                primary record, appended durably; a cut last line is dropped
//   DIR/pareto.csv               one row per strategy and budget (rewritten atomically each time)
//   DIR/pareto-curves.csv        every model each strategy evaluated
//   DIR/descent-path-NAME.csv    the path of a validation-descent strategy (joint-path-NAME.csv
//                                in folders of an earlier idprune: renamed on --resume)
//   DIR/pareto-summary.csv       each strategy against greedy (write_summary, at the end)
// The folder is locked (io::OutputFolder) for the object's lifetime: one run at a time. Only MPI
// rank 0 opens it.
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "idprune/compress/pareto.hpp"

namespace idprune::io {
class OutputFolder;
}

namespace idprune::compress {

class ParetoFiles {
 public:
  /// Creates `dir` if missing (removed again on destruction while still empty) and locks it for
  /// `owner`. Without `resume`, a folder that already holds pareto results is an error ("use
  /// --resume or another --out"). With it, the strategies recorded in pareto-strategies.jsonl are
  /// loaded (a cut last line is dropped; damage before it is an error naming the line).
  ParetoFiles(std::string dir, bool resume, const std::string& owner = "idprune pareto");
  ~ParetoFiles();
  ParetoFiles(const ParetoFiles&) = delete;
  ParetoFiles& operator=(const ParetoFiles&) = delete;

  [[nodiscard]] const std::string& dir() const { return dir_; }
  /// What opening found, one line each, for the user (a dropped cut line, a lock taken over, ...).
  [[nodiscard]] const std::vector<std::string>& notes() const { return notes_; }
  /// The strategies of `wanted` (in that order) that no run has finished in this folder. Every
  /// recorded strategy must have been computed with `settings` (a JSON object of everything that
  /// decides the results: options, content hashes of model and data), else idprune::Error names the
  /// first setting that differs; the strategies recorded from now on carry `settings`.
  [[nodiscard]] std::vector<std::string> unfinished(std::span<const std::string> wanted,
                                                    const nlohmann::ordered_json& settings);

  /// Records a finished strategy: appends its record to pareto-strategies.jsonl (fsync'd), then
  /// rewrites pareto.csv and pareto-curves.csv from every record, and writes its descent-path CSV.
  /// `provenance` holds the columns added to each of its rows (original model figures, inputs,
  /// settings, build).
  void record(const ParetoCurve& curve, std::span<const ParetoRow> rows, const nlohmann::ordered_json& provenance);

  /// The study of every strategy recorded in the folder (earlier runs' and this run's, in the order
  /// they finished), with the original model's figures of `originals`.
  [[nodiscard]] ParetoResult result(const ParetoResult& originals) const;

  /// Writes pareto-summary.csv (one row per strategy and budget).
  void write_summary(std::span<const ParetoComparison> comparisons) const;

 private:
  void rewrite_tables() const;

  std::string dir_;
  std::unique_ptr<io::OutputFolder> folder_;
  nlohmann::ordered_json settings_;
  std::vector<nlohmann::ordered_json> records_;
  std::vector<std::string> notes_;
};

/// The console table of the comparisons: gains over greedy in percentage points; greedy itself is
/// the reference (no gain) and a value that does not exist (no model within a budget) shows as "-".
[[nodiscard]] std::string format_comparisons(std::span<const ParetoComparison> comparisons);

}  // namespace idprune::compress
