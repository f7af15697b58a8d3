#include "idprune/nn/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "idprune/io/file.hpp"
#include "idprune/la/error.hpp"

namespace idprune::nn {

namespace {

std::size_t dtype_size(Dtype dtype) { return dtype == Dtype::f32 ? 4 : 8; }

std::uint64_t load_le(const char* p, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t b = 0; b < bytes; ++b) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[b])) << (8 * b);
  return v;
}

void store_le(std::string& out, std::uint64_t v, std::size_t bytes) {
  for (std::size_t b = 0; b < bytes; ++b) out.push_back(static_cast<char>((v >> (8 * b)) & 0xffU));
}

// A header value for an error message: flat values are shown (at most 200 characters), nested ones
// only by type, because json::dump recurses once per level and a 100 MB header nests deeper than
// the stack (a million-deep data_offsets [[[[...]]]] crashed the error path).
std::string brief(const nlohmann::json& v) {
  if (v.is_structured())
    for (const auto& item : v)
      if (item.is_structured()) return std::string("(a nested ") + v.type_name() + ")";
  std::string text = v.dump();
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

// A header value that must be a non-negative integer (JSON numbers like 3.0 or -1 are rejected).
std::uint64_t header_uint(const nlohmann::json& v, const std::string& source, const std::string& name,
                          const char* field) {
  require(v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0), source, ": tensor '", name,
          "': ", field, " entry ", brief(v), " is not a non-negative integer");
  return v.get<std::uint64_t>();
}

struct Entry {
  std::string name;
  Dtype dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin;
  std::uint64_t end;
};

}  // namespace

std::string_view to_string(Dtype dtype) { return dtype == Dtype::f32 ? "F32" : "F64"; }

Dtype parse_dtype(std::string_view name) {
  if (name == "F32" || name == "f32" || name == "float32") return Dtype::f32;
  if (name == "F64" || name == "f64" || name == "float64") return Dtype::f64;
  throw Error(detail::concat("unknown dtype '", name, "' (expected F32 or F64)"));
}

std::int64_t Tensor::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

TensorFile parse_safetensors(std::string_view bytes, const std::string& source, bool require_finite) {
  require(bytes.size() >= 8, source, ": not a safetensors file: ", bytes.size(),
          " bytes, shorter than the 8-byte header length");
  const std::uint64_t n = load_le(bytes.data(), 8);
  // Checked before anything is allocated: an absurd length is a corrupt (or foreign) file.
  require(n <= safetensors_max_header, source, ": header length ", n, " exceeds the safetensors limit of ",
          safetensors_max_header, " bytes");
  require(n <= bytes.size() - 8, source, ": header length ", n, " exceeds the ", bytes.size() - 8,
          " bytes that follow it (truncated file?)");
  const std::string_view header_text = bytes.substr(8, n);
  const std::string_view buffer = bytes.substr(8 + n);

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(detail::concat(source, ": header is not valid JSON: ", e.what()));
  }
  require(header.is_object(), source, ": header is not a JSON object");

  TensorFile file;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      require(info.is_object(), source, ": __metadata__ is not an object of strings");
      for (const auto& [key, value] : info.items()) {
        require(value.is_string(), source, ": __metadata__ entry '", key, "' is not a string");
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    require(info.is_object(), source, ": tensor '", name, "': header entry is not an object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      require(info.contains(field), source, ": tensor '", name, "': header entry has no '", field, "'");
    require(info["dtype"].is_string(), source, ": tensor '", name, "': dtype is not a string");
    const auto dtype_name = info["dtype"].get<std::string>();
    require(dtype_name == "F32" || dtype_name == "F64", source, ": tensor '", name, "': unsupported dtype '",
            dtype_name, "' (idprune reads F32 and F64)");
    Entry e{name, dtype_name == "F32" ? Dtype::f32 : Dtype::f64, {}, 0, 0};
    require(info["shape"].is_array(), source, ": tensor '", name, "': shape is not an array");
    // Element count with overflow checks: a shape whose byte size cannot fit 64 bits is corrupt.
    std::uint64_t numel = 1;
    for (const auto& d : info["shape"]) {
      const std::uint64_t dim = header_uint(d, source, name, "shape");
      require(dim <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
                  (dim == 0 || numel <= std::numeric_limits<std::uint64_t>::max() / 8 / dim),
              source, ": tensor '", name, "': shape ", brief(info["shape"]), " overflows");
      numel *= dim;
      e.shape.push_back(static_cast<std::int64_t>(dim));
    }
    const auto& offsets = info["data_offsets"];
    require(offsets.is_array() && offsets.size() == 2, source, ": tensor '", name, "': data_offsets ", brief(offsets),
            " is not a pair [begin, end]");
    e.begin = header_uint(offsets[0], source, name, "data_offsets");
    e.end = header_uint(offsets[1], source, name, "data_offsets");
    require(e.begin <= e.end, source, ": tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
            "] has begin > end");
    require(e.end - e.begin == numel * dtype_size(e.dtype), source, ": tensor '", name, "': data_offsets [", e.begin,
            ", ", e.end, "] hold ", e.end - e.begin, " bytes but ", dtype_name, " shape ", brief(info["shape"]),
            " needs ", numel * dtype_size(e.dtype));
    require(e.end <= buffer.size(), source, ": tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
            "] exceed the ", buffer.size(), "-byte data buffer (truncated file?)");
    entries.push_back(std::move(e));
  }

  // The buffer must be covered exactly, in offset order: no overlap, no hole, nothing after.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    require(e.begin >= expected, source, ": tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
            "] overlap tensor '", entries[i - (i > 0 ? 1 : 0)].name, "' (which ends at ", expected, ")");
    require(e.begin == expected, source, ": tensor '", e.name, "': data_offsets begin at ", e.begin,
            " leaving a hole after byte ", expected, " (safetensors buffers have no holes)");
    expected = e.end;
  }
  require(expected == buffer.size(), source, ": the data buffer has ", buffer.size(), " bytes but the tensors cover ",
          expected, " (trailing bytes)");

  for (const auto& e : entries) {
    Tensor t;
    t.dtype = e.dtype;
    t.shape = e.shape;
    const std::size_t size = dtype_size(e.dtype);
    const std::size_t count = static_cast<std::size_t>((e.end - e.begin) / size);
    t.values.resize(count);
    const char* p = buffer.data() + e.begin;
    for (std::size_t k = 0; k < count; ++k, p += size) {
      const std::uint64_t bits = load_le(p, size);
      const double v = size == 4 ? static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(bits)))
                                 : std::bit_cast<double>(bits);
      if (require_finite && !std::isfinite(v)) {
        std::string index;
        std::size_t rest = k;
        for (auto d = e.shape.rbegin(); d != e.shape.rend(); ++d) {
          index = (d + 1 == e.shape.rend() ? "" : ", ") + std::to_string(rest % static_cast<std::size_t>(*d)) + index;
          rest /= static_cast<std::size_t>(*d);
        }
        throw Error(
            detail::concat(source, ": tensor '", e.name, "': value ", v, " at index [", index, "] is not finite"));
      }
      t.values[k] = v;
    }
    file.tensors.emplace(e.name, std::move(t));
  }
  return file;
}

