#include "idprune/app/options.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"

namespace idprune::app {

namespace fs = std::filesystem;

namespace {

// The values of a Boost.Program_options error's %placeholders% live in a protected member; its
// address may be taken through a derived class (never instantiated).
struct ErrorSubstitutions : po::error_with_option_name {
  static auto member() { return &ErrorSubstitutions::m_substitutions; }
};

/// The name of the hidden option that collects words that are not options (refused below).
constexpr const char* kStray = "idprune-unexpected-argument";
/// The value name that marks path() options (shown in --help as PATH).
constexpr const char* kPathValue = "PATH";

bool is_path_option(const po::option_description& d) { return d.semantic()->name().rfind(kPathValue, 0) == 0; }

template <class T>
bool has_type(const po::option_description& d) {
  return dynamic_cast<const po::typed_value<T>*>(d.semantic().get()) != nullptr;
}

/// Boost converts "-1" to an unsigned option as 2^64 - 1: refuse a minus sign instead.
void refuse_negative_unsigned(const std::vector<po::option>& given, const po::options_description& options) {
  for (const auto& opt : given) {
    const po::option_description* d = options.find_nothrow(opt.string_key, false);
    if (d == nullptr || !(has_type<unsigned long>(*d) || has_type<unsigned>(*d) || has_type<unsigned long long>(*d)))
      continue;
    for (const auto& token : opt.value) {
      const auto first = token.find_first_not_of(" \t");
      if (first != std::string::npos && token[first] == '-')
        throw po::error(detail::concat("--", opt.string_key, "=", token, " (needs a non-negative integer)"));
    }
  }
}

/// Words that are not options: an error, with the likely intent when they follow an option's value
/// (`--grid 0.1 0.2 0.5` meant `--grid 0.1,0.2,0.5`).
void refuse_stray_words(const std::string& command, const po::parsed_options& parsed) {
  const auto& opts = parsed.options;
  for (std::size_t i = 0; i < opts.size(); ++i) {
    if (opts[i].string_key != kStray) continue;
    std::vector<std::string> words;
    for (std::size_t j = i; j < opts.size() && opts[j].string_key == kStray; ++j)
      words.insert(words.end(), opts[j].value.begin(), opts[j].value.end());
    std::string hint = detail::concat(command, " takes options only");
    if (i > 0 && opts[i - 1].string_key != kStray && opts[i - 1].value.size() == 1) {
      std::string list = opts[i - 1].value.front();
      for (const auto& w : words) list += "," + w;
      hint = detail::concat("an option takes one value: write a list as one comma-separated value, --",
                            opts[i - 1].string_key, " ", list);
    }
    throw Error(detail::concat(command, ": unexpected argument '", words.front(), "' (", hint, "; see 'idprune ",
                               command, " --help')"));
  }
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n\f\v");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n\f\v");
  return s.substr(b, e - b + 1);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <class... Args>
void check_syntax(bool ok, Args&&... message) {
  if (!ok) throw po::error(detail::concat(std::forward<Args>(message)...));
}

/// The value of a config line after '=': a double-quoted string with escapes, or the text up to a
/// '#' comment, trimmed. An unterminated quote or text after the closing quote is a po::error.
std::string config_value(const std::string& text) {
  const std::string t = trim(text);
  if (t.empty() || t.front() != '"') return trim(t.substr(0, t.find('#')));
  std::string out;
  std::size_t i = 1;
  for (; i < t.size() && t[i] != '"'; ++i) {
    if (t[i] != '\\') {
      out += t[i];
      continue;
    }
    check_syntax(i + 1 < t.size(), "unterminated quoted value ", t);
    const char c = t[++i];
    switch (c) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'x': {
        const int hi = i + 1 < t.size() ? hex_digit(t[i + 1]) : -1;
        const int lo = i + 2 < t.size() ? hex_digit(t[i + 2]) : -1;
        check_syntax(hi >= 0 && lo >= 0, "\\x needs two hex digits in the quoted value ", t);
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        out += c;  // \" \\ \# and any other escaped character stand for themselves
    }
  }
  check_syntax(i < t.size(), "unterminated quoted value ", t, " (a closing \" is missing)");
  const std::string rest = trim(t.substr(i + 1));
  check_syntax(rest.empty() || rest.front() == '#', "text after the closing quote of ", t.substr(0, i + 1), ": '", rest,
               "'");
  return out;
}

/// A string value as the config reader reads it back: quoted when it would not survive unquoted.
std::string quote_if_needed(const std::string& s) {
  bool plain = !s.empty() && trim(s) == s;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '#' || c == '"' || c == '\\' || u < 0x20 || u == 0x7f) plain = false;
  }
  if (plain) return s;
  std::string q = "\"";
  static constexpr char digits[] = "0123456789abcdef";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      q += '\\';
      q += c;
    } else if (c == '\n') {
      q += "\\n";
    } else if (c == '\t') {
      q += "\\t";
    } else if (c == '\r') {
      q += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      q += "\\x";
      q += digits[u >> 4];
      q += digits[u & 15];
    } else {
      q += c;
    }
  }
  return q + "\"";
}

