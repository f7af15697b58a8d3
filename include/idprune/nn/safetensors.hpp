#pragma once
// The safetensors container (https://github.com/huggingface/safetensors, "Format"):
//
//   8 bytes   N, little-endian uint64: length of the header
//   N bytes   UTF-8 JSON object {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
//             optionally "__metadata__": {string: string}}
//   rest      the byte buffer; tensor NAME occupies bytes [b, e) of it, C order, little-endian.
//
// idprune reads and writes F32 and F64 tensors (values are held as double). The reader enforces the
// format's own rules: header length at most 100,000,000 bytes and within the file (checked before
// anything is allocated), offsets consistent with dtype and shape, the buffer covered exactly with
// no overlap and no hole, no trailing bytes. The writer produces what the reference implementation's
// `serialize` does (tensors ordered by dtype size descending then name, compact JSON with
// `__metadata__` first, header padded with spaces to a multiple of 8 bytes), written atomically.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace idprune::nn {

enum class Dtype { f32, f64 };

/// "F32" | "F64" (the names used in safetensors headers).
[[nodiscard]] std::string_view to_string(Dtype dtype);
/// Parses "F32"/"f32"/"float32" or "F64"/"f64"/"float64"; throws idprune::Error otherwise.
[[nodiscard]] Dtype parse_dtype(std::string_view name);

/// One tensor: its shape and its values in C (row-major) order, held as double.
struct Tensor {
  Dtype dtype = Dtype::f32;  ///< the dtype stored in (or to be written to) the file
  std::vector<std::int64_t> shape;
  std::vector<double> values;

  [[nodiscard]] std::int64_t numel() const;
};

/// The contents of a safetensors file.
struct TensorFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;  ///< `__metadata__` (absent when empty)
};

/// Largest header the reference implementation accepts (MAX_HEADER_SIZE).
inline constexpr std::uint64_t safetensors_max_header = 100'000'000;

/// Reads `path`. Throws idprune::Error naming the file (and the tensor) on any malformed input, an
/// unsupported dtype, or (when `require_finite`) a NaN or infinite value.
[[nodiscard]] TensorFile read_safetensors(const std::string& path, bool require_finite = true);

/// Parses a whole file held in memory; `source` names it in error messages.
[[nodiscard]] TensorFile parse_safetensors(std::string_view bytes, const std::string& source,
                                           bool require_finite = true);

/// The bytes of `file` in safetensors format (each tensor converted to its dtype; a value that is
/// not finite, or does not fit a float for F32, is an error).
[[nodiscard]] std::string serialize_safetensors(const TensorFile& file);

/// Writes serialize_safetensors(file) to `path` with io::write_file_atomically, so a reader never
/// sees a half-written model.
void write_safetensors(const std::string& path, const TensorFile& file);

}  // namespace idprune::nn
