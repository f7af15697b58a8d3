#include "idprune/app/inputs.hpp"

#include <algorithm>
#include <array>
#include <future>
#include <numeric>
#include <sstream>

#include "idprune/app/compression_set.hpp"
#include "idprune/app/options.hpp"
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

SweepData load_sweep_data(const dist::Comm& comm, const std::string& command, const nn::Mlp& model,
                          const std::string& model_path, const std::string& data_dir, const std::string& layers_text,
                          const CompressionSetOptions& set, long test_size, int threads) {
  SweepData out;
  dist::inject_fault(comm.rank(), "load-data");
  require(model.num_hidden() >= 1, command, ": the model '", model_path, "' has no hidden layer");
  if (!layers_text.empty() && layers_text != "all") {
    for (long l : parse_integers(layers_text, "--layers")) {
      require(l >= 1 && l <= model.num_hidden(), command, ": --layers entry ", l, " outside [1, ", model.num_hidden(),
              "] (the model's hidden layers)");
      out.layers.push_back(l - 1);
    }
    std::sort(out.layers.begin(), out.layers.end());
    out.layers.erase(std::unique(out.layers.begin(), out.layers.end()), out.layers.end());
  }
  const auto train = data::dataset_info(data_dir, data::Split::train);
  check_model_fits_data(command, model, model_path, train, data_dir);
  out.compression_size = compression_images(
      command, set, set.calibration.empty() ? train.samples : data::calibration_rows(set.calibration).rows(),
      set.calibration.empty() ? "the training images of '" + data_dir + "'" : "'" + set.calibration + "'");
  std::vector<std::int64_t> pool(static_cast<std::size_t>(train.samples));
  std::iota(pool.begin(), pool.end(), std::int64_t{0});
  const auto sample =
      set.calibration.empty() ? data::sample_compression_set(pool, out.compression_size, set.seed) : decltype(pool)();
  const auto mine = dist::block_rows(out.compression_size, comm.size(), comm.rank());
  const auto load_train = [&] {
    return data::load_dataset_rows(data_dir, data::Split::train,
                                   std::span<const std::int64_t>(sample).subspan(static_cast<std::size_t>(mine.begin),
                                                                                 static_cast<std::size_t>(mine.count)))
        .x;
  };
  // With two threads or more, the training rows (the larger file to decompress) load on a second
  // thread while this one hashes the files and loads the test rows. (On an exception here the future's destructor waits
  // for that thread.)
  std::future<la::Matrix> train_rows;
  if (!set.plain()) {
    out.set_rows = compression_source(command, set, data_dir, sample, out.compression_size);
    out.compression_size = out.set_rows.rows();
  } else if (threads >= 2) {
    train_rows = std::async(std::launch::async, load_train);
  } else {
    out.xc = load_train();
  }
  // Hashed while the training rows decompress (the hash reads the compressed files only).
  const std::array<data::Split, 2> splits = {data::Split::train, data::Split::test};
  out.data_sha256 = data_sha256(data_dir, splits);
  const auto test = data::dataset_info(data_dir, data::Split::test);
  out.test_samples = test_size > 0 ? std::min<std::int64_t>(test_size, test.samples) : test.samples;
  const auto tmine = dist::block_rows(out.test_samples, comm.size(), comm.rank());
  auto ds = data::load_dataset(data_dir, data::Split::test, tmine.begin, tmine.count);
  if (train_rows.valid()) out.xc = train_rows.get();
  out.xt = std::move(ds.x);
  out.yt = std::move(ds.y);
  return out;
}

FinetuneData load_finetune_data(const dist::Comm& comm, const std::string& data_dir, long validation_size,
                                std::uint64_t seed) {
  FinetuneData out;
  dist::check_collective(comm, dist::capture_error([&] {
                           const auto info = data::dataset_info(data_dir, data::Split::train);
                           const auto split = data::train_validation_split(info.samples, validation_size, seed);
                           auto d = data::load_dataset_rows(data_dir, data::Split::train, split.train);
                           out.x = std::move(d.x);
                           out.y = std::move(d.y);
                         }));
  return out;
}

std::string SelectionInputs::summary(int threads) const {
  std::ostringstream os;
  os << "validation accuracy " << validation.original_scores().accuracy() << " on " << validation.samples()
     << " held-out training images, test accuracy " << test.original_scores().accuracy() << " on " << test_samples
     << " test images; compression set " << compression_set.global_rows() << "; " << compression_set.comm().size()
     << " rank(s) x " << threads << " thread(s)";
  return os.str();
}

compress::CompressionProvenance SelectionInputs::provenance(std::uint64_t seed) const {
  compress::CompressionProvenance prov;
  prov.original_sha256 = model_sha256;
  prov.data_sha256 = data_sha256;
  prov.compression_size = compression_set.global_rows();
  prov.validation_size = validation.samples();
  prov.seed = seed;
  prov.evaluation_precision = test.options().precision;
  return prov;
}

SelectionInputs load_selection_inputs(const dist::Comm& comm, const std::string& command, const std::string& model_path,
                                      const nn::ModelReadOptions& read, const std::string& data_dir,
                                      long compression_size, long validation_size, long test_size, std::uint64_t seed,
                                      const EvaluationOptions& evaluation,
                                      const std::function<void(const nn::Mlp&)>& check_model) {
  std::string model_sha256;
  nn::Mlp model = load_model_on_every_rank(comm, command, model_path, model_sha256, read);
  SelectionData d;
  dist::check_collective(comm, dist::capture_error([&] {
                           if (check_model) check_model(model);
                           d = load_selection_data(comm, command, model, model_path, data_dir, compression_size,
                                                   validation_size, test_size, seed);
                         }));
  check_same_data(comm, command, data_dir, d.data_sha256);
  compress::ScorerOptions vopts;
  vopts.batch_rows = evaluation.batch_rows;
  vopts.cross_entropy = true;
  vopts.second_layer_shortcut = false;
  vopts.precision = evaluation.precision;
  compress::ScorerOptions topts;
  topts.batch_rows = evaluation.batch_rows;
  topts.precision = evaluation.precision;
  topts.compare_precision = evaluation.compare_precision;
  compress::Scorer validation(model, std::move(d.xv), std::move(d.yv), comm, vopts);
  compress::Scorer test(model, std::move(d.xt), std::move(d.yt), comm, topts);
  return SelectionInputs{std::move(model),
                         std::move(model_sha256),
                         std::move(d.data_sha256),
                         dist::DistMatrix::block_distributed(comm, std::move(d.xc), compression_size),
                         std::move(validation),
                         std::move(test),
                         d.test_samples};
}

}  // namespace idprune::app
