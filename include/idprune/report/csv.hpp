#pragma once
// Reading the CSV files idprune's studies write (lowrank, sweep, pareto) for the report: a header
// row naming the columns, then data rows. Columns are looked up by name, so files may carry extra
// columns (provenance, timings) in any order.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace idprune::report {

/// A CSV file held as text (RFC 4180: comma-separated fields, a field may be quoted with "..." and
/// contain commas, newlines and doubled quotes ""). Blank lines and lines starting with '#' are
/// skipped. Every data row must have as many fields as the header. Errors name the file and the
/// line: "FILE:LINE: ...".
class CsvTable {
 public:
  /// Reads and parses `path`. Throws idprune::Error when it cannot be read or is malformed.
  static CsvTable read(const std::string& path);
  /// Parses `text`; `source` names it in error messages (usually the file path).
  static CsvTable parse(std::string_view text, const std::string& source);

  [[nodiscard]] const std::string& source() const { return source_; }
  [[nodiscard]] const std::vector<std::string>& header() const { return header_; }
  [[nodiscard]] std::size_t rows() const { return rows_.size(); }
  [[nodiscard]] bool has(std::string_view column) const;
  /// Index of `name`; throws "FILE: no column 'name' (columns: a, b, ...)".
  [[nodiscard]] std::size_t column(std::string_view name) const;
  /// The first of `names` present, or throws naming all of them.
  [[nodiscard]] std::size_t column_any(const std::vector<std::string>& names) const;
  /// The field at (row, col), as written (quotes removed).
  [[nodiscard]] const std::string& text(std::size_t row, std::size_t col) const;
  /// The field parsed as a number ("nan" and "inf" allowed, surrounding blanks ignored); throws
  /// "FILE:LINE: column 'c': 'x' is not a number".
  [[nodiscard]] double number(std::size_t row, std::size_t col) const;
  /// Every row of column `name` as numbers.
  [[nodiscard]] std::vector<double> numbers(std::string_view name) const;
  /// The 1-based line of the file where data row `row` starts.
  [[nodiscard]] std::size_t line(std::size_t row) const { return lines_.at(row); }

 private:
  std::string source_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<std::size_t> lines_;
};

/// Parses a number as CsvTable::number does; false when `text` is not one.
bool parse_number(std::string_view text, double& value);

/// The integers in a list such as "512;256;128", "[512, 256, 128]" or "512 256": every maximal run
/// of digits. Throws (naming `what`) when the text has characters other than digits, blanks and the
/// separators ,;:|/x[]() or has no digits at all.
std::vector<long> parse_integer_list(std::string_view text, const std::string& what);

}  // namespace idprune::report
