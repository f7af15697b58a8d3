#pragma once
// Crash-safe result tables: DIR/results.jsonl (one JSON object per line, the primary record) and
// DIR/results.csv (the same rows as CSV, for spreadsheets and plots).
//
// Rows are appended as they are produced: JSON Lines first, then CSV, each written and fsync'd
// (io::append_durably), so after a crash every row in the CSV is also in the JSON Lines file, and
// at most the last line of either file is incomplete. Opening with `resume` reads results.jsonl,
// drops an incomplete last line (no newline, or not valid JSON), and rewrites BOTH files
// atomically (io::write_file_atomically) from the rows kept: a row that reached the CSV but not the
// JSON Lines file is dropped there too and recomputed, so no row is ever duplicated or truncated.
// One run at a time: the folder is locked (io::OutputFolder) for the object's lifetime, so a second
// run (a resume, or another sweep into the same folder) fails at once naming the holder, instead
// of rewriting the files under a run that is appending to them. Only MPI rank 0 opens it.
#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

namespace idprune::io {
class OutputFolder;
}

namespace idprune::compress {

class ResultsFiles {
 public:
  /// Creates `dir` if missing (and removes it again on destruction if it is still empty) and locks
  /// it for `owner` (the lock file names it, e.g. "idprune
  /// sweep"); a folder locked by a live run is an error naming that run. Without `resume` a
  /// non-empty results.jsonl or results.csv is an error ("use --resume or another --out"); with it
  /// the existing rows are loaded as described above. A line other than the last that is not a
  /// JSON object is an error naming the line.
  ResultsFiles(std::string dir, bool resume, const std::string& owner = "idprune");
  ~ResultsFiles();
  ResultsFiles(const ResultsFiles&) = delete;
  ResultsFiles& operator=(const ResultsFiles&) = delete;

  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] std::string jsonl_path() const;
  [[nodiscard]] std::string csv_path() const;
  /// Rows found on opening (with resume).
  [[nodiscard]] const std::vector<nlohmann::ordered_json>& records() const { return records_; }
  /// 1 when an incomplete last line was dropped on opening, else 0.
  [[nodiscard]] std::size_t dropped_lines() const { return dropped_; }
  /// What opening repaired, one line each, for the user: a dropped incomplete line, a lock taken
  /// over from a run that ended without releasing it.
  [[nodiscard]] const std::vector<std::string>& notes() const { return notes_; }

  /// Appends rows (results.jsonl, then results.csv with its header first if the file is empty).
  /// CSV columns are those of the first row ever written; a later row missing one leaves it empty.
  void append(std::span<const nlohmann::ordered_json> rows);

 private:
  std::string dir_;
  std::unique_ptr<io::OutputFolder> folder_;
  std::vector<std::string> notes_;
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
/// The header line (with newline) of a CSV with `columns`.
[[nodiscard]] std::string csv_header(std::span<const std::string> columns);
/// Rows as CSV text: the header from the first row's keys, then one csv_line each ("" for none).
[[nodiscard]] std::string csv_text(std::span<const nlohmann::ordered_json> rows);

/// The JSON objects of a JSON Lines file (none when it is missing or empty). An incomplete last line
/// (a run that ended while appending it) is dropped and counted in `dropped`; a damaged line before
/// the last is an error naming the file and the line.
[[nodiscard]] std::vector<nlohmann::ordered_json> read_json_lines(const std::string& path, std::size_t& dropped);

}  // namespace idprune::compress
