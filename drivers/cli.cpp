#include "cli.hpp"

#include <charconv>
#include <fstream>
#include <iostream>

#include "idprune/la/error.hpp"

namespace idprune::cli {

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
    if (vm.count("config")) {
      const auto path = vm["config"].as<std::string>();
      std::ifstream in(path);
      require(in.good(), "cannot open config file '", path, "'");
      // Unknown keys in a config file are errors (allow_unregistered = false).
      po::store(po::parse_config_file(in, options, false), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(detail::concat(command, ": ", e.what(), " (see 'idprune ", command, " --help')"));
  }
  return true;
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