TensorFile read_safetensors(const std::string& path, bool require_finite) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  require(!ec, path, ": cannot read safetensors file: ", ec.message());
  std::ifstream in(path, std::ios::binary);
  require(in.good(), path, ": cannot open safetensors file");
  char length[8] = {};
  in.read(length, 8);
  require(in.gcount() == 8, path, ": not a safetensors file: ", size, " bytes, shorter than the 8-byte header length");
  const std::uint64_t n = load_le(length, 8);
  // Reject before allocating: the header must fit the format's limit and the file.
  require(n <= safetensors_max_header, path, ": header length ", n, " exceeds the safetensors limit of ",
          safetensors_max_header, " bytes");
  require(n <= size - 8, path, ": header length ", n, " exceeds the ", size - 8,
          " bytes that follow it (truncated file?)");
  std::string bytes(static_cast<std::size_t>(size), '\0');
  std::memcpy(bytes.data(), length, 8);
  in.read(bytes.data() + 8, static_cast<std::streamsize>(size - 8));
  require(static_cast<std::uintmax_t>(in.gcount()) == size - 8, path, ": read ", in.gcount() + 8, " of ", size,
          " bytes");
  return parse_safetensors(bytes, path, require_finite);
}

std::string serialize_safetensors(const TensorFile& file) {
  // Order of the reference `prepare`: dtype size descending, then name (byte-wise).
  std::vector<const std::pair<const std::string, Tensor>*> order;
  for (const auto& entry : file.tensors) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return dtype_size(a->second.dtype) > dtype_size(b->second.dtype);
  });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) {
    auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : file.metadata) meta[k] = v;
  }
  std::uint64_t offset = 0;
  for (const auto* entry : order) {
    const auto& [name, t] = *entry;
    require(name != "__metadata__" && !name.empty(), "serialize_safetensors: invalid tensor name '", name, "'");
    std::uint64_t numel = 1;
    for (auto d : t.shape) {
      require(d >= 0, "serialize_safetensors: tensor '", name, "' has a negative dimension ", d);
      numel *= static_cast<std::uint64_t>(d);
    }
    require(numel == t.values.size(), "serialize_safetensors: tensor '", name, "' has ", t.values.size(),
            " values for ", numel, " elements of its shape");
    nlohmann::ordered_json info = nlohmann::ordered_json::object();
    info["dtype"] = std::string(to_string(t.dtype));
    info["shape"] = t.shape;
    const std::uint64_t bytes = numel * dtype_size(t.dtype);
    info["data_offsets"] = {offset, offset + bytes};
    offset += bytes;
    header[name] = std::move(info);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // so the buffer starts 8-byte aligned

  std::string out;
  out.reserve(8 + text.size() + offset);
  store_le(out, text.size(), 8);
  out += text;
  for (const auto* entry : order) {
    const auto& [name, t] = *entry;
    for (std::size_t k = 0; k < t.values.size(); ++k) {
      const double v = t.values[k];
      require(std::isfinite(v), "serialize_safetensors: tensor '", name, "' value ", v, " at flat index ", k,
              " is not finite");
      if (t.dtype == Dtype::f32) {
        require(std::abs(v) <= std::numeric_limits<float>::max(), "serialize_safetensors: tensor '", name, "' value ",
                v, " at flat index ", k, " overflows F32");
        store_le(out, std::bit_cast<std::uint32_t>(static_cast<float>(v)), 4);
      } else {
        store_le(out, std::bit_cast<std::uint64_t>(v), 8);
      }
    }
  }
  return out;
}

void write_safetensors(const std::string& path, const TensorFile& file) {
  io::write_file_atomically(path, serialize_safetensors(file));
}

}  // namespace idprune::nn
