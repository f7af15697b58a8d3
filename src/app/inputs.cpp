#include "idprune/app/inputs.hpp"

#include <algorithm>
#include <array>

#include "idprune/data/sampling.hpp"
#include "idprune/dist/fault.hpp"
#include "idprune/io/sha256.hpp"
#include "idprune/la/error.hpp"
#include "idprune/nn/model_io.hpp"

namespace idprune::app {

// ---- Inputs on every rank -----------------------------------------------------------------------

nn::Mlp load_model_on_every_rank(const dist::Comm& comm, const std::string& command, const std::string& path,
                                 std::string& sha256, const nn::ModelReadOptions& read) {
  nn::Mlp model;
  dist::check_collective(comm, dist::capture_error([&] {
                           dist::inject_fault(comm.rank(), "load-model");
                           model = nn::load_model(path, read);
                           sha256 = io::sha256_path(path);
                         }));
  std::string widths;
  for (const auto w : model.widths()) widths += (widths.empty() ? "" : "-") + std::to_string(w);
  // Another model on one rank would mean collectives of other sizes (a hang or an MPI error) or,
  // with the same shapes, results that silently mix two models.
  dist::check_same(
      comm, io::digest_prefix(sha256),
      detail::concat(command, ": the model '", path, "' (widths ", widths, ", sha256 ", sha256.substr(0, 12),
                     "...) differs from rank 0's; every rank must read the same model"));
  return model;
}

std::string data_sha256(const std::string& dir, std::span<const data::Split> splits) {
  std::vector<std::string> files;
  for (const auto split : splits) {
    const auto info = data::dataset_info(dir, split);
    files.insert(files.end(), info.files.begin(), info.files.end());
  }
  return io::sha256_files(files);
}

void check_same_data(const dist::Comm& comm, const std::string& command, const std::string& dir,
                     const std::string& sha256) {
  dist::check_same(comm, io::digest_prefix(sha256),
                   detail::concat(command, ": the data '", dir, "' (sha256 ", sha256.substr(0, 12),
                                  "...) differs from rank 0's; every rank must read the same data"));
}

void check_model_fits_data(const std::string& command, const nn::Mlp& model, const std::string& model_path,
                           const data::DatasetInfo& info, const std::string& dir) {
  require(model.input_dim() == info.features, command, ": the model '", model_path, "' takes ", model.input_dim(),
          " inputs, the samples of '", dir, "' have ", info.features, " features");
  require(model.num_classes() == info.classes, command, ": the model '", model_path, "' has ", model.num_classes(),
          " classes, the data '", dir, "' has ", info.classes);
}

SelectionData load_selection_data(const dist::Comm& comm, const std::string& command, const nn::Mlp& model,
                                  const std::string& model_path, const std::string& data_dir, long compression_size,
                                  long validation_size, long test_size, std::uint64_t seed) {
  SelectionData out;
  dist::inject_fault(comm.rank(), "load-data");
  require(model.num_hidden() >= 1, command, ": the model '", model_path, "' has no hidden layer");
  const auto train = data::dataset_info(data_dir, data::Split::train);
  check_model_fits_data(command, model, model_path, train, data_dir);
  const std::array<data::Split, 2> splits = {data::Split::train, data::Split::test};
  out.data_sha256 = data_sha256(data_dir, splits);
  require(validation_size + compression_size <= train.samples, command, ": --validation-size=", validation_size,
          " plus --compression-size=", compression_size, " exceed the ", train.samples, " training images of '",
          data_dir, "'");
  const auto split = data::train_validation_split(train.samples, validation_size, seed);
  const auto sample = data::sample_compression_set(split.train, compression_size, seed);
  const auto part = [&](const std::vector<std::int64_t>& rows) {
    const auto mine = dist::block_rows(static_cast<la::index_t>(rows.size()), comm.size(), comm.rank());
    return std::span<const std::int64_t>(rows).subspan(static_cast<std::size_t>(mine.begin),
                                                       static_cast<std::size_t>(mine.count));
  };
  out.xc = data::load_dataset_rows(data_dir, data::Split::train, part(sample)).x;
  auto val = data::load_dataset_rows(data_dir, data::Split::train, part(split.validation));
  out.xv = std::move(val.x);
  out.yv = std::move(val.y);
  const auto test = data::dataset_info(data_dir, data::Split::test);
  out.test_samples = test_size > 0 ? std::min<std::int64_t>(test_size, test.samples) : test.samples;
  const auto tmine = dist::block_rows(out.test_samples, comm.size(), comm.rank());
  auto ds = data::load_dataset(data_dir, data::Split::test, tmine.begin, tmine.count);
  out.xt = std::move(ds.x);
  out.yt = std::move(ds.y);
  return out;
}

}  // namespace idprune::app
