#pragma once
// Shared plumbing of the `idprune` subcommands: option parsing (command line plus an INI-style
// config file, the command line winning), --help, and the table of subcommands.
#include <boost/program_options.hpp>
#include <istream>
#include <string>
#include <vector>

namespace idprune::cli {

namespace po = boost::program_options;

/// A subcommand: `idprune NAME ...` calls run(args) with the arguments after NAME.
struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

/// Every subcommand, in the order `idprune --help` lists them (defined in main.cpp).
const std::vector<Subcommand>& subcommands();

/// Parses `args` against `options` (plus --help and --config FILE). Returns false when --help was
/// given (the help text has been printed); throws idprune::Error on unknown or malformed options.
bool parse(const std::string& command, const std::string& usage, const po::options_description& options,
           const std::vector<std::string>& args, po::variables_map& vm);

/// e.what(), safe for any option name or value (Boost 1.74's own what() loops forever on one that
/// contains its own %placeholder%, e.g. "%value%").
std::string error_message(po::error& e);

/// Stores the options of an INI-style config (`key = value` lines, `[section]` prefixes, `#`
/// comments) read from `in` into `vm`; values already in `vm` win. Unknown keys, malformed lines and
/// values of the wrong type are idprune::Error naming `command` and `source` (the file).
void store_config(std::istream& in, const std::string& source, const std::string& command,
                  const po::options_description& options, po::variables_map& vm);
/// store_config() on the file `path`; an unreadable file is an error naming it.
void store_config_file(const std::string& path, const std::string& command, const po::options_description& options,
                       po::variables_map& vm);

/// The resolved configuration (every option of `options` that has a value, defaults included) in
/// the INI syntax `--config` reads, so `idprune COMMAND --config FILE` re-runs it exactly.
std::string resolved_config(const std::string& command, const po::options_description& options,
                            const po::variables_map& vm);
/// Writes resolved_config() to `path` atomically (temporary file, fsync, rename).
void write_resolved_config(const std::string& path, const std::string& command, const po::options_description& options,
                           const po::variables_map& vm);

/// Splits "a,b,c" into its comma-separated items (empty items are an error).
std::vector<std::string> split_list(const std::string& text, const std::string& what);
std::vector<double> parse_doubles(const std::string& text, const std::string& what);
std::vector<long> parse_integers(const std::string& text, const std::string& what);

}  // namespace idprune::cli
