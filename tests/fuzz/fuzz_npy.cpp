// libFuzzer target: NumPy .npy files through data::read_npy.
#include <cmath>
#include <cstdint>

#include "fuzz_support.hpp"
#include "idprune/data/npy.hpp"

using namespace idprune;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.write(data, size);
  bool finite = true;
  const bool ok = fuzz::reads_cleanly(path, [&] {
    const la::Matrix a = data::read_npy(path, false);
    for (const double v : a.values()) finite = finite && std::isfinite(v);
  });
  // With require_finite the same file must be accepted exactly when every value is finite.
  const bool ok_finite = fuzz::reads_cleanly(path, [&] { (void)data::read_npy(path, true); });
  fuzz::check(ok_finite == (ok && finite), "read_npy(require_finite) disagrees with the values read");
  return 0;
}
