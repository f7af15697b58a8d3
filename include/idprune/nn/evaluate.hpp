#pragma once
// Accuracy of a model on a labelled split, on one process or with the rows split across MPI ranks.
//
// Distributed evaluation follows the project's row ownership: rank r of P reads only its contiguous
// block dist::block_rows(n, P, r) of the split, classifies it locally (GEMMs), and the per-class
// integer counts are summed with one allreduce. Integer sums are exact, and each sample's
// prediction depends only on its own row, so the counts are identical for any number of ranks.
#include <string>
#include <vector>

#include "idprune/data/dataset.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/nn/inference.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::nn {

/// Per-class correct counts of `model` on (x, labels), labels in [0, classes), its forward passes in
/// `precision` (f32: nn::predict's float32 model).
[[nodiscard]] ClassCounts evaluate(const Mlp& model, la::ConstMatrixView x, std::span<const int> labels, int classes,
                                   index_t batch_rows = 2048, Precision precision = Precision::f64);

/// The sum of every rank's counts, on every rank (one MPI_Allreduce of 2 * classes int64 values).
/// Every rank must pass counts for the same number of classes.
[[nodiscard]] ClassCounts allreduce_counts(const dist::Comm& comm, const ClassCounts& local);

/// Counts of `model` on `split` of the data folder `dir`, each rank reading and classifying only its
/// block of rows. Errors on any rank (unreadable data, shape mismatch) are raised on every rank as
/// dist::CollectiveError.
[[nodiscard]] ClassCounts evaluate_split(const Mlp& model, const std::string& dir, data::Split split,
                                         const dist::Comm& comm, index_t batch_rows = 2048,
                                         Precision precision = Precision::f64);

/// Every sample's label and predicted class, in the split's order.
struct SplitPredictions {
  std::vector<int> labels;
  std::vector<int> predictions;
};

/// The predictions of `model` on `split` of `dir`, on every rank: each rank reads and classifies its
/// block of rows, and the blocks are gathered (one MPI_Allgather of the largest block's size, padded).
[[nodiscard]] SplitPredictions predict_split(const Mlp& model, const std::string& dir, data::Split split,
                                             const dist::Comm& comm, index_t batch_rows = 2048,
                                             Precision precision = Precision::f64);

/// Writes `p` as CSV "index,label,prediction" (one row per sample, 0-based index), atomically.
void write_predictions_csv(const std::string& path, const SplitPredictions& p);

}  // namespace idprune::nn
