#include "idprune/data/dataset.hpp"

#include <algorithm>
#include <array>
#include <filesystem>

#include "idprune/data/cifar.hpp"
#include "idprune/la/error.hpp"

namespace idprune::data {

namespace {

namespace fs = std::filesystem;

constexpr int dataset_classes = 10;

/// The files one split is read from.
struct Source {
  Format format = Format::idx;
  std::string images;                // IDX images file
  std::string labels;                // IDX labels file
  std::vector<std::string> batches;  // CIFAR-10 batch files, in order
};

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

/// `stem` or `stem.gz` in dir, whichever exists (the compressed one preferred); empty if neither.
std::string idx_file(const fs::path& dir, const std::string& stem) {
  if (is_file(dir / (stem + ".gz"))) return (dir / (stem + ".gz")).string();
  if (is_file(dir / stem)) return (dir / stem).string();
  return {};
}

Source locate(const std::string& dir, Split split) {
  const fs::path root(dir);
  std::error_code ec;
  require(fs::is_directory(root, ec), "data folder ", dir, ": not found or not a folder");
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string images_stem = prefix + "-images-idx3-ubyte";
  const std::string labels_stem = prefix + "-labels-idx1-ubyte";
  Source s;
  s.images = idx_file(root, images_stem);
  s.labels = idx_file(root, labels_stem);
  if (!s.images.empty() || !s.labels.empty()) {
    require(!s.images.empty(), "data folder ", dir, ": has ", s.labels, " but no ", images_stem, "[.gz]");
    require(!s.labels.empty(), "data folder ", dir, ": has ", s.images, " but no ", labels_stem, "[.gz]");
    s.format = Format::idx;
    return s;
  }
  for (const fs::path& base : {root, root / "cifar-10-batches-bin"}) {
    if (!is_file(base / "data_batch_1.bin") && !is_file(base / "test_batch.bin")) continue;
    s.format = Format::cifar10;
    if (split == Split::test) {
      require(is_file(base / "test_batch.bin"), "data folder ", dir, ": CIFAR-10 batches without ",
              (base / "test_batch.bin").string());
      s.batches.push_back((base / "test_batch.bin").string());
    } else {
      for (int k = 1; is_file(base / ("data_batch_" + std::to_string(k) + ".bin")); ++k)
        s.batches.push_back((base / ("data_batch_" + std::to_string(k) + ".bin")).string());
      require(!s.batches.empty(), "data folder ", dir, ": CIFAR-10 batches without ",
              (base / "data_batch_1.bin").string());
    }
    return s;
  }
  throw Error(detail::concat("data folder ", dir, ": no ", to_string(split), " data: looked for ", images_stem,
                             "[.gz] and ", labels_stem,
                             "[.gz] (IDX, e.g. Fashion-MNIST from "
                             "jobs/fetch-fashion-mnist.sh), and for CIFAR-10 binary batches (data_batch_1.bin, "
                             "test_batch.bin, also under cifar-10-batches-bin/)"));
}

void check_labels(const std::string& file, std::span<const std::int64_t> rows, std::int64_t begin,
                  std::span<const std::uint8_t> labels) {
  for (std::size_t p = 0; p < labels.size(); ++p) {
    if (labels[p] < dataset_classes) continue;
    const std::int64_t row = rows.empty() ? begin + static_cast<std::int64_t>(p) : rows[p];
    throw Error(detail::concat(file, ": label ", int{labels[p]}, " of item ", row, " (offset ", 8 + row,
                               ") is not a class 0..", dataset_classes - 1));
  }
}

std::vector<std::int64_t> batch_sizes(const Source& s) {
  std::vector<std::int64_t> sizes;
  for (const std::string& f : s.batches) sizes.push_back(cifar10_batch_records(f));
  return sizes;
}

/// CIFAR-10: the global rows `rows` of the concatenated batches, in the order given.
RawDataset load_cifar_rows(const Source& s, std::span<const std::int64_t> rows) {
  const std::vector<std::int64_t> sizes = batch_sizes(s);
  std::int64_t total = 0;
  for (const std::int64_t n : sizes) total += n;
  for (std::size_t p = 0; p < rows.size(); ++p)
    require(rows[p] >= 0 && rows[p] < total, s.batches.front(), " ...: row index ", rows[p], " at position ", p,
            " outside [0, ", total, ") of the ", s.batches.size(), " CIFAR-10 batch file(s)");
  RawDataset out;
  out.classes = dataset_classes;
  out.x.count = static_cast<std::int64_t>(rows.size());
  out.x.features = cifar10_features;
  out.x.values.resize(rows.size() * cifar10_features);
  out.y.resize(rows.size());
  std::int64_t first = 0;
  for (std::size_t f = 0; f < s.batches.size(); ++f) {
    std::vector<std::int64_t> local, where;
    for (std::size_t p = 0; p < rows.size(); ++p) {
      if (rows[p] >= first && rows[p] < first + sizes[f]) {
        local.push_back(rows[p] - first);
        where.push_back(static_cast<std::int64_t>(p));
      }
    }
    first += sizes[f];
    if (local.empty()) continue;
    ByteRows images;
    std::vector<std::uint8_t> labels;
    read_cifar10_batch_rows(s.batches[f], local, images, labels);
    for (std::size_t k = 0; k < where.size(); ++k) {
      const auto p = static_cast<std::size_t>(where[k]);
      std::copy_n(images.values.data() + k * cifar10_features, cifar10_features,
                  out.x.values.data() + p * cifar10_features);
      out.y[p] = labels[k];
    }
  }
  return out;
}

/// The matrix whose row i is src[i][0 .. features) / 255. Rows are taken in blocks so that the
/// bytes read stay in cache while the column-major result is written contiguously.
la::Matrix scaled_rows(std::span<const std::uint8_t* const> src, std::int64_t features) {
  const auto n = static_cast<la::index_t>(src.size());
  la::Matrix x(n, features);
  constexpr la::index_t block = 64;
  for (la::index_t i0 = 0; i0 < n; i0 += block) {
    const la::index_t i1 = std::min(n, i0 + block);
    for (la::index_t j = 0; j < features; ++j) {
      double* col = x.data() + j * x.ld();
      for (la::index_t i = i0; i < i1; ++i) col[i] = src[static_cast<std::size_t>(i)][j] / 255.0;
    }
  }
  return x;
}

/// The images and labels files of an IDX split describe the same samples.
void check_idx_pair(const Source& s) {
  const IdxInfo labels_info = read_idx_info(s.labels);
  const IdxInfo images_info = read_idx_info(s.images);
  require(images_info.ndims == 3 && labels_info.ndims == 1 && images_info.dims[0] == labels_info.dims[0], s.images,
          ": ", images_info.dims[0], " images but ", s.labels, ": ", labels_info.dims[0], " labels");
}

}  // namespace

const char* to_string(Split split) { return split == Split::train ? "train" : "test"; }
const char* to_string(Format format) { return format == Format::idx ? "IDX" : "CIFAR-10"; }

DatasetInfo dataset_info(const std::string& dir, Split split) {
  const Source s = locate(dir, split);
  DatasetInfo info;
  info.format = s.format;
  info.classes = dataset_classes;
  if (s.format == Format::idx) {
    const IdxInfo images = read_idx_info(s.images);
    const IdxInfo labels = read_idx_info(s.labels);
    require(images.ndims == 3, s.images, ": expected an IDX image file (3 dimensions), found ", images.ndims);
    require(labels.ndims == 1, s.labels, ": expected an IDX label file (1 dimension), found ", labels.ndims);
    require(images.dims[0] == labels.dims[0], s.images, ": ", images.dims[0], " images but ", s.labels, ": ",
            labels.dims[0], " labels");
    info.samples = images.dims[0];
    info.height = images.dims[1];
    info.width = images.dims[2];
    info.channels = 1;
    info.features = info.height * info.width;
    info.files = {s.images, s.labels};
  } else {
    for (const std::int64_t n : batch_sizes(s)) info.samples += n;
    info.height = 32;
    info.width = 32;
    info.channels = 3;
    info.features = cifar10_features;
    info.files = s.batches;
  }
  return info;
}

RawDataset load_raw(const std::string& dir, Split split, std::int64_t begin, std::int64_t count) {
  const Source s = locate(dir, split);
  if (s.format == Format::cifar10) {
    std::int64_t total = 0;
    for (const std::int64_t n : batch_sizes(s)) total += n;
    if (count < 0) count = total - begin;
    require(begin >= 0 && count >= 0 && begin <= total && count <= total - begin, "data folder ", dir, ": rows [",
            begin, ", ", begin + count, ") outside the ", total, " ", to_string(split), " samples");
    std::vector<std::int64_t> rows(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) rows[static_cast<std::size_t>(i)] = begin + i;
    return load_cifar_rows(s, rows);
  }
  check_idx_pair(s);
  RawDataset out;
  out.classes = dataset_classes;
  out.y = read_idx_labels(s.labels, begin, count);
  out.x = read_idx_images(s.images, begin, count);
  check_labels(s.labels, {}, begin, out.y);
  return out;
}

RawDataset load_raw_rows(const std::string& dir, Split split, std::span<const std::int64_t> rows) {
  const Source s = locate(dir, split);
  if (s.format == Format::cifar10) return load_cifar_rows(s, rows);
  check_idx_pair(s);
  RawDataset out;
  out.classes = dataset_classes;
  out.y = read_idx_labels_rows(s.labels, rows);
  out.x = read_idx_images_rows(s.images, rows);
  check_labels(s.labels, rows, 0, out.y);
  return out;
}

Dataset to_dataset(const RawDataset& raw) {
  Dataset d;
  d.x = to_matrix(raw.x, 0, raw.x.count);
  d.y.assign(raw.y.begin(), raw.y.end());
  d.classes = raw.classes;
  return d;
}

la::Matrix to_matrix(const ByteRows& rows, std::int64_t begin, std::int64_t count) {
  require(begin >= 0 && count >= 0 && begin + count <= rows.count, "to_matrix: rows [", begin, ", ", begin + count,
          ") outside the ", rows.count, " samples");
  std::vector<const std::uint8_t*> src(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i)
    src[static_cast<std::size_t>(i)] = rows.values.data() + (begin + i) * rows.features;
  return scaled_rows(src, rows.features);
}

la::Matrix to_matrix(const ByteRows& rows, std::span<const std::int64_t> indices) {
  std::vector<const std::uint8_t*> src(indices.size());
  for (std::size_t p = 0; p < indices.size(); ++p) {
    const std::int64_t r = indices[p];
    require(r >= 0 && r < rows.count, "to_matrix: index ", r, " at position ", p, " outside [0, ", rows.count, ")");
    src[p] = rows.values.data() + r * rows.features;
  }
  return scaled_rows(src, rows.features);
}

Dataset load_dataset(const std::string& dir, Split split, std::int64_t begin, std::int64_t count) {
  return to_dataset(load_raw(dir, split, begin, count));
}

Dataset load_dataset_rows(const std::string& dir, Split split, std::span<const std::int64_t> rows) {
  return to_dataset(load_raw_rows(dir, split, rows));
}

std::span<const char* const> fashion_mnist_class_names() {
  static constexpr std::array<const char*, 10> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

std::span<const char* const> cifar10_class_names() {
  static constexpr std::array<const char*, 10> names{"airplane", "automobile", "bird",  "cat",  "deer",
                                                     "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

}  // namespace idprune::data
