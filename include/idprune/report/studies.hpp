#pragma once
// The result files `idprune report` understands, and how it finds them.
//
// File-name convention (each RESULT_DIR given to the report, and each of its immediate
// sub-folders, is scanned; a folder holding a finished report is skipped):
//   lowrank*.csv     `idprune lowrank --out`: k, cpqr_error, svd_error[, ratio]; the part of the name
//                    after "lowrank" labels the study (lowrank-kernel.csv -> "kernel")
//   bench-cpqr*.json `idprune bench cpqr --json`: CPQR timings over growing m, n and m = n
//   results.csv      `idprune sweep --out DIR`: one row per grid point
//   pareto.csv       `idprune pareto --out DIR`: one row per strategy and budget
//   bench-id*.json   `idprune bench id --json` (one file per rank count, e.g. bench-id-np2.json as
//                    jobs/local/bench-engines.sh writes them): engine timings against ranks
//   bench-compress-scale*.json  `idprune bench compress-scale --json` (one file per rank count, e.g.
//                    bench-compress-scale-np2.json as jobs/local/compress-scale.sh writes them):
//                    one compression point's time and its GEMM lower bound against rows
//   config.ini       the resolved configuration of the run that wrote the folder (provenance)
// Extra columns and keys are ignored (except provenance columns, which are shown).
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "idprune/report/csv.hpp"