/// How path() values are written: as given, absolute, or relative to a folder when inside it.
struct PathStyle {
  bool as_given = true;
  std::string folder;  ///< with !as_given: "" means absolute
};

/// A path as written into a config.
std::string render_path(const std::string& value, const PathStyle& style) {
  if (value.empty() || style.as_given) return value;
  std::error_code ec;
  const fs::path abs = fs::absolute(value, ec).lexically_normal();
  if (ec) return value;
  const fs::path base = fs::absolute(style.folder, ec).lexically_normal();
  if (!style.folder.empty() && !ec) {
    const fs::path rel = abs.lexically_relative(base);
    if (!rel.empty() && *rel.begin() != "..") return rel.string();
  }
  std::string s = abs.string();
  if (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string shortest(double v) {
  std::array<char, 64> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return {buf.data(), res.ptr};
}

/// Renders a stored option value (one string per config line); false for an unsupported type.
bool render_value(const boost::any& value, bool path, const PathStyle& style, std::vector<std::string>& out) {
  std::ostringstream os;
  if (const auto* s = boost::any_cast<std::string>(&value)) {
    out.push_back(quote_if_needed(path ? render_path(*s, style) : *s));
    return true;
  }
  if (const auto* list = boost::any_cast<std::vector<std::string>>(&value)) {
    for (const auto& s : *list) out.push_back(quote_if_needed(path ? render_path(s, style) : s));
    return true;
  }
  if (const auto* d = boost::any_cast<double>(&value)) {
    // The shortest text that reads back to the same double.
    os << shortest(*d);
  } else if (const auto* i = boost::any_cast<int>(&value)) {
    os << *i;
  } else if (const auto* l = boost::any_cast<long>(&value)) {
    os << *l;
  } else if (const auto* ll = boost::any_cast<long long>(&value)) {
    os << *ll;
  } else if (const auto* u = boost::any_cast<unsigned>(&value)) {
    os << *u;
  } else if (const auto* ul = boost::any_cast<unsigned long>(&value)) {
    os << *ul;
  } else if (const auto* b = boost::any_cast<bool>(&value)) {
    os << (*b ? "true" : "false");
  } else {
    return false;
  }
  out.push_back(os.str());
  return true;
}

}  // namespace

std::string error_message(po::error& e) {
  // Boost 1.74 fills its message template by replacing each %name% placeholder until none is left,
  // so an option name or value that contains its own placeholder (the config line
  // "%value% = 1") never finishes. Percent signs in the values are shown as %25 instead.
  if (auto* named = dynamic_cast<po::error_with_option_name*>(&e)) {
    const std::map<std::string, std::string> substitutions = named->*ErrorSubstitutions::member();
    for (const auto& [key, value] : substitutions) {
      if (value.find('%') == std::string::npos) continue;
      std::string safe;
      for (const char c : value) safe += c == '%' ? std::string("%25") : std::string(1, c);
      named->set_substitute(key, safe);
    }
  }
  return e.what();
}

std::string printable(std::string_view text) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  const auto escape = [&](unsigned char u) {
    out += "\\x";
    out += digits[u >> 4];
    out += digits[u & 15];
  };
  for (std::size_t i = 0; i < text.size();) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x80) {
      if ((u < 0x20 && u != '\n' && u != '\t') || u == 0x7f)
        escape(u);
      else
        out += static_cast<char>(u);
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates) passes, except the C1
    // controls U+0080..U+009F, which some terminals obey.
    const int len = u >= 0xf0 && u <= 0xf4 ? 4 : u >= 0xe0 ? 3 : u >= 0xc2 && u < 0xe0 ? 2 : 0;
    bool ok = len > 0 && i + static_cast<std::size_t>(len) <= text.size();
    std::uint32_t cp = len == 4 ? u & 0x07u : len == 3 ? u & 0x0fu : u & 0x1fu;
    for (int k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      ok = (c & 0xc0) == 0x80;
      cp = (cp << 6) | (c & 0x3fu);
    }
    ok = ok && !(len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
         !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0x80 && cp <= 0x9f);
    if (!ok) {
      escape(u);
      ++i;
      continue;
    }
    out.append(text.substr(i, static_cast<std::size_t>(len)));
    i += static_cast<std::size_t>(len);
  }
  return out;
}

