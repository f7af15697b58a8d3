// libFuzzer target: safetensors files (header JSON, tensor offsets, values) through
// nn::read_safetensors, and the tensors it accepts through nn::from_tensor_file (the model reader).
#include <cstdint>

#include "fuzz_support.hpp"
#include "idprune/nn/model_io.hpp"
#include "idprune/nn/safetensors.hpp"

using namespace idprune;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.write(data, size);
  nn::TensorFile tensors;
  const bool ok = fuzz::reads_cleanly(path, [&] { tensors = nn::read_safetensors(path, false); });
  if (!ok) return 0;
  std::size_t bytes = 0;
  for (const auto& [name, t] : tensors.tensors) {
    fuzz::check(static_cast<std::int64_t>(t.values.size()) == t.numel(), "tensor values do not match its shape");
    bytes += t.values.size() * (t.dtype == nn::Dtype::f32 ? 4 : 8);
  }
  fuzz::check(bytes <= size, "tensors hold more bytes than the file");
  fuzz::reads_cleanly(path, [&] { (void)nn::read_safetensors(path, true); });
  fuzz::reads_cleanly(path, [&] { (void)nn::from_tensor_file(tensors, path); });
  return 0;
}
