#include "idprune/report/document.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "idprune/report/csv.hpp"

namespace idprune::report {

namespace {

bool looks_numeric(const std::string& s) {
  double v = 0.0;
  return parse_number(s, v);
}

std::string html_spans(const std::vector<Span>& spans) {
  std::string out;
  for (const Span& s : spans) {
    std::string t = html_escape(s.text);
    if (s.code) t = "<code>" + t + "</code>";
    if (!s.href.empty()) t = "<a href=\"" + html_escape(s.href) + "\">" + t + "</a>";
    out += t;
  }
  return out;
}

std::string markdown_spans(const std::vector<Span>& spans) {
  std::string out;
  for (const Span& s : spans) {
    // Inside backticks nothing is markup; a backtick in the text falls back to escaped text.
    std::string t = s.code && s.text.find('`') == std::string::npos ? "`" + s.text + "`" : markdown_escape(s.text);
    if (!s.href.empty()) t = "[" + t + "](" + s.href + ")";
    out += t;
  }
  return out;
}

// Rows shown of a table with `n` rows: all, or the first and last max_rows / 2 (SIZE_MAX marks the gap).
std::vector<std::size_t> shown_rows(std::size_t n, std::size_t max_rows) {
  std::vector<std::size_t> rows;
  if (max_rows == 0 || n <= max_rows) {
    for (std::size_t i = 0; i < n; ++i) rows.push_back(i);
    return rows;
  }
  const std::size_t head = (max_rows + 1) / 2;
  const std::size_t tail = max_rows / 2;
  for (std::size_t i = 0; i < head; ++i) rows.push_back(i);
  rows.push_back(static_cast<std::size_t>(-1));
  for (std::size_t i = n - tail; i < n; ++i) rows.push_back(i);
  return rows;
}

std::string truncation_note(std::size_t n, std::size_t max_rows) {
  return "Showing " + std::to_string((max_rows + 1) / 2) + " first and " + std::to_string(max_rows / 2) + " last of " +
         std::to_string(n) + " rows.";
}

std::string significant_number(const std::string& text, int digits) {
  double v = 0.0;
  if (text.find('.') == std::string::npos || !parse_number(text, v) || !std::isfinite(v)) return text;
  std::ostringstream os;
  if (std::abs(v) >= std::pow(10.0, digits)) {
    os << std::fixed << std::setprecision(0) << v;  // never hide digits of the integer part
  } else {
    os << std::setprecision(digits) << v;
  }
  return os.str();
}

}  // namespace

std::string significant_cell(const std::string& cell, int digits) {
  if (cell.find(';') == std::string::npos) return significant_number(cell, digits);
  std::string out;
  std::size_t start = 0;
  while (true) {
    const auto end = cell.find(';', start);
    out += significant_number(cell.substr(start, end == std::string::npos ? std::string::npos : end - start), digits);
    if (end == std::string::npos) break;
    out += ';';
    start = end + 1;
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += ' ';
      continue;
    }
    if (std::string_view("|*_`[]<>\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

void Document::heading(int level, const std::string& text) {
  Block b;
  b.kind = Block::Kind::heading;
  b.level = level;
  b.text = text;
  blocks_.push_back(std::move(b));
}

void Document::paragraph(std::vector<Span> spans) {
  Block b;
  b.kind = Block::Kind::paragraph;
  b.spans.push_back(std::move(spans));
  blocks_.push_back(std::move(b));
}

void Document::bullets(std::vector<std::vector<Span>> items) {
  Block b;
  b.kind = Block::Kind::bullets;
  b.spans = std::move(items);
  blocks_.push_back(std::move(b));
}

void Document::figure(const std::string& image, const std::string& alt, const std::string& caption) {
  Block b;
  b.kind = Block::Kind::figure;
  b.image = image;
  b.alt = alt;
  b.caption = caption;
  blocks_.push_back(std::move(b));
}

void Document::table(const Table& table, std::size_t max_rows, const std::string& full_href) {
  Block b;
  b.kind = Block::Kind::table;
  b.table = table;
  for (auto& row : b.table.rows)
    for (auto& cell : row) cell = significant_cell(cell);
  b.max_rows = max_rows;
  b.full_href = full_href;
  blocks_.push_back(std::move(b));
}

void Document::table_as_written(const Table& table) {
  Block b;
  b.kind = Block::Kind::table;
  b.table = table;
  blocks_.push_back(std::move(b));
}

void Document::code(const std::string& text, const std::string& caption) {
  Block b;
  b.kind = Block::Kind::code;
  b.text = text;
  b.caption = caption;
  blocks_.push_back(std::move(b));
}

std::string Document::html(const std::string& title) const {
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html_escape(title)
     << "</title>\n<style>\n"
     << "body { font-family: sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }\n"
     << "figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }\n"
     << "figcaption { font-size: 0.9em; color: #444; }\n"
     << "table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; display: block; overflow-x: auto; }\n"
     << "th, td { border: 1px solid #ccc; padding: 2px 6px; } th { background: #f0f0f0; }\n"
     << "td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
     << "pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.85em; }\n"
     << "</style>\n</head>\n<body>\n";
  for (const Block& b : blocks_) {
    switch (b.kind) {
      case Block::Kind::heading:
        os << "<h" << b.level << ">" << html_escape(b.text) << "</h" << b.level << ">\n";
        break;
      case Block::Kind::paragraph:
        os << "<p>" << html_spans(b.spans.front()) << "</p>\n";
        break;
      case Block::Kind::bullets:
        os << "<ul>\n";
        for (const auto& item : b.spans) os << "<li>" << html_spans(item) << "</li>\n";
        os << "</ul>\n";
        break;
      case Block::Kind::figure:
        os << "<figure>\n<img src=\"" << html_escape(b.image) << "\" alt=\"" << html_escape(b.alt)
           << "\">\n<figcaption>" << html_escape(b.caption) << "</figcaption>\n</figure>\n";
        break;
      case Block::Kind::table: {
        const auto rows = shown_rows(b.table.rows.size(), b.max_rows);
        if (rows.size() != b.table.rows.size()) {
          os << "<p>" << html_escape(truncation_note(b.table.rows.size(), b.max_rows));
          if (!b.full_href.empty())
            os << " Full table: <a href=\"" << html_escape(b.full_href) << "\">" << html_escape(b.full_href) << "</a>.";
          os << "</p>\n";
        }
        os << "<table>\n<tr>";
        for (const auto& h : b.table.header) os << "<th>" << html_escape(h) << "</th>";
        os << "</tr>\n";
        for (std::size_t r : rows) {
          os << "<tr>";
          if (r == static_cast<std::size_t>(-1)) {
            os << "<td colspan=\"" << b.table.header.size() << "\">&hellip;</td>";
          } else {
            for (const auto& cell : b.table.rows[r])
              os << (looks_numeric(cell) ? "<td class=\"num\">" : "<td>") << html_escape(cell) << "</td>";
          }
          os << "</tr>\n";
        }
        os << "</table>\n";
        break;
      }
      case Block::Kind::code:
        os << "<p>" << html_escape(b.caption) << "</p>\n<pre>" << html_escape(b.text) << "</pre>\n";
        break;
    }
  }
  os << "</body>\n</html>\n";
  return os.str();
}

std::string Document::markdown() const {
  std::ostringstream os;
  for (const Block& b : blocks_) {
    switch (b.kind) {
      case Block::Kind::heading:
        os << std::string(static_cast<std::size_t>(b.level), '#') << " " << markdown_escape(b.text) << "\n\n";
        break;
      case Block::Kind::paragraph:
        os << markdown_spans(b.spans.front()) << "\n\n";
        break;
      case Block::Kind::bullets:
        for (const auto& item : b.spans) os << "- " << markdown_spans(item) << "\n";
        os << "\n";
        break;
      case Block::Kind::figure:
        os << "![" << markdown_escape(b.alt) << "](" << b.image << ")\n\n*" << markdown_escape(b.caption) << "*\n\n";
        break;
      case Block::Kind::table: {
        const auto rows = shown_rows(b.table.rows.size(), b.max_rows);
        if (rows.size() != b.table.rows.size()) {
          os << markdown_escape(truncation_note(b.table.rows.size(), b.max_rows));
          if (!b.full_href.empty())
            os << " Full table: [" << markdown_escape(b.full_href) << "](" << b.full_href << ").";
          os << "\n\n";
        }
        os << "|";
        for (const auto& h : b.table.header) os << " " << markdown_escape(h) << " |";
        os << "\n|";
        for (std::size_t c = 0; c < b.table.header.size(); ++c) {
          const bool numeric =
              !b.table.rows.empty() && c < b.table.rows.front().size() && looks_numeric(b.table.rows.front()[c]);
          os << (numeric ? " ---: |" : " --- |");
        }
        os << "\n";
        for (std::size_t r : rows) {
          os << "|";
          if (r == static_cast<std::size_t>(-1)) {
            for (std::size_t c = 0; c < b.table.header.size(); ++c) os << " ... |";
          } else {
            for (const auto& cell : b.table.rows[r]) os << " " << markdown_escape(cell) << " |";
          }
          os << "\n";
        }
        os << "\n";
        break;
      }
      case Block::Kind::code:
        os << markdown_escape(b.caption) << "\n\n```ini\n"
           << b.text << (b.text.empty() || b.text.back() == '\n' ? "" : "\n") << "```\n\n";
        break;
    }
  }
  return os.str();
}

}  // namespace idprune::report
