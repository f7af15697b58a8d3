#pragma once
// A run's model and data on every MPI rank: loaded with collective checks (a failure on one rank
// ends every rank with one message; every rank must read the same contents), and this rank's rows
// of the splits a study reads.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "idprune/app/option_groups.hpp"
#include "idprune/compress/export.hpp"
#include "idprune/compress/scorer.hpp"
#include "idprune/data/dataset.hpp"
#include "idprune/data/row_source.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/dist/dist_matrix.hpp"
#include "idprune/la/matrix.hpp"
#include "idprune/nn/mlp.hpp"
#include "idprune/nn/model_io.hpp"

namespace idprune::app {

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

/// This rank's rows of the data a sweep reads: the compression set (`set.size` images drawn with
/// `set.seed` from all training images, or the set's other sources) and the first `test_size` test
/// images (0: all), and the 0-based hidden layers `layers_text` names ("all": every layer, as an
/// empty list; else 1-based, comma-separated, sorted without repeats). A plain set (set.plain())
/// is read into `xc`, with `threads` >= 2 on a second thread; any other is described by
/// `set_rows` (every rank's rows, read by compression_engine). Not collective: call inside
/// capture_error.
struct SweepData {
  la::Matrix xc;
  data::RowSource set_rows;
  std::int64_t compression_size = 0;  ///< rows of the whole set (shifts included)
  la::Matrix xt;
  std::vector<int> yt;
  std::int64_t test_samples = 0;
  std::vector<la::index_t> layers;
  std::string data_sha256;  ///< content of both splits' files
};
[[nodiscard]] SweepData load_sweep_data(const dist::Comm& comm, const std::string& command, const nn::Mlp& model,
                                        const std::string& model_path, const std::string& data_dir,
                                        const std::string& layers_text, const CompressionSetOptions& set,
                                        long test_size, int threads);

/// The rows fine-tuning reads: every training image outside the validation split drawn with `seed`,
/// the same on every rank. Collective.
struct FinetuneData {
  la::Matrix x;
  std::vector<int> y;
};
[[nodiscard]] FinetuneData load_finetune_data(const dist::Comm& comm, const std::string& data_dir, long validation_size,
                                              std::uint64_t seed);

/// Everything a validation-selected study (`pareto`, `compress`) reads, on every rank: the model,
/// the compression set, and the scorers of the validation split (selection reads its loss, through
/// the layers' own products: the shared second-layer shortcut agrees only to rounding, which could
/// tip a search's near ties) and of the test rows.
struct SelectionInputs {
  nn::Mlp model;
  std::string model_sha256;
  std::string data_sha256;
  dist::DistMatrix compression_set;
  compress::Scorer validation;
  compress::Scorer test;
  std::int64_t test_samples = 0;
  /// "validation accuracy A on N held-out training images, test accuracy B on M test images;
  /// compression set C; R rank(s) x T thread(s)": what a study announces it starts from.
  [[nodiscard]] std::string summary(int threads) const;
  /// What a written model records of where it came from (the compression set drawn with `seed`).
  [[nodiscard]] compress::CompressionProvenance provenance(std::uint64_t seed) const;
};
/// Collective: load_model_on_every_rank, then (with the collective checks) `check_model` (may be
/// empty) and load_selection_data, check_same_data, and the scorers (batch rows and precision from
/// `evaluation`).
[[nodiscard]] SelectionInputs load_selection_inputs(const dist::Comm& comm, const std::string& command,
                                                    const std::string& model_path, const nn::ModelReadOptions& read,
                                                    const std::string& data_dir, long compression_size,
                                                    long validation_size, long test_size, std::uint64_t seed,
                                                    const EvaluationOptions& evaluation,
                                                    const std::function<void(const nn::Mlp&)>& check_model = {});

}  // namespace idprune::app
