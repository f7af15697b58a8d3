#include "idprune/compress/results.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "idprune/la/error.hpp"

namespace idprune::compress {

namespace {

std::string errno_text() { return std::strerror(errno); }

/// Writes every byte of `text` to fd (write may write less than asked).
void write_all(int fd, const std::string& text, const std::string& path) {
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    require(w > 0, "cannot write '", path, "': ", errno_text());
    p += w;
    left -= static_cast<std::size_t>(w);
  }
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// Appends `text` to `path` (created if missing), then fsync.
void append_durably(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  require(fd >= 0, "cannot open '", path, "' for appending: ", errno_text());
  try {
    write_all(fd, text, path);
    require(::fsync(fd) == 0, "fsync of '", path, "' failed: ", errno_text());
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

std::uintmax_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream os;
  os << in.rdbuf();
  require(!in.bad(), "cannot read '", path, "'");
  return os.str();
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

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  require(fd >= 0, "cannot create '", tmp, "': ", errno_text());
  try {
    write_all(fd, text, tmp);
    require(::fsync(fd) == 0, "fsync of '", tmp, "' failed: ", errno_text());
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  require(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path, "': ", errno_text());
  fsync_path(std::filesystem::path(path).parent_path().string(), true);
}

std::string ResultsFiles::jsonl_path() const { return (std::filesystem::path(dir_) / "results.jsonl").string(); }
std::string ResultsFiles::csv_path() const { return (std::filesystem::path(dir_) / "results.csv").string(); }

ResultsFiles::ResultsFiles(std::string dir, bool resume) : dir_(std::move(dir)) {
  require(!dir_.empty(), "results: empty output folder name");
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  require(!ec && std::filesystem::is_directory(dir_), "cannot create output folder '", dir_, "': ", ec.message());
  const std::string jsonl = jsonl_path();
  const std::string csv = csv_path();
  if (!resume) {
    for (const auto& p : {jsonl, csv})
      require(file_size_or_zero(p) == 0, "'", p, "' already holds results: use --resume or another --out");
    return;
  }
  const std::string text = read_file(jsonl);
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
      require(last, "'", jsonl, "' line ", line_no, " is not a complete JSON object (the file is damaged)");
      dropped_ = 1;
      break;
    }
    records_.push_back(std::move(row));
  }
  // Rewrite both files from the complete rows, so that the CSV matches the JSON Lines exactly.
  std::string jtext;
  std::string ctext;
  if (!records_.empty()) {
    columns_ = csv_columns(records_.front());
    std::string header;
    for (std::size_t c = 0; c < columns_.size(); ++c) header += (c ? "," : "") + columns_[c];
    ctext = header + "\n";
    for (const auto& r : records_) {
      jtext += r.dump() + "\n";
      ctext += csv_line(r, columns_) + "\n";
    }
  }
  write_file_atomically(jsonl, jtext);
  write_file_atomically(csv, ctext);
}

void ResultsFiles::append(std::span<const nlohmann::ordered_json> rows) {
  if (rows.empty()) return;
  std::string jtext;
  for (const auto& r : rows) jtext += r.dump() + "\n";
  append_durably(jsonl_path(), jtext);
  std::string ctext;
  if (columns_.empty()) columns_ = csv_columns(rows.front());
  if (file_size_or_zero(csv_path()) == 0) {
    for (std::size_t c = 0; c < columns_.size(); ++c) ctext += (c ? "," : "") + columns_[c];
    ctext += "\n";
  }
  for (const auto& r : rows) ctext += csv_line(r, columns_) + "\n";
  append_durably(csv_path(), ctext);
}

}  // namespace idprune::compress
