#include "idprune/dist/fault.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>

#include "idprune/la/error.hpp"

namespace idprune::dist {

namespace {
long parse_long(std::string_view text, std::string_view spec) {
  long v = 0;
  const auto res = std::from_chars(text.data(), text.data() + text.size(), v);
  require(res.ec == std::errc() && res.ptr == text.data() + text.size() && v >= 0, "IDPRUNE_FAULT='", spec, "': '",
          text, "' is not a non-negative integer");
  return v;
}
}  // namespace

void inject_fault(int rank, std::string_view phase, long index) {
  const char* env = std::getenv("IDPRUNE_FAULT");
  if (env == nullptr || *env == '\0') return;
  const std::string_view spec(env);
  bool any_rank = false;
  long want_rank = -1;
  long want_index = -1;
  std::string_view want_phase;
  for (std::size_t pos = 0; pos <= spec.size();) {
    const std::size_t comma = std::min(spec.find(',', pos), spec.size());
    const std::string_view item = spec.substr(pos, comma - pos);
    pos = comma + 1;
    const std::size_t eq = item.find('=');
    require(eq != std::string_view::npos, "IDPRUNE_FAULT='", spec, "': '", item,
            "' is not key=value (keys: rank, phase, wave or call)");
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "rank") {
      any_rank = value == "*";
      if (!any_rank) want_rank = parse_long(value, spec);
    } else if (key == "phase") {
      require(value == "load-model" || value == "load-data" || value == "wave" || value == "wave-abort" ||
                  value == "engine",
              "IDPRUNE_FAULT='", spec, "': unknown phase '", value,
              "' (load-model, load-data, wave, wave-abort, engine)");
      want_phase = value;
    } else if (key == "wave" || key == "call") {
      want_index = parse_long(value, spec);
    } else {
      throw Error(
          idprune::detail::concat("IDPRUNE_FAULT='", spec, "': unknown key '", key, "' (rank, phase, wave or call)"));
    }
  }
  require((any_rank || want_rank >= 0) && !want_phase.empty(), "IDPRUNE_FAULT='", spec, "' needs rank=R and phase=P");
  if (!any_rank && want_rank != rank) return;
  if (want_phase != phase) return;
  if (want_index >= 0 && want_index != index) return;
  throw Error(idprune::detail::concat(
      "injected fault (IDPRUNE_FAULT=", spec, ") on rank ", rank, " at phase ", phase,
      index >= 0 ? idprune::detail::concat(" (", phase == "engine" ? "call " : "wave ", index, ")") : std::string()));
}

}  // namespace idprune::dist