po::typed_value<double>* real(double default_value) {
  return po::value<double>()->default_value(default_value, shortest(default_value));
}

po::typed_value<std::string>* path() { return po::value<std::string>()->value_name(kPathValue); }

po::typed_value<std::vector<std::string>>* paths() {
  return po::value<std::vector<std::string>>()->multitoken()->value_name(kPathValue);
}

bool parse(const std::string& command, const std::string& usage, const po::options_description& options,
           const std::vector<std::string>& args, po::variables_map& vm, const char* positional) {
  po::options_description common("Common options");
  common.add_options()("help,h", "print this help and exit")(
      "config", po::value<std::string>()->value_name("FILE"),
      "read options from an INI-style file (key = value; relative paths are relative to its folder); the command "
      "line wins");
  po::options_description all;
  all.add(options).add(common);
  po::options_description hidden;
  hidden.add_options()(kStray, po::value<std::vector<std::string>>(), "");
  po::options_description parsing;
  parsing.add(all).add(hidden);
  po::positional_options_description words;
  words.add(positional != nullptr ? positional : kStray, -1);
  try {
    const po::parsed_options parsed = po::command_line_parser(args).options(parsing).positional(words).run();
    for (const auto& opt : parsed.options) {
      if (opt.string_key != "help") continue;
      std::cout << "Usage: idprune " << command << " " << usage << "\n\n" << all << "\n";
      return false;
    }
    refuse_stray_words(command, parsed);
    refuse_negative_unsigned(parsed.options, options);
    po::store(parsed, vm);
    if (vm.count("config")) store_config_file(vm["config"].as<std::string>(), command, options, vm);
    po::notify(vm);
  } catch (po::error& e) {
    throw Error(detail::concat(command, ": ", error_message(e), " (see 'idprune ", command, " --help')"));
  }
  return true;
}

void store_config(std::istream& in, const std::string& source, const std::string& command,
                  const po::options_description& options, po::variables_map& vm, const std::string& base_dir) {
  po::parsed_options parsed(&options);
  std::string prefix;
  std::string line;
  std::size_t line_no = 0;
  const auto where = [&] { return detail::concat(command, ": config file '", source, "' line ", line_no, ": "); };
  try {
    while (std::getline(in, line)) {
      ++line_no;
      const std::string t = trim(line);
      if (t.empty() || t.front() == '#' || t.front() == ';') continue;
      const auto eq = t.find('=');
      const auto hash = t.find('#');
      if (eq == std::string::npos || hash < eq) {
        const std::string s = trim(t.substr(0, hash));
        if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
          prefix = s.substr(1, s.size() - 2);
          if (!prefix.empty() && prefix.back() != '.') prefix += '.';
          continue;
        }
        throw po::invalid_config_file_syntax(s, po::invalid_syntax::unrecognized_line);
      }
      const std::string name = prefix + trim(t.substr(0, eq));
      const po::option_description* d = options.find_nothrow(name, false);
      if (d == nullptr) throw po::unknown_option(name);
      std::string value = config_value(t.substr(eq + 1));
      if (is_path_option(*d) && !base_dir.empty() && !value.empty() && fs::path(value).is_relative())
        value = (fs::path(base_dir) / value).lexically_normal().string();
      po::option opt(name, {value});
      opt.original_tokens = {name, value};
      refuse_negative_unsigned({opt}, options);
      // Converted alone first, so that a value of the wrong type is reported with its line.
      po::parsed_options one(&options);
      one.options.push_back(opt);
      po::variables_map scratch;
      po::store(one, scratch);
      parsed.options.push_back(std::move(opt));
    }
    line_no = 0;
    // All at once: a key given twice is an error, and values already in `vm` win.
    po::store(parsed, vm);
  } catch (po::error& e) {
    // Boost's message names neither the file nor the line: add them.
    const std::string at = line_no > 0 ? where() : detail::concat(command, ": config file '", source, "': ");
    throw Error(detail::concat(at, error_message(e), " (see 'idprune ", command, " --help')"));
  }
}

