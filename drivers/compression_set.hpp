#pragma once
// The compression set options shared by the subcommands that compress (sweep, pareto, compress):
// where its rows come from (a sample of the training images, every training image, a calibration
// file, each with its one-pixel shifts) and whether it is held in memory or streamed block by block.
#include <cstdint>
#include <string>
#include <vector>

#include "cli.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/data/row_source.hpp"

namespace idprune::cli {

/// --compression-size, --calibration, --augment, --block-rows, --max-memory.
[[nodiscard]] po::options_description compression_set_options();

struct CompressionSetSpec {
  std::string size;             ///< "all" or a count of images (rows of the calibration file)
  std::string calibration;      ///< a .npy or IDX file of inputs instead of the training images
  bool shifts = false;          ///< each image followed by its 8 one-pixel shifts
  la::index_t block_rows = 0;   ///< rows per streamed block (0: in memory unless max_memory says otherwise)
  std::int64_t max_memory = 0;  ///< bytes per rank the set may take (0: no limit)

  /// The ordinary set: a sample of training images, held in memory.
  [[nodiscard]] bool plain() const { return calibration.empty() && !shifts && block_rows == 0 && max_memory == 0; }
};

[[nodiscard]] CompressionSetSpec compression_set_spec(const po::variables_map& vm, const std::string& command);

/// The number of images of a set of `size` ("all" or N) drawn from `available` ones.
[[nodiscard]] std::int64_t compression_images(const std::string& command, const std::string& size,
                                              std::int64_t available, const std::string& from);

/// The whole compression set (every rank's rows): the training images `sample` of `data_dir`, or
/// the first `images` rows of the calibration file, then their shifts. Not collective.
[[nodiscard]] data::RowSource compression_source(const std::string& command, const CompressionSetSpec& spec,
                                                 const std::string& data_dir, std::vector<std::int64_t> sample,
                                                 std::int64_t images);

/// An engine over this rank's share of `whole`: in memory, or streamed when spec.block_rows > 0 or
/// when the in-memory set (its rows and the original network's activations of every layer) would
/// exceed spec.max_memory, in blocks that fit a quarter of it. Not collective.
[[nodiscard]] compress::CompressionEngine compression_engine(const std::string& command, const dist::Comm& comm,
                                                             const nn::Mlp& model, const data::RowSource& whole,
                                                             const CompressionSetSpec& spec,
                                                             compress::EngineOptions options);

}  // namespace idprune::cli
