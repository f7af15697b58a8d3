#include "idprune/compress/results.hpp"

#include <array>
#include <charconv>
#include <filesystem>

#include "idprune/io/file.hpp"
#include "idprune/io/lock.hpp"
#include "idprune/la/error.hpp"

namespace idprune::compress {

namespace {

std::uintmax_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

std::string format_number(const nlohmann::ordered_json& v) {
  if (v.is_number_integer()) return v.dump();
  std::array<char, 64> buf{};
  // Shortest decimal form that reads back to the same double.
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v.get<double>());
  return {buf.data(), res.ptr};
}

std::string format_scalar(const nlohmann::ordered_json& v) {
  if (v.is_null()) return {};
  if (v.is_number()) return format_number(v);
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string quote_if_needed(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

}  // namespace

std::vector<std::string> csv_columns(const nlohmann::ordered_json& row) {
  std::vector<std::string> cols;
  for (auto it = row.begin(); it != row.end(); ++it) cols.push_back(it.key());
  return cols;
}

std::string csv_line(const nlohmann::ordered_json& row, std::span<const std::string> columns) {
  std::string line;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (c > 0) line += ',';
    const auto it = row.find(columns[c]);
    if (it == row.end()) continue;
    std::string cell;
    if (it->is_array()) {
      for (std::size_t i = 0; i < it->size(); ++i) cell += (i ? ";" : "") + format_scalar((*it)[i]);
    } else {
      cell = format_scalar(*it);
    }
    line += quote_if_needed(cell);
  }
  return line;
}

std::string csv_header(std::span<const std::string> columns) {
  std::string header;
  for (std::size_t c = 0; c < columns.size(); ++c) header += (c ? "," : "") + columns[c];
  return header + "\n";
}

std::string csv_text(std::span<const nlohmann::ordered_json> rows) {
  if (rows.empty()) return {};
  const std::vector<std::string> columns = csv_columns(rows.front());
  std::string text = csv_header(columns);
  for (const auto& r : rows) text += csv_line(r, columns) + "\n";
  return text;
}

std::vector<nlohmann::ordered_json> read_json_lines(const std::string& path, std::size_t& dropped) {
  dropped = 0;
  std::vector<nlohmann::ordered_json> records;
  const std::string text = file_size_or_zero(path) > 0 ? io::read_file(path) : std::string();
  std::size_t pos = 0;
  std::size_t line_no = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const bool complete = nl != std::string::npos;
    const std::string line = text.substr(pos, complete ? nl - pos : std::string::npos);
    pos = complete ? nl + 1 : text.size();
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const bool last = pos >= text.size();
    nlohmann::ordered_json row = nlohmann::ordered_json::parse(line, nullptr, false);
    const bool valid = complete && !row.is_discarded() && row.is_object();
    if (!valid) {
      // Only the last line can be cut short by a crash; anything else is damage we must not hide.
      require(last, "'", path, "' line ", line_no, " is not a complete JSON object (the file is damaged)");
      dropped = 1;
      break;
    }
    records.push_back(std::move(row));
  }
  return records;
}

std::string ResultsFiles::jsonl_path() const { return (std::filesystem::path(dir_) / "results.jsonl").string(); }
std::string ResultsFiles::csv_path() const { return (std::filesystem::path(dir_) / "results.csv").string(); }

ResultsFiles::~ResultsFiles() = default;

ResultsFiles::ResultsFiles(std::string dir, bool resume, const std::string& owner) : dir_(std::move(dir)) {
  folder_ = std::make_unique<io::OutputFolder>(dir_, owner);
  if (const std::string note = folder_->takeover_note(); !note.empty()) notes_.push_back(note);
  const std::string jsonl = jsonl_path();
  const std::string csv = csv_path();
  if (!resume) {
    for (const auto& p : {jsonl, csv})
      require(file_size_or_zero(p) == 0, "'", p, "' already holds results: use --resume or another --out");
    return;
  }
  records_ = read_json_lines(jsonl, dropped_);
  if (dropped_ > 0)
    notes_.push_back(detail::concat("dropped an incomplete last line of ", jsonl, " (a run ended while writing it)"));
  // Rewrite both files from the complete rows, so that the CSV matches the JSON Lines exactly.
  std::string jtext;
  for (const auto& r : records_) jtext += r.dump() + "\n";
  if (!records_.empty()) columns_ = csv_columns(records_.front());
  io::write_file_atomically(jsonl, jtext);
  io::write_file_atomically(csv, csv_text(records_));
}

void ResultsFiles::append(std::span<const nlohmann::ordered_json> rows) {
  if (rows.empty()) return;
  std::string jtext;
  for (const auto& r : rows) jtext += r.dump() + "\n";
  io::append_durably(jsonl_path(), jtext);
  std::string ctext;
  if (columns_.empty()) columns_ = csv_columns(rows.front());
  if (file_size_or_zero(csv_path()) == 0) ctext = csv_header(columns_);
  for (const auto& r : rows) ctext += csv_line(r, columns_) + "\n";
  io::append_durably(csv_path(), ctext);
}

}  // namespace idprune::compress
