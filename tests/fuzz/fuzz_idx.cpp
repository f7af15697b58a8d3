// libFuzzer target: IDX image and label files (plain and gzip) through every public IDX reader.
#include <array>
#include <cstdint>

#include "fuzz_support.hpp"
#include "idprune/data/idx.hpp"

using namespace idprune;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.write(fuzz::container_file(data, size));
  const std::array<std::int64_t, 3> rows{2, 0, 2};

  data::IdxInfo info;
  fuzz::reads_cleanly(path, [&] { info = data::read_idx_info(path); });
  fuzz::reads_cleanly(path, [&] {
    std::int64_t h = 0, w = 0;
    const data::ByteRows all = data::read_idx_images(path, 0, -1, &h, &w);
    fuzz::check(all.features == h * w && static_cast<std::int64_t>(all.values.size()) == all.count * all.features,
                "read_idx_images: values do not match count x height x width");
    fuzz::check(info.ndims == 3 && info.dims.size() == 3 && info.dims[0] == all.count,
                "read_idx_info disagrees with read_idx_images");
  });
  fuzz::reads_cleanly(path, [&] { (void)data::read_idx_images(path, 1, 1); });
  fuzz::reads_cleanly(path, [&] {
    const data::ByteRows some = data::read_idx_images_rows(path, rows);
    fuzz::check(some.count == 3 && static_cast<std::int64_t>(some.values.size()) == 3 * some.features,
                "read_idx_images_rows: wrong number of values");
  });
  fuzz::reads_cleanly(path, [&] {
    const auto labels = data::read_idx_labels(path);
    fuzz::check(info.ndims == 1 && info.dims.size() == 1 && info.dims[0] == static_cast<std::int64_t>(labels.size()),
                "read_idx_info disagrees with read_idx_labels");
  });
  fuzz::reads_cleanly(path, [&] { (void)data::read_idx_labels(path, 1, 1); });
  fuzz::reads_cleanly(path, [&] { fuzz::check(data::read_idx_labels_rows(path, rows).size() == 3, "label rows"); });
  return 0;
}
