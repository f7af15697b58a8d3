#include "idprune/data/cifar.hpp"

#include <algorithm>

#include "data/byte_source.hpp"
#include "idprune/la/error.hpp"

namespace idprune::data {

namespace {

using io::ByteSource;

/// Number of records of a batch file: a plain file is measured, a gzip file decompressed once.
std::int64_t count_records(const std::string& path) {
  ByteSource src(path);
  const std::int64_t length = src.skip_to_end();
  require(length > 0 && length % cifar10_record_bytes == 0, path, ": ", length, " bytes",
          src.gzip() ? " (decompressed)" : "", " is not a positive multiple of the ", cifar10_record_bytes,
          "-byte CIFAR-10 record (1 label + ", cifar10_features, " pixels); the last record would start at offset ",
          length / cifar10_record_bytes * cifar10_record_bytes);
  return length / cifar10_record_bytes;
}

void check_labels(const std::string& path, std::span<const std::int64_t> rows,
                  const std::vector<std::uint8_t>& labels) {
  for (std::size_t p = 0; p < labels.size(); ++p)
    require(labels[p] < cifar10_classes, path, ": record ", rows[p], " (offset ", rows[p] * cifar10_record_bytes,
            ") has label ", int{labels[p]}, ", expected 0..", cifar10_classes - 1);
}

void split_records(const std::vector<std::uint8_t>& records, std::int64_t count, ByteRows& images,
                   std::vector<std::uint8_t>& labels) {
  images.count = count;
  images.features = cifar10_features;
  images.values.resize(static_cast<std::size_t>(count * cifar10_features));
  labels.resize(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint8_t* rec = records.data() + i * cifar10_record_bytes;
    labels[static_cast<std::size_t>(i)] = rec[0];
    std::copy_n(rec + 1, cifar10_features, images.values.data() + i * cifar10_features);
  }
}

}  // namespace

std::int64_t cifar10_batch_records(const std::string& path) { return count_records(path); }

void read_cifar10_batch_rows(const std::string& path, std::span<const std::int64_t> rows, ByteRows& images,
                             std::vector<std::uint8_t>& labels) {
  const std::int64_t n = count_records(path);
  io::check_rows(rows, n, path);
  ByteSource src(path);
  std::vector<std::uint8_t> records(rows.size() * cifar10_record_bytes);
  io::read_selected_items(src, n, cifar10_record_bytes, rows, records.data(), "the CIFAR-10 records");
  const auto count = static_cast<std::int64_t>(rows.size());
  split_records(records, count, images, labels);
  check_labels(path, rows, labels);
}

void read_cifar10_batch(const std::string& path, std::int64_t begin, std::int64_t count, ByteRows& images,
                        std::vector<std::uint8_t>& labels) {
  const std::int64_t n = count_records(path);
  if (count < 0) count = n - begin;
  require(begin >= 0 && count >= 0 && begin <= n && count <= n - begin, path, ": records [", begin, ", ", begin + count,
          ") outside the ", n, " records of the file");
  std::vector<std::int64_t> rows(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) rows[static_cast<std::size_t>(i)] = begin + i;
  read_cifar10_batch_rows(path, rows, images, labels);
}

}  // namespace idprune::data
