#pragma once
// The command-line machinery of the `idprune` subcommands: option parsing (command line plus an
// INI-style config file, the command line winning), --help, the resolved configuration a run
// writes beside its results (and re-runs from), the settings a resumed run must match, and lists.
#include <boost/program_options.hpp>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idprune::app {

namespace po = boost::program_options;

/// The options a run was started with, as parsed: written beside its results (config.ini) so
/// that it re-runs, and the settings a resumed run must match.
struct CommandLine {
  std::string command;  ///< the subcommand, e.g. "sweep"
  const po::options_description& options;
  const po::variables_map& vm;
};

/// Parses `args` against `options` (plus --help and --config FILE). Returns false when --help was
/// given (the help text has been printed); throws idprune::Error on unknown or malformed options.
/// Words that are not options are refused (with a hint to write a list as one comma-separated
/// value when they follow an option's value), unless `positional` names the option that collects
/// them. A negative value of an unsigned option (--seed=-1) is refused, not wrapped around.
bool parse(const std::string& command, const std::string& usage, const po::options_description& options,
           const std::vector<std::string>& args, po::variables_map& vm, const char* positional = nullptr);

/// e.what(), safe for any option name or value (Boost 1.74's own what() loops forever on one that
/// contains its own %placeholder%, e.g. "%value%").
std::string error_message(po::error& e);

/// `text` safe to print on a terminal: control characters (escape sequences), C1 controls and
/// bytes that are not UTF-8 are shown as \xHH.
[[nodiscard]] std::string printable(std::string_view text);

/// A double option whose default prints as written in --help ("0.05", not 0.050000000000000003).
po::typed_value<double>* real(double default_value);
/// A file or folder option. In a config file a relative value is taken relative to the config
/// file's folder; resolved_config() writes it absolute (or relative to the folder it is written
/// to, when it lies inside it), so a saved config.ini re-runs the same files from anywhere.
po::typed_value<std::string>* path();
/// A list of files or folders (several words, or the option given several times).
po::typed_value<std::vector<std::string>>* paths();

/// Stores the options of an INI-style config read from `in` into `vm`; values already in `vm` win.
/// Syntax: `key = value` lines, `[section]` prefixes, comment lines starting with `#` or `;`. An
/// unquoted value ends at a `#`; a value in double quotes may hold anything, with \" \\ \n \t \r
/// and \xHH escapes. Relative path() values are resolved against `base_dir` (the config file's
/// folder; "" leaves them). Unknown keys, malformed lines and values of the wrong type are
/// idprune::Error naming `command`, `source` (the file) and the line.
void store_config(std::istream& in, const std::string& source, const std::string& command,
                  const po::options_description& options, po::variables_map& vm, const std::string& base_dir = "");
/// store_config() on the file `path`; an unreadable file or a folder is an error naming it.
void store_config_file(const std::string& path, const std::string& command, const po::options_description& options,
                       po::variables_map& vm);

/// The resolved configuration (every option of `options` that has a value, defaults included) in
/// the INI syntax `--config` reads, so `idprune COMMAND --config FILE` re-runs it exactly. Path
/// values are written relative to `folder` when inside it, else absolute ("" : as given). `notes`
/// are added as comment lines ("# KEY: VALUE"), e.g. the content hashes of the inputs.
std::string resolved_config(const std::string& command, const po::options_description& options,
                            const po::variables_map& vm, const std::string& folder = "",
                            const std::vector<std::pair<std::string, std::string>>& notes = {});
/// Writes resolved_config() to `path` (io::write_file_atomically), paths relative to its folder.
void write_resolved_config(const std::string& path, const std::string& command, const po::options_description& options,
                           const po::variables_map& vm,
                           const std::vector<std::pair<std::string, std::string>>& notes = {});
/// The options that decide a run's results, as a JSON object (name: value as resolved_config writes
/// it), without the options in `ignored` (paths replaced by content hashes, thread counts, ...):
/// what a resumed run must match.
[[nodiscard]] nlohmann::ordered_json settings(const po::options_description& options, const po::variables_map& vm,
                                              const std::vector<std::string>& ignored);

/// Splits "a,b,c" into its comma-separated items (empty items are an error).
std::vector<std::string> split_list(const std::string& text, const std::string& what);
std::vector<double> parse_doubles(const std::string& text, const std::string& what);
std::vector<long> parse_integers(const std::string& text, const std::string& what);

}  // namespace idprune::app