void store_config_file(const std::string& path, const std::string& command, const po::options_description& options,
                       po::variables_map& vm) {
  std::error_code ec;
  require(!fs::is_directory(path, ec), command, ": config file '", path, "' is a folder (expected an INI file)");
  std::ifstream in(path);
  require(in.good(), command, ": cannot open config file '", path, "': ", std::strerror(errno));
  const fs::path folder = fs::path(path).parent_path();
  store_config(in, path, command, options, vm, folder.empty() ? std::string(".") : folder.string());
}

std::string resolved_config(const std::string& command, const po::options_description& options,
                            const po::variables_map& vm, const std::string& folder,
                            const std::vector<std::pair<std::string, std::string>>& notes) {
  std::ostringstream os;
  os << "# idprune " << command << ": resolved configuration (re-run with: idprune " << command
     << " --config THIS_FILE; relative paths are relative to this file's folder)\n";
  for (const auto& [key, value] : notes) os << "# " << key << ": " << printable(value) << "\n";
  for (const auto& opt : options.options()) {
    const auto& name = opt->long_name();
    const auto it = vm.find(name);
    if (it == vm.end() || it->second.empty()) continue;
    std::vector<std::string> lines;
    const PathStyle style{folder.empty(), folder};
    if (!render_value(it->second.value(), is_path_option(*opt), style, lines))
      throw Error(detail::concat("resolved_config: option --", name, " has a type that cannot be written"));
    for (const auto& text : lines) os << name << " = " << text << "\n";
  }
  return os.str();
}

void write_resolved_config(const std::string& path, const std::string& command, const po::options_description& options,
                           const po::variables_map& vm, const std::vector<std::pair<std::string, std::string>>& notes) {
  const fs::path folder = fs::path(path).parent_path();
  io::write_file_atomically(
      path, resolved_config(command, options, vm, folder.empty() ? std::string(".") : folder.string(), notes));
}

nlohmann::ordered_json settings(const po::options_description& options, const po::variables_map& vm,
                                const std::vector<std::string>& ignored) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& opt : options.options()) {
    const auto& name = opt->long_name();
    if (std::find(ignored.begin(), ignored.end(), name) != ignored.end()) continue;
    const auto it = vm.find(name);
    if (it == vm.end() || it->second.empty()) continue;
    std::vector<std::string> lines;
    if (!render_value(it->second.value(), is_path_option(*opt), PathStyle{false, ""}, lines))
      throw Error(detail::concat("settings: option --", name, " has a type that cannot be written"));
    std::string text;
    for (const auto& l : lines) text += (text.empty() ? "" : "\n") + l;
    out[name] = text;
  }
  return out;
}

std::vector<std::string> split_list(const std::string& text, const std::string& what) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    const auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    require(!item.empty(), what, ": empty item in list '", text, "'");
    items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

std::vector<double> parse_doubles(const std::string& text, const std::string& what) {
  std::vector<double> values;
  for (const auto& item : split_list(text, what)) {
    double v = 0.0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    require(ec == std::errc() && ptr == item.data() + item.size(), what, ": '", item, "' is not a number");
    values.push_back(v);
  }
  return values;
}

std::vector<long> parse_integers(const std::string& text, const std::string& what) {
  std::vector<long> values;
  for (const auto& item : split_list(text, what)) {
    long v = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    require(ec == std::errc() && ptr == item.data() + item.size(), what, ": '", item, "' is not an integer");
    values.push_back(v);
  }
  return values;
}

}  // namespace idprune::app
