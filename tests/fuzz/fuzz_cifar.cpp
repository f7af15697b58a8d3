// libFuzzer target: CIFAR-10 binary batches (plain and gzip) through every public CIFAR-10 reader.
#include <array>
#include <cstdint>

#include "fuzz_support.hpp"
#include "idprune/data/cifar.hpp"

using namespace idprune;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.write(fuzz::container_file(data, size));
  const std::array<std::int64_t, 3> rows{1, 0, 1};

  std::int64_t records = -1;
  fuzz::reads_cleanly(path, [&] { records = data::cifar10_batch_records(path); });
  fuzz::reads_cleanly(path, [&] {
    data::ByteRows images;
    std::vector<std::uint8_t> labels;
    data::read_cifar10_batch(path, 0, -1, images, labels);
    fuzz::check(images.count == records && static_cast<std::int64_t>(labels.size()) == records &&
                    static_cast<std::int64_t>(images.values.size()) == records * data::cifar10_features,
                "read_cifar10_batch: sizes disagree with cifar10_batch_records");
    for (const std::uint8_t label : labels) fuzz::check(label < data::cifar10_classes, "label out of range");
  });
  fuzz::reads_cleanly(path, [&] {
    data::ByteRows images;
    std::vector<std::uint8_t> labels;
    data::read_cifar10_batch(path, 1, 1, images, labels);
  });
  fuzz::reads_cleanly(path, [&] {
    data::ByteRows images;
    std::vector<std::uint8_t> labels;
    data::read_cifar10_batch_rows(path, rows, images, labels);
    fuzz::check(images.count == 3 && labels.size() == 3, "read_cifar10_batch_rows: wrong count");
  });
  return 0;
}
