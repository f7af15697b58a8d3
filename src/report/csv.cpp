#include "idprune/report/csv.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

#include "idprune/la/error.hpp"

namespace idprune::report {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

bool parse_number(std::string_view text, double& value) {
  text = trim(text);
  if (text.empty()) return false;
  // from_chars rejects a leading '+', which other writers may emit.
  if (text.front() == '+') text.remove_prefix(1);
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

std::vector<long> parse_integer_list(std::string_view text, const std::string& what) {
  std::vector<long> values;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      long v = 0;
      const auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + text.size(), v);
      require(ec == std::errc(), what, ": integer out of range in '", text, "'");
      values.push_back(v);
      i = static_cast<std::size_t>(ptr - text.data());
    } else {
      require(std::isspace(static_cast<unsigned char>(c)) ||
                  std::string_view(",;:|/x[]()").find(c) != std::string_view::npos,
              what, ": '", text, "' is not a list of integers");
      ++i;
    }
  }
  require(!values.empty(), what, ": '", text, "' is not a list of integers");
  return values;
}

CsvTable CsvTable::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open '", path, "'");
  std::ostringstream os;
  os << in.rdbuf();
  require(!in.bad(), "cannot read '", path, "'");
  return parse(os.str(), path);
}

CsvTable CsvTable::parse(std::string_view text, const std::string& source) {
  CsvTable t;
  t.source_ = source;
  std::size_t pos = 0;
  std::size_t line = 1;
  bool have_header = false;
  while (pos < text.size()) {
    // Skip blank and comment lines (only at the start of a record).
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    const std::string_view raw = text.substr(pos, eol - pos);
    if (trim(raw).empty() || trim(raw).front() == '#') {
      pos = eol + 1;
      ++line;
      continue;
    }
    const std::size_t record_line = line;
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;      // inside "..."
    bool was_quoted = false;  // this field was quoted (text after the closing quote is an error)
    while (true) {
      require(pos <= text.size(), source, ":", record_line, ": unterminated quoted field");
      if (pos == text.size()) {
        require(!quoted, source, ":", record_line, ": unterminated quoted field");
        fields.push_back(was_quoted ? field : std::string(trim(field)));
        break;
      }
      const char c = text[pos];
      if (quoted) {
        if (c == '"') {
          if (pos + 1 < text.size() && text[pos + 1] == '"') {
            field += '"';
            pos += 2;
          } else {
            quoted = false;
            ++pos;
          }
        } else {
          if (c == '\n') ++line;
          field += c;
          ++pos;
        }
        continue;
      }
      if (c == ',') {
        fields.push_back(was_quoted ? field : std::string(trim(field)));
        field.clear();
        was_quoted = false;
        ++pos;
      } else if (c == '\n' || c == '\r') {
        fields.push_back(was_quoted ? field : std::string(trim(field)));
        if (c == '\r' && pos + 1 < text.size() && text[pos + 1] == '\n') ++pos;
        ++pos;
        ++line;
        break;
      } else if (c == '"' && std::string_view(field).find_first_not_of(" \t") == std::string_view::npos &&
                 !was_quoted) {
        field.clear();
        quoted = true;
        was_quoted = true;
        ++pos;
      } else {
        require(!was_quoted || c == ' ' || c == '\t', source, ":", record_line,
                ": text after a closing quote in field ", fields.size() + 1);
        if (!was_quoted) field += c;
        ++pos;
      }
    }
    if (!have_header) {
      for (std::size_t j = 0; j < fields.size(); ++j) {
        require(!fields[j].empty(), source, ":", record_line, ": empty column name (column ", j + 1, ")");
        for (std::size_t i = 0; i < j; ++i)
          require(fields[i] != fields[j], source, ":", record_line, ": column '", fields[j], "' appears twice");
      }
      t.header_ = std::move(fields);
      have_header = true;
    } else {
      require(fields.size() == t.header_.size(), source, ":", record_line, ": ", fields.size(),
              " fields, but the header has ", t.header_.size(), " (", joined(t.header_), ")");
      t.rows_.push_back(std::move(fields));
      t.lines_.push_back(record_line);
    }
  }
  require(have_header, source, ": empty file (no header row)");
  return t;
}

bool CsvTable::has(std::string_view column) const {
  return std::find(header_.begin(), header_.end(), column) != header_.end();
}

std::size_t CsvTable::column(std::string_view name) const {
  const auto it = std::find(header_.begin(), header_.end(), name);
  require(it != header_.end(), source_, ": no column '", name, "' (columns: ", joined(header_), ")");
  return static_cast<std::size_t>(it - header_.begin());
}

std::size_t CsvTable::column_any(const std::vector<std::string>& names) const {
  for (const auto& n : names)
    if (has(n)) return column(n);
  std::string wanted;
  for (const auto& n : names) wanted += (wanted.empty() ? "'" : " or '") + n + "'";
  throw Error(detail::concat(source_, ": no column ", wanted, " (columns: ", joined(header_), ")"));
}

const std::string& CsvTable::text(std::size_t row, std::size_t col) const { return rows_.at(row).at(col); }

double CsvTable::number(std::size_t row, std::size_t col) const {
  double v = 0.0;
  require(parse_number(text(row, col), v), source_, ":", line(row), ": column '", header_.at(col), "': '",
          text(row, col), "' is not a number");
  return v;
}

std::vector<double> CsvTable::numbers(std::string_view name) const {
  const std::size_t col = column(name);
  std::vector<double> out(rows());
  for (std::size_t r = 0; r < rows(); ++r) out[r] = number(r, col);
  return out;
}

}  // namespace idprune::report