namespace idprune::report {

/// A table of text cells, as shown in the report.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

/// Where a study's numbers came from.
struct Provenance {
  std::vector<std::pair<std::string, std::string>> fields;  ///< e.g. git_revision, seed, ranks, threads
  std::filesystem::path config_file;                        ///< config.ini of the run, if any
  std::string config_text;                                  ///< its contents
};

/// CPQR (ID) error against the optimal SVD error, k = 1..kmax.
struct LowRankStudy {
  std::filesystem::path file;
  std::string label;  ///< from the file name: lowrank-kernel.csv -> "kernel" (empty for lowrank.csv)
  std::vector<double> k, cpqr_error, svd_error;
  Table table;
  Provenance provenance;
};

/// One method's timings along one scaling direction.
struct TimingCurve {
  std::string method;        ///< unblocked, blocked, lapack
  std::vector<double> size;  ///< the growing dimension
  std::vector<double> seconds;
  double slope = 0.0;  ///< fitted log-log slope (from the file; NaN when absent)
};

/// Timings along one direction: growing m (n fixed), growing n (m fixed) or m = n.
struct Scaling {
  std::string name;    ///< "m", "n" or "square" (as named in the file)
  std::string xlabel;  ///< axis label
  std::vector<TimingCurve> curves;
};

struct CpqrBenchStudy {
  std::filesystem::path file;
  std::vector<Scaling> scalings;
  Table table;                     ///< one row per sweep and shape: median seconds per method
  Table slopes;                    ///< one row per sweep: fitted slope per method
  std::vector<std::string> notes;  ///< the single-size comparisons (full factorization, early stop)
  Provenance provenance;
};

/// The rows of one sweep inside a results.csv (a folder may hold several: `idprune sweep --resume`
/// adds another strategy's points to the same table).
struct SweepCurve {
  std::string strategy;
  std::string rule;
  std::string layers;                 ///< compressed layers as written ("1", "1;2"); empty: all
  std::vector<std::size_t> rows;      ///< rows of the CSV, in file order
  std::filesystem::path config_file;  ///< DIR/config-STRATEGY-RULE-LAYERS.ini when present
};

/// One `idprune sweep` folder.
struct SweepStudy {
  std::filesystem::path dir;
  std::filesystem::path file;  ///< DIR/results.csv
  CsvTable csv;
  std::vector<SweepCurve> curves;
  Provenance provenance;  ///< provenance columns; config.ini (the last run in the folder)
};

/// One `idprune pareto` folder.
struct ParetoStudy {
  std::filesystem::path dir;
  std::filesystem::path file;  ///< DIR/pareto.csv
  CsvTable csv;
  Provenance provenance;
};

/// One engine timing of `idprune bench id` at a number of MPI ranks.
struct EngineTiming {
  std::string engine;  ///< tsqr, gram, ..., or the single-process dgeqp3 reference
  std::string matrix;  ///< the test matrix: its kind and size, e.g. "activation 60000 x 1024"
  double ranks = 1;
  double seconds = 0.0;  ///< median seconds (of the slowest rank)
};

/// All bench-id files together: one curve per engine over the rank counts.
struct IdBenchStudy {
  std::vector<std::filesystem::path> files;
  std::vector<EngineTiming> timings;
  Table table;  ///< ranks, matrix, engine, seconds, rank found, ID error, error ratio, bytes per rank
  Provenance provenance;
};

/// One compression-set size of `idprune bench compress-scale`.
struct CompressScaleRun {
  double rows = 0;  ///< rows of the compression set (images, times 9 with --augment shifts)
  bool streamed = false;
  double activation_seconds = 0.0, factorization_seconds = 0.0;
  double seconds = 0.0;        ///< the whole point (the slowest rank)
  double gflop = 0.0;          ///< the point's floating-point work
  double bound_seconds = 0.0;  ///< gflop / (ranks x the DGEMM rate measured in the same run)
  double ratio = 0.0;          ///< seconds / bound_seconds
  double peak_rss_bytes = 0;   ///< of the largest rank
};

/// One bench-compress-scale file: one rank and thread count, growing rows.
struct CompressScaleCurve {
  std::filesystem::path file;
  double ranks = 1, threads = 1;
  double gemm_gflops_per_rank = 0.0;
  std::vector<CompressScaleRun> runs;
};

/// All bench-compress-scale files together.
struct CompressScaleStudy {
  std::vector<std::filesystem::path> files;
  std::vector<CompressScaleCurve> curves;  ///< in the order read
  Provenance provenance;
};

/// An accuracy quoted from a publication, drawn beside idprune's own results (never measured here).
/// Read from a CSV given to the report (`idprune report --published FILE`), one row per point:
///   method     the published method, e.g. "neuron merging"
///   source     the full citation (authors, title, venue, year, table)
///   axis       what x measures: params_fraction (parameters kept / original),
///              hidden_kept_fraction (hidden neurons kept / original) or hidden_pruned_fraction
///              (1 - hidden_kept_fraction; stored converted to hidden_kept_fraction)
///   x          the value on that axis, in [0, 1]
///   accuracy   test accuracy in percent, [0, 100]
/// and optionally cite (short citation for legends; default: source), model, dataset,
/// original_accuracy (the publication's unpruned model, percent), finetuned (yes/no; default no).
struct PublishedPoint {
  std::string method, source, cite, model, dataset;
  std::string axis;  ///< params_fraction or hidden_kept_fraction
  double x = 0.0;
  double accuracy = 0.0;           ///< percent
  double original_accuracy = 0.0;  ///< percent; NaN when not given
  bool finetuned = false;
  std::filesystem::path file;
};

/// Everything found in the result folders.
struct Results {
  std::vector<std::filesystem::path> scanned;  ///< folders scanned
  std::vector<std::filesystem::path> files;    ///< files read
  std::vector<LowRankStudy> lowrank;
  std::vector<CpqrBenchStudy> cpqr_bench;
  std::vector<SweepStudy> sweeps;
  std::vector<ParetoStudy> pareto;
  IdBenchStudy id_bench;                  ///< all bench-id files together (one curve per engine over ranks)
  CompressScaleStudy compress_scale;      ///< all bench-compress-scale files together
  std::vector<PublishedPoint> published;  ///< from the files given with --published (not scanned)
  std::vector<std::filesystem::path> published_files;
};

/// Name of the marker file a finished report folder holds (such folders are not scanned).
inline constexpr const char* report_marker = ".idprune-report";

/// Scans `dirs` (and their immediate sub-folders) for the files above and reads them. Throws
/// idprune::Error naming the file (and line) for a malformed file, or when a folder does not exist.
Results scan_results(const std::vector<std::filesystem::path>& dirs);

LowRankStudy read_lowrank(const std::filesystem::path& file);
CpqrBenchStudy read_bench_cpqr(const std::filesystem::path& file);
SweepStudy read_sweep(const std::filesystem::path& dir);
ParetoStudy read_pareto(const std::filesystem::path& dir);
/// Adds the timings of one bench-id file to `study`.
void read_bench_id(const std::filesystem::path& file, IdBenchStudy& study);

/// Adds the runs of one bench-compress-scale file to `study`.
void read_bench_compress_scale(const std::filesystem::path& file, CompressScaleStudy& study);
/// The points of one published-results CSV (format at PublishedPoint). Throws idprune::Error
/// naming file, line and column for a missing column, a malformed number, an unknown axis, a value
/// out of range or a file without points.
std::vector<PublishedPoint> read_published(const std::filesystem::path& file);

/// Key = value pairs of an INI file (comments and [sections] skipped), in file order.
std::vector<std::pair<std::string, std::string>> read_ini(const std::filesystem::path& file);

/// Least-squares slope of log(y) against log(x) over the points with x, y > 0 (NaN if < 2).
double loglog_slope(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace idprune::report
