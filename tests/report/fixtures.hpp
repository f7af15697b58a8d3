#pragma once
// Helpers for the report tests: a temporary folder removed at scope exit, file writing and reading,
// the PNG signature check, and a check that a call throws idprune::Error naming given phrases.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "idprune/la/error.hpp"

namespace idprune::test {

class ReportTempDir {
 public:
  ReportTempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "idprune-report-test-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ReportTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ReportTempDir(const ReportTempDir&) = delete;
  ReportTempDir& operator=(const ReportTempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.good()) throw std::runtime_error("cannot write " + path.string());
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

/// Whether `path` starts with the 8-byte PNG signature (and has more than that).
inline bool is_png(const std::filesystem::path& path) {
  const std::string bytes = read_text_file(path);
  static const std::string signature = "\x89PNG\r\n\x1a\n";
  return bytes.size() > signature.size() && bytes.compare(0, signature.size(), signature) == 0;
}

/// Expects `f` to throw idprune::Error whose message contains every phrase of `phrases`.
inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& phrases) {
  try {
    f();
    ADD_FAILURE() << "expected idprune::Error containing '" << (phrases.empty() ? "" : phrases.front()) << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const auto& p : phrases)
      EXPECT_NE(what.find(p), std::string::npos) << "message: " << what << "\nmissing: " << p;
  }
}

}  // namespace idprune::test
