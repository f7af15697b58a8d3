#pragma once
// Shared plumbing of the `idprune` subcommands: option parsing (command line plus an INI-style
// config file, the command line winning), --help, the table of subcommands, the stop signals, and
// the loading of a run's model and data on every MPI rank with collective checks.
#include <boost/program_options.hpp>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "idprune/data/dataset.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/nn/mlp.hpp"
#include "idprune/nn/model_io.hpp"

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

/// Stops a long run cleanly: SIGINT, SIGTERM and SIGUSR1 (the one mpirun forwards without killing
/// the ranks; SLURM sends it with --signal=B:USR1@SECONDS) are caught for the object's lifetime.
/// The first sets requested() and, where `announce` (rank 0), prints at once "COMMAND: stopping
/// after the UNIT in flight (Ctrl-C again to stop now)". A second ends the process at once with
/// exit status 128 + that signal (130 for SIGINT, 143 for SIGTERM): whatever is on disk then is
/// what a resume continues from (rows are appended whole and fsync'd; a cut last line is dropped).
class StopSignals {
 public:
  StopSignals(const std::string& command, const std::string& unit, bool announce);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  [[nodiscard]] bool requested() const;
  /// 128 + the first signal caught (0 when none was).
  [[nodiscard]] int exit_code() const;
};

/// Thrown on every rank by throw_if_stop_requested: the run stops between two units of work.
struct StopRequested : std::exception {
  [[nodiscard]] const char* what() const noexcept override { return "stopped by a signal"; }
};
/// Collective (one allreduce): throws StopRequested on every rank when a stop was requested on any.
void throw_if_stop_requested(const dist::Comm& comm, const StopSignals& signals);

/// Loads the model at `path` on every rank. A failure on any rank (missing, corrupt, a fault
/// injected at "load-model") ends every rank with one message naming that rank; then every rank
/// must have read the same content (SHA-256 of the file or folder, returned), else every rank
/// fails with "COMMAND: the model 'PATH' (widths ...) differs from rank 0's".
[[nodiscard]] nn::Mlp load_model_on_every_rank(const dist::Comm& comm, const std::string& command,
                                               const std::string& path, std::string& sha256,
                                               const nn::ModelReadOptions& read = {});
/// SHA-256 over the data files of `splits` in `dir` (their contents, in order, so the same files
/// elsewhere hash the same).
[[nodiscard]] std::string data_sha256(const std::string& dir, std::span<const data::Split> splits);
/// Collective check that `sha256` (this rank's data_sha256) is rank 0's, else every rank fails
/// with "COMMAND: the data 'DIR' differs from rank 0's".
void check_same_data(const dist::Comm& comm, const std::string& command, const std::string& dir,
                     const std::string& sha256);
/// Refuses data whose samples the model cannot take: features (input width) and classes.
void check_model_fits_data(const std::string& command, const nn::Mlp& model, const std::string& model_path,
                           const data::DatasetInfo& info, const std::string& dir);

/// This rank's rows of the data a validation-selected study reads (`pareto`, `compress`): the
/// compression set and the validation split drawn from the training images with `seed` (disjoint),
/// and the first `test_size` test images (0: all). Not collective: call inside capture_error.
struct SelectionData {
  la::Matrix xc;
  la::Matrix xv;
  std::vector<int> yv;
  la::Matrix xt;
  std::vector<int> yt;
  std::int64_t test_samples = 0;
  std::string data_sha256;  ///< content of both splits' files
};
[[nodiscard]] SelectionData load_selection_data(const dist::Comm& comm, const std::string& command,
                                                const nn::Mlp& model, const std::string& model_path,
                                                const std::string& data_dir, long compression_size,
                                                long validation_size, long test_size, std::uint64_t seed);

}  // namespace idprune::cli
