#include <algorithm>
#include <string>

#include "idprune/io/file.hpp"
#include "idprune/nn/evaluate.hpp"

namespace idprune::nn {

SplitPredictions predict_split(const Mlp& model, const std::string& dir, data::Split split, const dist::Comm& comm,
                               index_t batch_rows, Precision precision) {
  // Each rank's block: labels then predictions, padded to the largest block (blocks differ by at
  // most one row) so that one allgather of equal sizes collects them.
  index_t samples = 0;
  std::vector<int> local;
  dist::check_collective(comm, dist::capture_error([&] {
                           const auto info = data::dataset_info(dir, split);
                           samples = info.samples;
                           const auto rows = dist::block_rows(info.samples, comm.size(), comm.rank());
                           if (rows.count == 0) return;
                           const data::Dataset block = data::load_dataset(dir, split, rows.begin, rows.count);
                           require(block.samples() == rows.count, "predict_split: ", dir, " gave ", block.samples(),
                                   " rows for the block [", rows.begin, ", ", rows.begin + rows.count, ")");
                           require(block.x.cols() == model.input_dim(), "predict_split: ", dir, " has ", block.x.cols(),
                                   " features, the model takes ", model.input_dim());
                           local = block.y;
                           const auto p = precision == Precision::f32
                                              ? predict(model, block.x, Precision::f32, ForwardOptions{batch_rows})
                                              : model.predict(block.x, batch_rows);
                           local.insert(local.end(), p.begin(), p.end());
                         }));
  const index_t largest = dist::block_rows(samples, comm.size(), 0).count;
  std::vector<int> padded(static_cast<std::size_t>(2 * largest), -1);
  const index_t mine = static_cast<index_t>(local.size()) / 2;
  std::copy(local.begin(), local.begin() + mine, padded.begin());
  std::copy(local.begin() + mine, local.end(), padded.begin() + largest);
  const std::vector<int> all = comm.allgather(std::span<const int>(padded));
  SplitPredictions out;
  for (int r = 0; r < comm.size(); ++r) {
    const index_t count = dist::block_rows(samples, comm.size(), r).count;
    const auto base = all.begin() + static_cast<std::ptrdiff_t>(2 * largest * r);
    out.labels.insert(out.labels.end(), base, base + count);
    out.predictions.insert(out.predictions.end(), base + largest, base + largest + count);
  }
  return out;
}

void write_predictions_csv(const std::string& path, const SplitPredictions& p) {
  require(p.labels.size() == p.predictions.size(), "write_predictions_csv: ", p.labels.size(), " labels but ",
          p.predictions.size(), " predictions");
  std::string text = "index,label,prediction\n";
  for (std::size_t i = 0; i < p.labels.size(); ++i)
    text += std::to_string(i) + "," + std::to_string(p.labels[i]) + "," + std::to_string(p.predictions[i]) + "\n";
  io::write_file_atomically(path, text);
}

}  // namespace idprune::nn
