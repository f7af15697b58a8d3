#pragma once
// A report as a list of blocks (headings, paragraphs, figures, tables, code), rendered both as a
// self-contained HTML page and as Markdown, so that the two versions always say the same thing.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "idprune/report/studies.hpp"

namespace idprune::report {

/// A piece of inline text: plain, a link (href set) or code.
struct Span {
  Span(std::string text_, std::string href_ = "", bool code_ = false)  // NOLINT: implicit from text
      : text(std::move(text_)), href(std::move(href_)), code(code_) {}
  std::string text;
  std::string href;
  bool code = false;
};

class Document {
 public:
  void heading(int level, const std::string& text);
  void paragraph(std::vector<Span> spans);
  void paragraph(const std::string& text) { paragraph(std::vector<Span>{{text, "", false}}); }
  void bullets(std::vector<std::vector<Span>> items);
  /// An image (file name relative to the report folder) with its caption.
  void figure(const std::string& image, const std::string& alt, const std::string& caption);
  /// A table; when it has more than `max_rows` rows, the first and last max_rows / 2 are shown with
  /// a line saying how many were left out and linking `full_href` (the complete data), if given.
  /// Cells are shown through significant_cell() (4 significant digits).
  void table(const Table& table, std::size_t max_rows, const std::string& full_href = "");
  /// A table shown whole with its cells as written (already formatted, e.g. percentages to the two
  /// decimals publications quote).
  void table_as_written(const Table& table);
  /// Preformatted text (a config file), with a caption line.
  void code(const std::string& text, const std::string& caption);

  [[nodiscard]] std::string html(const std::string& title) const;
  [[nodiscard]] std::string markdown() const;

 private:
  struct Block {
    enum class Kind { heading, paragraph, bullets, figure, table, code };
    Kind kind = Kind::paragraph;
    int level = 0;
    std::vector<std::vector<Span>> spans;  // paragraph: one entry; bullets: one per item
    std::string image, alt, caption, text, full_href;
    Table table;
    std::size_t max_rows = 0;
  };
  std::vector<Block> blocks_;
};

/// A table cell as the report shows it: a number written with a decimal point (0.861234567,
/// 1.2345678e-05) to `digits` significant digits (at least every digit of its integer part, so
/// 123456.7 shows as 123457); each item of a ';'-separated list likewise; integers, other text and
/// numbers without a point (3e-07) unchanged. The CSV and JSON files keep full precision.
std::string significant_cell(const std::string& cell, int digits = 4);

/// HTML-escapes & < > " '.
std::string html_escape(const std::string& text);
/// Escapes the characters Markdown would read as markup (| * _ ` [ ] < > \).
std::string markdown_escape(const std::string& text);

}  // namespace idprune::report
