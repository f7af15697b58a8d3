#pragma once
// The compression set of `sweep` (CompressionSetOptions with streamable settings): where its rows
// come from (a sample of the training images, every training image, a calibration file, each with
// its one-pixel shifts) and whether it is held in memory or streamed block by block.
#include <cstdint>
#include <string>
#include <vector>

#include "idprune/app/option_groups.hpp"
#include "idprune/compress/engine.hpp"
#include "idprune/data/row_source.hpp"
#include "idprune/dist/comm.hpp"
#include "idprune/nn/mlp.hpp"

namespace idprune::app {

/// The number of images of `set` (set.all, or set.size) drawn from `available` ones; refuses more
/// than `available`, naming `from`.
[[nodiscard]] std::int64_t compression_images(const std::string& command, const CompressionSetOptions& set,
                                              std::int64_t available, const std::string& from);

/// The whole compression set (every rank's rows): the training images `sample` of `data_dir`, or
/// the first `images` rows of the calibration file, then their shifts. Not collective.
[[nodiscard]] data::RowSource compression_source(const std::string& command, const CompressionSetOptions& set,
                                                 const std::string& data_dir, std::vector<std::int64_t> sample,
                                                 std::int64_t images);

/// An engine over this rank's share of `whole`: in memory, or streamed when set.block_rows > 0 or
/// when the in-memory set (its rows and the original network's activations of every layer) would
/// exceed set.max_memory, in blocks that fit a quarter of it; under max_memory, half of it may keep
/// the inputs of the layer being factored (StreamedRows::cache_bytes). Not collective.
[[nodiscard]] compress::CompressionEngine compression_engine(const std::string& command, const dist::Comm& comm,
                                                             const nn::Mlp& model, const data::RowSource& whole,
                                                             const CompressionSetOptions& set,
                                                             compress::EngineOptions options);

}  // namespace idprune::app
