#include "cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "idprune/la/error.hpp"

namespace idprune::cli {

namespace {

// The values of a Boost.Program_options error's %placeholders% live in a protected member; its
// address may be taken through a derived class (never instantiated).
struct ErrorSubstitutions : po::error_with_option_name {
  static auto member() { return &ErrorSubstitutions::m_substitutions; }
};

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

bool parse(const std::string& command, const std::string& usage, const po::options_description& options,
           const std::vector<std::string>& args, po::variables_map& vm) {
  po::options_description common("Common options");
  common.add_options()("help,h", "print this help and exit")(
      "config", po::value<std::string>(), "read options from an INI-style file (key = value); the command line wins");
  po::options_description all;
  all.add(options).add(common);
  try {
    po::store(po::command_line_parser(args).options(all).run(), vm);
    if (vm.count("help")) {
      std::cout << "Usage: idprune " << command << " " << usage << "\n\n" << all << "\n";
      return false;
    }
    if (vm.count("config")) store_config_file(vm["config"].as<std::string>(), command, options, vm);
    po::notify(vm);
  } catch (po::error& e) {
    throw Error(detail::concat(command, ": ", error_message(e), " (see 'idprune ", command, " --help')"));
  }
  return true;
}

void store_config(std::istream& in, const std::string& source, const std::string& command,
                  const po::options_description& options, po::variables_map& vm) {
  try {
    // Unknown keys in a config file are errors (allow_unregistered = false).
    po::store(po::parse_config_file(in, options, false), vm);
  } catch (po::error& e) {
    // Boost's message names neither the file nor the line: add the file.
    throw Error(detail::concat(command, ": config file '", source, "': ", error_message(e), " (see 'idprune ", command,
                               " --help')"));
  }
}

void store_config_file(const std::string& path, const std::string& command, const po::options_description& options,
                       po::variables_map& vm) {
  std::ifstream in(path);
  require(in.good(), command, ": cannot open config file '", path, "'");
  store_config(in, path, command, options, vm);
}

namespace {
// Renders a stored option value; doubles with max_digits10 so that re-reading gives the same bits.
bool render_value(const boost::any& value, std::string& out) {
  std::ostringstream os;
  if (const auto* s = boost::any_cast<std::string>(&value)) {
    os << *s;
  } else if (const auto* d = boost::any_cast<double>(&value)) {
    os << std::setprecision(std::numeric_limits<double>::max_digits10) << *d;
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
  out = os.str();
  return true;
}
}  // namespace

std::string resolved_config(const std::string& command, const po::options_description& options,
                            const po::variables_map& vm) {
  std::ostringstream os;
  os << "# idprune " << command << ": resolved configuration (re-run with: idprune " << command
     << " --config THIS_FILE)\n";
  for (const auto& opt : options.options()) {
    const auto& name = opt->long_name();
    const auto it = vm.find(name);
    if (it == vm.end() || it->second.empty()) continue;
    std::string text;
    if (render_value(it->second.value(), text)) {
      os << name << " = " << text << "\n";
    } else {
      throw Error(detail::concat("resolved_config: option --", name, " has a type that cannot be written"));
    }
  }
  return os.str();
}

void write_resolved_config(const std::string& path, const std::string& command, const po::options_description& options,
                           const po::variables_map& vm) {
  const std::string text = resolved_config(command, options, vm);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    require(out.good(), "cannot write '", tmp, "'");
    out << text;
    out.flush();
    require(out.good(), "write to '", tmp, "' failed");
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  require(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename '", tmp, "' to '", path, "'");
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

}  // namespace idprune::cli
