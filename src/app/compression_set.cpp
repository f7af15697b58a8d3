#include "idprune/app/compression_set.hpp"

#include <algorithm>
#include <utility>

#include "idprune/dist/dist_matrix.hpp"
#include "idprune/la/error.hpp"

namespace idprune::app {

std::int64_t compression_images(const std::string& command, const CompressionSetOptions& set, std::int64_t available,
                                const std::string& from) {
  if (set.all) return available;
  require(set.size <= available, command, ": --compression-size=", set.size, " exceeds the ", available, " rows of ",
          from, " (--compression-size all takes every one)");
  return set.size;
}

data::RowSource compression_source(const std::string& command, const CompressionSetOptions& spec,
                                   const std::string& data_dir, std::vector<std::int64_t> sample, std::int64_t images) {
  data::RowSource s;
  if (spec.calibration.empty()) {
    s = data::dataset_rows(data_dir, data::Split::train, std::move(sample));
  } else {
    s = data::calibration_rows(spec.calibration);
    require(images <= s.rows(), command, ": --compression-size=", images, " exceeds the ", s.rows(), " rows of '",
            spec.calibration, "'");
    s = s.row_range(0, images);
  }
  return spec.shift_radius > 0 ? data::shift_augmented(s, spec.shift_radius) : s;
}

compress::CompressionEngine compression_engine(const std::string& command, const dist::Comm& comm, const nn::Mlp& model,
                                               const data::RowSource& whole, const CompressionSetOptions& spec,
                                               compress::EngineOptions options) {
  const la::index_t rows = whole.rows();
  require(rows >= 1, command, ": the compression set is empty");
  const auto share = dist::block_rows(rows, comm.size(), comm.rank());
  const data::RowSource mine = data::rank_rows(whole, comm.rank(), comm.size());
  // In memory a rank holds its rows and the original network's activations of every layer.
  la::index_t widths = model.input_dim();
  la::index_t widest = model.input_dim();
  for (la::index_t l = 0; l < model.num_hidden(); ++l) {
    widths += model.hidden(l).d_out();
    widest = std::max(widest, model.hidden(l).d_out());
  }
  const double in_memory = 8.0 * static_cast<double>(share.count) * static_cast<double>(widths);
  la::index_t block = spec.block_rows;
  if (block == 0 && spec.max_memory > 0 && in_memory > static_cast<double>(spec.max_memory)) {
    // A block's rows and two activations of the widest layer in a quarter of the budget (the rest:
    // the R factors, the test set, the models of a wave).
    const double per_row = 8.0 * static_cast<double>(model.input_dim() + 2 * widest);
    block = std::max<la::index_t>(64, static_cast<la::index_t>(static_cast<double>(spec.max_memory) / 4.0 / per_row));
  }
  if (block == 0)
    return {model, dist::DistMatrix::block_distributed(comm, data::read_all(mine), rows), std::move(options)};
  // Under a budget, half of it may keep the inputs of the layer being factored, so that the next
  // pass starts from them instead of the set (StreamedRows::cache_bytes; the same bits).
  const auto cache = static_cast<std::size_t>(spec.max_memory > 0 ? spec.max_memory / 2 : 0);
  return {model, comm, compress::StreamedRows{mine, share.begin, rows, block, cache}, std::move(options)};
}

}  // namespace idprune::app
