#pragma once
// Crash-safe result tables: DIR/results.jsonl (one JSON object per line, the primary record) and
// DIR/results.csv (the same rows as CSV, for spreadsheets and plots).
//
// Rows are appended as they are produced: JSON Lines first, then CSV, each written, flushed and
// fsync'd, so after a crash every row in the CSV is also in the JSON Lines file, and at most the
// last line of either file is incomplete. Opening with `resume` reads results.jsonl, drops an
// incomplete last line (no newline, or not valid JSON), and rewrites BOTH files atomically
// (temporary file, fsync, rename, fsync of the folder) from the rows kept: a row that reached the
// CSV but not the JSON Lines file is dropped there too and recomputed, so no row is ever duplicated
// or truncated. Only one process (MPI rank 0) may use a folder.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace idprune::compress {

class ResultsFiles {
 public:
  /// Creates `dir` if missing. Without `resume` a non-empty results.jsonl or results.csv is an
  /// error ("use --resume or another --out"); with it the existing rows are loaded as described above.
  /// A line other than the last that is not a JSON object is an error naming the line.
  ResultsFiles(std::string dir, bool resume);

  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] std::string jsonl_path() const;
  [[nodiscard]] std::string csv_path() const;
  /// Rows found on opening (with resume).
  [[nodiscard]] const std::vector<nlohmann::ordered_json>& records() const { return records_; }
  /// 1 when an incomplete last line was dropped on opening, else 0.
  [[nodiscard]] std::size_t dropped_lines() const { return dropped_; }

  /// Appends rows (results.jsonl, then results.csv with its header first if the file is empty).
  /// CSV columns are those of the first row ever written; a later row missing one leaves it empty.
  void append(std::span<const nlohmann::ordered_json> rows);

 private:
  std::string dir_;
  std::vector<nlohmann::ordered_json> records_;
  std::vector<std::string> columns_;  ///< CSV header, fixed by the first row
  std::size_t dropped_ = 0;
};

/// One CSV line (no newline) of `row` in the order of `columns`: numbers in the shortest form that
/// reads back to the same double, strings quoted when they contain a comma, quote or newline, arrays
/// joined by ';', missing fields empty.
[[nodiscard]] std::string csv_line(const nlohmann::ordered_json& row, std::span<const std::string> columns);
/// The keys of `row`, in order.
[[nodiscard]] std::vector<std::string> csv_columns(const nlohmann::ordered_json& row);

/// Writes `text` to `path` atomically: `path`.tmp, fsync, rename, fsync of the folder.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace idprune::compress
